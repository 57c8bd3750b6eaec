"""unetweights.nnunet: the recipe's maps computed inside nnU-Net's own training pipeline, carried to
the loss, and resized to every deep-supervision level by area."""

import os

import numpy as np
import pytest
import torch
from scipy import ndimage

pytest.importorskip("batchgeneratorsv2")
# nnU-Net reads its folders from the environment when imported; none is used here.
for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
    os.environ.setdefault(name, os.devnull)
trainer_module = pytest.importorskip("nnunetv2.training.nnUNetTrainer.nnUNetTrainer")
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper  # noqa: E402

from unetweights import WeightMapRecipe, WeightedCrossEntropyLoss, resize_area, signed_distance_map, unet_weight_map  # noqa: E402
from unetweights.nnunet import (  # noqa: E402
    DeepSupervisedMapsLoss,
    PackMapsTransform,
    WeightMapsTransform,
    semantic_maps,
    split_target,
    with_maps,
)
from unetweights.synthetic import touching_nuclei  # noqa: E402

nnUNetTrainer = trainer_module.nnUNetTrainer
SCALES_2D = [[1, 1], [0.5, 0.5], [0.25, 0.25]]


def _segmentation(shape=(80, 80), seed=0, ignore=None):
    """Three classes (0 background, 1 and 2) of touching cells; ``ignore`` marks a corner block."""
    cells = touching_nuclei(shape, 9, radius=9.0, seed=seed)
    seg = np.where(cells > 0, 1 + (cells % 2), 0).astype(np.int16)
    if ignore is not None:
        seg[tuple(slice(0, 12) for _ in shape)] = ignore
    return seg


def _reference_weight(seg, sigma, ignore=None):
    """unet_weight_map of the connected components of each class, written independently of
    semantic_maps: scipy's labelling per class, and the ignored pixels given an id beyond all."""
    classes = np.where(seg == ignore, 0, seg) if ignore is not None else seg
    instances = _components(classes)
    if ignore is None:
        return unet_weight_map(instances, sigma=sigma, classes=classes)
    marker = instances.max() + 1
    instances[seg == ignore] = marker
    return unet_weight_map(instances, sigma=sigma, classes=classes, ignore_label=int(marker))


def _pipeline_2d(recipe, ignore=None, scales=SCALES_2D):
    base = nnUNetTrainer.get_training_transforms(
        patch_size=(64, 64), rotation_for_DA=(-np.pi, np.pi), deep_supervision_scales=scales, mirror_axes=(0, 1),
        do_dummy_2d_data_aug=False, ignore_label=ignore,
    )
    return with_maps(base, recipe, 3 if ignore is None else 4, ignore)


@pytest.mark.parametrize("ignore", [None, 3])
def test_the_map_is_that_of_the_augmented_segmentation_at_full_resolution(ignore):
    torch.manual_seed(0)
    np.random.seed(0)
    recipe = WeightMapRecipe(sigma=3.0)
    pipeline = _pipeline_2d(recipe, ignore)
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names[-3:] == ["WeightMapsTransform", "DownsampleSegForDSTransform", "PackMapsTransform"]
    assert names.index("RemoveLabelTransform") < names.index("WeightMapsTransform")
    seg = _segmentation(ignore=ignore)
    out = pipeline(image=torch.rand(1, 80, 80), segmentation=torch.from_numpy(seg[None]))
    levels, maps = split_target(out["segmentation"], recipe)
    assert [tuple(level.shape) for level in levels] == [(1, 64, 64), (1, 32, 32), (1, 16, 16)]
    augmented = levels[0][0].numpy()
    assert len(np.unique(augmented)) >= 3  # the augmentation kept both classes
    weight = maps["weight"]
    assert weight.shape == (1, 64, 64) and weight.dtype == torch.float32
    np.testing.assert_array_equal(weight[0].numpy(), _reference_weight(augmented, 3.0, ignore))
    if ignore is not None:
        assert (weight[0][torch.from_numpy(augmented == ignore)] == 0).all()
    assert weight.std() > 0.1  # a map with borders, not a constant


def test_every_deep_supervision_level_gets_the_area_resized_map_of_its_own_resolution():
    torch.manual_seed(1)
    np.random.seed(1)
    recipe = WeightMapRecipe(sigma=3.0)
    pipeline = _pipeline_2d(recipe)
    samples = [pipeline(image=torch.rand(1, 80, 80), segmentation=torch.from_numpy(_segmentation(seed=s)[None])) for s in range(2)]
    # nnU-Net's loader stacks the list entry by entry.
    target = [torch.stack([s["segmentation"][k] for s in samples]) for k in range(4)]
    levels, maps = split_target(target, recipe)
    outputs = [torch.randn(2, 3, *level.shape[2:], requires_grad=True) for level in levels]
    seen = []

    class Recording(torch.nn.Module):
        def forward(self, input, target, weight):
            seen.append((tuple(input.shape), target.clone(), weight.clone()))
            return WeightedCrossEntropyLoss()(input, target, weight)

    level_weights = [4 / 7, 2 / 7, 1 / 7]
    loss = DeepSupervisedMapsLoss(Recording(), level_weights)(outputs, levels, maps["weight"])
    assert len(seen) == 3
    full = maps["weight"][:, 0]
    want = 0.0
    for (shape, got_target, got_map), level, output, w in zip(seen, levels, outputs, level_weights):
        assert shape == tuple(output.shape) and got_map.shape == (2, *shape[2:])
        torch.testing.assert_close(got_map, full if shape[2:] == full.shape[1:] else resize_area(full, list(shape[2:])))
        assert torch.equal(got_target, level[:, 0].long())
        want = want + w * WeightedCrossEntropyLoss()(output, level[:, 0].long(), got_map)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for o in outputs)


def test_level_weights_as_nnunets_wrapper_applies_them():
    g = torch.Generator().manual_seed(2)
    outputs = [torch.randn(2, 3, 16 // 2**k, 16 // 2**k, generator=g) for k in range(3)]
    targets = [torch.randint(0, 3, (2, 1, 16 // 2**k, 16 // 2**k), generator=g) for k in range(3)]
    ones = torch.ones(2, 1, 16, 16)
    weights = [4 / 7, 2 / 7, 1 / 7]
    ours = DeepSupervisedMapsLoss(WeightedCrossEntropyLoss(), weights)(outputs, targets, ones)
    theirs = DeepSupervisionWrapper(lambda x, t: torch.nn.functional.cross_entropy(x, t[:, 0].long()), weights)(outputs, targets)
    torch.testing.assert_close(ours, theirs)


def test_distance_and_skeleton_are_per_class():
    seg = _segmentation(ignore=3)
    recipe = WeightMapRecipe(sigma=3.0, signed_distance=True, skeleton_radius=1.0, spacing=(1.0, 0.5))
    maps = semantic_maps(recipe, seg, 3, ignore_label=3)
    ignored = seg == 3
    assert maps["distance"].shape == (3, 80, 80)
    for c in range(3):
        np.testing.assert_array_equal(maps["distance"][c], signed_distance_map((seg == c) & ~ignored, spacing=(1.0, 0.5)))
    assert set(np.unique(maps["skeleton"])) <= {0, 1, 2} and (maps["skeleton"][ignored] == 0).all()
    # Through the transforms: the maps are packed in the recipe's order after the levels.
    out = PackMapsTransform(recipe.outputs)(**WeightMapsTransform(recipe, 3, 3)(image=None, segmentation=torch.from_numpy(seg[None])))
    assert [tuple(t.shape) for t in out["segmentation"]] == [(1, 80, 80), (1, 80, 80), (3, 80, 80), (1, 80, 80)]


def test_a_3d_patch():
    torch.manual_seed(3)
    np.random.seed(3)
    base = nnUNetTrainer.get_training_transforms(
        patch_size=(24, 32, 32), rotation_for_DA=(-0.5, 0.5), deep_supervision_scales=[[1, 1, 1], [0.5, 0.5, 0.5]],
        mirror_axes=(0, 1, 2), do_dummy_2d_data_aug=False,
    )
    recipe = WeightMapRecipe(sigma=2.0, spacing=(2.0, 1.0, 1.0))
    cells = touching_nuclei((28, 36, 36), 8, radius=6.0, seed=3)
    seg = np.where(cells > 0, 1 + (cells % 2), 0).astype(np.int16)
    out = with_maps(base, recipe, 3)(image=torch.rand(1, 28, 36, 36), segmentation=torch.from_numpy(seg[None]))
    levels, maps = split_target(out["segmentation"], recipe)
    augmented = levels[0][0].numpy()
    want = unet_weight_map(_components(augmented), sigma=2.0, spacing=(2.0, 1.0, 1.0), classes=augmented)
    np.testing.assert_array_equal(maps["weight"][0].numpy(), want)


def _components(seg):
    instances = np.zeros(seg.shape, np.int64)
    for c in range(1, int(seg.max()) + 1):
        components, _ = ndimage.label(seg == c)
        instances[components > 0] = components[components > 0] + instances.max()
    return instances


def test_refusals_are_named():
    recipe = WeightMapRecipe()
    regions = nnUNetTrainer.get_training_transforms(
        patch_size=(32, 32), rotation_for_DA=(-0.1, 0.1), deep_supervision_scales=None, mirror_axes=(0,),
        do_dummy_2d_data_aug=False, regions=[1, (1, 2)],
    )
    with pytest.raises(NotImplementedError, match="region-based training"):
        with_maps(regions, recipe, 3)
    with pytest.raises(RuntimeError, match="before DownsampleSegForDSTransform"):
        WeightMapsTransform(recipe, 3)(segmentation=[torch.zeros(1, 8, 8, dtype=torch.int16)])
    with pytest.raises(ValueError, match="expected one channel"):
        WeightMapsTransform(recipe, 3)(segmentation=torch.zeros(2, 8, 8, dtype=torch.int16))
    with pytest.raises(ValueError, match="num_classes"):
        WeightMapsTransform(recipe, 1)
    with pytest.raises(ValueError, match="outputs, targets, level_weights: expected one per deep-supervision level"):
        DeepSupervisedMapsLoss(WeightedCrossEntropyLoss(), [0.5, 0.5])([torch.zeros(1, 2, 4, 4)], [torch.zeros(1, 4, 4)], torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="level_weights"):
        DeepSupervisedMapsLoss(WeightedCrossEntropyLoss(), [0.0, float("nan")])
    with pytest.raises(ValueError, match="target: expected a list of the segmentation levels and 1 map"):
        split_target([torch.zeros(1)], recipe)


@pytest.mark.parametrize("resize", ["area", "nearest"])
def test_an_extra_map_reaches_every_level_resized_its_own_way(resize):
    from unetweights.losses import resize_nearest

    g = torch.Generator().manual_seed(4)
    outputs = [torch.randn(2, 3, 16 // 2**k, 16 // 2**k, generator=g) for k in range(3)]
    targets = [torch.randint(0, 3, (2, 1, 16 // 2**k, 16 // 2**k), generator=g) for k in range(3)]
    weight = torch.rand(2, 1, 16, 16, generator=g)
    extra = torch.randn(2, 3, 16, 16, generator=g) if resize == "area" else torch.randint(0, 3, (2, 1, 16, 16), generator=g)
    seen = []

    class Recording(torch.nn.Module):
        def forward(self, input, target, weight, level_extra):
            seen.append(level_extra)
            return input.sum() * 0.0 + level_extra.float().mean()

    DeepSupervisedMapsLoss(Recording(), [4 / 7, 2 / 7, 1 / 7], extra_resize=resize)(outputs, targets, weight, extra)
    for k, got in enumerate(seen):
        size = [16 // 2**k] * 2
        want = extra if k == 0 else (resize_area(extra, size) if resize == "area" else resize_nearest(extra, size))
        assert torch.equal(got, want)
    with pytest.raises(ValueError, match="extra_resize"):
        DeepSupervisedMapsLoss(Recording(), [1.0], extra_resize="bilinear")
