"""Baselines of the paper (section 4.3): non-deep pixel models and local-attention CNNs.

Introduced in chapter 10 (``10_baselines``):

* :mod:`.linear` -- logistic regression and SVM on raw pixels with cross-validated grid search;
* :mod:`.vgg_att` -- VGG-att3 (Jetley et al., "Learn to Pay Attention", ICLR 2018);
* :mod:`.resattnet` -- ResAttNet-92 (Wang et al., "Residual Attention Network for Image
  Classification", CVPR 2017).

* :mod:`.l1_weights` -- the L1-regularised pixel-weights baseline (paper section 4.3).

Importing this package has no side effects (no downloads).
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
