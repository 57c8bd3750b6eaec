"""Importing emits no warning; scripting works with every warning but TorchScript's own an error."""

import subprocess
import sys
import warnings

import pytest
import torch

from .cases import CASES, make_inputs

TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


def test_import_emits_no_warning():
    code = (
        "import unetweights, unetweights.losses, unetweights.metrics, unetweights.evaluation, unetweights.export, "
        "unetweights.runtime; from unetweights import WeightedCrossEntropyLoss, EvaluationGraph, OnnxEvaluator"
    )
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_to_torchscript_keeps_torchs_deprecation_notice_to_itself(tmp_path):
    """torch 2.14 turned the notice into a FutureWarning, which users see by default; the library's
    own use of TorchScript must not show it, whatever the category."""
    from unetweights import WeightedCrossEntropyLoss
    from unetweights.export import to_torchscript

    x, target, weight = make_inputs("index", (2, 3, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_torchscript(WeightedCrossEntropyLoss(ignore_index=-1), tmp_path / "loss.pt", (x, target, weight))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_script_save_load_with_warnings_as_errors(case, tmp_path):
    module = case.build(2)
    x, target, weight = make_inputs(case.kind, (2, 3, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATION)
        scripted = torch.jit.script(module)
        scripted.save(str(tmp_path / "loss.pt"))
        loaded = torch.jit.load(str(tmp_path / "loss.pt"))
        torch.testing.assert_close(loaded(x, target, weight), module(x, target, weight))


@pytest.mark.parametrize("module_name", ["losses", "metrics", "evaluation", "runtime", "data", "dask"])
def test_top_level_names_are_the_submodules(module_name):
    import importlib

    import unetweights

    module = importlib.import_module(f"unetweights.{module_name}")
    # The chunked unet_weight_map and weight_map keep their module: at the top level the first name
    # is the in-memory function, and the second would read as an in-memory one.
    own = set(module.__all__) - {"INPUT_NAMES", "unet_weight_map", "weight_map"}
    assert own <= set(unetweights.__all__)
    for name in own:
        assert getattr(unetweights, name) is getattr(module, name)
    assert getattr(unetweights, module_name) is module
