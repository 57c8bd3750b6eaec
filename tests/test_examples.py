"""The example scripts run as a user would run them, and the demo's object score means what it says."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from unetweights.demo import object_scores

ROOT = Path(__file__).resolve().parents[1]


def run_example(name, *args, cwd):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_custom_loss(tmp_path):
    out = run_example("custom_loss.py", cwd=tmp_path)
    assert "max gradient difference" in out and "boundary_aware: float32[batch]" in out
    assert (tmp_path / "example_out" / "custom_loss.onnx").is_file()


def test_train_unet_and_evaluate_onnx(tmp_path):
    out = run_example(
        "train_unet.py", "--out", tmp_path / "train", "--steps", "4", "--train-images", "8", "--test-images", "2",
        "--workers", "0", cwd=tmp_path,
    )
    assert "with weight map" in out and "object F1" in out
    out = run_example("evaluate_onnx.py", tmp_path / "train" / "eval.onnx", "--images", "6", "--size", "32", "--batch-size", "4", cwd=tmp_path)
    assert "6 images" in out and "ExecutionProvider" in out


def test_object_scores_count_merged_and_split_cells():
    labels = np.zeros((8, 12), dtype=np.int32)
    labels[2:6, 1:6] = 1
    labels[2:6, 6:11] = 2  # two cells touching along a column
    merged = object_scores((labels > 0).astype(np.int64), labels)
    # The fused component matches one of the two equal cells at IoU 20/40, exactly 1/2 (IoU >= 0.5):
    # precision 1, recall 1/2; both cells lie inside it.
    assert merged["f1"] == 2 / 3 and merged["merged"] == 1.0
    assert object_scores(np.zeros_like(labels), labels)["f1"] == 0.0
    split = (labels > 0).astype(np.int64)
    split[:, 6] = 0  # a one-pixel gap: two components, each IoU 20/20 and 16/20 with its cell
    scores = object_scores(split, labels)
    assert scores["f1"] == 1.0 and scores["merged"] == 0.0 and scores["precision"] == 1.0
    spurious = split.copy()
    spurious[0, 0] = 1  # a third component that matches no cell
    assert abs(object_scores(spurious, labels)["precision"] - 2 / 3) < 1e-12


def test_monai_train(tmp_path):
    import pytest

    pytest.importorskip("monai")
    out = run_example("monai_train.py", "--steps", "8", "--images", "8", "--size", "32", "--workers", "2", cwd=tmp_path)
    assert "held-out foreground Dice" in out and "after 8 steps" in out


def test_torchvision_train(tmp_path):
    import pytest

    pytest.importorskip("torchvision")
    pytest.importorskip("segmentation_models_pytorch")
    out = run_example("torchvision_train.py", "--steps", "6", "--images", "8", "--size", "32", "--workers", "2", cwd=tmp_path)
    assert "held-out foreground Dice" in out and "after 6 steps" in out
