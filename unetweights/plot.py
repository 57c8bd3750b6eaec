"""Figures with matplotlib (the ``plot`` extra): a mask and its weight map, predictions, loss curves.

matplotlib is imported inside each function, with the non-interactive Agg backend unless one was
chosen already, so importing this module costs nothing and works on machines without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ._files import written_in_place

PathLike = Union[str, Path]


def pyplot():
    """matplotlib.pyplot on a file backend (Agg unless a file backend is already chosen); ImportError
    naming the ``plot`` extra where matplotlib is missing."""
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'unetweights[plot]'") from error
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _boundaries(labels: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    return find_boundaries(labels, mode="inner")


def _as_2d(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2D image (or (1, H, W)), got shape {list(array.shape)}")
    return array


def _save(fig, path: PathLike) -> Path:
    """Save ``fig`` to ``path`` through a temporary file beside it (never half a figure), and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    try:
        # The format is the one ``path`` names (the default one without a suffix), not the
        # temporary file's.
        with written_in_place(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix[1:] or plt.rcParams["savefig.format"])
    finally:
        plt.close(fig)
    return path


def plot_weight_map(labels, weight, path: PathLike, image=None, title: Optional[str] = None) -> Path:
    """Save a PNG of the image (if given), the labels, and the weight map with the object contours.

    Parameters
    ----------
    labels : (H, W) array
        Instance labels; their boundaries are drawn over the weight map.
    weight : (H, W) array
        The weight map, shown with a colour bar.
    path : str or Path
        Where to write the PNG (folders are created).
    image : (H, W) or (1, H, W) array, optional
        The raw image, shown first.
    """
    plt = pyplot()
    labels = _as_2d(labels, "labels")
    weight = _as_2d(weight, "weight")
    if weight.shape != labels.shape:
        raise ValueError(f"weight: expected the labels' shape {list(labels.shape)}, got {list(weight.shape)}")
    panels = 3 if image is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.4))
    axes = list(np.atleast_1d(axes))
    if image is not None:
        image = _as_2d(image, "image")
        axes[0].imshow(image, cmap="gray")
        axes[0].set_title("image")
    axes[-2].imshow(labels, cmap="nipy_spectral", interpolation="nearest")
    axes[-2].set_title(f"labels ({len(np.unique(labels[labels > 0]))} objects)")
    shown = axes[-1].imshow(weight, cmap="magma")
    contour = np.ma.masked_where(~_boundaries(labels), np.ones(labels.shape))
    axes[-1].imshow(contour, cmap="cool", alpha=0.6, interpolation="nearest")
    axes[-1].set_title("weight map, object contours")
    fig.colorbar(shown, ax=axes[-1], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_predictions(image, labels, predictions: Mapping[str, np.ndarray], path: PathLike) -> Path:
    """Save a PNG row: the image, the true labels, then each named prediction (H, W)."""
    plt = pyplot()
    panels = 2 + len(predictions)
    fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 3.9))
    axes[0].imshow(_as_2d(image, "image"), cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(_as_2d(labels, "labels"), cmap="nipy_spectral", interpolation="nearest")
    axes[1].set_title("ground truth")
    for ax, (name, prediction) in zip(axes[2:], predictions.items()):
        ax.imshow(_as_2d(prediction, name), cmap="nipy_spectral", interpolation="nearest")
        ax.set_title(name)
    for ax in axes:
        ax.set_axis_off()
    return _save(fig, path)


def plot_loss_curves(curves: Mapping[str, Sequence[float]], path: PathLike, smooth: int = 10) -> Path:
    """Save a PNG of training-loss curves, each as a running mean over ``smooth`` steps."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        window = max(1, min(int(smooth), len(values)))
        running = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(values) + 1), running, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss (running mean of {smooth})")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


__all__ = ["plot_loss_curves", "plot_predictions", "plot_weight_map", "pyplot"]
