"""unetweights.torchvision: maps that follow the image through v2 pipelines, and maps computed after
the augmentation that equal the weight map of the augmented mask."""

import numpy as np
import pytest
import torch

tv_tensors = pytest.importorskip("torchvision.tv_tensors")
from torchvision.transforms import v2  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402
from torchvision.transforms.v2.functional import InterpolationMode  # noqa: E402

from unetweights import WeightMapRecipe, separate_touching, unet_weight_map  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402
from unetweights.torchvision import (  # noqa: E402
    GEOMETRIC_FUNCTIONALS,
    AddWeightMaps,
    DistanceMap,
    WeightMap,
    missing_kernels,
)

BILINEAR = InterpolationMode.BILINEAR


def _labels(seed=0, shape=(72, 64)):
    return touching_nuclei(shape, 9, radius=9.0, seed=seed)


def _sample(seed=0, shape=(72, 64)):
    labels = _labels(seed, shape)
    image = tv_tensors.Image(torch.rand(3, *shape, generator=torch.Generator().manual_seed(seed)))
    return image, tv_tensors.Mask(torch.from_numpy(labels)[None]), labels


def _smooth_map(shape=(40, 36), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 1, 10, 9, generator=g) * 10, size=shape, mode="bilinear")[0]


def test_every_geometric_functional_has_a_kernel_and_the_check_bites(monkeypatch):
    from torchvision.transforms.v2.functional._utils import _KERNEL_REGISTRY

    assert missing_kernels(WeightMap) == [] and missing_kernels(DistanceMap) == []
    assert {f.__name__ for f in GEOMETRIC_FUNCTIONALS} >= {
        "resize", "crop", "resized_crop", "center_crop", "pad", "horizontal_flip", "vertical_flip", "rotate", "affine",
        "perspective", "elastic", "five_crop", "ten_crop",
    }
    monkeypatch.delitem(_KERNEL_REGISTRY[F.rotate], WeightMap)
    assert missing_kernels(WeightMap) == ["rotate"]
    # ... and this is what the check prevents: the rotation then leaves the map where it was.
    weight = WeightMap(_smooth_map())
    assert torch.equal(v2.RandomRotation((30, 30))(weight), weight)


def test_moves_are_exact():
    weight = WeightMap(_smooth_map())
    data = weight.as_subclass(torch.Tensor)
    assert torch.equal(F.horizontal_flip(weight), data.flip(-1))
    assert torch.equal(F.vertical_flip(weight), data.flip(-2))
    assert torch.equal(F.crop(weight, 3, 5, 20, 17), data[..., 3:23, 5:22])
    padded = F.pad(weight, [2, 3])
    assert padded.shape[-2:] == (46, 40) and padded[..., :3, :].abs().sum() == 0
    assert torch.equal(padded[..., 3:43, 2:38], data)
    flat = WeightMap(data[0])  # (H, W) maps work too
    assert torch.equal(F.crop(flat, 3, 5, 20, 17), data[0, 3:23, 5:22])
    assert isinstance(F.five_crop(weight, [10, 10])[0], WeightMap)


@pytest.mark.parametrize(
    "functional, arguments",
    [
        (F.rotate, {"angle": 33.0}),
        (F.affine, {"angle": 12.0, "translate": [3, -2], "scale": 1.2, "shear": [5.0, 0.0]}),
        (F.perspective, {"startpoints": [[0, 0], [35, 0], [35, 39], [0, 39]], "endpoints": [[3, 2], [33, 0], [35, 36], [1, 39]]}),
        (F.resize, {"size": [23, 51]}),
        (F.resized_crop, {"top": 4, "left": 2, "height": 30, "width": 25, "size": [41, 19]}),
        (F.elastic, {"displacement": torch.rand(1, 40, 36, 2, generator=torch.Generator().manual_seed(3)) * 0.2 - 0.1}),
    ],
)
def test_resampling_is_bilinear_with_fill_0_whatever_the_transform_asks(functional, arguments):
    data = _smooth_map()
    weight = WeightMap(data)
    asked = {}
    if "interpolation" in functional.__code__.co_varnames:
        asked["interpolation"] = InterpolationMode.NEAREST
    if "fill" in functional.__code__.co_varnames:
        asked["fill"] = [7.0]
    got = functional(weight, **arguments, **asked)
    assert isinstance(got, WeightMap)
    # The same resampling of the map as a one-channel float image, asked for bilinearly with fill 0.
    bilinear = {name: {"interpolation": BILINEAR, "fill": [0.0]}[name] for name in asked}
    want = functional(tv_tensors.Image(data), **arguments, **bilinear)
    torch.testing.assert_close(got.as_subclass(torch.Tensor), want.as_subclass(torch.Tensor))
    nearest = functional(tv_tensors.Image(data), **arguments, **asked)
    if functional is not F.resize and functional is not F.resized_crop:
        assert not torch.allclose(got.as_subclass(torch.Tensor), nearest.as_subclass(torch.Tensor))


def test_photometric_transforms_leave_maps_alone():
    image, _, _ = _sample()
    weight = WeightMap(_smooth_map((72, 64)))
    distance = DistanceMap(torch.randn(2, 72, 64))
    for transform in (
        v2.ColorJitter(0.5, 0.5, 0.5, 0.1), v2.GaussianBlur(5), v2.GaussianNoise(), v2.RandomInvert(1.0),
        v2.RandomAutocontrast(1.0), v2.RandomErasing(1.0),
        v2.Normalize([0.5] * 3, [0.2] * 3), v2.ToDtype(torch.float32, scale=True),
    ):
        out = transform(image, weight, distance)
        assert torch.equal(out[1], weight) and torch.equal(out[2], distance), type(transform).__name__
        assert isinstance(out[1], WeightMap) and isinstance(out[2], DistanceMap)


def test_a_warped_map_is_the_bilinear_warp_of_the_map_alone_and_its_ridges_land_on_the_gaps():
    image, mask, labels = _sample(1)
    carved = separate_touching(labels)
    weight = WeightMap(torch.from_numpy(unet_weight_map(carved, sigma=3.0))[None])
    pipeline = v2.Compose([v2.RandomRotation(25, interpolation=BILINEAR), v2.ElasticTransform(alpha=15.0, sigma=6.0)])
    torch.manual_seed(7)
    _, warped_mask, warped = pipeline(image, tv_tensors.Mask(torch.from_numpy(carved)[None]), weight)
    alone = v2.Compose([
        v2.RandomRotation(25, interpolation=BILINEAR, fill=0.0), v2.ElasticTransform(alpha=15.0, sigma=6.0, fill=0.0)
    ])
    torch.manual_seed(7)
    want = alone(tv_tensors.Image(weight.as_subclass(torch.Tensor)))
    torch.testing.assert_close(warped.as_subclass(torch.Tensor), want.as_subclass(torch.Tensor))
    # The ridges of the warped map lie on the gaps of the warped mask: where the map computed
    # from the warped mask has its border ridge, the warped map is high too.
    exact = unet_weight_map(warped_mask[0].numpy(), sigma=3.0)
    inside = np.zeros_like(exact, bool)
    inside[12:-12, 12:-12] = True  # away from the fill at the rotated corners
    ridge = inside & (exact > exact[inside].max() * 0.6)
    assert ridge.sum() > 20
    warped = warped[0].numpy()
    assert np.median(warped[ridge]) > 0.5 * np.median(exact[ridge])
    assert np.corrcoef(warped[inside], exact[inside])[0, 1] > 0.8


def _augmented(seed):
    torch.manual_seed(seed)
    pipeline = v2.Compose([
        v2.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        v2.RandomRotation(30),
        v2.ElasticTransform(alpha=20.0),
        v2.RandomResizedCrop(48, scale=(0.5, 1.0), antialias=True),
        AddWeightMaps(sigma=3.0),
    ])
    image, mask, _ = _sample(seed)
    return pipeline(image, mask)


class _Augmented(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        image, mask, weight = _augmented(index)
        return image, mask, weight


def test_maps_computed_after_augmentation_equal_the_map_of_the_augmented_mask_in_two_workers():
    loader = torch.utils.data.DataLoader(_Augmented(), batch_size=2, num_workers=2)
    seen = 0
    for image, mask, weight in loader:
        assert image.shape == (2, 3, 48, 48) and mask.shape == weight.shape == (2, 1, 48, 48)
        for k in range(2):
            want = unet_weight_map(mask[k, 0].numpy(), sigma=3.0)
            np.testing.assert_array_equal(weight[k, 0].numpy(), want)
            assert len(np.unique(mask[k, 0].numpy())) > 2  # objects survived: the map has borders
        seen += 2
    assert seen == 4


@pytest.mark.parametrize(
    "options",
    [
        {"weighting": "falk", "lam": 20.0, "ignore_label": 3},
        {"separate": True, "spacing": (1.0, 0.5), "class_weights": "sqrt", "signed_distance": True, "skeleton_radius": 1.0},
    ],
)
def test_every_recipe_option_reaches_the_maps(options):
    image, mask, labels = _sample(2)
    pipeline = v2.Compose([v2.RandomHorizontalFlip(1.0), AddWeightMaps(**options)])
    out = pipeline({"image": image, "label": mask})
    recipe = WeightMapRecipe(**options)
    want = recipe.maps(labels[:, ::-1].copy())
    assert set(out) == {"image", "label", *recipe.outputs}
    np.testing.assert_array_equal(out["weight"][0].numpy(), want["weight"])
    assert isinstance(out["weight"], WeightMap) and out["weight"].shape == (1, 72, 64)
    if "distance" in want:
        assert isinstance(out["distance"], DistanceMap)
        np.testing.assert_array_equal(out["distance"].numpy(), want["distance"])
        assert isinstance(out["skeleton"], tv_tensors.Mask) and out["skeleton"].dtype == torch.int64
        np.testing.assert_array_equal(out["skeleton"][0].numpy(), want["skeleton"])
    assert AddWeightMaps(recipe=recipe).recipe is recipe


def test_bad_samples_are_named():
    image, mask, labels = _sample()
    add = AddWeightMaps()
    with pytest.raises(ValueError, match="exactly one tv_tensors.Mask among the sample's 1 items, got 0"):
        add((image,))
    with pytest.raises(ValueError, match="exactly one tv_tensors.Mask among"):
        add(image, mask, mask)
    with pytest.raises(ValueError, match="pass mask_key"):
        add({"a": mask, "b": mask})
    assert set(AddWeightMaps(mask_key="b")({"a": mask, "b": mask})) == {"a", "b", "weight"}
    with pytest.raises(ValueError, match="mask_key: 'c' is not a key"):
        AddWeightMaps(mask_key="c")({"a": mask})
    with pytest.raises(TypeError, match="expected a dict, a tuple"):
        add(mask.as_subclass(torch.Tensor))
    with pytest.raises(ValueError, match=r"mask: expected shape \(H, W\) or \(1, H, W\)"):
        add((tv_tensors.Mask(torch.zeros(2, 5, 5, dtype=torch.int64)),))
    with pytest.raises(TypeError, match="mask: expected integer instance ids"):
        add((tv_tensors.Mask(torch.zeros(5, 5)),))
    with pytest.raises(ValueError, match="ignore_label"):
        AddWeightMaps(ignore_label=1)((tv_tensors.Mask(torch.from_numpy(labels > 0)),))
    with pytest.raises(ValueError, match="must differ"):
        AddWeightMaps(mask_key="weight")
    with pytest.raises(TypeError, match="lam is not an option of AddWeightMaps"):
        AddWeightMaps(lam=2.0)
    with pytest.raises(TypeError, match="WeightMap: expected floating-point values"):
        WeightMap(torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"expected a map of shape \(..., H, W\)"):
        WeightMap(torch.zeros(4))
