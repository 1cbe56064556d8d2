"""The names it is safe to advise allowlisting: plain data, each with the reason.

An allowlist entry lets *every* file the reader loads call that global with
any arguments. A denylist cannot tell which globals are safe to hand out (new
ways to run a command turn up every month), so advice works the other way
round: an allowlist entry is printed only for

- a name below, each one reviewed: what unpickling it can do is build a value
  from numbers, strings and bytes, and nothing else;
- a class of the project's own first-party packages (the user's own data
  classes; `advice` is told which packages those are).

Everything else is "review before allowlisting", with no code to paste, and a
dangerous name (`danger`) is never allowlisted at all.
"""

from __future__ import annotations

from typing import Final, Literal

from .danger import is_dangerous
from .names import is_numpy_dtype_class, numpy_spellings, public_spelling, py3_name

_BAG: Final = "an attribute bag: unpickling sets attributes and calls nothing else"
_PATH: Final = "a path built from strings: constructing it touches no file"
_CONTAINER: Final = "a container of other values (each judged on its own)"
_VALUE: Final = "a builtin value type built from numbers or bytes"
_NUMPY_RANDOM: Final = "numpy random state, restored from plain numbers"
_TIME: Final = "a date or time built from numbers"

#: Reviewed names (as CPython and numpy 2 spell them) and why each is plain data.
PLAIN_DATA: Final[dict[str, str]] = {
    "argparse.Namespace": _BAG,
    "types.SimpleNamespace": _BAG,
    **dict.fromkeys(
        (
            "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
            "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath",
        ),
        _PATH,
    ),
    **dict.fromkeys(
        (
            "collections.OrderedDict", "collections.Counter", "collections.deque",
            "collections.defaultdict",
        ),
        _CONTAINER,
    ),
    **dict.fromkeys(
        (
            "builtins.set", "builtins.frozenset", "builtins.complex", "builtins.slice",
            "builtins.range", "builtins.bytearray", "builtins.bytes",
        ),
        _VALUE,
    ),
    "_codecs.encode": "how protocol 2 writes bytes: encodes a string with a standard codec",
    "numpy._core.multiarray.scalar": "rebuilds a numpy scalar from its dtype and raw bytes",
    "numpy._core.multiarray._reconstruct": (
        "creates an empty numpy array; BUILD then sets its shape, dtype and raw bytes"
    ),
    "numpy.ndarray": "the numpy array type (what _reconstruct creates)",
    "numpy.dtype": (
        "a numpy dtype, built from a type code such as 'f8' (numpy trusts the flags of its "
        "pickled state; the scan flags a state that hides objects: machine.hides_objects)"
    ),
    **dict.fromkeys(
        (
            "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__generator_ctor",
            "numpy.random._pickle.__bit_generator_ctor",
        ),
        "builds a numpy generator from a bit generator's name; given a class or a constructor "
        "instead, it calls that, which a file could only pass if the allowlist already holds it",
    ),
    **dict.fromkeys(
        (
            "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator",
            "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64",
            "numpy.random._pcg64.PCG64DXSM", "numpy.random._philox.Philox",
            "numpy.random._sfc64.SFC64", "numpy.random.bit_generator.SeedSequence",
        ),
        _NUMPY_RANDOM,
    ),
    **dict.fromkeys(
        (
            "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
            "datetime.timezone",
        ),
        _TIME,
    ),
    "decimal.Decimal": "a number built from a string",
    "fractions.Fraction": "a number built from two integers",
    "uuid.UUID": "an identifier built from an integer",
    "torch.torch_version.TorchVersion": "a version string",
}  # fmt: skip

Advice = Literal["allowlist", "first-party", "review", "never"]

REVIEW: Final = (
    "review before allowlisting: an allowlisted callable can be called with any arguments "
    "by any file you load"
)


def canonical(name: str) -> str:
    """The spelling `PLAIN_DATA` uses: Python 3, numpy 2, `pathlib` (not `pathlib._local`)."""
    return public_spelling(numpy_spellings(py3_name(name))[-1])


def plain_data_reason(name: str) -> str | None:
    """Why `name` is plain data, or None when it is not on the reviewed list."""
    if is_numpy_dtype_class(name):
        return "a numpy dtype class, checked when an array or scalar is rebuilt"
    return PLAIN_DATA.get(canonical(name))


def advice(name: str, first_party: frozenset[str] = frozenset()) -> Advice:
    """What to advise for a blocked name: allowlist it, review it, or never."""
    if is_dangerous(name):
        return "never"
    if plain_data_reason(name) is not None:
        return "allowlist"
    module, _, attr = name.rpartition(".")
    # The project's own *classes* (CapWords, by convention): its functions may
    # do anything, so they are reviewed like any other callable.
    if module.split(".", 1)[0] in first_party and attr[:1].isupper():
        return "first-party"
    return "review"
