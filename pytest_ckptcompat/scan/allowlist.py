"""Allowlist entries (`module.name`) from options, ini and markers, made real.

An entry is a string as it stands in a pickle. To hand it to torch it must be
resolved to an object, registered so that the key torch matches is exactly
the entry (`snippet.named`: the object itself, or an alias spelled like the
entry), on every torch: that is what makes one allowlist serve pickles
written under numpy 1 *and* numpy 2.

`numpy.core.*` and `numpy._core.*` resolve to each other when only one exists
here: listing both spellings is the portable fix, and it must not break the
numpy that lacks one of them.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import SafeGlobalError
from .names import dtype_class_code, other_numpy_spelling
from .snippet import named

if TYPE_CHECKING:
    from .numpy_reader import ReaderNumpy
    from .rules import TorchRules

_ENTRY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*\.[A-Za-z_][\w\[\]]*$")


def parse_entry(entry: str, source: str) -> str:
    """Validate one `module.name` entry; `source` names where it came from."""
    name = entry.strip()
    if not _ENTRY.match(name):
        raise SafeGlobalError(
            f"{source}: {entry!r} is not a global name; expected `module.name`, "
            "e.g. `argparse.Namespace`"
        )
    return name


def parse_entries(entries: Iterable[str], source: str) -> list[str]:
    """Validate many entries (blank lines and `#` comments are skipped)."""
    names = []
    for entry in entries:
        entry = entry.split("#", 1)[0].strip()
        if entry:
            names.append(parse_entry(entry, source))
    return names


def resolve(name: str) -> object:
    """Import the object an entry names (trusted: entries come from the project)."""
    candidates = [name]
    if other := other_numpy_spelling(name):
        candidates.append(other)
    errors = []
    for candidate in candidates:
        try:
            return import_dotted(candidate)
        except (ImportError, AttributeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    if code := dtype_class_code(name):
        # `numpy.dtype[float64]` (numpy < 1.25) and `numpy.dtypes.Float64DType`
        # (1.25+) are one class: the running numpy's, whatever it calls it.
        import numpy as np

        try:
            return type(np.dtype(code))
        except TypeError:
            pass
    raise SafeGlobalError(f"{name} names nothing here ({errors[0]})")


def import_dotted(name: str) -> object:
    """Import `module.attr...` exactly as spelled (no numpy alias)."""
    parts = name.split(".")
    with warnings.catch_warnings():
        # numpy 2 warns on `numpy.core`; that spelling is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj: object = importlib.import_module(".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            return obj
    raise ModuleNotFoundError(f"No module named {parts[0]!r}")


def own_name(obj: object) -> str | None:
    """`module.qualname` as this Python and numpy write `obj` in a pickle (None: no such name)."""
    module = getattr(obj, "__module__", None) or "builtins"
    qualname = getattr(obj, "__qualname__", None)
    if (
        not isinstance(qualname, str)
        or getattr(obj, "__name__", None) != qualname.rpartition(".")[2]
    ):
        return None
    return f"{module}.{qualname}"


def spellings(name: str) -> frozenset[str]:
    """`name`, and every other name the same object is written under here.

    `pathlib.PurePosixPath` -> also `pathlib._local.PurePosixPath` on Python 3.13;
    `numpy.core.multiarray.scalar` -> also `numpy._core.multiarray.scalar`. An entry
    that names nothing here stands for itself only.
    """
    out = {name}
    if other := other_numpy_spelling(name):
        out.add(other)
    try:
        obj = resolve(name)
    except SafeGlobalError:
        return frozenset(out)
    if own := own_name(obj):
        out.add(own)
    return frozenset(out)


def torch_key(obj: object, rules: TorchRules) -> str:
    """The key torch computes for an object registered without a name."""
    module = getattr(obj, "__module__", None) or "builtins"
    attr = "__qualname__" if rules.uses_qualname_keys else "__name__"
    return f"{module}.{getattr(obj, attr, repr(obj))}"


@dataclass
class Allowlist:
    """Entries resolved here: what to register with torch, and the keys it yields."""

    entries: list[object] = field(default_factory=list)  # for torch.serialization.safe_globals
    keys: frozenset[str] = frozenset()  # what GLOBAL lookups match
    types: frozenset[str] = frozenset()  # module.qualname of the objects (BUILD/NEWOBJ)
    missing: dict[str, str] = field(default_factory=dict)  # entry -> why it names nothing

    @classmethod
    def build(cls, names: Iterable[str]) -> Allowlist:
        """Resolve `names`; entries that name nothing here go to `missing`."""
        entries: list[object] = []
        keys: set[str] = set()
        types: set[str] = set()
        missing: dict[str, str] = {}
        for name in dict.fromkeys(names):
            try:
                obj = resolve(name)
            except SafeGlobalError as exc:
                missing[name] = str(exc)
                continue
            own = f"{getattr(obj, '__module__', 'builtins')}.{getattr(obj, '__qualname__', '')}"
            types.add(own)
            # Keyed by the entry's own spelling on every torch (an alias where the
            # object is spelled otherwise here: the snippet we print does the same),
            # and by the object's own name, which is what this Python and numpy
            # write (`pathlib._local.PurePosixPath` on Python 3.13).
            entries.append(named(obj, name))
            keys.add(name)
            if own != name and getattr(obj, "__name__", None) == own.rpartition(".")[2]:
                entries.append(obj)
                keys.add(own)
        return cls(entries, frozenset(keys), frozenset(types), missing)

    @classmethod
    def for_reader(
        cls, names: Iterable[str], numpy: ReaderNumpy, *, imports: bool = True
    ) -> Allowlist:
        """The keys, types and missing entries of `names` for a scan (no objects to register).

        What `build` would compute in the reader, without importing torch or
        numpy where it can: a numpy name is answered by the numpy table for
        the reader's numpy (installed here or not), a `torch.*` name is taken
        as spelled (the reader's torch may not be the one installed here), and
        any other name (the project's own classes, the standard library) is
        imported here, as `build` does; with `imports=False` (a report job
        without the project installed), taken as spelled too.
        """
        keys: set[str] = set()
        types: set[str] = set()
        missing: dict[str, str] = {}
        for name in dict.fromkeys(names):
            exists: bool | None = None
            type_name = name
            if name.startswith("numpy."):
                exists, type_name = numpy.entry(name)
                if exists is False:
                    missing[name] = f"{name} names nothing under numpy {numpy.version or '(none)'}"
                    continue
            also_own = True  # a numpy table name is the object's own name
            if exists is None and imports and not name.startswith("torch."):
                try:
                    obj = resolve(name)
                except SafeGlobalError as exc:
                    missing[name] = str(exc)
                    continue
                type_name = (
                    f"{getattr(obj, '__module__', 'builtins')}.{getattr(obj, '__qualname__', '')}"
                )
                also_own = getattr(obj, "__name__", None) == type_name.rpartition(".")[2]
            keys.add(name)
            types.add(type_name)
            if type_name != name and also_own:  # as `build` keys it: the name the reader writes
                keys.add(type_name)
        return cls([], frozenset(keys), frozenset(types), missing)
