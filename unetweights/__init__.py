"""unetweights: U-Net weight maps, weight-map aware losses, and exported evaluation graphs.

The weight-map functions need only numpy and scipy, so data-loader workers can use them without
loading torch: the torch-based names (losses, metrics, evaluation graphs, export and the
onnxruntime evaluator), the data-pipeline helpers and the object matching are imported on first use.
"""

from importlib import import_module

from . import weightmaps
from .weightmaps import *  # noqa: F401,F403  (the public names are listed in weightmaps.__all__)

__version__ = "0.1.0"

# Public torch-based names and the submodule that defines each; loaded lazily by __getattr__.
_LAZY = {
    "losses": None,
    **{
        name: "losses"
        for name in (
            "BoundaryLoss",
            "ClDiceLoss",
            "CombinedLoss",
            "DeepSupervisionLoss",
            "FocalLoss",
            "GeneralizedDiceLoss",
            "HausdorffDTLoss",
            "LovaszHingeLoss",
            "LovaszSoftmaxLoss",
            "MCCLoss",
            "SkeletonRecallLoss",
            "SoftDiceLoss",
            "SoftJaccardLoss",
            "TverskyLoss",
            "WeightedBCELoss",
            "WeightedBCEWithLogitsLoss",
            "WeightedCrossEntropyLoss",
            "WeightedHuberLoss",
            "WeightedKLDivLoss",
            "WeightedL1Loss",
            "WeightedMSELoss",
            "WeightedNLLLoss",
            "WeightedSmoothL1Loss",
            "boundary_loss",
            "cldice_loss",
            "distance_transform",
            "focal_loss",
            "generalized_dice_loss",
            "hausdorff_dt_loss",
            "lovasz_hinge",
            "lovasz_softmax",
            "mcc_loss",
            "resize_area",
            "resize_nearest",
            "skeleton_recall_loss",
            "soft_dice_loss",
            "soft_jaccard_loss",
            "soft_skeleton",
            "tversky_loss",
            "weighted_bce_with_logits",
            "weighted_binary_cross_entropy",
            "weighted_cross_entropy",
            "weighted_huber_loss",
            "weighted_kl_div",
            "weighted_l1_loss",
            "weighted_mse_loss",
            "weighted_nll_loss",
            "weighted_smooth_l1_loss",
            "with_reduction",
        )
    },
    "metrics": None,
    **{
        name: "metrics"
        for name in (
            "AverageSurfaceDistance",
            "DiceScore",
            "HausdorffDistance",
            "IoUScore",
            "PixelAccuracy",
            "SegmentationCount",
            "SegmentationMetrics",
            "SurfaceCount",
            "SurfaceDice",
            "average_surface_distance",
            "dice_score",
            "hausdorff_distance",
            "iou_score",
            "pixel_accuracy",
            "segmentation_counts",
            "surface_counts",
            "surface_dice",
        )
    },
    "evaluation": None,
    "EvaluationGraph": "evaluation",
    "export": None,
    **{name: "export" for name in ("append_to_model", "to_onnx", "to_pt2", "to_torchscript")},
    "data": None,
    **{
        name: "data"
        for name in (
            "CacheInfo", "PrecomputeReport", "WeightMapDataset", "WeightMapTransform", "precompute", "read_image",
            "read_mask",
        )
    },
    "dask": None,
    **{name: "dask" for name in ("ZarrReport", "precompute_zarr", "required_halo")},
    "matching": None,
    **{name: "matching" for name in ("MatchingScores", "ObjectMatching", "match_instances", "matched_pairs")},
    "runtime": None,
    **{name: "runtime" for name in ("EvaluationResult", "GraphInput", "OnnxEvaluator")},
}

__all__ = [*weightmaps.__all__, *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'unetweights' has no attribute '{name}'")
    module = import_module(f".{_LAZY[name] or name}", __name__)
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
