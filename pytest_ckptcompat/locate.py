"""Find where in a checkpoint object a pickle global comes from.

A scan of a checkpoint says *which* globals (`pathlib.PosixPath`,
`argparse.Namespace`, ...) a restricted unpickler would refuse; a user needs
to know *which part of the object* brought each one in. `locate_globals`
answers that faithfully, by pickling: a sub-object needs a name if its own
pickle contains it, so the walk goes top-down, pickles each child, descends
only into the children whose pickle still contains the name, and reports the
deepest sub-objects that need it themselves (`hparams.data_dir`, not
`hparams`, for a `PosixPath` inside an `argparse.Namespace`).

Pickling mimics `torch.save` (protocol 2, storages as persistent ids) so a
tensor is charged for `torch._utils._rebuild_tensor_v2` but not for the
storage machinery torch writes out of band. Names that a pickle never writes
as a GLOBAL but a reader still has to resolve (numpy dtype classes such as
`numpy.dtypes.Float64DType`, numpy random classes, tensor types) are charged
to the objects that contain them.

Neither torch nor numpy is imported here; they are only looked up in
`sys.modules`, since an object can only be a tensor if torch is loaded.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import io
import pathlib
import pickle
import sys
import types
from collections.abc import Collection, Iterable
from typing import Any, Final

from .compare import attr_path, display_path, index_path, key_path
from .scan.machine import TypeResolver, analyze
from .scan.names import dtype_class_code, numpy_spellings, py3_name

__all__ = ["describe_location", "locate_globals"]

_MAX_DEPTH: Final = 100
_TYPES: Final = TypeResolver()
_PROTOCOL: Final = 2  # torch.save's default pickle protocol.

# Leaves: never descended into. Their pickle is charged to them as a whole.
_LEAF_TYPES: Final[tuple[type, ...]] = (
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    bool,
    type(None),
    range,
    slice,
    set,
    frozenset,
    type,
    enum.Enum,
    pathlib.PurePath,
    functools.partial,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
)

# Objects that can never need a global: not worth pickling.
_GLOBAL_FREE: Final[tuple[type, ...]] = (int, float, str, bool, type(None))


def locate_globals(
    obj: object, names: Collection[str], *, max_paths: int = 3
) -> dict[str, list[str]]:
    """Map each pickle global in `names` to up to `max_paths` paths in `obj` that need it.

    Names are written as in a pickle, `module.name` (`pathlib.PosixPath`,
    `numpy._core.multiarray.scalar`); Python 2 spellings (`__builtin__.set`)
    and the numpy 1 / numpy 2 module spellings (`numpy.core` /
    `numpy._core`) are treated as the same name. Paths use the syntax of
    `compare.deep_diff` (`hparams.data_dir`, `layers[0]`, `<root>`). A name
    that `obj` does not need maps to `[]`. This never raises: sub-objects that
    cannot be pickled are skipped.
    """
    result: dict[str, list[str]] = {name: [] for name in names}
    if max_paths <= 0 or not result:
        return result
    wanted: dict[str, list[str]] = {}
    for name in result:
        wanted.setdefault(_canonical(name), []).append(name)
    search = _Search(max_paths)
    try:
        root_needs = search.needs(obj)
        targets = set(wanted) if root_needs is None else set(wanted) & root_needs
        if targets:
            search.visit(obj, "", targets, 0, confirmed=root_needs is not None)
    except Exception:
        # Whatever was found before an unexpected failure is still true.
        pass
    for canonical, paths in search.found.items():
        for name in wanted.get(canonical, ()):
            result[name] = [display_path(p) for p in paths]
    return result


def describe_location(name: str, paths: list[str]) -> str:
    """Render one `locate_globals` entry: `hparams.data_dir -> pathlib.PosixPath`."""
    if not paths:
        return f"(not located) -> {name}"
    return f"{', '.join(paths)} -> {name}"


# --------------------------------------------------------------------------
# Names


def _canonical(name: str) -> str:
    """One spelling per global, so names from any writer compare equal."""
    # Protocol 2 writes Python 2 names (`__builtin__ set`); read them as
    # Python 3's unpickler does.
    name = py3_name(name)
    # Any spelling of a numpy dtype class: this numpy's name for it.
    if (code := dtype_class_code(name)) and name.startswith("numpy.dtype["):
        return _TYPES.dtype_class(code) or name
    # numpy 2 moved numpy.core to numpy._core; pickles from either name the same thing.
    return numpy_spellings(name)[-1]


def _globals_in(data: bytes) -> set[str]:
    """Canonical names the pickle `data` needs: its globals and the types BUILD checks.

    The symbolic machine reads both (numpy dtype and RNG classes are never
    written as GLOBALs), exactly as the scanner does for files.
    """
    facts = analyze(data, types=_TYPES)
    return {_canonical(n) for n in facts.globals} | {
        _canonical(t) for t in facts.builds if not t.startswith("<")
    }


# --------------------------------------------------------------------------
# Pickling


class _GlobalsPickler(pickle.Pickler):
    """A pickler that writes storages and chosen children as persistent ids.

    Storages are replaced as `torch.save` does, so tensors are not charged for
    storage pickling. Children (by id) are replaced so the result shows what
    the parent needs *itself*; `hits` records which children the parent's
    pickle really contains.
    """

    def __init__(self, file: io.BytesIO, children: dict[int, object]) -> None:
        super().__init__(file, protocol=_PROTOCOL)
        self.children = children
        self.hits: set[int] = set()
        self.torch: Any = sys.modules.get("torch")

    def persistent_id(self, obj: Any) -> Any:
        """Replace children and torch storages."""
        child = self.children.get(id(obj))
        if child is not None and child is obj:
            self.hits.add(id(obj))
            return ("child",)
        torch = self.torch
        if torch is not None and (
            isinstance(obj, torch.storage.TypedStorage) or torch.is_storage(obj)
        ):
            return ("storage",)
        return None


def _pickle_globals(obj: object, children: dict[int, object]) -> tuple[set[str], set[int]] | None:
    """Canonical names `obj`'s pickle needs (children replaced), and the children hit."""
    buffer = io.BytesIO()
    pickler = _GlobalsPickler(buffer, children)
    try:
        pickler.dump(obj)
        names = _globals_in(buffer.getvalue())
    except Exception:
        # Unpicklable (lambdas, locks, too deep...): the caller skips it.
        return None
    return names, pickler.hits


# --------------------------------------------------------------------------
# The walk


class _Search:
    """State of one `locate_globals` call."""

    def __init__(self, max_paths: int) -> None:
        self.max_paths = max_paths
        self.found: dict[str, list[str]] = {}
        self.visited: set[int] = set()
        self._needs: dict[int, frozenset[str] | None] = {}
        # Objects whose ids are cached above, so that no id is reused.
        self._keepalive: list[object] = []

    def needs(self, obj: object) -> frozenset[str] | None:
        """Every canonical name `obj`'s full pickle needs; None if unpicklable."""
        if type(obj) in _GLOBAL_FREE:
            return frozenset()
        key = id(obj)
        if key not in self._needs:
            pickled = _pickle_globals(obj, {})
            self._needs[key] = None if pickled is None else frozenset(pickled[0])
            self._keepalive.append(obj)
        return self._needs[key]

    def _record(self, name: str, path: str) -> None:
        paths = self.found.setdefault(name, [])
        if len(paths) < self.max_paths and path not in paths:
            paths.append(path)

    def _open(self, names: Iterable[str]) -> set[str]:
        return {n for n in names if len(self.found.get(n, ())) < self.max_paths}

    def visit(
        self, obj: object, path: str, targets: set[str], depth: int, *, confirmed: bool
    ) -> None:
        """Record where under `obj` (at `path`) each of `targets` is needed.

        `confirmed` says `obj`'s own full pickle is known to need the targets;
        it is False under an unpicklable object, where they are only searched.
        """
        targets = self._open(targets)
        if not targets or id(obj) in self.visited:
            return
        self.visited.add(id(obj))
        self._keepalive.append(obj)
        kids = _children(obj, path)
        if kids:
            replaced = {id(child): child for _, child in kids if id(child) != id(obj)}
            own_pickle = _pickle_globals(obj, replaced)
        else:
            full = self.needs(obj)
            own_pickle = None if full is None else (set(full), set())
        own: set[str] = set() if own_pickle is None else own_pickle[0]
        hits: set[int] | None = None if own_pickle is None else own_pickle[1]
        # The object itself needs these (its class, a default_factory, a dict
        # key...): it is the smallest sub-object that does.
        for name in sorted(targets & own):
            self._record(name, path)
        covered: set[str] = set()
        if depth < _MAX_DEPTH:
            for child_path, child in kids:
                if not self._open(targets):
                    break  # every name has its paths: pickle no more siblings
                if hits is not None and id(child) not in hits:
                    # Not part of this object's pickle (custom __reduce__).
                    continue
                child_needs = self.needs(child)
                # An unpicklable child only happens under an unpicklable
                # parent; its own children may still be located.
                sub = set(targets) if child_needs is None else targets & child_needs
                sub = self._open(sub)
                if sub:
                    if child_needs is not None:
                        covered |= sub
                    self.visit(child, child_path, sub, depth + 1, confirmed=child_needs is not None)
        # Needed by the whole but by neither the object itself nor any one
        # child (or the walk stopped at the depth limit): this is the smallest.
        if confirmed and own_pickle is not None:
            for name in sorted(targets - own - covered):
                self._record(name, path)


def _children(obj: object, path: str) -> list[tuple[str, object]]:
    """The sub-objects of `obj` the walk may descend into, with their paths."""
    if isinstance(obj, _LEAF_TYPES):
        return []
    torch: Any = sys.modules.get("torch")
    np: Any = sys.modules.get("numpy")
    if torch is not None and isinstance(obj, torch.Tensor):
        return []
    if np is not None and isinstance(obj, (np.ndarray, np.generic, np.dtype)):
        return []
    if torch is not None and isinstance(obj, torch.nn.Module):
        return _module_children(obj, path)
    kids: list[tuple[str, object]] = []
    if isinstance(obj, dict):
        kids += [(key_path(path, k), v) for k, v in obj.items()]
    elif isinstance(obj, tuple) and isinstance(getattr(type(obj), "_fields", None), tuple):
        fields = getattr(type(obj), "_fields", ())
        kids += [(attr_path(path, str(f)), v) for f, v in zip(fields, obj, strict=False)]
    elif isinstance(obj, (list, tuple)):
        kids += [(index_path(path, i), v) for i, v in enumerate(obj)]
    kids += [(attr_path(path, name), value) for name, value in _attributes(obj)]
    return kids


def _module_children(module: Any, path: str) -> list[tuple[str, object]]:
    # A module pickles its __dict__; its parameters, buffers and submodules
    # live in dicts inside it but are reached as `model.layer.weight`.
    kids: list[tuple[str, object]] = []
    for name, value in vars(module).items():
        if name in ("_parameters", "_buffers", "_modules") and isinstance(value, dict):
            kids += [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
        else:
            kids.append((attr_path(path, str(name)), value))
    return kids


def _attributes(obj: object) -> list[tuple[str, object]]:
    attrs: dict[str, object] = {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if hasattr(obj, f.name):
                attrs[f.name] = getattr(obj, f.name)
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for name, value in state.items():
            attrs.setdefault(str(name), value)
    return list(attrs.items())
