"""The saved artefacts as the exporters read them back.

:func:`load_model` takes an ONNX model given as a path or an ``onnx.ModelProto`` (a copy, so the
caller's stays as it was), :func:`default_opset` reads its default-domain opset, and
:func:`compare` holds a reloaded TorchScript module's (or AOTInductor package's, or exported
program's) outputs to the eager module's.

Part of the export room: imports torch, nothing of the package (onnx is passed in).
"""

import os
from typing import Any

import torch
from torch import Tensor


def compare(expected: Any, actual: Any, atol: float, where: str, writer: str = "to_torchscript") -> None:
    """Raise RuntimeError unless ``actual`` (what ``writer`` read back) is ``expected`` within ``atol``:
    the same structure (tensors, dicts with keys in order, lists, tuples), shapes, and values, NaN
    matching NaN only."""
    if isinstance(expected, Tensor):
        if not isinstance(actual, Tensor) or expected.shape != actual.shape:
            raise RuntimeError(f"{writer}: the reloaded module's {where} differs in type or shape")
        expected64, actual64 = expected.double(), actual.double()
        # NaN where eager has NaN (a metric's absent class) agrees; NaN on one side only does not,
        # and makes ``diff`` NaN.
        both_nan = expected64.isnan() & actual64.isnan()
        difference = torch.where(both_nan, torch.zeros_like(expected64), (expected64 - actual64).abs())
        diff = float(difference.max()) if expected.numel() else 0.0
        if not diff <= atol:
            raise RuntimeError(f"{writer}: the reloaded module's {where} differs from eager by {diff:.3g} > {atol}")
    elif isinstance(expected, dict):
        if not isinstance(actual, dict) or list(expected) != list(actual):
            keys = list(actual) if isinstance(actual, dict) else type(actual).__name__
            raise RuntimeError(f"{writer}: the reloaded module's {where} has keys {keys}, expected {list(expected)}")
        for key in expected:
            compare(expected[key], actual[key], atol, f"{where}['{key}']", writer)
    elif isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(expected) != len(actual):
            raise RuntimeError(f"{writer}: the reloaded module's {where} differs in length")
        for i, (e, a) in enumerate(zip(expected, actual)):
            compare(e, a, atol, f"{where}[{i}]", writer)


def load_model(onnx, value: Any, argument: str):
    if isinstance(value, (str, os.PathLike)):
        if not os.path.exists(value):
            raise FileNotFoundError(f"{argument}: no such file: {os.fspath(value)}")
        return onnx.load(os.fspath(value))
    if isinstance(value, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(value)
        return copy
    raise TypeError(f"{argument}: expected an onnx.ModelProto or a path, got {type(value).__name__}")


def default_opset(model) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
