"""Run identity: what makes two training runs the same run (the run cache's key hashes it).

Two parts, each able to catch what the other cannot:

* :func:`code_identity`: ``"module.qualname@<sha256[:16]>"`` over the *normalised* source of everything an
  object is built from in the user's project. Starting at the object (a factory function, a class, a
  ``functools.partial``, a callable instance or a bound method), the walk follows the global names its
  source uses, through other modules of the project (``from .layers import Layer``, ``config.HIDDEN``,
  imports inside functions), base classes, default arguments, closures, partial arguments and instance
  state. Functions and classes enter as their abstract syntax tree without docstrings, line numbers,
  comments or formatting; constants and containers by value; tensors by their bytes. Code of installed
  distributions (``torch``, ``transformers``...) enters as ``name==version``, the standard library as
  ``python==version``. So editing a layer class in a sibling module changes the identity, and editing a
  comment, a docstring or an unrelated test in the same file does not.
* :func:`probe_model`: a seeded behavioural fingerprint of the built model, computed on the CPU with one
  thread (deterministic on one machine): parameter and buffer names, shapes and dtypes, statistics of
  the initial parameters, and the loss and every parameter's gradient norm after one forward and
  backward pass on a fixed batch, rounded to 6 significant digits. It catches what reading code cannot:
  monkey-patching, environment flags, generated code, C extensions, import-time side effects. The probe
  also checks the model: a ``torch.nn.Module`` with parameters whose logits are ``[B, T, vocab_size]`` and
  depend on earlier tokens only (:mod:`pytest_scaling.training.causality`), and whose every trainable parameter
  gets a gradient (:func:`pytest_scaling.training.model.check_used`).

Not covered: data files a factory reads at call time (beyond what the fingerprint sees) and changes that
leave the fingerprint's batch and the code unchanged. ``--scaling-retrain`` retrains regardless.
"""

from __future__ import annotations

import ast
import contextlib
import enum
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import site
import sys
import sysconfig
import tokenize
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ScalingDataError
from .causality import check_causal
from .model import (
    ParamCount,
    check_logits,
    check_model,
    check_used,
    count_params,
    logits_of,
    resolve_factory,
)
from .spec import ModelSpec

__all__ = ["ModelProbe", "code_identity", "probe_model"]

_ATOMS = (type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis))
_MAX_DEPTH = 12  # how deep the walk follows values (containers, instance state); code is always followed
_CODE = (types.ModuleType, functools.partial, types.MethodType, types.FunctionType, type, types.BuiltinFunctionType,
         types.BuiltinMethodType, types.MethodWrapperType)  # fmt: skip
_DIGITS = 6  # significant digits of the fingerprint's statistics
PROBE_SEED = 0
PROBE_TOKENS = 16  # per sequence, 2 sequences


# ------------------------------------------------------------------------------------- where code lives


@functools.cache
def _external_roots() -> tuple[str, ...]:
    """Directories whose modules are installed code (site-packages, the standard library)."""
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    paths.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else "")
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


@functools.cache
def _distribution(top: str) -> str:
    """``name==version`` of the installed distribution(s) providing the top-level package ``top``."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"python=={platform.python_version()}"
    names = importlib.metadata.packages_distributions().get(top)
    if names:
        return ",".join(f"{name}=={importlib.metadata.version(name)}" for name in sorted(set(names)))
    return f"{top}=={getattr(sys.modules.get(top), '__version__', 'unknown')}"


def _origin(module_name: str | None) -> str | None:
    """None for a module of the user's project (its source is hashed), else ``dist==version``."""
    top = (module_name or "builtins").partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return _distribution(top)
    module = sys.modules.get(module_name or "")
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
    if module is None or where is None or not os.path.realpath(where).startswith(_external_roots()):
        return None  # the user's project, a notebook's __main__, or a module made at run time
    return _distribution(top)


# ----------------------------------------------------------------------------------- normalised source


@dataclass
class _Definition:
    text: str  # ast.dump without docstrings or positions
    names: frozenset[str]  # names and attribute names it reads
    imports: tuple[ast.Import | ast.ImportFrom, ...]  # import statements inside it


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                node.body = body[1:] or [ast.Pass()]


def _definition(node: ast.AST) -> _Definition:
    names, imports = set(), []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.Import | ast.ImportFrom):
            imports.append(sub)
    return _Definition(ast.dump(node, include_attributes=False), frozenset(names), tuple(imports))


class _Source:
    """A source file's tree (docstrings stripped), its definitions by qualified name, and their digests."""

    def __init__(self, text: str | None) -> None:
        self.index: dict[str, list[ast.AST]] = {}
        self.bindings: dict[str, list[ast.stmt]] = {}  # module-level statements that bind or change a name
        self._definitions: dict[int, _Definition] = {}  # id(node) -> definition; the nodes live in this object
        try:
            tree = ast.parse(text) if text is not None else None
        except (SyntaxError, ValueError):
            tree = None
        if tree is not None:
            _strip_docstrings(tree)
            self._walk(tree, "")
            self._bind(tree.body)

    def _bind(self, body: list[ast.stmt]) -> None:
        for statement in body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for name in _bound_names(statement):
                self.bindings.setdefault(name, []).append(statement)
            for field in ("body", "orelse", "finalbody", "handlers"):  # if, for, while, with, try at module level
                inner = getattr(statement, field, None)
                if isinstance(inner, list):
                    self._bind([x for h in inner for x in h.body] if field == "handlers" else inner)

    def _walk(self, node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                qualname = prefix + child.name
                self.index.setdefault(qualname, []).append(child)
                self._walk(child, qualname + ("." if isinstance(child, ast.ClassDef) else ".<locals>."))
            elif isinstance(child, ast.Lambda):
                self.index.setdefault(prefix + "<lambda>", []).append(child)
                self._walk(child, prefix + "<lambda>.<locals>.")
            else:
                self._walk(child, prefix)

    def statement(self, node: ast.AST) -> _Definition:
        found = self._definitions.get(id(node))
        if found is None:
            found = self._definitions[id(node)] = _definition(node)
        return found

    def definition(self, qualname: str, first_line: int | None = None) -> _Definition | None:
        """The definition of ``qualname`` (the one starting at ``first_line`` when several share it; the
        last otherwise, as at run time); None when it cannot be told."""
        candidates = self.index.get(qualname, [])
        if len(candidates) > 1 and first_line is not None:
            candidates = [n for n in candidates if _first_line(n) == first_line]
        if not candidates or (first_line is not None and len(candidates) > 1):
            return None
        return self.statement(candidates[-1])


def _root(node: ast.AST) -> str | None:
    """The name at the root of ``a.b[c].d``, if any."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _bound_names(statement: ast.stmt) -> list[str]:
    """Names a module-level statement binds, or whose object it changes (``REGISTRY["x"] = ...``,
    ``LAYERS.append(...)``); imports bind their alias."""
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return [alias.asname or alias.name.partition(".")[0] for alias in statement.names]
    targets: list[ast.AST] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    elif isinstance(statement, ast.Expr):
        targets = [statement.value]
    names = []
    for target in targets:
        for node in target.elts if isinstance(target, ast.Tuple | ast.List) else [target]:
            root = _root(node)
            if root is not None:
                names.append(root)
    return names


@functools.lru_cache(maxsize=256)
def _parse(filename: str, mtime_ns: int, size: int) -> _Source:
    try:
        with tokenize.open(filename) as handle:
            return _Source(handle.read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return _Source(None)


def _source(filename: str | None) -> _Source:
    """The parsed file, re-read whenever its modification time or size changes."""
    try:
        stat = os.stat(filename) if filename else None
    except OSError:
        stat = None
    return _parse(filename, stat.st_mtime_ns, stat.st_size) if stat else _Source(None)


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _function_definition(fn: types.FunctionType) -> _Definition | None:
    return _source(fn.__code__.co_filename).definition(fn.__qualname__, fn.__code__.co_firstlineno)


def _module_source(module_name: str) -> _Source:
    return _source(getattr(sys.modules.get(module_name), "__file__", None))


def _is_code_or_constant(value: object) -> bool:
    """Functions, classes and immutable values: what a module-level name holds as it was defined."""
    if isinstance(value, tuple | frozenset):
        return all(_is_code_or_constant(v) for v in value)
    return isinstance(value, (*_ATOMS, enum.Enum, *_CODE))


def _class_definition(cls: type) -> _Definition | None:
    return _source(getattr(sys.modules.get(cls.__module__), "__file__", None)).definition(cls.__qualname__)


def _code_text(code: types.CodeType) -> tuple[str, frozenset[str]]:
    """A code object's bytecode, constants and names (for code without a source file)."""
    parts, names, todo = [], set(), [code]
    while todo:
        c = todo.pop()
        consts = [k for k in c.co_consts if not isinstance(k, types.CodeType)]
        parts.append(f"{c.co_name}:{c.co_code.hex()}:{consts!r}:{c.co_names}")
        names.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return "\n".join(parts), frozenset(names)


# ------------------------------------------------------------------------------------------- the walk


class _Walk:
    """Collects the hashed parts of everything reachable from the start object."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.external: set[str] = set()
        self.seen: set[int] = set()
        self.keep: list[object] = []  # keeps visited objects alive so that ids stay unique during the walk
        self.module_names: set[tuple[str, str]] = set()  # (module, global name) already visited

    def digest(self) -> str:
        hasher = hashlib.sha256()
        for part in [*self.parts, *sorted(self.external)]:
            hasher.update(part.encode("utf-8", "backslashreplace") + b"\0")
        return hasher.hexdigest()[:16]

    def visit(self, obj: object, depth: int = 0) -> None:
        if isinstance(obj, _ATOMS):
            self.parts.append(repr(obj))
            return
        if depth > _MAX_DEPTH and not isinstance(obj, _CODE):
            self.parts.append(f"<deep {type(obj).__qualname__}>")
            return
        if id(obj) in self.seen:
            self.parts.append("<seen>")
            return
        self.seen.add(id(obj))
        self.keep.append(obj)
        if isinstance(obj, types.ModuleType):
            self._module(obj, None, depth)
        elif isinstance(obj, functools.partial):
            self.parts.append("<partial>")
            for part in (obj.func, obj.args, obj.keywords):
                self.visit(part, depth + 1)
        elif isinstance(obj, types.MethodType):
            self.parts.append("<method>")
            self.visit(obj.__func__, depth + 1)
            self.visit(obj.__self__, depth + 1)
        elif isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, types.BuiltinFunctionType | types.BuiltinMethodType | types.MethodWrapperType):
            self._external(getattr(obj, "__module__", None) or type(getattr(obj, "__self__", None)).__module__, obj)
        elif isinstance(obj, torch.Tensor):
            self.parts.append(f"<tensor {obj.dtype} {tuple(obj.shape)} {_tensor_digest(obj)}>")
        elif isinstance(obj, enum.Enum):
            self.parts.append(repr(obj))
        elif isinstance(obj, list | tuple | set | frozenset | dict):
            self._container(obj, depth)
        else:
            self._instance(obj, depth)

    def _container(self, obj, depth: int) -> None:
        items: Iterable = obj.items() if isinstance(obj, dict) else obj
        if isinstance(obj, dict):
            items = sorted(items, key=lambda item: repr(item[0]))
        elif isinstance(obj, set | frozenset):
            items = sorted(items, key=repr)
        items = list(items)
        flat = [x for item in items for x in (item if isinstance(obj, dict) else (item,))]
        if all(isinstance(x, _ATOMS) for x in flat):
            self.parts.append(f"{type(obj).__name__}:{items!r}")
            return
        self.parts.append(f"<{type(obj).__name__} {len(items)}>")
        for x in flat:
            self.visit(x, depth + 1)

    def _instance(self, obj: object, depth: int) -> None:
        self.parts.append("<instance>")
        self.visit(type(obj), depth + 1)
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            self.visit({k: v for k, v in state.items() if not str(k).startswith("__")}, depth + 1)
        else:
            self.parts.append(re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj)))

    def _external(self, module_name: str | None, obj: object) -> bool:
        """Record ``obj`` as installed code if its module is installed; whether it was."""
        origin = _origin(module_name)
        if origin is None:
            return False
        self.external.add(origin)
        self.parts.append(f"<installed {module_name}.{getattr(obj, '__qualname__', type(obj).__qualname__)}>")
        return True

    def _function(self, fn: types.FunctionType) -> None:
        if self._external(fn.__module__, fn):
            return
        definition = _function_definition(fn)
        if definition is not None:
            text, names, imports = definition.text, definition.names, definition.imports
        else:
            (text, names), imports = _code_text(fn.__code__), ()
        self.parts.append(f"def {fn.__module__}.{fn.__qualname__}\n{text}")
        self._names(fn.__globals__, names, 0)  # code starts a new nesting of values
        self._imports(imports, fn.__globals__.get("__package__") or fn.__module__, names, 0)
        for value in (fn.__defaults__, fn.__kwdefaults__):
            if value:
                self.visit(value, 1)
        for cell in fn.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                self.visit(cell.cell_contents, 1)

    def _class(self, cls: type) -> None:
        if self._external(cls.__module__, cls):
            return
        module = sys.modules.get(cls.__module__)
        namespace = vars(module) if module is not None else {}
        definition = _class_definition(cls)
        if definition is not None:
            self.parts.append(f"class {cls.__module__}.{cls.__qualname__}\n{definition.text}")
            self._names(namespace, definition.names, 0)
            self._imports(definition.imports, namespace.get("__package__") or cls.__module__, definition.names, 0)
        else:
            self.parts.append(f"class {cls.__module__}.{cls.__qualname__}")
        for base in cls.__bases__:
            self.visit(base, 0)
        own = f"{cls.__qualname__}."
        for name, value in sorted(vars(cls).items()):
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if definition is None or (
                isinstance(value, types.FunctionType) and not value.__qualname__.startswith(own)
            ):  # no source, or a function assigned to the class from elsewhere
                if not name.startswith("__") or isinstance(value, types.FunctionType):
                    self.parts.append(f"attr {name}")
                    self.visit(value, 1)

    def _names(self, namespace: dict, names: Iterable[str], depth: int) -> None:
        """The global ``names`` that ``namespace`` (a module's globals) binds; dunder names excluded."""
        for name in sorted(names):
            if not name.startswith("__") and name in namespace:
                self._global(namespace, name, names, depth)

    def _global(self, namespace: dict, name: str, names: Iterable[str], depth: int) -> None:
        """One module-level name. Code and constants enter by value; data that a module may change while it
        runs (a dict, a cache, an instance) by the statements that define it, wherever it was imported from."""
        module_name = namespace.get("__name__", "")
        if (module_name, name) in self.module_names:
            return
        self.module_names.add((module_name, name))
        value = namespace[name]
        self.parts.append(f"global {module_name}.{name}")
        if isinstance(value, types.ModuleType):
            self._module(value, names, depth + 1)
            return
        statements = [] if _is_code_or_constant(value) else _module_source(module_name).bindings.get(name, [])
        if not statements or _origin(module_name) is not None:
            self.visit(value, depth + 1)
            return
        package = namespace.get("__package__") or module_name
        for statement in statements:
            if isinstance(statement, ast.ImportFrom):
                module = _import("." * statement.level + (statement.module or ""), package)
                original = next((a.name for a in statement.names if (a.asname or a.name) == name), name)
                if module is not None and original in vars(module):
                    self._global(vars(module), original, names, depth + 1)
                continue
            definition = _module_source(module_name).statement(statement)
            self.parts.append(definition.text)
            self._names(namespace, definition.names - {name}, depth + 1)

    def _module(self, module: types.ModuleType, names: Iterable[str] | None, depth: int) -> None:
        """A module used as ``module.attr``: the attributes among ``names`` (every global when None)."""
        if self._external(module.__name__, module):
            return
        namespace = vars(module)
        for name in sorted(n for n in (namespace if names is None else names) if not n.startswith("__")):
            if name in namespace:
                self._global(namespace, name, names if names is not None else (), depth + 1)

    def _imports(self, imports: Iterable, package: str, names: Iterable[str], depth: int) -> None:
        """Import statements inside a function or class body: what they bind."""
        for statement in imports:
            for alias in statement.names:
                if isinstance(statement, ast.Import):
                    module = _import(alias.name if alias.asname else alias.name.partition(".")[0], package)
                    if module is not None:
                        self._module(module, names, depth + 1)
                    continue
                base = "." * statement.level + (statement.module or "")
                module = _import(base, package)
                if module is None:
                    continue
                value = getattr(module, alias.name, None)
                if value is None:
                    value = _import(f"{module.__name__}.{alias.name}", package)
                self.parts.append(f"import {module.__name__}.{alias.name}")
                if isinstance(value, types.ModuleType):
                    self._module(value, names, depth + 1)
                else:
                    self.visit(value, depth + 1)


def _tensor_digest(tensor: torch.Tensor) -> str:
    try:
        data = tensor.detach().cpu().contiguous().reshape(-1)
        return hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest() if data.numel() else ""
    except (RuntimeError, TypeError, NotImplementedError):  # meta, sparse or otherwise unreadable tensors
        return "unreadable"


def _import(name: str, package: str) -> types.ModuleType | None:
    try:
        resolved = importlib.util.resolve_name(name, package) if name.startswith(".") else name
        return sys.modules.get(resolved) or importlib.import_module(resolved)
    except (ImportError, ValueError):
        return None


def code_identity(obj: object) -> str:
    """``"module.qualname@<sha256[:16]>"`` over the normalised source reachable from ``obj`` (see the
    module docstring). ``obj`` may be a factory name (``"gpt"``), an import path, or any callable."""
    obj = resolve_factory(obj) if isinstance(obj, str) else obj
    start = obj.func if isinstance(obj, functools.partial) else obj
    start = start if isinstance(start, types.FunctionType | type | types.MethodType) else type(start)
    walk = _Walk()
    walk.visit(obj)
    return f"{start.__module__}.{start.__qualname__}@{walk.digest()}"


# --------------------------------------------------------------------------------------- the fingerprint


@dataclass(frozen=True)
class ModelProbe:
    """What building the model once told: its parameter counts and its behavioural fingerprint."""

    params: ParamCount
    fingerprint: str


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """Seeded, single-threaded and with gradients on; the caller's RNG and thread count are restored."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.set_num_threads(1)
        torch.manual_seed(PROBE_SEED)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def _round(value: float) -> float | str:
    value = float(value)
    return float(f"{value:.{_DIGITS}g}") if math.isfinite(value) else str(value)


def probe_model(factory: object, spec: ModelSpec) -> ModelProbe:
    """Build ``factory(spec)`` once, check it, count its parameters and fingerprint its behaviour."""
    build = resolve_factory(factory)
    with _deterministic():
        model = check_model(build(spec), factory)
        seq = min(spec.seq_len, PROBE_TOKENS)
        batch = torch.randint(0, spec.vocab_size, (2, seq + 1))
        model.train()
        try:
            output = model(batch[:, :-1])
        except Exception as exc:
            raise ScalingDataError(f"the model's forward pass on token ids [2, {seq}] failed: "
                                   f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
        logits = check_logits(logits_of(output), (2, seq), spec.vocab_size)
        loss = F.cross_entropy(logits.float().reshape(-1, spec.vocab_size), batch[:, 1:].reshape(-1))
        loss.backward()
        params = count_params(model, spec)
    where = f"{getattr(build, '__qualname__', None) or type(model).__name__} at {spec.label}"
    check_used(model, where)
    rows: list = [_round(loss.item())]
    for name, p in model.named_parameters():
        data = p.detach().double()
        grad = "none" if p.grad is None else _round(p.grad.detach().double().norm())
        rows.append([name, list(p.shape), str(p.dtype), _round(data.sum()), _round(data.square().sum()), grad])
    for name, b in model.named_buffers():
        rows.append([name, list(b.shape), str(b.dtype), _round(b.detach().double().sum())])
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]
    with _deterministic():
        check_causal(model, batch[:, :-1], spec.vocab_size, PROBE_SEED, where)
    return ModelProbe(params, digest)
