"""The house as ARCHITECTURE.md draws it, checked on the source: which room imports which, no
private name taken from another room, torch kept out of the numpy rooms, no module over ~500 lines.

Every import counts, the lazy ones inside functions too. A change that moves a wall updates
ALLOWED here and "What imports what" in ARCHITECTURE.md together.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unetweights"

# The house's shared helpers: any room may import them, and they import nothing of the package.
SHARED = {"_files", "_graph", "_validation", "_stage"}

# Private top-level modules that are parts of one room (split off to keep modules short).
PARTS = {"_onnx_export": "export", "_pt2_export": "export", "_artefacts": "export", "_providers": "runtime", "_input_checks": "runtime",
         "_weight_flags": "cli", "_evaluate_objects": "cli", "_export_command": "cli"}

# room -> the rooms it may import (the shared helpers are allowed everywhere).
ALLOWED = {
    "weightmaps": set(),
    "losses": set(),
    "metrics": set(),
    "evaluation": {"losses", "metrics"},
    "export": {"evaluation"},
    "runtime": set(),
    "data": {"weightmaps"},
    "monai": {"weightmaps"},
    "torchvision": {"weightmaps"},
    "nnunet": {"weightmaps", "losses", "data"},
    "dask": {"weightmaps"},
    "matching": {"weightmaps"},
    "plot": set(),
    "synthetic": set(),
    "demo": {"weightmaps", "losses", "metrics", "evaluation", "export", "runtime", "data", "plot", "synthetic", "matching"},
    "cli": {"weightmaps", "data", "dask", "evaluation", "export", "runtime", "demo", "plot", "nnunet", "matching"},
    "__init__": {"weightmaps", "losses", "metrics", "evaluation", "export", "runtime", "data", "dask", "matching"},
    "__main__": {"cli"},
}
for helper in SHARED:
    ALLOWED[helper] = set()

# Rooms that never import torch: data-loader workers and numpy users load them without it.
NO_TORCH = {"weightmaps", "data", "dask", "synthetic", "matching", "_files", "_validation", "_graph"}

MAX_LINES = 500


def _room(module: str) -> str:
    """The room of a dotted module name inside the package ("unetweights.losses.overlap" -> "losses")."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "__init__"
    return PARTS.get(name, name)


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__" and len(parts) > 1 and parts[-2] != "unetweights":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(module: str, path: Path):
    """(imported module, names taken from it) for every import statement of the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            # "from . import x" and "from .pkg import module" import modules, not names.
            submodules = [n for n in names if f"{target}.{n}" in MODULES]
            for name in submodules:
                yield f"{target}.{name}", []
            rest = [n for n in names if n not in submodules]
            if rest or not submodules:
                yield target, rest


def _package_imports():
    for module, path in MODULES.items():
        for target, names in _imports(module, path):
            yield module, path, target, names


def test_every_room_is_known():
    rooms = {_room(module) for module in MODULES}
    assert rooms <= set(ALLOWED), f"rooms missing from ALLOWED (and ARCHITECTURE.md): {sorted(rooms - set(ALLOWED))}"


def test_rooms_import_only_what_the_architecture_allows():
    wrong = []
    for module, _, target, _ in _package_imports():
        if not target.startswith("unetweights"):
            continue
        source, destination = _room(module), _room(target)
        if destination == source or destination in SHARED and source not in SHARED:
            continue
        if destination not in ALLOWED[source]:
            wrong.append(f"{module} imports {target} ({source} -> {destination})")
    assert not wrong, "\n".join(wrong)


def test_the_allowed_imports_have_no_cycle():
    def visit(room, trail):
        for target in ALLOWED[room]:
            assert target not in trail, f"cycle: {' -> '.join(trail + [target])}"
            visit(target, trail + [target])

    for room in ALLOWED:
        visit(room, [room])


def test_no_private_name_of_another_room():
    wrong = []
    for module, _, target, names in _package_imports():
        if not target.startswith("unetweights") or _room(target) == _room(module):
            continue
        last = target.rsplit(".", 1)[-1]
        private_module = last.startswith("_") and last not in SHARED and last not in PARTS and last != "__init__"
        private_names = [n for n in names if n.startswith("_")]
        if private_module or private_names:
            wrong.append(f"{module} imports {target}: {private_names or 'a private module'}")
    assert not wrong, "\n".join(wrong)


def test_numpy_rooms_never_import_torch():
    wrong = [
        f"{module} imports {target}"
        for module, _, target, _ in _package_imports()
        if _room(module) in NO_TORCH and target.split(".")[0] == "torch"
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by concern"
