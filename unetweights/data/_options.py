"""The weight-map options of the data pipeline: which weighting, its options checked once by a dry
run, and their canonical form for cache keys and manifests.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np

from ..weightmaps import falk_weight_map, unet_weight_map
from ..weightmaps.balance import check_class_weights


# The weightings a dataset can use, by the value of its ``weighting`` option, and the keyword
# arguments of each that configure a whole dataset. ``classes`` is left out: it is a per-pixel
# array that belongs to one sample, not a setting.
WEIGHTINGS = {"unet": unet_weight_map, "falk": falk_weight_map}

_WEIGHTING_OPTIONS = {
    "unet": ("w0", "sigma", "class_weights", "spacing", "border", "tol", "separate", "ignore_label"),
    "falk": ("lam", "sigma", "v_bal", "sigma_bal", "spacing", "separate", "ignore_label"),
}

_WEIGHTING_DEFAULTS = {
    weighting: {
        "weighting": weighting,
        **{name: inspect.signature(WEIGHTINGS[weighting]).parameters[name].default for name in names},
    }
    for weighting, names in _WEIGHTING_OPTIONS.items()
}

_DEFAULTS = _WEIGHTING_DEFAULTS["unet"]


def _library_version() -> str:
    # Read from the installed metadata rather than ``unetweights.__version__``: importing the
    # package's __init__ from here would be circular if __init__ ever imports this module eagerly.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unetweights")
    except PackageNotFoundError:
        return "unknown"


def _dry_run_labels(ndim: int) -> np.ndarray:
    """Two objects and background, so that every option (a class_weights mapping included) is used."""
    plane = np.array([[1, 1, 0, 0, 2, 2], [1, 1, 0, 0, 2, 2]], dtype=np.int32)
    return plane if ndim == 2 else np.stack([plane, plane])


def _spacing_rank(spacing) -> int:
    if spacing is None or np.ndim(spacing) == 0:
        return 2
    n = len(np.atleast_1d(np.asarray(spacing, dtype=object)))
    if n not in (2, 3):
        raise ValueError(f"spacing must have one entry per spatial axis (2 or 3 entries), got {n}: {spacing!r}")
    return n


def _weight_map_options(options: Mapping, owner: str) -> dict:
    """Validate the weight-map options once, and return them with defaults filled in.

    ``weighting`` picks the function ("unet": :func:`unet_weight_map`, the default; "falk":
    :func:`falk_weight_map`), and the other names must be options of that function; an unknown
    name raises TypeError. Values are checked by the weight-map code itself, with a dry run on a
    tiny mask of the rank ``spacing`` implies (2-D when it does not say), so the errors and their
    messages are exactly those a real call would give, but at construction time instead of inside
    a data-loader worker.
    """
    weighting = options.get("weighting", "unet")
    if not isinstance(weighting, str) or weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {weighting!r}")
    names = _WEIGHTING_OPTIONS[weighting]
    for name in options:
        if name != "weighting" and name not in names:
            raise TypeError(
                f"{name} is not an option of {owner} with weighting={weighting!r}; expected "
                f"{WEIGHTINGS[weighting].__name__} options among {names}"
            )
    full = dict(_WEIGHTING_DEFAULTS[weighting])
    full.update(options)
    _make_weight(_dry_run_labels(_spacing_rank(full["spacing"])), full)
    for name in ("w0", "sigma", "tol", "lam", "v_bal", "sigma_bal"):
        if name in full:
            full[name] = float(full[name])
    if full["spacing"] is not None:
        spacing = np.asarray(full["spacing"], dtype=np.float64)
        full["spacing"] = float(spacing) if spacing.ndim == 0 else tuple(spacing.tolist())
    if isinstance(full.get("class_weights"), Mapping):
        full["class_weights"] = check_class_weights(full["class_weights"])
    full["separate"] = bool(full["separate"])
    if full["ignore_label"] is not None:
        full["ignore_label"] = int(full["ignore_label"])
    return full


def _make_weight(labels, options: Mapping) -> np.ndarray:
    """The weight map of ``labels`` by validated ``options``: their ``weighting`` picks the function."""
    kwargs = {name: value for name, value in options.items() if name != "weighting"}
    return WEIGHTINGS[options.get("weighting", "unet")](labels, **kwargs)


def _canonical_options(options: dict) -> dict:
    """JSON-safe form of validated options: equal options give equal JSON, in cache keys and manifests."""
    canonical = dict(options)
    if isinstance(canonical.get("class_weights"), Mapping):
        canonical["class_weights"] = sorted([k, v] for k, v in canonical["class_weights"].items())
    if isinstance(canonical["spacing"], tuple):
        canonical["spacing"] = list(canonical["spacing"])
    return canonical


def _options_repr(options: dict) -> str:
    defaults = _WEIGHTING_DEFAULTS[options.get("weighting", "unet")]
    changed = {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}
    return ", ".join(f"{k}={v!r}" for k, v in changed.items())
