"""gsa_utils: global spatial attention (Xu et al.) for structured images.

The helper package of the gsa-book. Importing it has no side effects: no downloads,
no change to matplotlib or torch global settings.

Where each piece is introduced:

* chapter 1: :mod:`gsa_utils.data` (datasets), :mod:`gsa_utils.profiles`
* chapter 2: :func:`pixel_representation`
* chapter 3: :class:`PixelCNN`
* chapter 4: :func:`combined_loss`
* chapter 5: :class:`GlobalSpatialAttention`, :func:`two_phase_fit`, :func:`build_backbone`,
  :mod:`gsa_utils.metrics`
"""
from .data.base import DataError, StructuredDataset
from .losses import combined_loss, map_l1
from .metrics import attention_quality, map_roc_auc, mass_inside, pointing_game
from .models import (BACKBONES, PAPER_BACKBONES, GlobalSpatialAttention, PixelCNN, PretrainedWeightsError, SmallCNN,
                     build_backbone, count_parameters, pixel_cnn_parameter_count)
from .pixel import pixel_representation
from .profiles import Profile, get_profile
from .training import (History, evaluate, fit_settings, map_image, pick_device, predict, seed_everything,
                       two_phase_fit)

__version__ = "0.1.0"
