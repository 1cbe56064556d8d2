"""The allowlist code we print: one snippet for every torch from 2.4 and both numpy majors.

torch keys an allowlisted object by its own `__module__.__qualname__`
(`__name__` before 2.7), but a pickle names a global the way the *writer*
spelled it: `numpy.core.multiarray.scalar` under numpy 1, `numpy._core...`
under numpy 2, `pathlib._local.PosixPath` from Python 3.13. torch 2.6 added
`(obj, "module.name")` entries for this; on 2.4 and 2.5 such an entry breaks
every load (`'tuple' object has no attribute '__module__'`). What works on
all of them, checked on 2.5.1 and 2.13 by the tests and on every reader by the
matrix: an alias whose `__module__`/`__name__`/`__qualname__` spell the name
the file uses and that forwards to the real object (`named`). When the
spelling is already the object's own, `named` returns the object itself, so
classes that BUILD and NEWOBJ compare by identity stay themselves.

The printed snippet carries `named`'s own source, so what the plugin registers
in a test and what a user pastes are the same function.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._version import __version__

NP_CORE = "_np_core"
NP_CORE_LINE = f'{NP_CORE} = np._core if int(np.__version__.split(".")[0]) >= 2 else np.core'


def named(obj: Any, name: str) -> Any:
    """`obj`, registered under `name` (`module.attr`, as the pickle spells it)."""
    module, _, attr = name.rpartition(".")
    own = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
    if own == (module, attr) and getattr(obj, "__name__", None) == attr:
        return obj  # already spelled so here: the object itself (BUILD checks identity)

    def alias(*args: Any, **kwargs: Any) -> Any:
        return obj(*args, **kwargs)

    alias.__module__, alias.__name__, alias.__qualname__ = module, attr, attr
    return alias


def helper_source() -> str:
    """`named`'s source as the printed snippet defines it (`_named`, without annotations)."""
    import inspect  # here: only printing a fix needs it

    source = inspect.getsource(named)
    source = source.replace("def named(obj: Any, name: str) -> Any:", "def _named(obj, name):")
    return source.replace("(*args: Any, **kwargs: Any) -> Any:", "(*args, **kwargs):")


def digest(code: str) -> str:
    """Which snippet a fix check applied: sha256 of its text, whatever its last newlines."""
    import hashlib  # here: only a report's fix needs it (the scan path starts without it)

    return hashlib.sha256(code.strip().encode()).hexdigest()


def render_snippet(
    entries: Iterable[str], imports: Iterable[str], *, indent: str = "", readers: str = ""
) -> str:
    """A self-contained module registering `entries` (expressions) with torch.

    `imports` are the lines the expressions need (`import argparse`, the
    `_np_core` line, ...); `readers` says which environments it was checked
    for, when known.
    """
    entries = list(dict.fromkeys(entries))
    imports = list(dict.fromkeys(imports))
    numpy_import = "import numpy as np"
    plain = [i for i in imports if i.startswith("import ") and i != numpy_import]
    # From what the entries need, never from their text (`mynp.Config` needs no numpy).
    uses_numpy = numpy_import in imports or NP_CORE_LINE in imports
    lines = [
        f"# Allowlist for torch.load(weights_only=True), from pytest-ckptcompat {__version__}.",
        "# Works with torch >= 2.4 and numpy 1 and 2 (a file written under either numpy major",
        "# loads under both, but for numpy's RNG objects); torch < 2.4 has no allowlist: save",
        "# plain data there instead.",
    ]
    if readers:
        lines.append(f"# Checked on: {readers}.")
    lines += sorted(set(plain))
    if uses_numpy:
        lines.append(numpy_import)
    lines.append("import torch")
    if uses_numpy:
        lines += ["", NP_CORE_LINE]
    lines += ["", "", *helper_source().rstrip().splitlines(), "", ""]
    lines.append("SAFE_GLOBALS = [")
    lines += [f"    {e}," for e in entries]
    lines += [
        "]",
        "",
        "",
        "def allow_checkpoint_globals():",
        '    """Register SAFE_GLOBALS with torch; call it once before torch.load."""',
        '    if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4',
        "        torch.serialization.add_safe_globals(SAFE_GLOBALS)",
        "",
        "",
        "allow_checkpoint_globals()",
    ]
    return "\n".join(indent + line if line else "" for line in lines)
