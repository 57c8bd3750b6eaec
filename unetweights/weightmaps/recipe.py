"""The weight-map recipe: which weighting, its options and the maps beside it, checked once.

Every entry point that makes maps from labels (the transform, the cached dataset, precompute, the
command line, ``unetweights.dask``, MONAI's ``WeightMapd``) takes one :class:`WeightMapRecipe`;
every weighting is one row of :data:`WEIGHTINGS`. A weighting is its function (labels in, a
float32 map out, keyword options with defaults) plus one :func:`register_weighting` call; an
option is the function's keyword plus one :class:`Option` in its row. The entry points, flags,
cache keys and manifests all read the table."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .._validation import positive_float
from .balance import check_class_weights
from .distance import signed_distance_map
from .skeleton import tubed_skeleton
from .unet import border_cutoff, falk_weight_map, prepare_labels, unet_weight_map

# How an option's value is normalised, recorded and given on the command line (the set is closed:
# the command line maps each kind to its flag). "float": kept as float; "int": an integer or None;
# "choice": one of Option.choices; "class_weights": "balanced", "sqrt", None or {class: weight};
# "spacing": None, one number, or one per axis; "flag": a bool defaulting to False (a switch).
OPTION_KINDS = ("float", "int", "choice", "class_weights", "spacing", "flag")

# Names an option may not have: they are the recipe's own arguments, or arguments the entry points
# take beside the options.
_RESERVED = frozenset(
    {"labels", "weighting", "signed_distance", "skeleton_radius", "recipe", "classes", "halo", "threads"}
)

# The number of classes of the foreground target: background (0) and foreground (1).
FOREGROUND_CLASSES = 2


@dataclass(frozen=True)
class Option:
    """One keyword option of a weighting, as its row in :data:`WEIGHTINGS` describes it.

    Attributes
    ----------
    name : str
        The keyword of the weighting's function; on the command line ``--name-with-dashes``.
    kind : str
        One of :data:`OPTION_KINDS`: how the value is normalised, recorded and given as a flag.
    help : str
        One line for the command line (the default is added from the function's signature).
    choices : tuple of str
        The allowed values of a ``"choice"`` option.
    """

    name: str
    kind: str
    help: str
    choices: tuple = ()


@dataclass(frozen=True)
class Weighting:
    """One row of the table of weightings.

    Attributes
    ----------
    name : str
        The value of the ``weighting`` argument that picks it.
    function : callable
        ``function(labels, **options)``: a float32 map of the labels' shape. It checks its own
        options, raising TypeError or ValueError naming the bad one (the recipe's dry run on a
        tiny mask relies on that).
    options : tuple of Option
        The keyword options that configure a whole dataset, each a parameter of ``function``
        with a default (not a per-pixel ``classes``, nor ``threads``, which changes no map).
    help : str
        One line for the command line's ``--weighting``.
    reach : callable, optional
        ``reach(options)``: the distance, in spacing units, beyond which the labels no longer
        change the map at a pixel (to the function's tolerance); ``unetweights.dask`` grows each
        chunk by it. None (unbounded) keeps the weighting out of chunked computation.
    """

    name: str
    function: Callable[..., np.ndarray]
    options: tuple
    help: str = ""
    reach: Optional[Callable[[Mapping], float]] = None

    @property
    def defaults(self) -> dict:
        """{option name: its default}, read from the function's signature."""
        parameters = inspect.signature(self.function).parameters
        return {option.name: parameters[option.name].default for option in self.options}


# The table. Entries are added by register_weighting only, so that every row is checked.
WEIGHTINGS: dict = {}


def register_weighting(weighting: Weighting, *, replace: bool = False) -> Weighting:
    """Add a row to :data:`WEIGHTINGS`, after checking it; returns it.

    Every option must be a keyword parameter of the function with a default (a ``"flag"`` option
    defaults to False), of a known kind, and not a name the entry points keep for themselves; an
    option that another weighting also has must be of the same kind (they share one command-line
    flag). A name already in the table raises ValueError unless ``replace``.

    The row travels with every recipe that uses it, to data-loader and precompute worker
    processes too, and pickles its ``function`` and ``reach`` by reference: make them module-level
    functions of an importable module (a lambda or a function defined inside another works in one
    process only).
    """
    if not isinstance(weighting, Weighting):
        raise TypeError(f"weighting: expected a Weighting, got {type(weighting).__name__}")
    if not isinstance(weighting.name, str) or not weighting.name.isidentifier():
        raise ValueError(f"weighting.name: expected an identifier, got {weighting.name!r}")
    if weighting.name in WEIGHTINGS and not replace:
        raise ValueError(f"weighting.name: {weighting.name!r} is already registered; pass replace=True")
    if not callable(weighting.function):
        raise TypeError(f"weighting.function: expected a callable, got {type(weighting.function).__name__}")
    if weighting.reach is not None and not callable(weighting.reach):
        raise TypeError(f"weighting.reach: expected a callable or None, got {type(weighting.reach).__name__}")
    parameters = inspect.signature(weighting.function).parameters
    names = [option.name for option in weighting.options if isinstance(option, Option)]
    if len(names) != len(weighting.options):
        raise TypeError("weighting.options: expected a tuple of Option")
    if len(set(names)) != len(names):
        raise ValueError(f"weighting.options: names must be distinct, got {names}")
    shared = {o.name: o for row in WEIGHTINGS.values() if row.name != weighting.name for o in row.options}
    for option in weighting.options:
        where = f"weighting.options[{option.name!r}]"
        if option.kind not in OPTION_KINDS:
            raise ValueError(f"{where}: kind must be one of {OPTION_KINDS}, got {option.kind!r}")
        if option.name in _RESERVED:
            raise ValueError(f"{where}: the name is kept for the entry points' own arguments ({sorted(_RESERVED)})")
        parameter = parameters.get(option.name)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            raise ValueError(f"{where}: expected a keyword parameter with a default of {weighting.function.__name__}")
        if option.kind == "flag" and parameter.default is not False:
            raise ValueError(f"{where}: a flag must default to False, got {parameter.default!r}")
        if option.kind == "choice" and not (option.choices and parameter.default in option.choices):
            raise ValueError(f"{where}: a choice needs choices that hold its default {parameter.default!r}")
        other = shared.get(option.name)
        if other is not None and (other.kind, other.choices) != (option.kind, option.choices):
            raise ValueError(
                f"{where}: kind {option.kind!r} differs from the same option of another weighting ({other.kind!r}); "
                "they share one command-line flag"
            )
    WEIGHTINGS[weighting.name] = weighting
    return weighting


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


def _normalised(option: Option, value):
    """The value in the one form a recipe keeps (after the function accepted it)."""
    kind = option.kind
    try:
        if kind == "float":
            return float(value)
        if kind == "int":
            return None if value is None else int(value)
        if kind == "flag":
            return bool(value)
        if kind == "class_weights":
            return check_class_weights(value) if isinstance(value, Mapping) else value
        if kind == "spacing":
            if value is None:
                return None
            spacing = np.asarray(value, dtype=np.float64)
            return float(spacing) if spacing.ndim == 0 else tuple(spacing.tolist())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{option.name}: expected a value of kind {kind!r}, got {value!r} ({exc})") from None
    return value


def _recorded(option: Option, value):
    """The JSON form of a normalised value: equal options give equal JSON."""
    if option.kind == "class_weights" and isinstance(value, Mapping):
        return sorted([k, v] for k, v in value.items())
    if option.kind == "spacing" and isinstance(value, tuple):
        return list(value)
    return value


def _check_targets(signed_distance, skeleton_radius, spacing) -> tuple:
    if not isinstance(signed_distance, (bool, np.bool_)):
        raise TypeError(f"signed_distance must be a bool, got {signed_distance!r}")
    if skeleton_radius is not None:
        skeleton_radius = positive_float(skeleton_radius, "skeleton_radius", allow_zero=True)
    if signed_distance:
        # A spacing that the float32 distance map cannot hold (below the smallest normal float32)
        # is refused here rather than in a data-loader worker.
        signed_distance_map(_dry_run_labels(_spacing_rank(spacing)) > 0, spacing=spacing)
    return bool(signed_distance), skeleton_radius


def _restore(spec: Weighting, options: dict, signed_distance: bool, skeleton_radius) -> "WeightMapRecipe":
    recipe = object.__new__(WeightMapRecipe)
    recipe._set(spec, options, signed_distance, skeleton_radius)
    return recipe


class WeightMapRecipe:
    """Which weighting, its options, and which maps go beside the weight map: checked once.

    Parameters
    ----------
    weighting : str, default "unet"
        A name in :data:`WEIGHTINGS`: ``"unet"`` (:func:`unet_weight_map`) or ``"falk"``
        (:func:`falk_weight_map`), or one added with :func:`register_weighting`.
    signed_distance : bool, default False
        :meth:`maps` also gives the signed distance map of the target (see there).
    skeleton_radius : float, optional
        :meth:`maps` also gives the tubed skeleton of the target with this radius (>= 0, in
        ``spacing`` units). None (the default) gives none.
    **options
        Keyword options of the weighting's function, as its row lists them (an unknown name
        raises TypeError naming it and the weighting's options). Their values are checked by the
        function itself, with a dry run on a tiny mask of the rank ``spacing`` implies (2-D when
        it does not say), so a bad value raises here exactly the error a real call would give.

    A recipe is immutable, compares and hashes by its :meth:`canonical` form, pickles (with its
    row, so a data-loader worker needs no registration), and :meth:`replace` gives a changed copy.

    **The target's maps.** The target is the foreground the weight map goes with: the objects of
    the labels, carved first with ``separate=True``, with ``ignore_label`` pixels as background.
    Its classes are 0 (background) and 1 (foreground); :meth:`distance_map` and :meth:`skeleton`
    also take a class map of more classes.
    """

    __slots__ = ("_spec", "_options", "_signed_distance", "_skeleton_radius")

    def __init__(self, weighting: str = "unet", *, signed_distance: bool = False, skeleton_radius=None, **options):
        self._build("WeightMapRecipe", weighting, signed_distance, skeleton_radius, options)

    @classmethod
    def from_arguments(cls, recipe=None, *, owner: str, signed_distance=False, skeleton_radius=None, **options):
        """The recipe of an entry point: ``recipe`` itself, or one built from the other arguments.

        Giving both a recipe and options (or ``signed_distance`` / ``skeleton_radius``) raises
        TypeError; errors name ``owner`` (the entry point) where they name where an option went.
        """
        if recipe is None:
            built = object.__new__(cls)
            built._build(owner, options.pop("weighting", "unet"), signed_distance, skeleton_radius, options)
            return built
        if not isinstance(recipe, WeightMapRecipe):
            raise TypeError(f"recipe: expected a WeightMapRecipe, got {type(recipe).__name__}")
        given = sorted(options) + [
            name for name, value in (("signed_distance", signed_distance), ("skeleton_radius", skeleton_radius))
            if value not in (False, None)
        ]
        if given:
            raise TypeError(f"{owner}: give either recipe or weight-map options, not both (got recipe and {given})")
        return recipe

    def _build(self, owner: str, weighting, signed_distance, skeleton_radius, options: Mapping) -> None:
        if not isinstance(weighting, str) or weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {weighting!r}")
        spec = WEIGHTINGS[weighting]
        known = {option.name: option for option in spec.options}
        for name in options:
            if name not in known:
                raise TypeError(
                    f"{name} is not an option of {owner} with weighting={weighting!r}; expected "
                    f"{spec.function.__name__} options among {tuple(known)}"
                )
        full = {**spec.defaults, **options}
        spec.function(_dry_run_labels(_spacing_rank(full.get("spacing"))), **full)
        full = {name: _normalised(known[name], value) for name, value in full.items()}
        targets = _check_targets(signed_distance, skeleton_radius, full.get("spacing"))
        self._set(spec, full, *targets)

    def _set(self, spec: Weighting, options: dict, signed_distance: bool, skeleton_radius) -> None:
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_signed_distance", signed_distance)
        object.__setattr__(self, "_skeleton_radius", skeleton_radius)

    def __setattr__(self, name, value):
        raise AttributeError("a WeightMapRecipe cannot be changed; use replace() for a changed copy")

    def __reduce__(self):
        return _restore, (self._spec, dict(self._options), self._signed_distance, self._skeleton_radius)

    # -- what it is ---------------------------------------------------------------------------

    @property
    def weighting(self) -> str:
        """The weighting's name."""
        return self._spec.name

    @property
    def spec(self) -> Weighting:
        """The weighting's row of the table."""
        return self._spec

    @property
    def options(self) -> dict:
        """Every option of the weighting, defaults filled in, normalised (a new dict each time)."""
        return dict(self._options)

    @property
    def signed_distance(self) -> bool:
        return self._signed_distance

    @property
    def skeleton_radius(self) -> Optional[float]:
        return self._skeleton_radius

    @property
    def spacing(self):
        """The options' ``spacing`` (None where the weighting has none): the maps' physical units."""
        return self._options.get("spacing")

    @property
    def outputs(self) -> tuple:
        """The maps :meth:`maps` gives, in order: "weight", then "distance" and "skeleton" if asked for."""
        return ("weight",) + ("distance",) * self._signed_distance + ("skeleton",) * (self._skeleton_radius is not None)

    def canonical(self, targets: bool = True) -> dict:
        """The JSON-safe form cache keys and manifests record: ``weighting``, every option (a
        ``class_weights`` mapping as sorted ``[class, weight]`` pairs, a spacing as a list) and,
        with ``targets``, ``signed_distance`` and ``skeleton_radius``. Equal recipes give equal forms."""
        known = {option.name: option for option in self._spec.options}
        form = {"weighting": self._spec.name}
        form.update((name, _recorded(known[name], value)) for name, value in self._options.items())
        if targets:
            form.update(signed_distance=self._signed_distance, skeleton_radius=self._skeleton_radius)
        return form

    def arguments(self) -> dict:
        """The keyword arguments that differ from the defaults: ``WeightMapRecipe(**r.arguments()) == r``."""
        defaults = self._spec.defaults
        changed = {} if self._spec.name == "unet" else {"weighting": self._spec.name}
        changed.update((k, v) for k, v in self._options.items() if k not in defaults or v != defaults[k])
        if self._signed_distance:
            changed["signed_distance"] = True
        if self._skeleton_radius is not None:
            changed["skeleton_radius"] = self._skeleton_radius
        return changed

    def replace(self, **changes) -> "WeightMapRecipe":
        """A copy with ``changes`` (options, ``weighting``, ``signed_distance``, ``skeleton_radius``),
        checked as a new recipe is. Changing the weighting keeps only the options it also has."""
        weighting = changes.pop("weighting", self._spec.name)
        signed_distance = changes.pop("signed_distance", self._signed_distance)
        skeleton_radius = changes.pop("skeleton_radius", self._skeleton_radius)
        options = dict(self.arguments())
        options.pop("weighting", None)
        options.pop("signed_distance", None)
        options.pop("skeleton_radius", None)
        if weighting != self._spec.name and weighting in WEIGHTINGS:
            kept = {option.name for option in WEIGHTINGS[weighting].options}
            options = {k: v for k, v in options.items() if k in kept}
        options.update(changes)
        return WeightMapRecipe(weighting, signed_distance=signed_distance, skeleton_radius=skeleton_radius, **options)

    def __eq__(self, other) -> bool:
        if not isinstance(other, WeightMapRecipe):
            return NotImplemented
        return self._spec == other._spec and self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash(json.dumps(self.canonical(), sort_keys=True))

    def __repr__(self) -> str:
        return f"WeightMapRecipe({', '.join(f'{k}={v!r}' for k, v in self.arguments().items())})"

    # -- the maps -----------------------------------------------------------------------------

    def weight_map(self, labels, classes=None, threads=1) -> np.ndarray:
        """The float32 weight map of ``labels``: the weighting's function with the recipe's options.

        ``classes`` (a per-pixel class map of the labels' shape, for a semantic segmentation whose
        instances are its connected components) goes to a weighting whose function takes it
        (:func:`unet_weight_map`: class weights per class); TypeError for one that does not.
        ``threads`` (the time, never the map) goes to a function that takes it."""
        # The signature only where an argument beyond the options comes: a transform calls this per sample.
        accepted = inspect.signature(self._spec.function).parameters if classes is not None or threads != 1 else {}
        extra = {"threads": threads} if "threads" in accepted else {}
        if classes is None:
            return self._spec.function(labels, **self._options, **extra)
        if "classes" not in accepted:
            raise TypeError(f"classes: weighting {self._spec.name!r} takes no per-pixel classes")
        return self._spec.function(labels, classes=classes, **self._options, **extra)

    def foreground(self, labels) -> np.ndarray:
        """The bool target the weight map of ``labels`` goes with: the objects after the carving of
        ``separate=True``, with ``ignore_label`` pixels as background (exactly the labels the
        weight map is made from, so the two always agree)."""
        prepared, _ = prepare_labels(labels, self._options.get("separate", False), self._options.get("ignore_label"))
        return prepared > 0

    def distance_map(self, target, num_classes: int = FOREGROUND_CLASSES, ignored=None) -> np.ndarray:
        """(C, *) float32 for a class map ``target`` of ``num_classes`` classes: channel c is
        ``signed_distance_map(target == c, spacing)`` (negative inside, positive outside, 0 for a
        class the image lacks). ``ignored`` pixels (a bool mask) belong to no class."""
        target = np.asarray(target)
        classes = np.arange(num_classes).reshape((-1,) + (1,) * target.ndim)
        one_hot = target[np.newaxis] == classes
        if ignored is not None:
            one_hot &= ~np.asarray(ignored)
        return signed_distance_map(one_hot, spacing=self.spacing, channel_axis=0)

    def skeleton(self, target, ignored=None) -> np.ndarray:
        """int64 class indices: the tubed skeleton (radius ``skeleton_radius``) of every class of
        ``target``, 0 off the tubes. ``ignored`` pixels are in no skeleton. ValueError for a
        recipe without a ``skeleton_radius``."""
        if self._skeleton_radius is None:
            raise ValueError("skeleton_radius: this recipe makes no skeleton (skeleton_radius=None)")
        classes = np.asarray(target, dtype=np.int64)
        if ignored is not None:
            classes = np.where(ignored, 0, classes)
        return tubed_skeleton(classes, radius=self._skeleton_radius, spacing=self.spacing)

    def maps(self, labels, threads=1) -> dict:
        """{"weight": ..., "distance": ..., "skeleton": ...}: the maps of :attr:`outputs`; ``threads``
        as for :meth:`weight_map`.

        The weight map is float32 of the labels' shape; the distance map float32 (2, *labels.shape)
        for the classes 0 and 1 of the foreground target (channel 0 is minus channel 1); the
        skeleton int64 of the labels' shape, 1 on the tube of the foreground, 0 elsewhere."""
        maps = {"weight": self.weight_map(labels, threads=threads)}
        if self._signed_distance or self._skeleton_radius is not None:
            target = self.foreground(labels)
            if self._signed_distance:
                maps["distance"] = self.distance_map(target)
            if self._skeleton_radius is not None:
                maps["skeleton"] = self.skeleton(target)
        return maps


# -- the table ----------------------------------------------------------------------------------

_SPACING = Option("spacing", "spacing", "pixel or voxel size, one number or one per axis")
_SEPARATE = Option("separate", "flag", "carve one-pixel gaps between touching objects first")
_IGNORE_LABEL = Option(
    "ignore_label", "int",
    "a label value whose pixels get weight 0, are no objects and count in no class; it is compared with "
    "the values the mask file holds, so a mask stored as bool is then read as integers, not labelled into "
    "objects: a 1-bit PNG as 0 and 255 (as the same picture saved with 8 bits), a 1-bit TIFF or bool .npy "
    "as 0 and 1",
)


def _unet_reach(options: Mapping) -> float:
    return border_cutoff(options["w0"], options["sigma"], options["tol"])


register_weighting(Weighting(
    "unet", unet_weight_map,
    (
        Option("w0", "float", "border weight"),
        Option("sigma", "float", "border width, in spacing units"),
        Option(
            "class_weights", "class_weights",
            "w_c: balanced, sqrt (its square root, the cap advised for rare foreground) or none",
        ),
        _SPACING,
        Option("border", "choice", "where the border term goes", ("background", "all")),
        Option("tol", "float", "the border term is dropped where it falls below this"),
        _SEPARATE,
        _IGNORE_LABEL,
    ),
    help="Ronneberger et al. 2015 (unet_weight_map)",
    reach=_unet_reach,
))

register_weighting(Weighting(
    "falk", falk_weight_map,
    (
        Option("lam", "float", "border weight lambda"),
        Option("sigma", "float", "border width, in spacing units"),
        Option("v_bal", "float", "weight of background far from objects"),
        Option("sigma_bal", "float", "width of the decay around objects, in spacing units"),
        _SPACING,
        _SEPARATE,
        _IGNORE_LABEL,
    ),
    help="the authors' plugin, Falk et al. 2019 (falk_weight_map)",
))
