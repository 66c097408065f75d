"""The package's layers import only downward, read from the source with ``ast`` (nothing is imported).

Layers, lowest first: the leaf utilities (``errors``, ``files``, ``values``), ``fitting``,
``data``, ``training``, ``runners``, ``gate``, ``reports``, and the product (``plugin``, ``cli`` and the
package's ``__init__``). A module may import from its own layer or a lower one. Every import counts,
inside functions and under ``TYPE_CHECKING`` too. ``__version__`` is a literal that the package's
``__init__`` sets before any submodule loads, so ``from .. import __version__`` reads a leaf value, not
the product's lazy exports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "pytest_scaling"
PACKAGE = PACKAGE_DIR.name

LAYERS = ["leaf", "fitting", "data", "training", "runners", "gate", "reports", "product"]
PLACES = {  # top-level module or subpackage -> its layer; "" is the package's own __init__
    "errors": "leaf", "files": "leaf", "values": "leaf",
    "fitting": "fitting", "data": "data", "training": "training", "runners": "runners", "gate": "gate",
    "reports": "reports", "plugin": "product", "cli": "product", "": "product",
}  # fmt: skip
ROOT_LEAF_NAMES = {"__version__"}  # names of the package's __init__ that are leaf values
NO_TORCH = {"fitting"}
NO_PYTEST = {"fitting", "data", "training", "runners"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "pytest_scaling.fitting.fit"
    path: Path
    line: int
    text: str  # the import statement as written (normalised)
    target: str  # what it imports: a module or package of this package, or an external top-level name
    names: tuple[str, ...] = ()  # for a target that is the package itself: the names taken from it

    def where(self) -> str:
        return f"{self.path.relative_to(PACKAGE_DIR.parent)}:{self.line}: `{self.text}`"


def _modules() -> dict[str, Path]:
    """Dotted name -> file for every module of the package (a package by its __init__)."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(module: str, path: Path) -> list[Import]:
    """Every import of ``module``, resolved to the package module or package it names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append(Import(module, path, node.lineno, ast.unparse(node), alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    out.append(Import(module, path, node.lineno, ast.unparse(node), sub))
                else:
                    plain.append(alias.name)
            if plain:
                out.append(Import(module, path, node.lineno, ast.unparse(node), base, tuple(plain)))
    return out


ALL_IMPORTS = [i for module, path in MODULES.items() for i in _imports(module, path)]


def _top(name: str) -> str | None:
    """The top-level module or subpackage of the package that ``name`` lies in ("" for the package
    itself); None when ``name`` is not in the package."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else ""


def _layer(name: str) -> str | None:
    return PLACES.get(_top(name))


def _target_layer(imp: Import) -> str | None:
    if imp.target == PACKAGE and imp.names and set(imp.names) <= ROOT_LEAF_NAMES:
        return "leaf"
    return _layer(imp.target)


def test_every_module_belongs_to_a_layer():
    unplaced = [str(path.relative_to(PACKAGE_DIR.parent)) for module, path in MODULES.items()
                if _layer(module) is None]  # fmt: skip
    assert not unplaced, (f"modules in no layer: {', '.join(unplaced)}; put each in a layer's subpackage, "
                          "or place it deliberately in PLACES in tests/test_layers.py")  # fmt: skip


def test_imports_go_only_downward():
    wrong = []
    for imp in ALL_IMPORTS:
        if _top(imp.target) is None:
            continue  # not this package
        own, theirs = _layer(imp.module), _target_layer(imp)
        if theirs is None:
            wrong.append(f"{imp.where()} imports {imp.target}, which is in no layer")
        elif own is not None and LAYERS.index(theirs) > LAYERS.index(own):
            wrong.append(f"{imp.where()}: {imp.module} ({own}) imports {imp.target} ({theirs}), a higher layer")
    assert not wrong, "imports that go up a layer (order: " + " < ".join(LAYERS) + "):\n" + "\n".join(wrong)


def test_fitting_never_imports_torch():
    wrong = [f"{imp.where()}: {imp.module} ({_layer(imp.module)}) imports torch" for imp in ALL_IMPORTS
             if _layer(imp.module) in NO_TORCH and imp.target.split(".")[0] == "torch"]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_the_gate_and_the_reports_load_neither_torch_nor_matplotlib():
    """Reading a baseline, judging records and rendering reports need no torch (``pytest-scaling predict``
    starts fast) and no matplotlib until a plot is drawn; the records they read are torch-free too."""
    modules = [m for m in MODULES if _layer(m) in ("gate", "reports")]
    modules += [f"{PACKAGE}.runners.records", f"{PACKAGE}.training.spec"]
    code = f"import sys, {', '.join(modules)}; print(sorted({{'torch', 'matplotlib'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{out.strip()} loaded by importing {', '.join(modules)}"


def test_lower_layers_never_import_pytest():
    wrong = [f"{imp.where()}: {imp.module} ({_layer(imp.module)}) imports pytest" for imp in ALL_IMPORTS
             if _layer(imp.module) in NO_PYTEST and imp.target.split(".")[0] in ("pytest", "_pytest")]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_the_imports_it_judges():
    """The resolver reads relative imports, imports inside functions, and submodules named in a from-import."""
    targets = {(i.module, i.target) for i in ALL_IMPORTS}
    assert (f"{PACKAGE}.gate.gate", f"{PACKAGE}.runners.records") in targets  # from ..runners.records import X
    assert (f"{PACKAGE}.runners.sweep", f"{PACKAGE}.training.train") in targets  # from ..training import train
    assert (f"{PACKAGE}.plugin", f"{PACKAGE}.reports.terminal") in targets  # inside a function
    assert (f"{PACKAGE}.fitting.fit", "numpy") in targets
