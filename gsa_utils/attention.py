"""Attention maps of every method: extraction, agreement with the truth, faithfulness, variability.

Introduced in chapter 12 (``12_attention_maps``). Every method's maps are an :class:`AttentionMaps`
(one shared map, or one per image, at the image size); :func:`localisation`, :func:`faithfulness`
and :func:`variability` score them. Grad-CAM comes from the ``grad-cam`` package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import map_contrast, map_roc_auc, mass_inside, pointing_game, relevance_rank_accuracy
from .training import predict


@dataclass
class AttentionMaps:
    """The maps one method gives: N x H x W per-image maps, or 1 x H x W ``shared`` by all images."""

    method: str
    maps: np.ndarray
    shared: bool

    def for_images(self, n: int) -> np.ndarray:
        """The maps as N x H x W: a shared map repeated ``n`` times, per-image maps as they are."""
        if self.shared:
            return np.repeat(self.maps[:1], n, axis=0)
        if len(self.maps) != n:
            raise ValueError(f"{self.method}: {len(self.maps)} per-image maps for {n} images")
        return self.maps


def _to_image_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear up-sampling of N x 1 x h x w maps to N x 1 x H x W."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def upsample_maps(maps, size) -> np.ndarray:
    """Per-image maps N x h x w (tensor or array), resized bilinearly to ``size`` (``H`` or ``(H, W)``), float64."""
    t = torch.as_tensor(
        np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps), dtype=torch.float32
    )
    if t.dim() != 3:
        raise ValueError(f"upsample_maps: expected N x h x w maps, got shape {tuple(t.shape)}")
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    return _to_image_size(t[:, None], hw)[:, 0].numpy().astype(np.float64)


@torch.no_grad()
def global_map(model: nn.Module, method: str = "GSA") -> AttentionMaps:
    """The one map of a model with ``attention_map()`` (GSA, or L1 pixel weights as ``|W|``)."""
    if not hasattr(model, "attention_map"):
        raise TypeError(f"{type(model).__name__} has no attention_map(); it has no global map")
    amap = model.attention_map().detach().abs().float().cpu().numpy()
    return AttentionMaps(method, amap.reshape(1, *amap.shape[-2:]), shared=True)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in evaluation mode, its training mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def _mean_of_levels(
    x: torch.Tensor, batch_size: int, levels: Callable[[torch.Tensor], list[torch.Tensor]], device: torch.device
) -> np.ndarray:
    """Per image, the mean of ``levels(batch)`` (each N x 1 x h x w) up-sampled to the image size."""
    out = []
    for i in range(0, len(x), batch_size):
        ups = [_to_image_size(a, tuple(x.shape[-2:])) for a in levels(x[i : i + batch_size].to(device))]
        out.append(torch.stack(ups).mean(0)[:, 0].cpu())
    return torch.cat(out).float().numpy()


def vgg_att_maps(model: nn.Module, x: torch.Tensor, batch_size: int = 64, method: str = "VGG-att3") -> AttentionMaps:
    """VGG-att3's per-image attention: the three levels, each times its number of positions, up-sampled and averaged."""

    def levels(xb: torch.Tensor) -> list[torch.Tensor]:
        return [a[:, None] * a[0].numel() for a in model.attention_maps(xb)]

    with _eval_mode(model):
        return AttentionMaps(method, _mean_of_levels(x, batch_size, levels, _device(model)), shared=False)


def resattnet_maps(model: nn.Module, x: torch.Tensor, batch_size: int = 64, method: str = "ResAttNet") -> AttentionMaps:
    """ResAttNet's soft masks per image (a coarse read-out): mean over channels, up-sampled, mean over modules."""

    def levels(xb: torch.Tensor) -> list[torch.Tensor]:
        return [m.mean(1, keepdim=True) for m in model.soft_masks(xb)]

    with _eval_mode(model):
        return AttentionMaps(method, _mean_of_levels(x, batch_size, levels, _device(model)), shared=False)


def last_conv_layer(model: nn.Module) -> nn.Module:
    """The last ``nn.Conv2d`` of a model, Grad-CAM's usual target layer."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    return convs[-1]


def grad_cam_maps(
    model: nn.Module,
    x: torch.Tensor,
    plus_plus: bool = False,
    target_layer: nn.Module | None = None,
    targets: torch.Tensor | None = None,
    batch_size: int = 64,
) -> AttentionMaps:
    """Grad-CAM (or Grad-CAM++) per image in [0, 1], from the ``grad-cam`` package.

    ``target_layer`` defaults to :func:`last_conv_layer`; ``targets`` (a class per image)
    defaults to the predicted class.
    """
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = target_layer if target_layer is not None else last_conv_layer(model)
    cam_class = GradCAMPlusPlus if plus_plus else GradCAM
    out = []
    with _eval_mode(model), cam_class(model=model, target_layers=[layer]) as cam:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(_device(model))
            cls = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets[i : i + batch_size]]
            out.append(np.asarray(cam(input_tensor=xb, targets=cls), dtype=np.float32))
    return AttentionMaps("Grad-CAM++" if plus_plus else "Grad-CAM", np.concatenate(out), shared=False)


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@dataclass
class Localisation:
    """Agreement of maps with a ground-truth mask, averaged over images.

    Chance is 0.5 for ``roc_auc`` and ``mask_fraction`` for the other scores; ``contrast``
    (:func:`~gsa_utils.metrics.map_contrast`) needs no mask.
    """

    method: str
    roc_auc: float
    pointing_game: float
    mass_inside: float
    rank_accuracy: float
    mask_fraction: float
    contrast: float = float("nan")

    def as_row(self) -> dict[str, float]:
        """The scores as a table row."""
        return {
            "ROC-AUC": self.roc_auc,
            "contrast": self.contrast,
            "pointing game": self.pointing_game,
            "mass inside": self.mass_inside,
            "rank accuracy": self.rank_accuracy,
        }


def localisation(maps: AttentionMaps, mask) -> Localisation:
    """ROC-AUC, pointing game, relevance mass inside and rank accuracy of ``maps`` against ``mask``."""
    mask = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask, dtype=bool)
    per_map = [
        (
            map_roc_auc(m, mask),
            pointing_game(m, mask),
            mass_inside(m, mask),
            relevance_rank_accuracy(m, mask),
            map_contrast(m),
        )
        for m in maps.maps
    ]
    auc, pg, mass, rank, contrast = np.nanmean(np.array(per_map, dtype=float), axis=0)
    return Localisation(
        maps.method, float(auc), float(pg), float(mass), float(rank), float(mask.mean()), float(contrast)
    )


@dataclass
class Faithfulness:
    """Mean probability of the explained class after deleting (inserting) a share of the pixels.

    ``deletion_least`` is ``insertion_most`` reversed, and ``deletion_most`` is ``insertion_least``
    reversed (deleting the least relevant ``f`` leaves what inserting the most relevant ``1 - f`` gives).
    """

    method: str
    fractions: np.ndarray
    deletion_most: np.ndarray
    deletion_least: np.ndarray
    insertion_most: np.ndarray
    insertion_least: np.ndarray

    def area(self, curve: str) -> float:
        """Area under one curve (trapezoid rule over the fractions)."""
        y = getattr(self, curve)
        return float(np.sum((y[1:] + y[:-1]) * np.diff(self.fractions)) / 2)

    @property
    def gap(self) -> float:
        """Area(deletion, least first) - area(deletion, most first): > 0 when the decisive pixels rank first."""
        return self.area("deletion_least") - self.area("deletion_most")


def _class_probability(model: nn.Module, x: torch.Tensor, classes: torch.Tensor, batch_size: int) -> torch.Tensor:
    probs = torch.softmax(predict(model, x, batch_size), 1).cpu()
    return probs.gather(1, classes[:, None].cpu())[:, 0]


@torch.no_grad()
def faithfulness(
    model: nn.Module,
    x: torch.Tensor,
    maps: AttentionMaps,
    baseline: torch.Tensor | float = 0.0,
    steps: int = 10,
    classes: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 128,
) -> Faithfulness:
    """Deletion and insertion curves of ``model`` on ``x`` in the pixel order of ``maps``.

    Parameters
    ----------
    baseline
        What a deleted pixel becomes (and the start of insertion): a number or a C x H x W tensor.
    steps
        Number of equal steps from 0 to all pixels.
    classes
        Class tracked per image; ``None``: the class predicted on the intact image.
    seed
        Breaks ties in a map in a random order.
    """
    with _eval_mode(model):
        n, _, h, w = x.shape
        base = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x[0])[None]
        if classes is None:
            classes = predict(model, x, batch_size).argmax(1).cpu()
        rng = np.random.default_rng(seed)
        values = maps.for_images(n).reshape(n, h * w).astype(float)
        jitter = rng.random(values.shape)
        order_most = np.lexsort((-jitter, -values), axis=1)  # by value, ties at random
        ranks = torch.as_tensor(np.argsort(order_most, axis=1).reshape(n, 1, h, w))
        fractions = np.linspace(0.0, 1.0, steps + 1)
        deletion, insertion = [], []
        for f in fractions:
            most = (ranks < int(round(f * h * w))).to(x.dtype)  # the most relevant share f
            for curve, keep in ((deletion, 1 - most), (insertion, most)):
                xc = x * keep + base * (1 - keep)
                curve.append(float(_class_probability(model, xc, classes, batch_size).mean()))
        deletion_most, insertion_most = np.array(deletion), np.array(insertion)
        return Faithfulness(
            maps.method,
            fractions,
            deletion_most,
            insertion_most[::-1].copy(),
            insertion_most,
            deletion_most[::-1].copy(),
        )


@dataclass
class MapVariability:
    """How alike the maps of different images are, and what their differences follow.

    Over image pairs: the mean Pearson correlation of their maps, the mean IoU of their
    ``top_fraction`` highest pixels, and the Spearman correlation of map similarity with image
    similarity (``content_correlation``) and with "same label" (``label_correlation``).
    """

    method: str
    mean_correlation: float
    mean_top_iou: float
    content_correlation: float
    label_correlation: float
    top_fraction: float
    n_images: int


def _pairwise_correlation(rows: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of rows; with a constant row, 1 when the rows are equal, else 0."""
    z = rows - rows.mean(1, keepdims=True)
    norms = np.linalg.norm(z, axis=1)
    flat = norms == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (z / norms[:, None]) @ (z / norms[:, None]).T
    if flat.any():
        for i in np.flatnonzero(flat):
            equal = np.array([np.allclose(rows[i], r) for r in rows], dtype=float)
            corr[i, :] = equal
            corr[:, i] = equal
    return corr


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def variability(
    maps: AttentionMaps,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    top_fraction: float = 0.2,
    seed: int = 0,
) -> MapVariability:
    """Pairwise similarity of per-image maps, and whether it follows the ``images`` or the ``labels``.

    A shared map gives correlation and IoU 1 and NaN content and label correlations, as does
    leaving out ``images`` or ``labels``. Ties in the top ``top_fraction`` are broken from ``seed``.
    """
    if not 0 < top_fraction < 1:
        raise ValueError(f"top_fraction must lie in (0, 1), got {top_fraction}")
    if not np.isfinite(maps.maps).all():
        raise ValueError(f"{maps.method}: the maps contain NaN or infinite values")
    n = len(maps.maps) if not maps.shared else (len(images) if images is not None else 2)
    flat = maps.for_images(n).reshape(n, -1).astype(float)
    if n < 2:
        raise ValueError(f"{maps.method}: variability needs maps of at least 2 images")
    iu = np.triu_indices(n, 1)
    corr = _pairwise_correlation(flat)[iu]
    k = max(1, int(round(top_fraction * flat.shape[1])))
    jitter = np.random.default_rng(seed).random(flat.shape)
    top = np.zeros_like(flat)
    np.put_along_axis(top, np.lexsort((-jitter, -flat), axis=1)[:, :k], 1.0, axis=1)
    inter = (top @ top.T)[iu]
    iou = inter / (2 * k - inter)
    content = label = float("nan")
    if not maps.shared and images is not None:
        if len(images) != n:
            raise ValueError(f"{maps.method}: {n} maps but {len(images)} images")
        image_corr = _pairwise_correlation(images.reshape(n, -1).double().cpu().numpy())[iu]
        content = _spearman(corr, image_corr)
    if not maps.shared and labels is not None:
        y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        label = _spearman(corr, (y[:, None] == y[None, :])[iu].astype(float))
    return MapVariability(maps.method, float(np.nanmean(corr)), float(iou.mean()), content, label, top_fraction, n)
