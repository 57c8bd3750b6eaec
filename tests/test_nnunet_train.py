"""nnU-Net end to end: a tiny generated dataset of touching cells, nnU-Net's own planning and
preprocessing, then ``nnUNetv2_train -tr`` with our trainer found through nnUNet_extTrainer, on
the CPU, for one tiny epoch with validation. nnU-Net is installed from the index, unmodified."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nnunetv2")

from unetweights.synthetic import touching_cells  # noqa: E402

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _raw_dataset(root: Path, n: int = 6, size: int = 64) -> None:
    """Generated touching cells as instance masks and images, converted by the command line."""
    masks, images = root / "masks", root / "images"
    masks.mkdir()
    images.mkdir()
    for k, (image, labels) in enumerate(touching_cells(n, size=size, seed=0)):
        np.save(masks / f"cell_{k:03d}.npy", labels)
        np.save(images / f"cell_{k:03d}.npy", image)
    out = root / "nnUNet_raw" / "Dataset001_Cells"
    convert = subprocess.run(
        [str(BIN / "unetweights"), "nnunet-convert", str(masks), "--images", str(images), "--out", str(out)],
        capture_output=True, text=True,
    )
    assert convert.returncode == 0, convert.stderr
    assert "6 cases, 1 channel(s)" in convert.stdout


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    """The converted tiny dataset, planned and preprocessed by nnU-Net once for every trainer."""
    root = tmp_path_factory.mktemp("nnunet")
    _raw_dataset(root)
    trainers = subprocess.run([str(BIN / "unetweights"), "nnunet-path"], capture_output=True, text=True, check=True).stdout.strip()
    env = dict(
        os.environ, nnUNet_raw=str(root / "nnUNet_raw"), nnUNet_preprocessed=str(root / "preprocessed"),
        nnUNet_results=str(root / "results"), nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1", nnUNet_compile="f",
        nnUNet_extTrainer=os.pathsep.join([trainers, str(HERE / "nnunet_trainers")]), PYTHONWARNINGS="ignore",
    )
    plan = subprocess.run(
        [str(BIN / "nnUNetv2_plan_and_preprocess"), "-d", "1", "-c", "2d", "-np", "1", "--verify_dataset_integrity"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    return root, env


def _train(env, trainer):
    train = subprocess.run(
        [str(BIN / "nnUNetv2_train"), "1", "2d", "0", "-tr", trainer, "-device", "cpu"],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert train.returncode == 0, (train.stdout[-3000:], train.stderr[-3000:])
    assert "Mean Validation Dice" in train.stdout  # nnU-Net's own validation ran to the end


def test_train_a_tiny_2d_dataset_with_the_weight_map_trainer(preprocessed):
    root, env = preprocessed
    _train(env, "nnUNetTrainerUNetWeightsTestTiny")
    folder = next((root / "results").rglob("maps_seen.json")).parent
    seen = json.loads((folder / "maps_seen.json").read_text())
    assert len(seen) == 2  # both training iterations
    for record in seen:
        # The map is that of the augmented segmentation, computed in nnU-Net's own loader.
        assert record["reference_error"] == 0.0
        levels = [level for level in record["levels"]]
        # Every deep-supervision level with a non-zero weight received a map of its own resolution,
        # the area-resized full map, and not a uniform one.
        assert len(levels) >= 3 and len({tuple(level["shape"]) for level in levels}) == len(levels)
        for level in levels:
            assert level["error"] < 1e-5 and level["std"] > 0.05


@pytest.mark.parametrize("trainer", ["nnUNetTrainerFalkWeights", "nnUNetTrainerUWBoundary", "nnUNetTrainerUWSkeletonRecall"])
def test_every_trainer_trains_and_validates(preprocessed, trainer):
    _train(preprocessed[1], f"{trainer}TestTiny")
