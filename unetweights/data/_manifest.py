"""The manifest of a precompute folder: the options its maps were made with and the maps it owns,
and the plan that keeps the folder in agreement with it before anything is written.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .._files import write_text_in_place
from ..weightmaps import WEIGHTINGS, WeightMapRecipe
from ._storage import _library_version, _TMP_PREFIX


_MANIFEST_NAME = "unetweights_manifest.json"

# 2: the manifest lists the outputs it owns (version 1 did not).
_MANIFEST_VERSION = 2

# Each map a mask can give: the end of its file name, and the dtype and ranks of a whole file.


def _is_output_name(name) -> bool:
    """Whether a manifest entry can name an output: a visible ``.npy`` file directly in ``out_dir``."""
    return (
        isinstance(name, str)
        and name.endswith(".npy")
        and not name.startswith(".")
        and os.path.basename(name) == name
        and "\\" not in name
    )


def _read_manifest(manifest: Path) -> dict:
    """The manifest's content; ValueError saying why it is not one this library can trust."""
    try:
        found = json.loads(manifest.read_text())
    # UnicodeDecodeError and json's errors are ValueErrors.
    except (OSError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(found, dict) or not isinstance(found.get("options"), dict):
        raise ValueError("it is not a precompute manifest")
    if found.get("version") != _MANIFEST_VERSION:
        raise ValueError(
            f"it is format version {found.get('version')!r}; this library reads version {_MANIFEST_VERSION}, "
            "which lists the maps it owns"
        )
    outputs = found.get("outputs")
    if not isinstance(outputs, list) or not all(_is_output_name(name) for name in outputs):
        raise ValueError("its list of outputs is missing or damaged")
    # An option added after the manifest was written (ignore_label, weighting, signed_distance,
    # skeleton_radius) was then at its default. A weighting this library does not know gets none:
    # its options then never equal a known recipe's.
    weighting = found["options"].setdefault("weighting", "unet")
    if weighting in WEIGHTINGS:
        for name, default in WeightMapRecipe(weighting).canonical().items():
            found["options"].setdefault(name, default)
    return found


@dataclass
class _OutDirPlan:
    """What precompute does to ``out_dir`` before computing, decided before anything is touched."""

    remove: list[Path]  # files to delete before the manifest is written: outputs to redo, maps of old options
    owned: list[str]  # output names the manifest lists after this call, sorted
    write_manifest: bool
    removed_others: int  # of ``remove``, maps of masks not given in this call


def _plan_out_dir(out_dir: Path, outputs: list[Path], given: set[str], wanted: dict, overwrite: bool) -> _OutDirPlan:
    """Check the folder against the manifest and the options; raise ValueError where they do not agree.

    ``outputs`` are every file this call writes, ``given`` every name a map of its masks can have.
    The manifest owns the maps it lists: precompute lists every output before writing it, and
    takes only listed ones for finished. See the precompute docstring for the rule.
    """
    manifest = out_dir / _MANIFEST_NAME
    if manifest.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r}: {manifest} is a folder, where precompute keeps its manifest")
    found, unreadable = None, None
    if manifest.exists():
        try:
            found = _read_manifest(manifest)
        except ValueError as exc:
            unreadable = str(exc)
    names = [path.name for path in outputs]
    existing = [path for path in outputs if os.path.lexists(path)]
    folders = [path for path in existing if path.is_dir()]
    if folders:
        raise ValueError(
            f"out_dir {str(out_dir)!r}: the output path {folders[0]} is a folder; precompute writes a map "
            "there and does not delete folders"
        )
    same_options = found is not None and found["options"] == wanted["options"]
    if not overwrite:
        if unreadable is not None:
            raise ValueError(f"out_dir manifest {manifest} cannot be read ({unreadable}); pass overwrite=True")
        if found is not None and not same_options:
            found_options = found["options"]
            differ = sorted(
                set(found_options) ^ set(wanted["options"])
                | {k for k in wanted["options"] if k in found_options and found_options[k] != wanted["options"][k]}
            )
            changes = ", ".join(
                f"{k}: {found_options.get(k, '<missing>')!r} -> {wanted['options'].get(k, '<missing>')!r}"
                for k in differ
            )
            raise ValueError(
                f"out_dir {out_dir} holds weight maps made with other options ({changes or 'other format'}); "
                "use another out_dir, the same options, or overwrite=True to recompute every map"
            )
        owned = set(found["outputs"]) if found is not None else set()
        strangers = [path for path in existing if path.name not in owned]
        if strangers and found is None:
            raise ValueError(
                f"out_dir {out_dir} already holds {len(strangers)} of the outputs (e.g. {strangers[0].name}) but no "
                f"{_MANIFEST_NAME}, so the options they were made with are unknown; pass overwrite=True"
            )
        if strangers:
            raise ValueError(
                f"out_dir {out_dir} holds {len(strangers)} of the outputs (e.g. {strangers[0].name}) that its "
                f"{_MANIFEST_NAME} does not list, so the options they were made with are unknown; pass overwrite=True"
            )
        new_owned = owned | set(names)
        return _OutDirPlan([], sorted(new_owned), found is None or new_owned != owned, 0)
    if same_options:
        return _OutDirPlan(existing, sorted(set(found["outputs"]) | set(names)), True, 0)
    # New options: every map the old manifest owns goes, not only those of the given masks, so
    # that no map of the old options stays under the new manifest. Only listed names are touched,
    # and only files: precompute never wrote anything else.
    # Maps of the given masks that the new options no longer make (a distance map, say) go too,
    # but are not counted among the other masks' maps.
    old = set(found["outputs"]) if found is not None else set()
    dropped = [out_dir / name for name in sorted((old & given) - set(names)) if (out_dir / name).is_file()]
    others = [out_dir / name for name in sorted(old - given) if (out_dir / name).is_file()]
    return _OutDirPlan(existing + dropped + others, sorted(names), True, len(others))


def _apply_out_dir_plan(out_dir: Path, plan: _OutDirPlan, wanted: dict) -> None:
    # Maps go before the new manifest: a run killed in between must not leave old maps that a
    # resume under the new options would take for its own.
    for path in plan.remove:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    if not plan.write_manifest:
        return
    payload = dict(wanted, library=_library_version(), outputs=plan.owned)
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    write_text_in_place(out_dir / _MANIFEST_NAME, text, f"{_TMP_PREFIX}{secrets.token_hex(8)}.json")
