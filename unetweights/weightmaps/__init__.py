"""U-Net border weight maps, distance maps and skeleton targets: numpy in, numpy out (scipy.ndimage,
scikit-image).

This subpackage never imports torch, so data-loader workers can use it without loading a framework.
"""

from .balance import class_balance_weights
from .distance import nearest_two_distances, signed_distance_map
from .instances import label_instances, separate_touching
from .recipe import WEIGHTINGS, Option, Weighting, WeightMapRecipe, register_weighting
from .skeleton import tubed_skeleton
from .unet import border_cutoff, check_ignore_label, falk_weight_map, prepare_labels, unet_weight_map

__all__ = [
    "Option",
    "WEIGHTINGS",
    "WeightMapRecipe",
    "Weighting",
    "border_cutoff",
    "check_ignore_label",
    "class_balance_weights",
    "falk_weight_map",
    "label_instances",
    "nearest_two_distances",
    "prepare_labels",
    "register_weighting",
    "separate_touching",
    "signed_distance_map",
    "tubed_skeleton",
    "unet_weight_map",
]
