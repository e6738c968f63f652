"""gsa_utils: global spatial attention (Xu et al.) for structured images, the gsa-book's helper package.

Importing it has no side effects. The README lists the modules to read first; chapter presentation
helpers live in :mod:`gsa_utils.chapter_aids`, which the method never imports.
"""

from .backbones import BACKBONES, PretrainedWeightsError, SmallCNN, build_backbone
from .data import load_folder, load_idrid, load_jaffe, load_medmnist
from .data.base import DataError, StructuredDataset
from .data.registry import load_dataset
from .devices import pick_device, seed_everything
from .history import History
from .losses import combined_loss, map_l1
from .metrics import (
    FLAT_CONTRAST,
    SATURATION,
    attention_quality,
    map_contrast,
    map_roc_auc,
    mass_inside,
    pointing_game,
    relevance_rank_accuracy,
    saturated_fraction,
)
from .models import GlobalSpatialAttention, PixelCNN, count_parameters, pixel_cnn_parameter_count
from .pixel import pixel_representation, pixel_representation_bytes
from .profiles import Profile, get_profile
from .protocol import (
    N_FOLDS,
    N_SELECTED_EPOCHS,
    SIGNIFICANCE_LEVEL,
    compare_over_seeds,
    format_p,
    protocol_accuracy,
    select_epochs,
    select_hyperparameters,
    stratified_folds,
    t_test,
    verdict,
)
from .recipes import RECIPES, PixelCNNDesign, Recipe, RecipeChoice, build_gsa, get_recipe
from .runs.runner import build_model
from .settings import PAPER_BACKBONES, PAPER_CUTOFF_EPOCH, PAPER_EPOCHS, PAPER_FIT, FitSettings
from .stability import COLLAPSE_SHARE, collapse_verdict
from .training import (
    HasAttentionMap,
    Learner,
    TwoPhaseModel,
    algorithm_1,
    evaluate,
    map_image,
    predict,
    train_one_epoch,
    two_phase_fit,
)

__all__ = [
    "DataError",
    "StructuredDataset",
    "load_dataset",
    "load_folder",
    "load_idrid",
    "load_jaffe",
    "load_medmnist",
    "combined_loss",
    "map_l1",
    "FLAT_CONTRAST",
    "saturated_fraction",
    "attention_quality",
    "map_roc_auc",
    "map_contrast",
    "mass_inside",
    "pointing_game",
    "relevance_rank_accuracy",
    "BACKBONES",
    "PAPER_BACKBONES",
    "GlobalSpatialAttention",
    "PixelCNN",
    "PretrainedWeightsError",
    "SmallCNN",
    "build_backbone",
    "build_model",
    "count_parameters",
    "pixel_cnn_parameter_count",
    "pixel_representation",
    "pixel_representation_bytes",
    "N_FOLDS",
    "N_SELECTED_EPOCHS",
    "PAPER_CUTOFF_EPOCH",
    "PAPER_EPOCHS",
    "SIGNIFICANCE_LEVEL",
    "compare_over_seeds",
    "format_p",
    "protocol_accuracy",
    "select_epochs",
    "select_hyperparameters",
    "stratified_folds",
    "t_test",
    "verdict",
    "RECIPES",
    "Recipe",
    "build_gsa",
    "get_recipe",
    "COLLAPSE_SHARE",
    "SATURATION",
    "collapse_verdict",
    "RecipeChoice",
    "PixelCNNDesign",
    "Profile",
    "get_profile",
    "FitSettings",
    "PAPER_FIT",
    "HasAttentionMap",
    "TwoPhaseModel",
    "History",
    "Learner",
    "algorithm_1",
    "evaluate",
    "map_image",
    "pick_device",
    "predict",
    "seed_everything",
    "train_one_epoch",
    "two_phase_fit",
]

__version__ = "0.1.0"
