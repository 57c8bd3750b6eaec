"""unetweights nnunet-convert: instance masks and images as an nnU-Net raw dataset."""

import json

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
pytest.importorskip("batchgeneratorsv2")

from unetweights import separate_touching  # noqa: E402
from unetweights.cli import main  # noqa: E402
from unetweights.nnunet.convert import convert_dataset  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402


def _files(tmp_path, n=3, shape=(20, 24), channels=1):
    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    for k in range(n):
        labels = touching_nuclei(shape, 5, radius=5.0, seed=k)
        np.save(masks / f"c{k}.npy", labels)
        image = np.random.default_rng(k).random((channels, *shape) if channels > 1 else shape).astype(np.float32)
        np.save(images / f"c{k}.npy", image)
    return masks, images


def test_labels_are_separated_foreground_and_images_keep_their_values(tmp_path, capsys):
    masks, images = _files(tmp_path, channels=2)
    out = tmp_path / "raw" / "Dataset007_Cells"
    argv = ["nnunet-convert", str(masks), "--images", str(images), "--out", str(out), "--spacing", "0.5", "2"]
    assert main(argv) == 0
    assert "3 cases, 2 channel(s)" in capsys.readouterr().out
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset == {
        "channel_names": {"0": "channel_0", "1": "channel_1"}, "labels": {"background": 0, "foreground": 1},
        "numTraining": 3, "file_ending": ".nii.gz",
    }
    for k in range(3):
        label = sitk.ReadImage(str(out / "labelsTr" / f"c{k}.nii.gz"))
        assert label.GetSpacing() == (2.0, 0.5)  # x, y: the mask's last axis first
        want = separate_touching(np.load(masks / f"c{k}.npy")) > 0
        np.testing.assert_array_equal(sitk.GetArrayFromImage(label), want.astype(np.uint8))
        for c in range(2):
            image = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "imagesTr" / f"c{k}_{c:04d}.nii.gz")))
            np.testing.assert_array_equal(image, np.load(images / f"c{k}.npy")[c])
    # Again without --overwrite: refused, the dataset untouched.
    assert main(argv) == 2
    assert "already holds a dataset.json; pass overwrite=True" in capsys.readouterr().err


def test_refusals_are_named(tmp_path):
    masks, images = _files(tmp_path)
    paths = sorted(masks.glob("*.npy"))
    image_paths = sorted(images.glob("*.npy"))
    with pytest.raises(ValueError, match="out_dir: nnU-Net needs a folder named DatasetXXX_Name"):
        convert_dataset(paths, image_paths, tmp_path / "Cells")
    with pytest.raises(ValueError, match=r"images: no image with the stem of the masks \['c2'\]"):
        convert_dataset(paths, image_paths[:2], tmp_path / "Dataset001_A")
    with pytest.raises(ValueError, match="spacing: expected 2 finite values"):
        convert_dataset(paths, image_paths, tmp_path / "Dataset001_B", spacing=[1.0, float("nan")])
    inside = tmp_path / "Dataset001_C"
    inside.mkdir()
    moved = inside / "c0.npy"
    moved.write_bytes(paths[0].read_bytes())
    with pytest.raises(ValueError, match="out_dir"):  # an output folder that holds an input
        convert_dataset([moved, *paths[1:]], image_paths, inside)
    assert sorted(p.name for p in inside.iterdir()) == ["c0.npy"]
    np.save(images / "c0.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="has shape"):
        convert_dataset(paths, image_paths, tmp_path / "Dataset001_D")
