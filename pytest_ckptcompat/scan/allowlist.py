"""Allowlist entries (`module.name`) from options, ini and markers, made real.

An entry is a string as it stands in a pickle. To hand it to torch it must be
resolved to an object; on torch >= 2.6 it is registered as `(obj, "name")`,
so the key torch matches is exactly the entry (that is what makes one
allowlist serve pickles written under numpy 1 *and* numpy 2). Older torch
keys an entry by the object's own `__module__`, which we compute the same way.

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

from ..errors import SafeGlobalError
from .rules import TorchRules

_ENTRY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*\.[A-Za-z_][\w\[\]]*$")
_NUMPY_CORE = re.compile(r"^numpy\.(_?)core\.")
_DTYPE_CLASS = re.compile(r"^numpy\.dtype\[(\w+)\]$")
_DTYPES_MODULE = re.compile(r"^numpy\.dtypes\.(\w+)DType$")


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
    if m := _DTYPE_CLASS.match(name):  # numpy < 1.25 spells dtype classes like this
        import numpy as np

        return type(np.dtype(m.group(1)))
    candidates = [name]
    if m := _NUMPY_CORE.match(name):
        other = "numpy.core." if m.group(1) else "numpy._core."
        candidates.append(other + name[m.end() :])
    errors = []
    for candidate in candidates:
        try:
            return import_dotted(candidate)
        except (ImportError, AttributeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    if m := _DTYPES_MODULE.match(name):  # numpy < 1.25 has no numpy.dtypes: same class
        import numpy as np

        try:
            return type(np.dtype(m.group(1).lower()))
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


def torch_key(obj: object, rules: TorchRules) -> str:
    """The key torch computes for an object registered without a name."""
    module = getattr(obj, "__module__", None) or "builtins"
    attr = "__qualname__" if rules.uses_qualname_keys else "__name__"
    return f"{module}.{getattr(obj, attr, repr(obj))}"


@dataclass
class Allowlist:
    """Entries resolved for one torch: what to register, and the keys it yields."""

    entries: list[object] = field(default_factory=list)  # for torch.serialization.safe_globals
    keys: frozenset[str] = frozenset()  # what GLOBAL lookups match
    types: frozenset[str] = frozenset()  # module.qualname of the objects (BUILD/NEWOBJ)
    missing: dict[str, str] = field(default_factory=dict)  # entry -> why it names nothing

    @classmethod
    def build(cls, names: Iterable[str], rules: TorchRules) -> Allowlist:
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
            types.add(
                f"{getattr(obj, '__module__', 'builtins')}.{getattr(obj, '__qualname__', '')}"
            )
            if rules.has_tuple_form:
                entries.append((obj, name))
                keys.add(name)
            else:
                entries.append(obj)
                keys.add(torch_key(obj, rules))
        return cls(entries, frozenset(keys), frozenset(types), missing)
