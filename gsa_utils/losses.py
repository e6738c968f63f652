"""The combined loss: cross-entropy plus an L1 penalty on the attention map (paper eq. 1).

Introduced in chapter 4 (``04_combined_loss``).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["LossParts", "map_l1", "combined_loss"]

Reduction = Literal["sum", "mean"]


class LossParts(NamedTuple):
    """The total loss and its two terms (already weighted: ``total = ce + l1``)."""

    total: torch.Tensor
    ce: torch.Tensor
    l1: torch.Tensor


def map_l1(attention_map: torch.Tensor, reduction: Reduction = "sum") -> torch.Tensor:
    """L1 norm of a map in [0, 1] (so simply its sum), or its mean over pixels.

    Which one the paper means by ``lambda |M(P)|`` is not spelled out. Two hints favour
    the **sum**: eq. (1) writes a plain norm, and section 4.4 explains that the L1
    *pixel-weight baseline* needs coefficients as large as 1e5 "because the regularization
    loss on each pixel was averaged by the number of pixels", implying GSA's term was not
    averaged; with a sum, the paper's lambda grid {0.1, ..., 1e-4} puts a 224 x 224 map's
    penalty between about 5 and 5000 times its mean level, the same range the baseline's
    grid spans. With ``"mean"``, multiply lambda by H*W to get the same penalty.

    Parameters
    ----------
    attention_map
        Map of any shape (usually 1 x 1 x H x W).
    reduction
        ``"sum"`` (default, our reading of the paper) or ``"mean"``.
    """
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
