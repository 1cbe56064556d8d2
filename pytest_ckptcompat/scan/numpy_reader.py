"""The numpy of the reader a scan judges for, answered from the offline table.

A pickle never names the class numpy's BUILD rebuilds (`numpy.dtypes.Float64DType`
from numpy 1.25, `numpy.dtype[float64]` before), nor does it say whether the
reader's numpy has the names it does spell (`numpy._core.*` only from numpy
1.26.1). `ReaderNumpy` answers both for the numpy installed here or for any
release of the offline table (`numpy_table`, 1.23 to 2.4), without importing
numpy; numpy itself is asked only when it is installed and the table cannot
answer (a release it does not cover, a dtype code numpy never writes).
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Final

from . import numpy_table
from .dists import installed
from .names import NUMPY_1_CORE, NUMPY_2_CORE, numpy_core_rest, other_numpy_spelling

# A dtype code as numpy's `dtype.__reduce__` writes it (kind + item size, `U` in
# characters), with an optional byte order and datetime unit.
_CODE: Final = re.compile(
    r"^[<>|=]?([fciubOUSVMm])(\d*)(\[(?:\d*(?:Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)|generic)\])?$"
)
_SIZED: Final[dict[str, dict[str, str]]] = {
    "f": {"2": "float16", "4": "float32", "8": "float64", "16": "longdouble"},
    "c": {"8": "complex64", "16": "complex128", "32": "clongdouble"},
    "i": {"1": "int8", "2": "int16", "4": "int32", "8": "int64"},
    "u": {"1": "uint8", "2": "uint16", "4": "uint32", "8": "uint64"},
    "b": {"1": "bool"},
    "O": {"": "object", "8": "object"},
    "M": {"": "M8[s]", "8": "M8[s]"},
    "m": {"": "m8[s]", "8": "m8[s]"},
}
# Flexible kinds: one class whatever the size.
_FLEXIBLE: Final = {"U": "U1", "S": "S1", "V": "V8"}
# numpy.random's classes, as they pickle (the same module in numpy 1.23-2.4).
_RANDOM: Final = {
    "RandomState": "numpy.random.mtrand.RandomState",
    "Generator": "numpy.random._generator.Generator",
    "MT19937": "numpy.random._mt19937.MT19937",
    "PCG64": "numpy.random._pcg64.PCG64",
    "PCG64DXSM": "numpy.random._pcg64.PCG64DXSM",
    "Philox": "numpy.random._philox.Philox",
    "SFC64": "numpy.random._sfc64.SFC64",
}


def table_dtype_key(code: str) -> str | None:
    """The numpy table's key (`float64`, `U1`, ...) for a pickled dtype code, or None."""
    m = _CODE.match(code)
    if not m:
        return None
    kind, size, unit = m.groups()
    if kind in _FLEXIBLE:
        return None if unit else _FLEXIBLE[kind]
    if unit and kind not in "Mm":
        return None
    return _SIZED[kind].get(size)


@dataclass(frozen=True)
class ReaderNumpy:
    """The numpy of the reader a scan judges for.

    `version` None: no numpy at all. `live`: the installed numpy, which the
    table does not cover, so numpy itself is asked. `local`: this is the
    numpy installed here (so a code the table cannot map may be asked of it).
    """

    version: str | None
    live: bool = False
    local: bool = False

    @classmethod
    def here(cls) -> ReaderNumpy:
        """The numpy installed here (None installed: no numpy)."""
        found = installed("numpy")
        if found is None:
            return cls(None, local=True)
        try:
            numpy_table.numpy_entry(found.version)
        except numpy_table.UnknownNumpyVersionError:
            return cls(found.version, live=True, local=True)
        return cls(found.version, local=True)

    @classmethod
    def release(cls, version: str) -> ReaderNumpy:
        """A numpy release from the table (raises `UnknownNumpyVersionError` naming those known)."""
        here = installed("numpy")
        numpy_table.numpy_entry(version)
        return cls(version, local=here is not None and here.version == version)

    def dtype_class(self, code: str) -> str | None:
        """`module.qualname` of the dtype class `numpy.dtype(code)` makes under this numpy."""
        if self.version is None:
            return None
        key = None if self.live else table_dtype_key(code)
        if key is not None:
            found = numpy_table.dtype_class(self.version, key)
            if found is not None:
                return found
        if self.local:
            return _live_dtype_class(code)
        return None  # a code numpy never writes, under a numpy that is not here

    def random_class(self, key: str) -> str:
        """`module.qualname` of a `numpy.random` class (`RandomState`, `MT19937`, ...)."""
        if self.live:
            return _live_random_names().get(key, f"numpy.random.{key}")
        return _RANDOM.get(key, f"numpy.random.{key}")

    def missing(self, name: str) -> str | None:
        """Why the numpy name `name` names nothing under this numpy; None when it does."""
        if not (name.startswith("numpy.") or name == "numpy"):
            return None
        if self.version is None:
            return "numpy is not installed" if self.local else "the reader has no numpy"
        if self.live:
            return _live_missing(name)
        exists = numpy_table.has_name(self.version, name)
        if exists is None and name.startswith(NUMPY_2_CORE):
            # A name the table does not list: missing at least when numpy._core is.
            module = numpy_table.has_name(self.version, NUMPY_2_CORE + "multiarray.scalar")
            exists = False if module is False else None
        if exists is not False:
            return None
        if name.startswith(NUMPY_2_CORE):
            return (
                f"numpy {self.version} has no numpy._core (numpy 2 writes it; numpy >= 1.26.1 "
                "reads it)"
            )
        return f"numpy {self.version} has no {name}"

    def entry(self, name: str) -> tuple[bool | None, str]:
        """Whether an allowlist entry `name` (a numpy name) resolves under this numpy, and to what.

        Mirrors `allowlist.resolve`: the name as spelled, else the other numpy
        spelling (`numpy.core` / `numpy._core`), else a dtype class by its
        dtype (`numpy.dtypes.Float64DType` is `numpy.dtype[float64]` before
        numpy 1.25). Returns `(exists, module.qualname of the object)`;
        `exists` is None when the table does not list the name.
        """
        if self.version is None:
            return False, name
        if self.live:
            return None, name
        key = _dtype_keys().get(name)
        if key is not None:
            found = numpy_table.dtype_class(self.version, key)
            return (True, found) if found else (False, name)
        answers = [(numpy_table.has_name(self.version, name), name)]
        if other := other_numpy_spelling(name):
            answers.append((numpy_table.has_name(self.version, other), other))
        for exists, spelled in answers:
            if exists:
                if rest := numpy_core_rest(spelled):
                    # One object, defined in numpy 2's numpy._core and numpy 1's numpy.core.
                    home = NUMPY_2_CORE if int(self.version.split(".")[0]) >= 2 else NUMPY_1_CORE
                    return True, home + rest
                return True, spelled
        if any(exists is None for exists, _ in answers):
            return None, name
        return False, name


@functools.cache
def _dtype_keys() -> dict[str, str]:
    """Every spelling of a dtype class in any numpy of the table -> its dtype key (`float64`)."""
    out: dict[str, str] = {}
    for version in numpy_table.numpy_versions():
        for key, name in numpy_table.numpy_entry(version)["dtype_classes"].items():
            out.setdefault(name, key)
    return out


def _live_dtype_class(code: str) -> str | None:
    try:
        import numpy as np
    except ImportError:
        return None
    # The code comes from the file: numpy may warn on it (a deprecated alias
    # such as "a") or refuse it in any way; either way it names no class.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cls = type(np.dtype(code))
        except Exception:
            return None
    return f"{cls.__module__}.{cls.__qualname__}"


def _live_random_names() -> dict[str, str]:
    try:
        import numpy.random as npr
    except ImportError:
        return {}
    names = {}
    for key in _RANDOM:
        cls = getattr(npr, key, None)
        if cls is not None:
            names[key] = f"{cls.__module__}.{cls.__qualname__}"
    return names


def _live_missing(name: str) -> str | None:
    import importlib.util

    if name.startswith(NUMPY_2_CORE):
        try:
            if importlib.util.find_spec("numpy._core") is None:
                return "this numpy has no numpy._core (numpy >= 1.26.1 reads it)"
        except (ImportError, ValueError):
            return "this numpy has no numpy._core (numpy >= 1.26.1 reads it)"
    return None
