"""The console script's demo: it writes the map it describes, and user errors are one line."""

import numpy as np

from tests.weightmaps.reference import reference_unet_weight_map
from unetweights.cli import main


def test_demo_writes_the_weight_map_of_the_mask(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--size", "96", "--objects", "12", "--radius", "10", "--out", str(out)]) == 0
    labels = np.load(out / "labels.npy")
    weights = np.load(out / "weights.npy")
    assert labels.shape == weights.shape == (96, 96) and weights.dtype == np.float32
    ref = reference_unet_weight_map(labels)
    assert np.all(np.abs(weights - ref) <= 1e-6 + 2**-23 * np.abs(ref))
    printed = capsys.readouterr().out
    assert f"{labels.max()} touching objects" in printed and "x one scipy EDT" in printed


def test_user_error_is_one_line_and_nonzero(tmp_path, capsys):
    assert main(["demo", "--size", "32", "--sigma", "-1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "sigma" in err
