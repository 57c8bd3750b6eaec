"""Reading instance masks from .tif/.tiff, .png and .npy files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._storage import _as_path, PathLike


MASK_SUFFIXES = (".tif", ".tiff", ".png", ".npy")


class _UnreadableMask(Exception):
    """Why a mask file cannot be used; :func:`read_mask` adds the path."""


def _read_tiff(path: Path, channels: bool = True) -> np.ndarray:
    """The first series; with ``channels``, a channel axis of size 1 dropped and a larger one
    refused (a label image has one channel), without, the array as stored."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise _UnreadableMask("cannot be read: the TIFF file holds no image")
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
    if channels and len(axes) == array.ndim:
        for axis, (name, size) in reversed(list(enumerate(zip(axes, array.shape)))):
            # 'S' is samples per pixel (RGB and the like), 'C' an ImageJ/OME channel axis.
            if name in "SC":
                if size > 1:
                    raise _UnreadableMask(
                        f"multi-channel image (axes {axes!r}, shape {array.shape}); expected one label channel"
                    )
                array = np.squeeze(array, axis=axis)
    return array


def _read_png(path: Path, integers: bool) -> np.ndarray:
    # Pillow directly (it is what scikit-image and imageio read PNGs with): both of those turn a
    # palette PNG into RGB, and for a label mask the palette indices are the labels.
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode not in ("1", "L", "P") and not mode.startswith("I"):
            if mode == "F":
                raise _UnreadableMask("holds floating-point pixels (PNG mode 'F'); expected integer labels")
            raise _UnreadableMask(
                f"multi-channel image (PNG mode {mode!r}, {len(image.getbands())} bands); "
                "expected a single-channel label image"
            )
        # Pillow gives the pixels of a 1-bit image as 0 and 255 (getpixel, getextrema, convert), the
        # values of the same picture saved with 8 bits; only its numpy view is bool.
        return np.asarray(image.convert("L") if integers and mode == "1" else image)


def _read_image(path: Path, integers: bool = False, channels: bool = True) -> np.ndarray:
    """The array a .tif/.tiff, .png or .npy file holds, whatever its dtype; _UnreadableMask saying
    why there is none. ``channels=False`` reads a TIFF as stored (for a stack of weight maps,
    whose first axis tifffile may take for samples)."""
    suffix = path.suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise _UnreadableMask(f"unsupported file type {path.suffix!r}; expected one of {', '.join(MASK_SUFFIXES)}")
    try:
        if suffix in (".tif", ".tiff"):
            array = _read_tiff(path, channels)
        elif suffix == ".png":
            array = _read_png(path, integers)
        else:
            with open(path, "rb") as f:
                array = np.load(f, allow_pickle=False)
                if not isinstance(array, np.ndarray):
                    raise _UnreadableMask("is not a .npy array (an .npz archive?)")
    except _UnreadableMask:
        raise
    # The readers (tifffile, Pillow, numpy) raise many unrelated types for a damaged file.
    except Exception as exc:
        raise _UnreadableMask(f"cannot be read: {type(exc).__name__}: {exc}") from exc
    return array


def _read_mask(path: Path, integers: bool = False) -> np.ndarray:
    array = _read_image(path, integers)
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.integer)):
        raise _UnreadableMask(f"holds {array.dtype} values; expected an integer or bool label image")
    if array.ndim not in (2, 3):
        raise _UnreadableMask(f"has shape {array.shape}; expected a 2-D or 3-D label image")
    if integers and array.dtype == bool:
        array = array.astype(np.uint8)
    return array


def read_mask(path: PathLike, *, integers: bool = False) -> np.ndarray:
    """Read an instance (or binary) label mask from a .tif/.tiff, .png or .npy file.

    Parameters
    ----------
    path : str or os.PathLike
        A .tif or .tiff file (read with tifffile: the first image series, 2-D or a 3-D stack), a .png
        (read with Pillow; for a palette PNG the palette indices are returned, not colours), or a
        .npy file (read with ``allow_pickle=False``). The suffix decides, case-insensitively.
    integers : bool, default False
        Give a mask that its reader returns as bool (a 1-bit PNG or TIFF, a bool .npy) as the
        integers that reader gives its values, in uint8: a 1-bit PNG as 0 and 255 (Pillow's pixel
        values, those of the same picture saved with 8 bits), a 1-bit TIFF or a bool .npy as 0 and
        1. :func:`precompute` and the command line read masks so when an ``ignore_label`` is
        given: it is a value of the labels as the file holds them, which a bool mask has none of.

    Returns
    -------
    ndarray of bool or integers, 2-D or 3-D
        As stored: no relabelling and no dtype change (except bool to uint8 with ``integers``). A
        channel axis of size 1 (TIFF 'S' or 'C') is dropped.

    Raises
    ------
    ValueError
        Naming the path and the reason, when the suffix is not supported, the file cannot be read
        (missing, truncated, not the format its suffix says), the image has more than one channel
        (RGB, RGBA, a multi-channel stack), the values are not integers or bools (float masks are
        refused rather than guessed), or it is not 2-D or 3-D.
    TypeError
        When ``path`` is not a str or path-like.
    """
    path = _as_path(path, "path")
    if not isinstance(integers, (bool, np.bool_)):
        raise TypeError(f"integers must be a bool, got {integers!r}")
    try:
        return _read_mask(path, bool(integers))
    except _UnreadableMask as exc:
        raise ValueError(f"path {str(path)!r}: {exc}") from None


def read_image(path: PathLike) -> np.ndarray:
    """The array a .tif/.tiff, .png or .npy file holds, as stored, whatever its dtype.

    For files that are not label masks, such as weight maps: no dtype or rank is required, and a
    TIFF is read as its first series with every axis kept (a stack of maps whose first axis
    tifffile may take for samples stays a stack). ValueError names the path and the reason when
    the suffix is not supported or the file cannot be read; TypeError when ``path`` is not a str or
    path-like.
    """
    path = _as_path(path, "path")
    try:
        return _read_image(path, channels=False)
    except _UnreadableMask as exc:
        raise ValueError(f"path {str(path)!r}: {exc}") from None


def _as_label_input(labels) -> np.ndarray:
    try:
        return np.asarray(labels)
    except (TypeError, ValueError, RuntimeError) as exc:
        # e.g. a CUDA tensor, which must be moved to the CPU first
        raise TypeError(
            f"labels must be an array-like that numpy can read, got {type(labels).__name__}: {exc}"
        ) from None
