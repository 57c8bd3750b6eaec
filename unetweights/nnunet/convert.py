"""A folder of instance masks (and images) as an nnU-Net raw dataset, touching instances separated.

nnU-Net's labels are semantic, so two touching cells of one class would be one object to the
border term; here each mask's instances are carved apart by a one-pixel gap first
(:func:`~unetweights.separate_touching`), and the label is their foreground (1) on background (0).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .._files import check_writable_folder, refuse_overlap, write_text_in_place, written_in_place
from ..data import read_image, read_mask
from ..weightmaps import separate_touching

_DATASET_NAME = re.compile(r"Dataset\d{3}_[A-Za-z0-9_\-]+")
FILE_ENDING = ".nii.gz"


def convert_dataset(
    masks: Iterable, images: Iterable, out_dir, spacing: Optional[Sequence[float]] = None,
    channel_names: Optional[Sequence[str]] = None, overwrite: bool = False,
) -> dict:
    """Write ``<out_dir>/imagesTr``, ``labelsTr`` and ``dataset.json`` from mask and image files.

    Parameters
    ----------
    masks : iterable of paths
        Instance masks (.tif/.tiff, .png, .npy, read with :func:`read_mask`), 2-D or 3-D; each
        stem is a case name, and must be distinct.
    images : iterable of paths
        One image per mask, with the mask's stem (read with :func:`read_image`): the mask's shape
        (one channel) or (C, *mask shape) (C channels, written as ``<case>_0000``, ``_0001``, ...).
    out_dir : path
        ``.../nnUNet_raw/DatasetXXX_Name`` (nnU-Net's naming, checked). A folder that already holds
        a ``dataset.json`` is refused unless ``overwrite``; no input may lie in it.
    spacing : sequence of float, optional
        Pixel or voxel size per axis of the masks (default 1), recorded in every file.
    channel_names : sequence of str, optional
        One name per image channel (default "image", or "channel_c").

    Files are NIfTI (``.nii.gz``, SimpleITK, which nnU-Net installs), each written to a temporary
    file and renamed into place. Returns {"cases": n, "channels": C, "out_dir": str}.
    """
    import SimpleITK as sitk

    out = Path(out_dir)
    if not _DATASET_NAME.fullmatch(out.name):
        raise ValueError(f"out_dir: nnU-Net needs a folder named DatasetXXX_Name (three digits), got {out.name!r}")
    mask_paths = [Path(p) for p in masks]
    if not mask_paths:
        raise ValueError("masks: expected at least one mask file")
    by_stem = {}
    for path in mask_paths:
        stem = path.name.split(".")[0]
        if stem in by_stem:
            raise ValueError(f"masks: two masks have the case name {stem!r}: {by_stem[stem]} and {path}")
        by_stem[stem] = path
    image_by_stem = {Path(p).name.split(".")[0]: Path(p) for p in images}
    missing = sorted(set(by_stem) - set(image_by_stem))
    if missing:
        raise ValueError(f"images: no image with the stem of the masks {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if (out / "dataset.json").exists() and not overwrite:
        raise ValueError(f"out_dir: {out} already holds a dataset.json; pass overwrite=True (--overwrite) to replace it")
    inputs = [(f"masks[{i}]", p) for i, p in enumerate(mask_paths)]
    inputs += [(f"images ({stem})", image_by_stem[stem]) for stem in by_stem]
    refuse_overlap(inputs, [out], "out_dir", "nnunet-convert")
    for sub in ("imagesTr", "labelsTr"):
        check_writable_folder(out / sub, "out_dir")

    channels = None
    for stem, mask_path in sorted(by_stem.items()):
        labels = read_mask(mask_path)
        image = np.asarray(read_image(image_by_stem[stem]))
        if image.shape == labels.shape:
            image = image[np.newaxis]
        if image.shape[1:] != labels.shape:
            raise ValueError(
                f"images: {image_by_stem[stem]} has shape {list(image.shape)}; expected the mask's {list(labels.shape)}, "
                "or channels first"
            )
        if channels is None:
            channels = image.shape[0]
        elif image.shape[0] != channels:
            raise ValueError(f"images: {image_by_stem[stem]} has {image.shape[0]} channels, the others {channels}")
        step = _spacing(spacing, labels.ndim)
        _write(sitk, (separate_touching(labels) > 0).astype(np.uint8), step, out / "labelsTr" / f"{stem}{FILE_ENDING}")
        for c in range(channels):
            _write(sitk, image[c], step, out / "imagesTr" / f"{stem}_{c:04d}{FILE_ENDING}")

    names = list(channel_names) if channel_names else (["image"] if channels == 1 else [f"channel_{c}" for c in range(channels)])
    if len(names) != channels:
        raise ValueError(f"channel_names: expected {channels} names, one per image channel, got {names}")
    dataset = {
        "channel_names": {str(c): name for c, name in enumerate(names)},
        "labels": {"background": 0, "foreground": 1},
        "numTraining": len(by_stem),
        "file_ending": FILE_ENDING,
    }
    write_text_in_place(out / "dataset.json", json.dumps(dataset, indent=2) + "\n")
    return {"cases": len(by_stem), "channels": channels, "out_dir": str(out)}


def _spacing(spacing, ndim: int) -> tuple:
    if spacing is None:
        return (1.0,) * ndim
    step = tuple(float(s) for s in spacing)
    if len(step) != ndim or not all(np.isfinite(s) and s > 0 for s in step):
        raise ValueError(f"spacing: expected {ndim} finite values > 0, one per axis, got {list(spacing)}")
    return step


def _write(sitk, array: np.ndarray, spacing: tuple, path: Path) -> None:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(reversed(spacing)))  # SimpleITK orders axes x, y(, z)
    with written_in_place(path, f".tmp-{secrets.token_hex(6)}{FILE_ENDING}") as tmp:
        sitk.WriteImage(image, str(tmp), True)
