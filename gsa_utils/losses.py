"""The combined loss: cross-entropy plus an L1 penalty on the attention map (paper eq. 1).

Introduced in chapter 4 (``04_combined_loss``).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

Reduction = Literal["sum", "mean"]


class LossParts(NamedTuple):
    """The total loss and its two terms (already weighted: ``total = ce + l1``)."""

    total: torch.Tensor
    ce: torch.Tensor
    l1: torch.Tensor


def map_l1(attention_map: torch.Tensor, reduction: Reduction = "sum") -> torch.Tensor:
    """L1 norm of a map (``"sum"``, our reading of the paper; chapter 4 says why) or its mean over pixels."""
    if reduction == "sum":
        return attention_map.abs().sum()
    if reduction == "mean":
        return attention_map.abs().mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def combined_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    attention_map: torch.Tensor | None = None,
    l1_weight: float = 0.0,
    reduction: Reduction = "sum",
) -> LossParts:
    """Mean cross-entropy over the batch plus ``l1_weight * map_l1(attention_map, reduction)``.

    With ``attention_map=None`` (a vanilla CNN) the L1 term is zero.
    """
    ce = F.cross_entropy(logits.float(), targets)
    if attention_map is None or l1_weight == 0:
        l1 = ce.new_zeros(())
    else:
        l1 = l1_weight * map_l1(attention_map.float(), reduction)
    return LossParts(ce + l1, ce, l1)
