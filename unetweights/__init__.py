"""unetweights: U-Net weight maps, weight-map aware losses, and exported evaluation graphs."""

from .weightmaps import (
    border_cutoff,
    class_balance_weights,
    label_instances,
    nearest_two_distances,
    separate_touching,
    signed_distance_map,
    unet_weight_map,
)

__version__ = "0.1.0"

__all__ = [
    "border_cutoff",
    "class_balance_weights",
    "label_instances",
    "nearest_two_distances",
    "separate_touching",
    "signed_distance_map",
    "unet_weight_map",
]
