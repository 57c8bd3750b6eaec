"""The command line's weight-map flags, generated from the table of weightings: ``--weighting`` and one
flag per option of any weighting, each saying which weightings it applies to and their defaults.
A weighting registered with :func:`unetweights.register_weighting` gets its flags here without a
line of command-line code.
"""

from __future__ import annotations

import argparse

from .weightmaps import WEIGHTINGS


# How each option kind of the weightings' table is given on the command line: the argparse
# arguments of its flag, and how the parsed value becomes the option's value.
_FLAG_KINDS = {
    "float": ({"type": float}, lambda value: value),
    "int": ({"type": int}, lambda value: value),
    "choice": ({}, lambda value: value),
    "class_weights": ({"choices": ["balanced", "sqrt", "none"]}, lambda value: None if value == "none" else value),
    "spacing": ({"type": float, "nargs": "+"}, tuple),
    "flag": ({"action": "store_true"}, lambda value: value),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _table_options() -> dict:
    """{option name: (Option, [the weightings that have it])}, in the table's order."""
    found: dict = {}
    for weighting in WEIGHTINGS.values():
        for option in weighting.options:
            found.setdefault(option.name, (option, []))[1].append(weighting)
    return found


def weight_options(args: argparse.Namespace) -> dict:
    """The recipe's arguments given on the command line: ``weighting`` and the options whose flag
    was given; the rest keep the weighting's defaults. A flag of another weighting is refused."""
    weighting = WEIGHTINGS[args.weighting]
    own = [option.name for option in weighting.options]
    options = {"weighting": weighting.name}
    for name, (option, _) in _table_options().items():
        value = getattr(args, name)
        if value is None or (option.kind == "flag" and not value):
            continue
        if name not in own:
            raise ValueError(
                f"{_flag(name)}: not an option of --weighting {weighting.name} (its options: "
                f"{', '.join(_flag(n) for n in own)})"
            )
        options[name] = _FLAG_KINDS[option.kind][1](value)
    return options


def add_weight_options(parser: argparse.ArgumentParser) -> None:
    """The --weighting flag and one flag per option of the weightings' table."""
    group = parser.add_argument_group("weight map (--weighting picks the function; each flag names the weightings it applies to)")
    group.add_argument(
        "--weighting", choices=list(WEIGHTINGS), default="unet",
        help="; ".join(f"{w.name}: {w.help}" for w in WEIGHTINGS.values()) + " (default unet)",
    )
    for name, (option, weightings) in _table_options().items():
        arguments, _ = _FLAG_KINDS[option.kind]
        if option.kind == "choice":
            arguments = {"choices": list(option.choices)}
        defaults = ", ".join(
            f"{w.defaults[name]!r}".replace("None", "none") + (f" for {w.name}" if len(weightings) > 1 else "")
            for w in weightings
        )
        used = "/".join(w.name for w in weightings)
        help_text = f"{used}: {option.help}" + ("" if option.kind == "flag" else f" (default {defaults})")
        group.add_argument(_flag(name), help=help_text.replace("%", "%%"), **arguments)
