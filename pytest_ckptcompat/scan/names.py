"""How the names a pickle holds are spelled, and which spellings mean the same object.

- numpy 2 renamed `numpy.core` to `numpy._core`: a pickle names the module of
  the numpy that wrote it, so `numpy.core.multiarray.scalar` and
  `numpy._core.multiarray.scalar` are one object in two spellings.
- numpy's dtype classes are `numpy.dtypes.Float64DType` from numpy 1.25 and
  `numpy.dtype[float64]` before; a pickle never names them (BUILD checks them).
- Python 2 names (`__builtin__.set`, `urllib2.urlopen`) are mapped by
  CPython's unpickler (`_compat_pickle`) to the objects of their Python 3 names.
- Python 3.13 pickles paths as `pathlib._local.PosixPath`, imported as `pathlib.PosixPath`.
"""

from __future__ import annotations

import _compat_pickle
import re
from collections.abc import Iterable
from typing import Final

#: The module of a global whose name the pickle computes at load time (STACK_GLOBAL
#: of values that are not string constants): it can name anything.
DYNAMIC_GLOBAL: Final = "<computed at load time>"
_IMPORTABLE: Final = re.compile(r"^[A-Za-z_][\w.]*$")


def all_importable(names: Iterable[tuple[str, str]]) -> bool:
    """Whether every `(module, attr)` could name an importable object.

    A member that only might be a pickle reads like one only then: text that
    parses as a protocol 0 pickle yields "globals" like `lass Linear(Module):`.
    """
    return all(
        module in (DYNAMIC_GLOBAL, "copyreg.extension")
        or (_IMPORTABLE.match(module) and _IMPORTABLE.match(attr))
        for module, attr in names
    )


NUMPY_1_CORE: Final = "numpy.core."
NUMPY_2_CORE: Final = "numpy._core."
_NUMPY_CORE = re.compile(r"^numpy\.(_?)core\.(.+)$")
_DTYPE_CLASS = re.compile(r"^numpy\.(?:dtypes\.(\w+)DType|dtype\[(\w+)\])$")
_PATHLIB_LOCAL: Final = "pathlib._local."


def numpy_core_rest(name: str) -> str | None:
    """`multiarray.scalar` for either `numpy.core.multiarray.scalar` spelling, else None."""
    m = _NUMPY_CORE.match(name)
    return m.group(2) if m else None


def numpy_spellings(name: str) -> tuple[str, ...]:
    """Both numpy spellings of a `numpy.(_)core` name (numpy 1's first); else `(name,)`."""
    rest = numpy_core_rest(name)
    return (NUMPY_1_CORE + rest, NUMPY_2_CORE + rest) if rest else (name,)


def other_numpy_spelling(name: str) -> str | None:
    """The other numpy major's spelling of a `numpy.(_)core` name, else None."""
    m = _NUMPY_CORE.match(name)
    if not m:
        return None
    return (NUMPY_1_CORE if m.group(1) else NUMPY_2_CORE) + m.group(2)


def is_numpy_2_only(name: str) -> bool:
    """A name only numpy >= 1.26.1 has (`numpy._core.*`): missing under older numpy."""
    return name.startswith(NUMPY_2_CORE)


def dtype_class_code(name: str) -> str | None:
    """`float64` for `numpy.dtypes.Float64DType` or `numpy.dtype[float64]`, else None."""
    m = _DTYPE_CLASS.match(name)
    if not m:
        return None
    return (m.group(1) or m.group(2)).lower()


def is_numpy_dtype_class(name: str) -> bool:
    """True for a numpy dtype class in any numpy's spelling."""
    return _DTYPE_CLASS.match(name) is not None


def py3_name(name: str) -> str:
    """The Python 3 name CPython's unpickler loads for a Python 2 `module.name`."""
    module, _, attr = name.rpartition(".")
    if not module:
        return name
    mapped = _compat_pickle.NAME_MAPPING.get((module, attr))
    if mapped:
        return f"{mapped[0]}.{mapped[1]}"
    if module in _compat_pickle.IMPORT_MAPPING:  # the whole module only, as `find_class` does
        return f"{_compat_pickle.IMPORT_MAPPING[module]}.{attr}"
    return name


def public_spelling(name: str) -> str:
    """The name to import an object by (`pathlib._local.PosixPath` -> `pathlib.PosixPath`)."""
    if name.startswith(_PATHLIB_LOCAL):
        return "pathlib." + name[len(_PATHLIB_LOCAL) :]
    return name
