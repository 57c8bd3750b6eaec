"""unetweights.monai.WeightMapd inside real MONAI pipelines: random affine and elastic augmentation
of touching cells, Compose, CacheDataset, PersistentDataset and a DataLoader with two workers."""

import numpy as np
import pytest
import torch

monai = pytest.importorskip("monai")

from monai.data import CacheDataset, DataLoader, Dataset, MetaTensor, PersistentDataset  # noqa: E402
from monai.transforms import Compose, Rand2DElasticd, RandAffined  # noqa: E402

from unetweights import separate_touching, signed_distance_map, tubed_skeleton, unet_weight_map  # noqa: E402
from unetweights.monai import WeightMapd  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402

SIGMA = 3.0


def _samples(shape, n, spacing=None):
    samples = []
    for seed in range(n):
        labels = touching_nuclei(shape, 8 if len(shape) == 2 else 10, radius=5.0, seed=seed)
        image = (labels > 0).astype(np.float32) + 0.1 * np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        affine = torch.diag(torch.tensor([*(spacing or (1.0,) * len(shape)), 1.0], dtype=torch.float64))
        samples.append({
            "image": MetaTensor(torch.as_tensor(image[None]), affine=affine),
            "label": MetaTensor(torch.as_tensor(labels[None]), affine=affine),
        })
    return samples


def _pipeline(ndim, **weight_options):
    augment = [
        RandAffined(
            keys=["image", "label"], prob=1.0, rotate_range=0.4 if ndim == 2 else (0.3, 0.0, 0.0),
            scale_range=0.15, mode=("bilinear", "nearest"), padding_mode="zeros",
        )
    ]
    if ndim == 2:
        augment.append(
            Rand2DElasticd(keys=["image", "label"], prob=1.0, spacing=(12, 12), magnitude_range=(1, 2), mode=("bilinear", "nearest"))
        )
    transform = Compose([*augment, WeightMapd(keys="label", sigma=SIGMA, **weight_options)])
    transform.set_random_state(seed=0)
    return transform


def _check(batch_label, batch_weight, from_meta):
    assert isinstance(batch_weight, MetaTensor)
    torch.testing.assert_close(batch_weight.affine, batch_label.affine)
    for label, weight in zip(batch_label, batch_weight):
        labels = label[0].numpy()
        assert len(np.unique(labels)) > 3  # the augmented cells are still there
        # The augmentation updates the affine: the voxel size is the augmented label's pixdim.
        spacing = tuple(float(s) for s in label.pixdim) if from_meta else None
        assert spacing is None or spacing[0] > 1.5  # the anisotropic voxels reached the map
        want = unet_weight_map(labels, sigma=SIGMA, spacing=spacing)
        np.testing.assert_array_equal(weight[0].numpy(), want)


@pytest.mark.parametrize("ndim", [2, 3])
def test_augmented_maps_in_a_dataloader_with_two_workers(ndim):
    shape = (48, 56) if ndim == 2 else (12, 32, 32)
    spacing = None if ndim == 2 else (2.0, 1.0, 1.0)
    options = {} if ndim == 2 else {"spacing_from_meta": True}
    data = Dataset(_samples(shape, 4, spacing), transform=_pipeline(ndim, **options))
    loader = DataLoader(data, batch_size=2, num_workers=2)
    seen = 0
    for batch in loader:
        _check(batch["label"], batch["weight"], from_meta=ndim == 3)
        assert batch["weight"].shape == batch["label"].shape
        seen += len(batch["label"])
    assert seen == 4


def test_cache_and_persistent_datasets(tmp_path):
    samples = _samples((40, 40), 2)
    transform = Compose([WeightMapd(keys="label", sigma=SIGMA)])
    for dataset in (
        CacheDataset(samples, transform=transform, progress=False),
        PersistentDataset(samples, transform=transform, cache_dir=tmp_path),
    ):
        for item, sample in zip(dataset, samples):
            np.testing.assert_array_equal(item["weight"][0].numpy(), unet_weight_map(sample["label"][0].numpy(), sigma=SIGMA))
            torch.testing.assert_close(item["weight"].affine, sample["label"].affine)


def test_keys_types_and_errors():
    labels = touching_nuclei((30, 30), 5, radius=5.0, seed=1)
    out = WeightMapd(keys=("a", "b"), weight_keys=("wa", "wb"))({"a": labels[None], "b": torch.as_tensor(labels[None])})
    assert isinstance(out["wa"], np.ndarray) and out["wa"].dtype == np.float32
    assert isinstance(out["wb"], torch.Tensor) and not isinstance(out["wb"], MetaTensor)
    np.testing.assert_array_equal(out["wa"][0], unet_weight_map(labels))
    assert set(WeightMapd(keys=("a", "b"))({"a": labels[None], "b": labels[None]})) == {"a", "b", "a_weight", "b_weight"}
    assert WeightMapd(keys="missing", allow_missing_keys=True)({"a": 1}) == {"a": 1}
    with pytest.raises(KeyError):
        WeightMapd(keys="missing")({"a": 1})
    with pytest.raises(ValueError, match="label: expected channel-first labels with one channel"):
        WeightMapd(keys="label")({"label": np.stack([labels, labels])})
    with pytest.raises(TypeError, match="spacing_from_meta=True needs a MetaTensor"):
        WeightMapd(keys="label", spacing_from_meta=True)({"label": labels[None]})
    with pytest.raises(ValueError, match="give either spacing or spacing_from_meta"):
        WeightMapd(keys="label", spacing_from_meta=True, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="weight_keys: expected one per key"):
        WeightMapd(keys=("a", "b"), weight_keys="w")
    with pytest.raises(ValueError, match="would overwrite the labels"):
        WeightMapd(keys="label", weight_keys="label")
    with pytest.raises(ValueError, match="sigma"):
        WeightMapd(keys="label", sigma=float("nan"))
    with pytest.raises(TypeError, match="w0 is not an option of WeightMapd with weighting='falk'"):
        WeightMapd(keys="label", weighting="falk", w0=5.0)


def test_a_bool_label_refuses_an_ignore_label():
    """ignore_label is a value of the labels as given; a bool mask has none, and labelling it would
    have given one object the id 255 and dropped it."""
    mask = np.zeros((1, 40, 80), dtype=bool)
    mask[0, 1::2, 1::2] = True
    for label in (mask, MetaTensor(torch.as_tensor(mask))):
        with pytest.raises(ValueError, match=r"ignore_label=255 cannot apply to a bool mask \(label of dtype bool\)"):
            WeightMapd(keys="label", ignore_label=255)({"label": label})
    as_uint8 = mask.astype(np.uint8) * 255  # the same picture as integers: 255 is a value there
    out = WeightMapd(keys="label", ignore_label=255)({"label": as_uint8})
    np.testing.assert_array_equal(out["weight"][0][mask[0]], 0.0)


def _with_affine(labels, affine):
    return {"label": MetaTensor(torch.as_tensor(labels[None]), affine=torch.as_tensor(affine, dtype=torch.float64))}


@pytest.mark.parametrize("ndim", [2, 3])
def test_spacing_from_meta_follows_the_affine_and_refuses_one_without_voxel_sizes(ndim):
    shape = (24, 28) if ndim == 2 else (6, 20, 22)
    labels = touching_nuclei(shape, 5, radius=4.0, seed=2)
    transform = WeightMapd(keys="label", sigma=SIGMA, spacing_from_meta=True)
    # A rotated, anisotropic affine: the voxel sizes are the lengths of the spatial columns.
    sizes = (2.0, 0.5, 0.75)[:ndim]
    angle = 0.3
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    affine = rotation @ np.diag([*sizes, *(1.0,) * (4 - ndim)])
    affine[:3, 3] = (5.0, -2.0, 1.0)  # a translation changes no voxel size
    got = transform(_with_affine(labels, affine))["weight"][0].numpy()
    np.testing.assert_array_equal(got, unet_weight_map(labels, sigma=SIGMA, spacing=sizes))
    assert not np.array_equal(got, unet_weight_map(labels, sigma=SIGMA))
    singular = np.eye(4)
    singular[:ndim, :ndim] = 1.0  # every spatial axis along one direction
    non_finite = np.eye(4)
    non_finite[0, 0] = np.nan
    one_zero_axis = np.eye(4)
    one_zero_axis[ndim - 1, ndim - 1] = 0.0
    for bad in (np.zeros((4, 4)), one_zero_axis, singular, non_finite):
        with pytest.raises(ValueError, match=r"label: spacing_from_meta=True needs the label's affine to give finite, non-zero voxel sizes"):
            transform(_with_affine(labels, bad))


def test_distance_map_and_skeleton_of_the_target_beside_the_weight_map():
    sample = _samples((10, 24, 26), 1, spacing=(2.0, 1.0, 0.8))[0]
    sample["label"][0, :, :4] = 77  # an unannotated strip: background of the target
    transform = WeightMapd(keys="label", sigma=SIGMA, spacing_from_meta=True, ignore_label=77, separate=True,
                           signed_distance=True, skeleton_radius=1.5)
    out = transform(sample)
    labels = sample["label"][0].numpy()
    spacing = (2.0, 1.0, 0.8)
    foreground = separate_touching(np.where(labels == 77, 0, labels)) > 0
    distance, skeleton = out["distance"], out["skeleton"]
    assert isinstance(distance, MetaTensor) and isinstance(skeleton, MetaTensor)
    torch.testing.assert_close(distance.affine, sample["label"].affine)
    assert distance.dtype == torch.float32 and skeleton.dtype == torch.int64
    want = np.stack([signed_distance_map(foreground == c, spacing=spacing) for c in (0, 1)])
    np.testing.assert_array_equal(distance.numpy(), want)
    np.testing.assert_array_equal(skeleton.numpy(), tubed_skeleton(foreground, 1.5, spacing)[None].astype(np.int64))
    assert skeleton.numpy().any()
    np.testing.assert_array_equal(
        out["weight"][0].numpy(), unet_weight_map(labels, sigma=SIGMA, spacing=spacing, ignore_label=77, separate=True)
    )


def test_distance_and_skeleton_keys():
    labels = touching_nuclei((30, 30), 5, radius=5.0, seed=1)
    out = WeightMapd(keys=("a", "b"), signed_distance=True, skeleton_radius=0.0)({"a": labels[None], "b": labels[None]})
    assert set(out) == {"a", "b", "a_weight", "b_weight", "a_distance", "b_distance", "a_skeleton", "b_skeleton"}
    assert isinstance(out["a_distance"], np.ndarray) and out["a_distance"].shape == (2, 30, 30)
    np.testing.assert_array_equal(out["b_skeleton"][0], tubed_skeleton(labels > 0, 0.0).astype(np.int64))
    out = WeightMapd(keys="label", signed_distance=True, distance_keys="sdm")({"label": labels[None]})
    assert set(out) == {"label", "weight", "sdm"}
    with pytest.raises(ValueError, match="distance_keys: expected one per key"):
        WeightMapd(keys=("a", "b"), signed_distance=True, distance_keys="d")
    with pytest.raises(ValueError, match=r"skeleton_keys: \['weight'\] would overwrite the labels or another map"):
        WeightMapd(keys="label", skeleton_radius=1.0, skeleton_keys="weight")
    with pytest.raises(ValueError, match="skeleton_radius must be >= 0"):
        WeightMapd(keys="label", skeleton_radius=-1.0)
    with pytest.raises(TypeError, match="signed_distance must be a bool"):
        WeightMapd(keys="label", signed_distance="yes")


def test_a_precomputed_map_warped_with_the_labels_stays_aligned():
    """The other workflow: the map computed once and warped (bilinear) with the same transform as
    the labels (nearest). Its ridges land on the gaps between the warped cells, and it stays close
    to the map of the warped labels on the border pixels."""
    samples = []
    for seed in range(3):
        # Crowded cells with gaps carved between them, as the authors do: the ridges lie in the gaps.
        carved = separate_touching(touching_nuclei((64, 64), 24, radius=7.0, seed=seed))
        samples.append({
            "image": MetaTensor(torch.as_tensor((carved > 0)[None].astype(np.float32))),
            "label": MetaTensor(torch.as_tensor(carved[None])),
            "weight": MetaTensor(torch.as_tensor(unet_weight_map(carved, sigma=SIGMA)[None])),
        })
    both = Compose([
        RandAffined(keys=["image", "label", "weight"], prob=1.0, rotate_range=0.6, scale_range=0.1,
                    mode=("bilinear", "nearest", "bilinear"), padding_mode="zeros"),
        WeightMapd(keys="label", weight_keys="exact", sigma=SIGMA),
    ])
    both.set_random_state(seed=3)
    for sample in samples:
        out = both(sample)
        labels, moved, exact = out["label"][0].numpy(), out["weight"][0].numpy(), out["exact"][0].numpy()
        class_part = unet_weight_map(labels, sigma=SIGMA, w0=0.0)
        ridge = moved - class_part > 5.0  # where the warped border term is above half of w0 = 10
        assert ridge.sum() > 20
        assert np.mean(labels[ridge] == 0) > 0.9  # on the gaps, not inside the warped cells
        border = exact - class_part > 1.0
        assert np.mean(np.abs(moved - exact)[border]) < 2.5
