"""The modes of tests/losses/test_modes*.py: how each is built, which runs exist, and the check.

The runs are split over three files (script and export; compile; compile_dynamic) so that the
suite's two workers share them: pytest-xdist hands out whole files.
"""

import warnings

import pytest
import torch
from torch.export import Dim, export

from .cases import CASES, SHAPES, loss_and_grad, make_inputs

MODES = ("script", "compile", "compile_dynamic", "export")
INDUCTOR_DYNAMIC = {"ce", "tversky", "huber"}
TOL = dict(rtol=2e-5, atol=2e-6)


def _spec(t, spatial_rank, batch, spatial):
    """Dynamic batch and spatial dims for a (N, *spatial) or (N, C, *spatial) tensor."""
    if t is None:
        return None
    first = 2 if t.dim() == spatial_rank + 2 else 1
    spec = {0: batch}
    spec.update({first + i: d for i, d in enumerate(spatial)})
    return spec


def build(mode, module, example, spatial_rank, tmp_path, backend=None):
    if mode == "script":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
            scripted = torch.jit.script(module)
            path = tmp_path / "loss.pt"
            torch.jit.save(scripted, str(path))
            return torch.jit.load(str(path))
    if mode == "compile":
        torch._dynamo.reset()
        return torch.compile(module, fullgraph=True, backend="inductor")
    if mode == "compile_dynamic":
        torch._dynamo.reset()
        return torch.compile(module, fullgraph=True, dynamic=True, backend=backend or "aot_eager")
    batch = Dim("batch")
    spatial = [Dim(f"s{i}") for i in range(spatial_rank)]
    shapes = tuple(_spec(t, spatial_rank, batch, spatial) for t in example)
    return export(module, example, dynamic_shapes=shapes).module()


def _runs():
    """Every (case, mode, dims, backend) run; see test_modes.py for what each mode covers."""
    for case in CASES:
        for mode in MODES:
            if mode.startswith("compile") and not case.compile:
                continue
            for dims in sorted(SHAPES):
                if mode == "compile_dynamic":
                    backends = ("aot_eager",) if dims == "3d" else ("inductor",) * (case.name in INDUCTOR_DYNAMIC)
                    for backend in backends:
                        yield pytest.param(case, mode, dims, backend, id=f"{case.name}-{mode}-{backend}-{dims}")
                elif mode != "compile" or dims == "2d":
                    yield pytest.param(case, mode, dims, None, id=f"{case.name}-{mode}-{dims}")


RUNS = list(_runs())



def check_mode(case, mode, dims, backend, tmp_path):
    """The mode built from the first shape gives the eager values and gradients on both shapes."""
    first, second = SHAPES[dims]
    spatial_rank = len(first) - 2
    module = case.build(spatial_rank)
    example = make_inputs(case.kind, first, seed=1)
    run = build(mode, module, example, spatial_rank, tmp_path, backend)
    for seed, shape in enumerate((first, second)):
        x, target, weight = make_inputs(case.kind, shape, seed=seed + 10)
        want, want_grad = loss_and_grad(module, x, target, weight)
        got, got_grad = loss_and_grad(run, x, target, weight)
        assert torch.isfinite(want).all()
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(got_grad, want_grad, **TOL)
        assert want_grad.abs().sum() > 0
