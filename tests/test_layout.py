"""The folders of tinysiam are layers: a module imports only from its own layer or the layers below it."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinysiam"
# lowest first; a module may import from its own layer and any earlier one
LAYERS = [("engine",), ("nn", "optim", "serialization"), ("siamese",), ("data",), ("evaluation",), ("app",)]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def layer_of(dotted):
    """The top-level part of tinysiam a dotted module name belongs to, or None for the package itself."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tinysiam" else None


def imported_modules(path):
    """Absolute dotted names of every tinysiam module that ``path`` imports (at any depth in the file)."""
    module = "tinysiam." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("tinysiam")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("tinysiam"):
                # "from .. import nn" imports the module tinysiam.nn
                found += [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
    return module, found


# every module but the package's own __init__ and __main__ (which may import any layer)
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem not in ("__init__", "__main__"))


def test_every_module_is_checked():
    checked = {str(p.relative_to(PACKAGE)) for p in SOURCES}
    assert {"optim.py", "serialization.py", "app/cli.py", "engine/tensor.py"} <= checked


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down_the_layers(path):
    module, imports = imported_modules(path)
    own = layer_of(module)
    upward = [name for name in imports if layer_of(name) in RANK and RANK[layer_of(name)] > RANK[own]]
    assert not upward, f"{module} (layer {own!r}) imports from a higher layer: {upward}"


def test_every_part_of_the_package_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts - {"__init__", "__main__"} == set(RANK)


def test_the_tensor_module_does_not_import_the_ops():
    _, imports = imported_modules(PACKAGE / "engine" / "tensor.py")
    assert not [name for name in imports if "ops" in name]


def test_importing_tinysiam_changes_no_process_setting():
    """The allocator tuning is the command line's explicit choice, never a side effect of ``import tinysiam``."""
    import subprocess
    import sys

    probe = ("import ctypes\ncalls = []\nctypes.CDLL = lambda *a, **k: calls.append(a)\n"
             "import tinysiam, tinysiam.siamese, tinysiam.data, tinysiam.evaluation, tinysiam.app.training\n"
             "print(len(calls))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("old, new", [("tinysiam.losses", "tinysiam.siamese.losses"),
                                      ("tinysiam.distances", "tinysiam.siamese.distances"),
                                      ("tinysiam.presets", "tinysiam.app.presets"),
                                      ("tinysiam.training", "tinysiam.app.training")])
def test_an_old_module_path_names_its_new_home(old, new):
    import importlib

    import tinysiam

    with pytest.raises(ModuleNotFoundError, match=f"No module named '{old}': it moved to {new}"):
        importlib.import_module(old)
    assert all(importlib.import_module(moved) for moved in tinysiam.MOVED.values())  # each new home exists
