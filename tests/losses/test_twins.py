"""Every functional form and its Module twin take the same options, by the same names and defaults.

A Module stores its options in ``__init__`` and its ``forward`` passes them on to the functional
form (by keyword, in the losses). Nothing but this test ties the two signatures together, so it
walks every pair that ``unetweights.losses`` and ``unetweights.metrics`` export and checks

- the signatures: each option of ``__init__`` is a parameter of the functional form, with the same
  default and annotation, in the same order, and the reverse; ``forward`` takes the functional
  form's leading data arguments (input, target, weight, ...) by the same names and defaults;
- the forwarding, by behaviour: a Module built with a non-default value of one option gives what
  the functional form gives with that keyword, on inputs where that value changes the result (so
  an option dropped, misrouted or renamed on its way to the call cannot pass); and each optional
  data argument of ``forward`` (weight, distance) reaches the functional form under its name.

The last tests run the checks on deliberately broken twins, to show that each kind of drift fails.
"""

import inspect
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import torch
from torch import Tensor, nn

import unetweights.losses as L
import unetweights.metrics as M

# (functional form, Module twin), for every pair either package exports.
TWINS: List[Tuple[Callable, type]] = [
    (L.weighted_cross_entropy, L.WeightedCrossEntropyLoss),
    (L.weighted_nll_loss, L.WeightedNLLLoss),
    (L.weighted_bce_with_logits, L.WeightedBCEWithLogitsLoss),
    (L.weighted_binary_cross_entropy, L.WeightedBCELoss),
    (L.focal_loss, L.FocalLoss),
    (L.soft_dice_loss, L.SoftDiceLoss),
    (L.soft_jaccard_loss, L.SoftJaccardLoss),
    (L.generalized_dice_loss, L.GeneralizedDiceLoss),
    (L.mcc_loss, L.MCCLoss),
    (L.tversky_loss, L.TverskyLoss),
    (L.lovasz_hinge, L.LovaszHingeLoss),
    (L.lovasz_softmax, L.LovaszSoftmaxLoss),
    (L.boundary_loss, L.BoundaryLoss),
    (L.hausdorff_dt_loss, L.HausdorffDTLoss),
    (L.cldice_loss, L.ClDiceLoss),
    (L.skeleton_recall_loss, L.SkeletonRecallLoss),
    (L.weighted_mse_loss, L.WeightedMSELoss),
    (L.weighted_l1_loss, L.WeightedL1Loss),
    (L.weighted_smooth_l1_loss, L.WeightedSmoothL1Loss),
    (L.weighted_huber_loss, L.WeightedHuberLoss),
    (L.weighted_kl_div, L.WeightedKLDivLoss),
    (M.dice_score, M.DiceScore),
    (M.iou_score, M.IoUScore),
    (M.pixel_accuracy, M.PixelAccuracy),
    (M.segmentation_counts, M.SegmentationCount),
    (M.hausdorff_distance, M.HausdorffDistance),
    (M.average_surface_distance, M.AverageSurfaceDistance),
    (M.surface_dice, M.SurfaceDice),
    (M.surface_counts, M.SurfaceCount),
]

# Modules that are not the twin of one functional form: they compose other losses.
NOT_TWINS = {L.CombinedLoss, L.DeepSupervisionLoss}
# Data arguments a functional form takes and its Module does not: the Hausdorff-DT Module
# computes the prediction's distances in the graph (its docstring says so).
FUNCTIONAL_ONLY = {"hausdorff_dt_loss": {"prediction_distance"}}
# Module options with no functional counterpart, and the value each is built with here:
# SegmentationCount returns the one count of segmentation_counts' four that ``count`` names.
MODULE_ONLY = {"SegmentationCount": {"count": "tp"}, "SurfaceCount": {"count": "within"}}
PICK = {"segmentation_counts": lambda out: out[0], "surface_counts": lambda out: out[0]}
# Options without a usable default (None is refused), given on both sides wherever not under test.
REQUIRED = {"surface_dice": {"tolerance": [1.0]}, "surface_counts": {"tolerance": [1.0]}}
# The surface metrics use a weight map only where it is 0 (those pixels are left out).
ZERO_WEIGHT_MATTERS = {"hausdorff_distance", "average_surface_distance", "surface_dice", "surface_counts"}

N, C, SPATIAL = 2, 3, (6, 7)
CLASS_WEIGHT = torch.tensor([0.5, 2.0, 1.0])

# A non-default value for each option: the first candidate that differs from the default (a flag
# takes the opposite of its default).
CANDIDATES: Dict[str, List[Any]] = {
    "activation": ["sigmoid", "softmax"],
    "alpha": [0.3],
    "balance": [(0.3, 0.7)],
    "beta": [0.7],
    "class_weight": [CLASS_WEIGHT],
    "classes": ["all"],
    "delta": [0.5],
    "empty_score": [1.0],
    "gamma": [0.75],
    "ignore_index": [1],
    "iterations": [1],
    "label_smoothing": [0.1],
    "percentile": [50.0],
    "pos_weight": [torch.tensor([2.0, 1.0, 0.5]).view(C, 1, 1)],
    "reduction": ["none"],
    "smooth": [0.5],
    "spacing": [[2.0, 0.5]],
    "threshold": [0.3],
    "tolerance": [[2.0]],
    "weight_mode": ["margin"],
}
# MCC's smooth enters a fourth power of the counts: 0.5 would vanish beside it.
CANDIDATES_FOR: Dict[Tuple[str, str], List[Any]] = {("mcc_loss", "smooth"): [1e6]}
# Options whose value shows only beside another one: the threshold of a softmax's argmax is
# unused, and the sigmoid focal loss has no classes to weight or ignore.
CONTEXT: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("*", "threshold"): {"activation": "sigmoid"},
    ("focal_loss", "class_weight"): {"activation": "softmax"},
    ("focal_loss", "ignore_index"): {"activation": "softmax"},
}


def _parameters(fn: Callable) -> List[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def _same_default(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _options(fn: Callable, cls: type) -> Tuple[List[inspect.Parameter], List[inspect.Parameter]]:
    """The options of the functional form (its parameters but the data arguments) and of the Module."""
    data = {p.name for p in _parameters(cls.forward)} | FUNCTIONAL_ONLY.get(fn.__name__, set())
    fn_options = [p for p in _parameters(fn) if p.name not in data]
    module_options = [p for p in _parameters(cls.__init__) if p.name not in MODULE_ONLY.get(cls.__name__, {})]
    return fn_options, module_options


def signature_problems(fn: Callable, cls: type) -> List[str]:
    """What differs between the signatures of ``fn`` and its Module twin ``cls`` (empty: nothing)."""
    problems = []
    forward = _parameters(cls.forward)
    head = _parameters(fn)[: len(forward)]
    if [(p.name, p.default) for p in head] != [(p.name, p.default) for p in forward]:
        problems.append(f"forward takes {[str(p) for p in forward]}, {fn.__name__} starts {[str(p) for p in head]}")
    fn_options, module_options = _options(fn, cls)
    fn_by_name = {p.name: p for p in fn_options}
    module_by_name = {p.name: p for p in module_options}
    for name in sorted(fn_by_name.keys() - module_by_name.keys()):
        problems.append(f"{name}: an option of {fn.__name__} that {cls.__name__} does not take")
    for name in sorted(module_by_name.keys() - fn_by_name.keys()):
        problems.append(f"{name}: an option of {cls.__name__} that {fn.__name__} does not take")
    for name in sorted(fn_by_name.keys() & module_by_name.keys()):
        ours, theirs = fn_by_name[name], module_by_name[name]
        if not _same_default(ours.default, theirs.default):
            problems.append(f"{name}: default {ours.default!r} in {fn.__name__}, {theirs.default!r} in {cls.__name__}")
        if ours.annotation != theirs.annotation:
            problems.append(f"{name}: annotated {ours.annotation} in {fn.__name__}, {theirs.annotation} in {cls.__name__}")
    shared = fn_by_name.keys() & module_by_name.keys()
    if [p.name for p in fn_options if p.name in shared] != [p.name for p in module_options if p.name in shared]:
        problems.append(f"options in another order: {[p.name for p in fn_options]} and {[p.name for p in module_options]}")
    return problems


def _non_default(fn: Callable, option: inspect.Parameter) -> Any:
    if isinstance(option.default, bool):
        return not option.default
    for value in CANDIDATES_FOR.get((fn.__name__, option.name), CANDIDATES[option.name]):
        if not _same_default(value, option.default):
            return value
    raise AssertionError(f"{fn.__name__}: no non-default candidate for {option.name}")


def _option_change(fn: Callable, option: inspect.Parameter) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(context, change)``: the options set on both sides and in the reference, and the one under test."""
    context = CONTEXT.get((fn.__name__, option.name), CONTEXT.get(("*", option.name), {}))
    # A required option under test keeps its given value in the reference; the change overrides it.
    return {**REQUIRED.get(fn.__name__, {}), **context}, {option.name: _non_default(fn, option)}


def _data(fn: Callable, options: Dict[str, Any]) -> Dict[str, Tensor]:
    """Small inputs for ``fn`` under ``options``, by argument name, every optional data argument among them.

    Class 2 is absent from every index target and never predicted in image 0, so that the options
    about absent classes (``classes``, ``empty_score``) change the result too.
    """
    g = torch.Generator().manual_seed(0)
    x = 2.0 * torch.randn((N, C) + SPATIAL, generator=g)
    x[0, 2] = -10.0
    labels = torch.randint(0, 2, (N,) + SPATIAL, generator=g)
    binary = (torch.rand((N, C) + SPATIAL, generator=g) < 0.4).float()
    weight = 0.5 + 1.5 * torch.rand((N,) + SPATIAL, generator=g)
    if fn.__name__ in ZERO_WEIGHT_MATTERS:
        weight[:, :2] = 0.0
    distance = torch.randn((N, C) + SPATIAL, generator=g)
    defaults = {p.name: p.default for p in _parameters(fn)}
    target = binary if options.get("activation", defaults.get("activation")) == "sigmoid" else labels
    name = fn.__name__
    if name in ("weighted_bce_with_logits", "weighted_binary_cross_entropy"):
        target = binary
    if name == "weighted_binary_cross_entropy":
        x = torch.sigmoid(x)
    if name == "weighted_nll_loss":
        x = torch.log_softmax(x, 1)
    if name == "lovasz_hinge":
        x, target = x[:, :1], binary[:, :1].long()
    if name in ("weighted_mse_loss", "weighted_l1_loss", "weighted_smooth_l1_loss", "weighted_huber_loss"):
        target = torch.randn(x.shape, generator=g)
    if name == "weighted_kl_div":
        x, target = torch.log_softmax(x, 1), torch.softmax(torch.randn(x.shape, generator=g), 1)
    return {"input": x, "target": target, "skeleton": target, "weight": weight, "distance": distance}


def _same(a: Tensor, b: Tensor) -> bool:
    """Equal to the bit, NaN where the other is NaN: a Module runs its functional form's own code."""
    return a.shape == b.shape and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-7, equal_nan=True)


def forwarding_problems(
    fn: Callable, cls: type, context: Dict[str, Any], change: Dict[str, Any], give: str = "weight"
) -> List[str]:
    """Whether ``cls(**context, **change)`` gives what ``fn(..., **context, **change)`` gives.

    The Module is called positionally, as a training loop calls it, with its required data
    arguments and the optional one named ``give`` (None for the optional ones before it); the
    functional form gets the same tensors by name. Without ``change`` and without ``give`` the
    functional form's result must visibly differ: a check on a value that changes nothing would
    pass whatever the Module did with it.
    """
    forward = [p.name for p in _parameters(cls.forward)]
    required = [p.name for p in _parameters(cls.forward) if p.default is inspect.Parameter.empty]
    data = _data(fn, {**context, **change})
    given = {name: data[name] for name in required + [give]}
    last = max(forward.index(name) for name in given)
    pick = PICK.get(fn.__name__, lambda out: out)
    module = cls(**MODULE_ONLY.get(cls.__name__, {}), **{**context, **change})
    got = module(*[given.get(name) for name in forward[: last + 1]])
    want = pick(fn(**given, **{**context, **change}))
    problems = []
    if not _same(got, want):
        problems.append(f"{cls.__name__}(**{change}) differs from {fn.__name__}(..., **{change}), given {give}")
    if change:
        # Built for the context alone: an activation changes what target the default one takes.
        reference_data = _data(fn, context)
        reference = pick(fn(**{name: reference_data[name] for name in given}, **context))
    else:
        reference = pick(fn(**{k: v for k, v in given.items() if k != give}, **context))
    if _close(want, reference):
        problems.append(f"{fn.__name__}: {change or give} does not change the result on these inputs; the check is void")
    return problems


def default_problems(fn: Callable, cls: type) -> List[str]:
    """Whether the Module built with no options gives the functional form's result with none."""
    forward = [p.name for p in _parameters(cls.forward) if p.default is inspect.Parameter.empty] + ["weight"]
    data = _data(fn, {})
    required = REQUIRED.get(fn.__name__, {})
    module = cls(**MODULE_ONLY.get(cls.__name__, {}), **required)
    got = module(*[data[name] for name in forward])
    want = PICK.get(fn.__name__, lambda out: out)(fn(*[data[name] for name in forward], **required))
    return [] if _same(got, want) else [f"{cls.__name__}() differs from {fn.__name__} with its defaults"]


def _option_cases():
    for fn, cls in TWINS:
        fn_options, _ = _options(fn, cls)
        for option in fn_options:
            yield pytest.param(fn, cls, option, id=f"{cls.__name__}-{option.name}")


def _data_cases():
    for fn, cls in TWINS:
        for p in _parameters(cls.forward):
            if p.default is None:
                yield pytest.param(fn, cls, p.name, id=f"{cls.__name__}-{p.name}")


def test_every_pair_is_walked():
    """Every exported Module is a twin here (or composes others), and every functional form with a weight map has one."""
    modules = {getattr(mod, n) for mod in (L, M) for n in mod.__all__}
    classes = {obj for obj in modules if isinstance(obj, type) and issubclass(obj, nn.Module)}
    functions = {obj for obj in modules if inspect.isfunction(obj) and "weight" in inspect.signature(obj).parameters}
    assert classes - NOT_TWINS == {cls for _, cls in TWINS}
    assert functions == {fn for fn, _ in TWINS}
    for fn, cls in TWINS:
        assert f":func:`{fn.__name__}`" in cls.__doc__, f"{cls.__name__}'s docstring does not name {fn.__name__}"


@pytest.mark.parametrize("fn, cls", TWINS, ids=[cls.__name__ for _, cls in TWINS])
def test_signatures_match(fn, cls):
    assert signature_problems(fn, cls) == []


@pytest.mark.parametrize("fn, cls", TWINS, ids=[cls.__name__ for _, cls in TWINS])
def test_defaults_agree(fn, cls):
    assert default_problems(fn, cls) == []


@pytest.mark.parametrize("fn, cls, option", list(_option_cases()))
def test_each_option_is_forwarded(fn, cls, option):
    assert forwarding_problems(fn, cls, *_option_change(fn, option)) == []


@pytest.mark.parametrize("fn, cls, name", list(_data_cases()))
def test_each_data_argument_is_forwarded(fn, cls, name):
    assert forwarding_problems(fn, cls, REQUIRED.get(fn.__name__, {}), {}, give=name) == []


@pytest.mark.parametrize("index, count", list(enumerate(("tp", "sum_p", "sum_t", "mass"))))
def test_segmentation_count_returns_its_count(index, count):
    x, target, weight = (_data(M.segmentation_counts, {})[k] for k in ("input", "target", "weight"))
    assert _same(M.SegmentationCount(count)(x, target, weight), M.segmentation_counts(x, target, weight)[index])


# Broken twins: each kind of drift must fail one of the checks above.


class _Dropped(L.SoftDiceLoss):
    """Module form of :func:`soft_dice_loss` that never passes ``squared`` on."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return L.soft_dice_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class _Renamed(L.SoftDiceLoss):
    """Module form of :func:`soft_dice_loss` whose ``squared`` is called ``square``."""

    def __init__(self, activation="softmax", smooth=1.0, per_image=False, include_background=True, square=False):
        super().__init__(activation, smooth, per_image, include_background, square)


class _Defaulted(L.SoftJaccardLoss):
    """Module form of :func:`soft_jaccard_loss` with another default ``smooth``."""

    def __init__(
        self,
        activation: str = "softmax",
        smooth: float = 0.5,
        per_image: bool = False,
        include_background: bool = True,
        class_weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, include_background, class_weight, ignore_index, reduction)


class _Swapped(L.TverskyLoss):
    """Module form of :func:`tversky_loss` that passes ``alpha`` as ``beta`` and ``beta`` as ``alpha``."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return L.tversky_loss(input=input, target=target, weight=weight, alpha=self.beta, beta=self.alpha)


class _Weightless(L.SoftDiceLoss):
    """Module form of :func:`soft_dice_loss` that never passes the weight map on."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return L.soft_dice_loss(input=input, target=target)


def _changing(fn: Callable, name: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The context and non-default value with which the option ``name`` of ``fn`` is checked."""
    return _option_change(fn, next(p for p in _parameters(fn) if p.name == name))


def test_a_dropped_option_fails():
    assert signature_problems(L.soft_dice_loss, _Dropped) == []
    problems = forwarding_problems(L.soft_dice_loss, _Dropped, *_changing(L.soft_dice_loss, "squared"))
    assert problems and "differs" in problems[0]


def test_a_renamed_option_fails():
    problems = signature_problems(L.soft_dice_loss, _Renamed)
    assert any(p.startswith("squared:") for p in problems) and any(p.startswith("square:") for p in problems)
    with pytest.raises(TypeError, match="squared"):
        forwarding_problems(L.soft_dice_loss, _Renamed, *_changing(L.soft_dice_loss, "squared"))


def test_a_different_default_fails():
    assert signature_problems(L.soft_jaccard_loss, _Defaulted) == [
        "smooth: default 1.0 in soft_jaccard_loss, 0.5 in _Defaulted"
    ]
    assert default_problems(L.soft_jaccard_loss, _Defaulted) != []


def test_an_option_forwarded_under_another_name_fails():
    assert signature_problems(L.tversky_loss, _Swapped) == []
    problems = forwarding_problems(L.tversky_loss, _Swapped, *_changing(L.tversky_loss, "alpha"))
    assert problems and "differs" in problems[0]


def test_a_dropped_data_argument_fails():
    problems = forwarding_problems(L.soft_dice_loss, _Weightless, {}, {}, give="weight")
    assert problems and "differs" in problems[0]


def test_a_value_that_changes_nothing_is_reported():
    """The threshold of a softmax's argmax is unused: checked without its context, the check says it is void."""
    problems = forwarding_problems(M.dice_score, M.DiceScore, {}, {"threshold": 0.3})
    assert problems == ["dice_score: {'threshold': 0.3} does not change the result on these inputs; the check is void"]
