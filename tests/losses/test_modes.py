"""Every loss gives the eager values and gradients under TorchScript, torch.compile and torch.export.

Each mode is built from the first shape and then also called on a second one it never saw
(batch 1, odd and non-square sizes).

- "script" and "export" run in 2D and 3D.
- "compile" (``torch.compile`` as most users call it, static first) runs with inductor, its
  default backend, in 2D: every loss's generated kernels are checked there, and the second call
  recompiles with dynamic dims, so inductor's kernels for symbolic shapes are checked too.
- "compile_dynamic" (``torch.compile(dynamic=True)``, as users call it for varying patch sizes)
  makes every float option (smooth, alpha, gamma, label smoothing) a symbolic float and every dim
  symbolic from the first call, which the default mode never does. Every loss runs it in 3D with
  the "aot_eager" backend, which traces what inductor would get (Dynamo, fullgraph, AOT autograd,
  the symbolic options and dims: where the rank-specific code of the distance and skeleton losses
  is traced too) but skips inductor's C++ build, most of the time on a cold cache. The losses in
  ``INDUCTOR_DYNAMIC`` (a per-pixel loss, a set loss and a regression loss, with one to four float
  options each) also run it with inductor in 2D, whose kernels then take the options as runtime
  scalars.

So every loss is compiled in 2D and 3D, statically and dynamically, and every mode covers every
loss; the static 3D compile, which would trace the same code as the dynamic one, is left out.
"""

import pytest
import torch
from torch.export import Dim, export

import unetweights.losses as L

from .cases import CASES, SHAPES, loss_and_grad, make_inputs
from .modes import INDUCTOR_DYNAMIC, MODES, RUNS, TOL, build, check_mode

def test_compile_covers_every_loss_in_both_ranks():
    compiled = {case.name for case in CASES if case.compile}
    assert INDUCTOR_DYNAMIC <= compiled
    for mode, dims in (("compile", "2d"), ("compile_dynamic", "3d")):
        assert {p.values[0].name for p in RUNS if p.values[1:3] == (mode, dims)} == compiled
    inductor_dynamic = {p.values[0].name for p in RUNS if p.values[1] == "compile_dynamic" and p.values[3] == "inductor"}
    assert inductor_dynamic == INDUCTOR_DYNAMIC


@pytest.mark.parametrize("case,mode,dims,backend", [r for r in RUNS if r.values[1] in ("script", "export")])
def test_mode_matches_eager(case, mode, dims, backend, tmp_path):
    check_mode(case, mode, dims, backend, tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_without_weight_map(mode, tmp_path):
    module = L.WeightedCrossEntropyLoss(ignore_index=-1)
    first, second = SHAPES["2d"]
    x, target, _ = make_inputs("index", first, seed=3)
    run = build(mode, module, (x, target), 2, tmp_path)
    for shape in (first, second):
        x, target, _ = make_inputs("index", shape, seed=4)
        want, want_grad = loss_and_grad(lambda a, b, c: module(a, b), x, target, None)
        got, got_grad = loss_and_grad(lambda a, b, c: run(a, b), x, target, None)
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(got_grad, want_grad, **TOL)


class _DeepSupervised(torch.nn.Module):
    """Takes the outputs as separate arguments so that export sees plain tensors."""

    def __init__(self):
        super().__init__()
        self.loss = L.DeepSupervisionLoss(L.WeightedCrossEntropyLoss(ignore_index=-1), [1.0, 0.5, 0.25])

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
        return self.loss([x0, x1, x2], target, weight)


@pytest.mark.parametrize("mode", MODES)
def test_deep_supervision_modes(mode, tmp_path):
    module = _DeepSupervised()

    def inputs(n, h, w, seed):
        g = torch.Generator().manual_seed(seed)
        outs = [torch.randn(n, 3, h // 2**k, w // 2**k, generator=g) for k in range(3)]
        target = torch.randint(-1, 3, (n, h, w), generator=g)
        weight = torch.rand(n, h, w, generator=g) + 0.1
        return outs, target, weight

    outs, target, weight = inputs(2, 16, 24, 0)
    if mode == "export":
        b, h, w = Dim("b"), Dim("h"), Dim("w")
        specs = ({0: b, 2: 4 * h, 3: 4 * w}, {0: b, 2: 2 * h, 3: 2 * w}, {0: b, 2: h, 3: w}, {0: b, 1: 4 * h, 2: 4 * w}, {0: b, 1: 4 * h, 2: 4 * w})
        run = export(module, (*outs, target, weight), dynamic_shapes=specs).module()
    else:
        run = build(mode, module, None, 2, tmp_path)
    # A second shape would recompile the static mode: unseen shapes are the dynamic modes' job.
    for n, h, w in ((2, 16, 24),) if mode == "compile" else ((2, 16, 24), (1, 8, 20)):
        outs, target, weight = inputs(n, h, w, n)
        want_outs = [o.clone().requires_grad_(True) for o in outs]
        got_outs = [o.clone().requires_grad_(True) for o in outs]
        want = module(*want_outs, target, weight)
        got = run(*got_outs, target, weight)
        want.backward()
        got.backward()
        torch.testing.assert_close(got, want, **TOL)
        for a, b in zip(got_outs, want_outs):
            torch.testing.assert_close(a.grad, b.grad, **TOL)
