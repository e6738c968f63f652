"""The paper's Table 2 exactly as printed: accuracy (%), standard deviation and ``*`` markers.

Introduced in chapter 10 (``10_baselines``). The paper's bold (global attention vs vanilla) is lost
in its text version; only the ``*`` (global attention vs L1) survives. "JAFPE" in its header is JAFFE.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PaperCell", "PAPER_COLUMNS", "PAPER_ROWS", "PAPER_TABLE2", "DATASET_COLUMNS"]


class PaperCell(NamedTuple):
    """One printed cell of the paper's Table 2: accuracy (%), std (``None`` if not printed), ``*``."""

    mean: float
    std: float | None
    star: bool

    def __str__(self) -> str:
        return f"{'*' if self.star else ''}{self.mean:.2f}" + ("" if self.std is None else f"({self.std:.2f})")


#: The paper's columns (its header: Glaucoma | IDRiD Retinopathy, Macular Edema | "JAFPE").
PAPER_COLUMNS = ("Glaucoma", "IDRiD Retinopathy", "IDRiD Macular Edema", "JAFFE")

# Table 2 as printed in the paper's text version (tab-separated), parsed below.
_PAPER_TABLE2_TEXT = """\
LR\t74.28\t39.81\t66.99\t74.06
SVM\t74.45\t45.63\t64.08\t75.00
VGG-att3\t79.63(3.09)\t47.25(4.45)\t78.86(2.10)\t74.26(1.92)
ResAttNet-92\t77.17(2.33)\t41.81(5.07)\t67.15(3.98)\t70.78(6.04)
GoogleNet\t81.06(1.18)\t52.46(4.38)\t80.49(1.90)\t78.94(2.56)
GoogleNet (with L1)\t81.93(2.27)\t54.72(2.66)\t78.60(2.14)\t82.02(2.66)
GoogleNet (with global attention)\t*83.61(2.43)\t*57.21(3.20)\t*81.36(3.05)\t82.64(2.57)
VGG-16\t82.38(1.30)\t56.96(4.63)\t80.23(2.32)\t81.78(8.44)
VGG-16 (with L1)\t82.71(3.02)\t57.99(5.41)\t78.93(1.02)\t84.88(2.00)
VGG-16 (with global attention)\t*84.22(1.26)\t*66.41(1.36)\t*83.59(0.47)\t84.26(6.19)
ResNet-152\t82.16(0.87)\t56.78(4.98)\t79.06(1.97)\t77.83(4.35)
ResNet-152 (with L1)\t83.41(1.10)\t60.91(2.31)\t79.54(1.39)\t80.00(3.79)
ResNet-152 (with global attention)\t*84.37(0.98)\t*66.17(2.16)\t*82.13(0.70)\t80.39(3.85)
DenseNet-161\t81.06(1.44)\t59.84(3.80)\t80.12(1.27)\t79.39(3.42)
DenseNet-161 (with L1)\t80.08(3.18)\t60.58(1.80)\t81.07(2.56)\t82.95(3.53)
DenseNet-161 (with global attention)\t*82.27(1.88)\t*62.88(4.40)\t*82.07(2.71)\t*84.88(3.04)
"""


def _parse_paper_cell(text: str) -> PaperCell:
    text = text.strip()
    star = text.startswith("*")
    text = text.lstrip("*")
    if "(" in text:
        mean, std = text.rstrip(")").split("(")
        return PaperCell(float(mean), float(std), star)
    return PaperCell(float(text), None, star)


def _parse_paper_table(text: str) -> dict[str, dict[str, PaperCell]]:
    table: dict[str, dict[str, PaperCell]] = {}
    for line in text.strip().splitlines():
        label, *cells = line.split("\t")
        table[label] = {col: _parse_paper_cell(c) for col, c in zip(PAPER_COLUMNS, cells)}
    return table


#: Table 2 of the paper: row label -> column -> :class:`PaperCell` (accuracy in percent).
PAPER_TABLE2: dict[str, dict[str, PaperCell]] = _parse_paper_table(_PAPER_TABLE2_TEXT)
#: The paper's row labels, in its order.
PAPER_ROWS: tuple[str, ...] = tuple(PAPER_TABLE2)

#: Our dataset name -> the paper's column it reproduces.
DATASET_COLUMNS = {
    "glaucoma-oct": "Glaucoma",
    "idrid-retinopathy": "IDRiD Retinopathy",
    "idrid-edema": "IDRiD Macular Edema",
    "jaffe": "JAFFE",
}
