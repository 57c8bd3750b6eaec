"""Weight maps in torchvision v2 pipelines (the ``torchvision`` extra).

Two ways, as with MONAI:

- **Compute after augmentation** (exact, preferred): :class:`AddWeightMaps` at the end of a
  ``v2.Compose`` computes the maps from the augmented instance ``tv_tensors.Mask``, so they are
  the maps of what the network sees::

      from torchvision.transforms import v2
      from torchvision import tv_tensors
      from unetweights.torchvision import AddWeightMaps

      train = v2.Compose([
          v2.RandomRotation(30), v2.ElasticTransform(alpha=30.0), v2.RandomResizedCrop(128, antialias=True),
          AddWeightMaps(sigma=5.0),                       # any option of WeightMapRecipe
      ])
      image, mask, weight = train(tv_tensors.Image(image), tv_tensors.Mask(labels))

- **Precompute, then warp**: wrap a precomputed map as :class:`WeightMap`; every geometric v2
  transform then resamples it bilinearly, with fill 0 (no weight outside the image), beside the
  image, and photometric transforms leave it alone.

Why a type of its own: in a v2 pipeline a weight map passed as a plain tensor is treated as an
image (or left alone beside one), and as a ``tv_tensors.Mask`` it is resampled with nearest
neighbour; a custom TVTensor without kernels passes through every transform unchanged. All of it
silently. :class:`WeightMap` and :class:`DistanceMap` have a kernel of their own for every
geometric functional (:func:`missing_kernels` names any that lacks one, and the tests check that
none does); the skeleton is a class-index map and travels as a ``tv_tensors.Mask`` (nearest).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Optional

import torch

try:
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F
    from torchvision.transforms.v2.functional import InterpolationMode, register_kernel
except ImportError as error:  # the optional extra
    raise ImportError(
        "unetweights.torchvision needs torchvision: pip install 'unetweights[torchvision]'"
    ) from error

from .weightmaps import check_ignore_label, WeightMapRecipe

__all__ = ["AddWeightMaps", "DistanceMap", "WeightMap", "GEOMETRIC_FUNCTIONALS", "missing_kernels"]


class _ResampledMap(tv_tensors.TVTensor):
    """A float map that geometric transforms resample bilinearly, filling 0 outside the input."""

    def __new__(cls, data: Any, *, dtype=None, device=None, requires_grad: Optional[bool] = None):
        tensor = cls._to_tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        if not tensor.is_floating_point():
            raise TypeError(f"{cls.__name__}: expected floating-point values, got dtype {tensor.dtype}")
        if tensor.ndim < 2:
            raise ValueError(f"{cls.__name__}: expected a map of shape (..., H, W), got shape {list(tensor.shape)}")
        return tensor.as_subclass(cls)


class WeightMap(_ResampledMap):
    """A per-pixel weight map, shape ``(H, W)`` or ``(..., H, W)``, floating point.

    Every geometric v2 transform resamples it bilinearly (whatever interpolation the transform
    uses for images) with fill 0, so pixels brought in from outside the image weigh 0; crops and
    flips move it exactly. Photometric transforms (colour, blur, noise, normalisation, erasing)
    leave it unchanged.
    """


class DistanceMap(_ResampledMap):
    """A signed distance map (``(C, H, W)``), resampled like :class:`WeightMap`: bilinearly, fill 0.

    A warped distance map is an approximation (distances are not preserved by scaling or
    shearing): compute it after the augmentation with :class:`AddWeightMaps` where it matters.
    """


# The geometric functionals: every functional of torchvision's _geometry module that has kernels.
def _geometric_functionals() -> tuple:
    from torchvision.transforms.v2.functional._utils import _KERNEL_REGISTRY

    return tuple(f for f in _KERNEL_REGISTRY if getattr(f, "__module__", "").endswith("._geometry"))


# (functional, the image kernel the maps use). The image kernels take (..., C, H, W) float tensors.
_KERNELS = {
    F.horizontal_flip: F.horizontal_flip_image,
    F.vertical_flip: F.vertical_flip_image,
    F.resize: F.resize_image,
    F.affine: F.affine_image,
    F.rotate: F.rotate_image,
    F.pad: F.pad_image,
    F.crop: F.crop_image,
    F.perspective: F.perspective_image,
    F.elastic: F.elastic_image,
    F.center_crop: F.center_crop_image,
    F.resized_crop: F.resized_crop_image,
    F.five_crop: F.five_crop_image,
    F.ten_crop: F.ten_crop_image,
}

GEOMETRIC_FUNCTIONALS = tuple(_KERNELS)


def _map_kernel(functional, image_kernel, cls):
    """A kernel for ``cls`` that calls ``image_kernel`` with bilinear interpolation and fill 0."""
    signature = inspect.signature(functional)
    takes_interpolation = "interpolation" in signature.parameters
    takes_fill = "fill" in signature.parameters

    def kernel(inpt, *args, **kwargs):
        arguments = signature.bind(inpt, *args, **kwargs).arguments
        arguments.pop("inpt")
        if takes_interpolation:
            arguments["interpolation"] = InterpolationMode.BILINEAR
        if takes_fill:
            arguments["fill"] = 0.0 if functional is F.pad else [0.0]
        data = inpt.as_subclass(torch.Tensor)
        flat = data.ndim == 2
        out = image_kernel(data.unsqueeze(0) if flat else data, **arguments)
        if isinstance(out, (tuple, list)):  # five_crop, ten_crop
            return type(out)(tv_tensors.wrap(o.squeeze(0) if flat else o, like=inpt) for o in out)
        return tv_tensors.wrap(out.squeeze(0) if flat else out, like=inpt)

    kernel.__name__ = f"{functional.__name__}_{cls.__name__.lower()}"
    return kernel


def _register_all() -> None:
    for cls in (WeightMap, DistanceMap):
        for functional, image_kernel in _KERNELS.items():
            register_kernel(functional, cls)(_map_kernel(functional, image_kernel, cls))
        # Metadata: the size transforms ask for, and a dtype change without rescaling.
        register_kernel(F.get_size, cls)(lambda inpt: list(inpt.shape[-2:]))
        register_kernel(F.to_dtype, cls)(
            lambda inpt, dtype=torch.float32, scale=False: tv_tensors.wrap(
                inpt.as_subclass(torch.Tensor).to(dtype), like=inpt
            )
        )


_register_all()


def missing_kernels(cls=WeightMap) -> list:
    """The names of torchvision's geometric functionals that have no kernel of their own for ``cls``.

    Empty for this torchvision; a release that adds a geometric functional makes it non-empty,
    and the tests fail rather than let the new transform pass maps through unchanged.
    """
    from torchvision.transforms.v2.functional._utils import _KERNEL_REGISTRY

    return sorted(f.__name__ for f in _geometric_functionals() if cls not in _KERNEL_REGISTRY.get(f, {}))


class AddWeightMaps(torch.nn.Module):
    """Add the weight map (and, when asked, the signed distance map and the tubed skeleton) of the
    instance ``tv_tensors.Mask`` of a sample, computed from the mask as it is at this point of the
    pipeline: put it after the geometric augmentations.

    Parameters
    ----------
    mask_key : hashable, optional
        For dict samples: where the instance mask is. By default the one ``tv_tensors.Mask`` value.
    weight_key, distance_key, skeleton_key : hashable
        For dict samples: where the maps go (default "weight", "distance", "skeleton").
    recipe : WeightMapRecipe, optional
        The weighting, its options and the extra maps; or give them as keyword arguments.
    signed_distance, skeleton_radius, **options
        The arguments of :class:`unetweights.WeightMapRecipe`: ``weighting`` ("unet" by default,
        "falk", or a registered one), its options (``w0``, ``sigma``, ``class_weights``,
        ``spacing``, ``border``, ``tol``, ``separate``, ``ignore_label``, ...), the signed
        distance map and the skeleton. Checked here, once.

    Notes
    -----
    The sample is a dict (a new dict comes back with the maps added), or a tuple or list of which
    exactly one item is a ``tv_tensors.Mask`` (the tuple comes back with the maps appended:
    weight, then distance, then skeleton), or several arguments, as ``v2.Compose`` passes them.

    The mask holds instance ids (0 background; a bool mask is labelled into objects), shape
    ``(H, W)`` or ``(1, H, W)``. The maps come back on the mask's device: a :class:`WeightMap`
    of the mask's shape (float32), a :class:`DistanceMap` ``(2, H, W)`` of the foreground target
    (channel c: ``signed_distance_map(target == c)``), and the skeleton as a ``tv_tensors.Mask``
    (int64 class indices, the mask's shape). They are computed on the CPU with numpy, and equal
    ``recipe.maps`` of the mask exactly.
    """

    def __init__(
        self,
        mask_key=None,
        weight_key="weight",
        distance_key="distance",
        skeleton_key="skeleton",
        *,
        recipe: Optional[WeightMapRecipe] = None,
        signed_distance: bool = False,
        skeleton_radius: Optional[float] = None,
        **options,
    ) -> None:
        super().__init__()
        self.recipe = WeightMapRecipe.from_arguments(
            recipe, owner="AddWeightMaps", signed_distance=signed_distance, skeleton_radius=skeleton_radius, **options
        )
        keys = {"weight": weight_key, "distance": distance_key, "skeleton": skeleton_key}
        self.mask_key = mask_key
        self.output_keys = {output: keys[output] for output in self.recipe.outputs}
        used = list(self.output_keys.values()) + ([] if mask_key is None else [mask_key])
        if len(set(used)) != len(used):
            raise ValueError(f"the mask key and the output keys must differ, got {used}")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.recipe.arguments().items())

    def forward(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        if isinstance(sample, Mapping):
            key = self._mask_key(sample)
            out = dict(sample)
            out.update(zip(self.output_keys.values(), self.maps(sample[key])))
            return out
        if isinstance(sample, (tuple, list)):
            masks = [item for item in sample if isinstance(item, tv_tensors.Mask)]
            if len(masks) != 1:
                raise ValueError(
                    f"AddWeightMaps: expected exactly one tv_tensors.Mask among the sample's {len(sample)} items, "
                    f"got {len(masks)}"
                )
            return (*sample, *self.maps(masks[0]))
        raise TypeError(
            f"AddWeightMaps: expected a dict, a tuple or several arguments holding a tv_tensors.Mask, "
            f"got {type(sample).__name__}"
        )

    def _mask_key(self, sample: Mapping):
        if self.mask_key is not None:
            if self.mask_key not in sample:
                raise ValueError(f"mask_key: {self.mask_key!r} is not a key of the sample (keys {list(sample)})")
            return self.mask_key
        keys = [k for k, v in sample.items() if isinstance(v, tv_tensors.Mask)]
        if len(keys) != 1:
            raise ValueError(
                f"AddWeightMaps: expected exactly one tv_tensors.Mask value in the sample, got {len(keys)} ({keys}); "
                "pass mask_key"
            )
        return keys[0]

    def maps(self, mask) -> list:
        """The maps of one mask, in the order of ``recipe.outputs``, as TVTensors on its device."""
        tensor = torch.as_tensor(mask)
        if tensor.ndim == 3 and tensor.shape[0] == 1:
            labels, channel = tensor[0], True
        elif tensor.ndim == 2:
            labels, channel = tensor, False
        else:
            raise ValueError(f"mask: expected shape (H, W) or (1, H, W), got {list(tensor.shape)}")
        if tensor.is_floating_point() or tensor.is_complex():
            raise TypeError(f"mask: expected integer instance ids or a bool mask, got dtype {tensor.dtype}")
        array = labels.detach().cpu().numpy()
        check_ignore_label(array, self.recipe.options.get("ignore_label"), "mask")
        maps = self.recipe.maps(array)
        out = []
        for output, value in maps.items():
            data = torch.from_numpy(value).to(tensor.device)
            if output == "distance":
                out.append(DistanceMap(data))
                continue
            data = data.unsqueeze(0) if channel else data
            out.append(WeightMap(data) if output == "weight" else tv_tensors.Mask(data))
        return out
