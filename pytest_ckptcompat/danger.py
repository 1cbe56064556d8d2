"""Globals that can run code when a pickle is loaded ("dangerous").

A global is dangerous when calling it, or constructing it, can execute
arbitrary code, touch the file system or the network, or reach any other
global (`getattr`, `__import__`). The list is deliberately wide: a false
alarm costs a look, a miss costs a machine. Everything torch itself refuses
is still reported as blocked; this flag only says *why* not to allowlist it.
"""

from __future__ import annotations

from typing import Final

# Whole modules whose every attribute is dangerous.
_MODULES: Final = frozenset(
    {
        "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "ctypes", "importlib",
        "runpy", "marshal", "code", "codeop", "pty", "commands", "popen2", "platform",
        "multiprocessing", "threading", "_thread", "signal", "webbrowser", "mailcap",
        "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "types", "asyncio",
        "http", "urllib", "requests", "ftplib", "smtplib", "telnetlib", "pdb", "bdb",
        "timeit", "trace", "profile", "cProfile", "tempfile", "glob", "zipimport",
        "pip", "setuptools", "distutils", "sqlite3", "_io", "io", "operator",
        "numpy.testing", "torch.hub", "torch.jit", "torch._C._jit", "torch.ops", "torch.package",
    }
)  # fmt: skip
# Single names that are dangerous although their module is not.
_NAMES: Final = frozenset(
    {
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open",
        "builtins.__import__", "builtins.getattr", "builtins.setattr", "builtins.delattr",
        "builtins.globals", "builtins.locals", "builtins.vars", "builtins.breakpoint",
        "builtins.input", "builtins.apply", "builtins.execfile", "builtins.file",
        "__builtin__.eval", "__builtin__.exec", "__builtin__.open", "__builtin__.getattr",
        "__builtin__.__import__", "__builtin__.execfile", "__builtin__.file", "__builtin__.apply",
        "copyreg._reconstructor_unsafe", "numpy.load", "numpy.lib.npyio.load",
        "numpy.fromfile", "numpy.lib.format.read_array", "torch.load", "torch.serialization.load",
        "torch.save", "torch._utils._rebuild_from_type", "torch.storage._load_from_bytes",
        "functools.reduce", "functools.partial.__call__", "operator.attrgetter",
        "operator.methodcaller", "operator.itemgetter", "code.interact",
    }
)  # fmt: skip


def is_dangerous(*names: str) -> bool:
    """True when any spelling in `names` (`module.name`) can run code when loaded."""
    for name in names:
        if name in _NAMES or name.startswith("copyreg.extension."):
            return True
        module = name
        while "." in module:
            module = module.rsplit(".", 1)[0]
            if module in _MODULES:
                return True
    return False
