"""The paper's baselines (section 4.3), introduced in chapter 10 (``10_baselines``).

Pixel models (:mod:`.linear`), the L1 pixel weights (:mod:`.l1_weights`), VGG-att3 (:mod:`.vgg_att`)
and ResAttNet-92 (:mod:`.resattnet`).
"""

from .l1_weights import L1_COEFFICIENT_GRID, L1PixelWeights
from .linear import DEFAULT_PARAM_GRIDS, evaluate_pixel_baseline, fit_pixel_baseline, make_pixel_pipeline
from .resattnet import (
    PARAMETER_TOLERANCE,
    PUBLISHED_PARAMETERS,
    AttentionModule,
    PreActBottleneck,
    ResAttNet56,
    ResAttNet92,
    ResidualAttentionNetwork,
    SoftMaskBranch,
)
from .vgg_att import VGG16_CONV_CONFIG, VGGAtt3, vgg16_conv_parameter_count, vgg16_weights_file

__all__ = [
    "L1PixelWeights",
    "L1_COEFFICIENT_GRID",
    "DEFAULT_PARAM_GRIDS",
    "fit_pixel_baseline",
    "evaluate_pixel_baseline",
    "make_pixel_pipeline",
    "VGGAtt3",
    "VGG16_CONV_CONFIG",
    "vgg16_conv_parameter_count",
    "vgg16_weights_file",
    "ResAttNet92",
    "ResAttNet56",
    "ResidualAttentionNetwork",
    "AttentionModule",
    "SoftMaskBranch",
    "PreActBottleneck",
    "PUBLISHED_PARAMETERS",
    "PARAMETER_TOLERANCE",
]
