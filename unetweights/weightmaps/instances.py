"""Instance labels from masks, and the one-pixel gaps the U-Net authors carve between touching cells."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._validation import as_label_array, integer_in_range


def _check_connectivity(connectivity, ndim: int, name: str = "connectivity") -> int:
    return integer_in_range(connectivity, name, 1, ndim, f" for a {ndim}-D array")


def label_instances(mask, connectivity: int = 1) -> np.ndarray:
    """Turn a binary or semantic mask into instance labels.

    Each connected component of pixels that share the same non-zero value gets its own positive id
    (1, 2, ...); 0 stays background. A semantic mask therefore splits two touching regions of
    different classes into two instances.

    Parameters
    ----------
    mask : (M, N) or (P, M, N) array of bool or non-negative integers
        0 / False is background.
    connectivity : int, optional
        Maximum number of orthogonal steps between neighbours: 1 (default) joins pixels that share a
        face (4-neighbourhood in 2D, 6 in 3D); ``mask.ndim`` joins pixels that share a corner. An
        integer in 1..ndim (a whole-valued float is accepted, a bool is not).

    Returns
    -------
    labels : ndarray of int32, or int64 when there are more than 2**31 - 1 instances
        Consecutive instance ids, same shape as ``mask``.
    """
    arr = as_label_array(mask, name="mask")
    connectivity = _check_connectivity(connectivity, arr.ndim)
    from skimage.measure import label  # here, not at import: scikit-image and scipy cost 0.3 s to import

    labels, count = label(arr, background=0, connectivity=connectivity, return_num=True)
    if count < np.iinfo(np.int32).max:
        return labels.astype(np.int32, copy=False)
    return labels.astype(np.int64, copy=False)


def as_instances(labels, name: str = "labels") -> np.ndarray:
    """Validated instance labels: integer ids as given, a bool mask labelled by face connectivity."""
    arr = as_label_array(labels, name=name)
    if arr.dtype == bool:
        return label_instances(arr)
    return arr


def separate_touching(labels, connectivity: Optional[int] = None) -> np.ndarray:
    """Carve one-pixel background gaps between touching instances.

    A pixel of object ``i`` becomes background (0) when one of its neighbours belongs to an object
    with a larger id. Only the lower-id side of each contact is carved, so the gap is one pixel wide,
    and afterwards no two different objects share a face, edge or corner. This is what the U-Net
    authors' plugin does so that the border term of :func:`unet_weight_map` reaches the contact.
    Objects thinner than two pixels along a contact can lose pixels or vanish entirely.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array of non-negative integers, or bool
        Instance labels, 0 is background. A bool mask is first split into instances with
        :func:`label_instances`.
    connectivity : int, optional
        Which neighbours count as touching, 1..ndim. The default (``labels.ndim``) includes corners,
        which guarantees separation under every connectivity.

    Returns
    -------
    ndarray
        A new array of the same shape and dtype (int32 for bool input); the input is not modified.
    """
    arr = as_instances(labels)
    connectivity = arr.ndim if connectivity is None else _check_connectivity(connectivity, arr.ndim)
    out = np.array(arr, copy=True)
    out[(arr > 0) & (_neighbour_max(arr, connectivity) > arr)] = 0
    return out


def _neighbour_max(arr: np.ndarray, connectivity: int) -> np.ndarray:
    """Largest value among each pixel's neighbours (outside the image counts as 0).

    Written with shifted slices rather than ``grey_dilation``, which goes through float64 and so
    rounds 64-bit ids above 2**53.
    """
    padded = np.pad(arr, 1)
    result = np.zeros_like(arr)
    from scipy import ndimage as ndi

    footprint = ndi.generate_binary_structure(arr.ndim, connectivity)
    footprint[(1,) * arr.ndim] = False
    for offset in np.argwhere(footprint):
        shifted = padded[tuple(slice(o, o + n) for o, n in zip(offset, arr.shape))]
        np.maximum(result, shifted, out=result)
    return result
