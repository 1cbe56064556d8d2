"""Globals that can run code when a pickle is loaded ("dangerous").

A global is dangerous when calling it, or constructing it, can execute
arbitrary code, touch the file system or the network, or reach any other
global (`getattr`, `__import__`). The list is deliberately wide: a false
alarm costs a look, a miss costs a machine. Everything torch itself refuses
is still reported as blocked; this flag only says *why* not to allowlist it.

Three rules, each closing a known way around a plain name list:

- a whole module is dangerous when any of its attributes is (`os.*`,
  `importlib.*`, `marshal.*`, `runpy.*`, `mailcap.*`: picklescan#69, #74);
- a *dotted* attribute (`posixpath` + `os.system`) walks from one object to
  another, as `pickle` resolves it for protocol 4+, so it can reach anything:
  always dangerous, whatever the module;
- Python 2 spellings (`__builtin__.eval`, `urllib2.urlopen`) are the same
  objects as their Python 3 names (`pickle` maps them when it loads), so they
  are judged by those names (`names.py3_name`).
"""

from __future__ import annotations

from typing import Final

from .names import py3_name

# Whole modules whose every attribute is dangerous.
_MODULES: Final = frozenset(
    {
        "os", "posix", "nt", "sys", "subprocess", "_posixsubprocess", "_winapi", "msvcrt",
        "shutil", "socket", "_socket", "socketserver", "ctypes", "_ctypes", "importlib", "imp",
        "_imp", "_frozen_importlib", "_frozen_importlib_external", "pkgutil", "zipimport",
        "site", "runpy", "marshal", "code", "codeop", "pty", "commands", "popen2", "platform",
        "multiprocessing", "concurrent", "threading", "_thread", "signal", "webbrowser",
        "mailcap", "pydoc", "doctest", "cgi", "cgitb", "idlelib", "ensurepip", "venv",
        "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "types",
        "asyncio", "http", "urllib", "xmlrpc", "requests", "ftplib", "smtplib", "telnetlib",
        "pdb", "bdb", "timeit", "trace", "profile", "cProfile", "tempfile", "glob",
        "pip", "setuptools", "distutils", "sqlite3", "_io", "io", "operator", "_operator",
        "logging.config", "yaml", "pandas.io.pickle", "numpy.testing", "numpy.f2py",
        "numpy.distutils", "numpy.ctypeslib", "torch.hub", "torch.jit", "torch._C._jit",
        "torch.ops", "torch.package", "torch.fx", "torch.utils.cpp_extension",
        "torch._inductor", "torch._dynamo", "torch.multiprocessing",
    }
)  # fmt: skip
# Single names that are dangerous although their module is not.
_NAMES: Final = frozenset(
    {
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open",
        "builtins.__import__", "builtins.getattr", "builtins.setattr", "builtins.delattr",
        "builtins.globals", "builtins.locals", "builtins.vars", "builtins.breakpoint",
        "builtins.input", "builtins.help", "builtins.apply", "builtins.execfile",
        "builtins.file", "builtins.reload", "copyreg._reconstructor_unsafe", "numpy.load",
        "numpy.lib.npyio.load", "numpy.fromfile", "numpy.lib.format.read_array",
        "pandas.read_pickle", "torch.load", "torch.serialization.load", "torch.save",
        "torch._utils._rebuild_from_type", "torch.storage._load_from_bytes",
        "functools.reduce", "functools.partial.__call__", "code.interact",
    }
)  # fmt: skip


def is_dangerous(*names: str) -> bool:
    """True when any spelling in `names` (`module.name`) can run code when loaded."""
    return any(_one(name) for name in names)


def why_dangerous(module: str, attr: str) -> str:
    """The reason to show beside a dangerous global (empty when it is not dangerous)."""
    if "." in attr:
        return f"the dotted attribute {attr!r} walks from {module} to other objects"
    return "can run code" if _one(f"{module}.{attr}") else ""


def _one(name: str) -> bool:
    if name.startswith("copyreg.extension."):
        return True  # an EXT code: whatever the reader's copyreg registry maps it to
    name = py3_name(name)  # what CPython's unpickler loads for a Python 2 name
    if name in _NAMES:
        return True
    module = name
    while "." in module:
        module = module.rsplit(".", 1)[0]
        if module in _MODULES:
            return True
    return False


def is_dangerous_global(module: str, attr: str, *also: str) -> bool:
    """`is_dangerous` for a global as the pickle spells it, with the dotted-attribute rule."""
    return "." in attr or is_dangerous(f"{module}.{attr}", *also)
