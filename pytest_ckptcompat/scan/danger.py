"""Globals that can run code, touch files or reach the network when a pickle is loaded.

A global is dangerous when calling it, or constructing it, can execute
arbitrary code, run a command, read or write files, open connections, or
reach any other global (`getattr`, `__import__`). The list is deliberately
wide (a false alarm costs a look, a miss costs a machine) and is still only a
list: advice never depends on it alone. `plaindata` says what may be
allowlisted; everything else is "review", and a name here is never made
loadable by any allowlist.

Five rules, each closing a known way around a plain name list:

- a whole module is dangerous when any of its attributes is (`os.*`,
  `importlib.*`, `marshal.*`, `runpy.*`, `mailcap.*`: picklescan#69, #74);
- private helpers of otherwise harmless modules that run commands
  (`uuid._get_command_stdout`, `_osx_support._read_output`: advisories
  against picklescan in 2025) are listed by name or by private prefix, and
  so are the code loaders among `torch._C`'s hundreds of names (`_jit*`);
- numpy's file readers and writers are dangerous under any numpy module
  that spells them (`numpy.fromfile`, `numpy._core.multiarray.fromfile`);
- a *dotted* attribute (`posixpath` + `os.system`) walks from one object to
  another, as `pickle` resolves it for protocol 4+, so it can reach anything:
  always dangerous, whatever the module;
- Python 2 spellings (`__builtin__.eval`, `urllib2.urlopen`) are the same
  objects as their Python 3 names (`pickle` maps them when it loads), so they
  are judged by those names (`names.py3_name`).

The list holds every name of picklescan's, modelscan's, fickling's and
modelaudit's lists that can run code, touch files or the network (their
published bypasses are tests/advisory_corpus.py), and gadgets none of them
lists (`typing.get_type_hints` evaluates string annotations).
"""

from __future__ import annotations

from typing import Final

from .names import DYNAMIC_GLOBAL, py3_name

_COMMANDS: Final = "runs commands or code"
_IMPORTS: Final = "imports or runs code by name"
_FILES: Final = "reads or writes files"
_NETWORK: Final = "opens network connections"
_PICKLES: Final = "unpickles more data without restriction"
_PROCESS: Final = "controls the process or the interpreter"
_REACH: Final = "reaches objects the pickle does not name, as getattr does"

# Whole modules whose every attribute is dangerous, and why.
_MODULES: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "os", "posix", "nt", "subprocess", "_posixsubprocess", "_winapi", "msvcrt", "pty",
            "commands", "popen2", "platform", "webbrowser", "mailcap", "pydoc", "_pyrepl",
            "_aix_support", "_osx_support", "code", "codeop", "timeit", "trace", "profile",
            "cProfile", "doctest", "pdb", "bdb", "idlelib", "tkinter", "_tkinter", "turtle",
            "ctypes", "_ctypes", "cffi", "operator", "_operator", "types", "unittest",
            "pytest", "_pytest", "test", "torch.utils.collect_env", "torch.utils.bottleneck",
            "torch.testing._internal", "torch.fx", "torch._dynamo", "torch._inductor",
            "torch.jit", "torch._C._jit", "torch.ops", "torch.library", "torch.classes",
            "torch._export", "torch.export", "torch.utils.cpp_extension", "numpy.testing",
            "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "pandas.core.computation",
            "sympy.parsing", "jinja2", "mako", "IPython", "_interpreters", "interpreters",
            "_xxsubinterpreters", "_interpqueues", "_interpchannels", "_testcapi",
            "_testinternalcapi", "lib2to3", "pexpect", "rlcompleter", "numpy._pytesttester",
            "torch._ops", "torch._classes", "torch.utils.benchmark", "annotationlib",
        ),
        _COMMANDS,
    ),
    **dict.fromkeys(
        (
            "importlib", "imp", "_imp", "_frozen_importlib", "_frozen_importlib_external",
            "pkgutil", "zipimport", "runpy", "marshal", "site", "_sitebuiltins", "ensurepip",
            "venv", "pip", "setuptools", "distutils", "zipapp", "py_compile", "compileall",
            "pyclbr", "modulefinder",
        ),
        _IMPORTS,
    ),
    **dict.fromkeys(
        (
            "shutil", "tempfile", "glob", "io", "_io", "fileinput", "linecache", "tarfile",
            "zipfile", "shelve", "dbm", "sqlite3", "mmap", "fcntl", "pstats", "logging.config",
            "logging.handlers", "torch.utils.tensorboard", "torch.onnx", "pandas.io",
            "numpy.lib.npyio", "numpy.lib.format", "numpy.lib._npyio_impl",
            "numpy.lib._format_impl", "numpy._core.memmap", "numpy.core.memmap",
            "filecmp", "syslog", "_sqlite3", "cgitb", "wave", "sunau", "aifc", "mailbox",
            "readline", "netrc", "mimetypes", "xml.sax", "xml.dom", "xml.etree.ElementInclude",
            "winreg", "_winreg", "msilib", "_posixshmem", "torch.serialization",
            "torch.utils.data.datapipes", "torch.utils.file_baton", "torch.utils.hipify",
        ),
        _FILES,
    ),
    **dict.fromkeys(
        (
            "socket", "_socket", "socketserver", "ssl", "_ssl", "select", "selectors",
            "asyncio", "asyncore", "asynchat", "smtpd", "http", "urllib", "urllib3", "requests",
            "httpx", "aiohttp", "xmlrpc", "ftplib", "smtplib", "telnetlib", "imaplib",
            "poplib", "nntplib", "wsgiref", "paramiko", "boto3", "botocore", "torch.hub",
            "torch.distributed", "numpy.lib._datasource", "torch.utils.model_zoo",
            "huggingface_hub",
        ),
        _NETWORK,
    ),
    **dict.fromkeys(
        (
            "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "yaml",
            "pandas.io.pickle", "torch.package", "torch.utils._config_module",
            "torch.utils.show_pickle",
        ),
        _PICKLES,
    ),
    **dict.fromkeys(
        (
            "sys", "signal", "_signal", "resource", "multiprocessing", "_multiprocessing",
            "concurrent", "threading", "_thread", "torch.multiprocessing", "atexit",
            "faulthandler",
        ),
        _PROCESS,
    ),
    **dict.fromkeys(("gc", "inspect"), _REACH),
}  # fmt: skip
# Single names that are dangerous although their module is not.
_NAMES: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "builtins.eval", "builtins.exec", "builtins.compile", "builtins.breakpoint",
            "builtins.input", "builtins.raw_input", "builtins.help", "torch.compile",
            "builtins.apply", "builtins.execfile", "builtins.reload", "builtins.exit",
            "builtins.quit", "functools.reduce",
            "typing.get_type_hints", "typing._eval_type", "typing.evaluate_forward_ref",
            "typing_extensions.get_type_hints", "typing_extensions.evaluate_forward_ref",
            "functools.partial.__call__", "pandas.eval", "sympy.sympify",
            "copyreg._reconstructor_unsafe",
        ),
        _COMMANDS,
    ),
    **dict.fromkeys(
        (
            "builtins.__import__", "builtins.getattr", "builtins.setattr", "builtins.delattr",
            "builtins.globals", "builtins.locals", "builtins.vars",
        ),
        _IMPORTS,
    ),
    **dict.fromkeys(
        ("uuid.getnode", "uuid.uuid1"), "runs commands (ifconfig, ip, arp) to find a MAC address"
    ),
    **dict.fromkeys(
        (
            "builtins.open", "builtins.file", "codecs.open", "gzip.open", "gzip.GzipFile",
            "bz2.open", "bz2.BZ2File", "lzma.open", "lzma.LZMAFile", "logging.FileHandler",
            "logging.basicConfig", "numpy.load", "numpy.save", "numpy.savez",
            "numpy.savez_compressed", "numpy.fromfile", "numpy.memmap", "numpy.loadtxt",
            "numpy.genfromtxt", "pandas.read_csv", "torch.save", "torch.from_file",
            "safetensors.torch.save_file", "safetensors.torch.save_model",
            "safetensors.numpy.save_file", "xml.etree.ElementTree.parse",
            "xml.etree.ElementTree.iterparse", "xml.etree.ElementTree.XInclude",
            "torch.serialization._open_file_like", "torch.serialization._open_zipfile_writer",
        ),
        _FILES,
    ),
    **dict.fromkeys(
        (
            "pandas.read_pickle", "torch.load", "torch.serialization.load",
            "torch.serialization._load", "torch.serialization._legacy_load",
            "torch._utils._rebuild_from_type", "torch.storage._load_from_bytes",
            "copyreg.add_extension", "copyreg.remove_extension", "copyreg.clear_extension_cache",
        ),
        _PICKLES,
    ),
}  # fmt: skip
# Modules whose public names are plain data but whose private helpers run commands.
_PRIVATE_HELPERS: Final[dict[str, str]] = {"uuid": _COMMANDS, "torch.cuda.memory": _FILES}
# Attributes of a module that load or compile code, by prefix (the module holds
# hundreds of harmless names too: `torch._C` is torch's whole C++ binding).
_PREFIXED: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "torch._C": (
        ("_jit", "import_ir_module", "_import_ir_module", "_load_", "_save_", "_compile"),
        "loads, compiles or runs TorchScript code",
    ),
}
# numpy's file readers and writers, whatever numpy module spells them
# (`numpy.fromfile`, `numpy._core.multiarray.fromfile`, `numpy.rec.fromfile`, ...).
_NUMPY_FILE_FUNCTIONS: Final = frozenset(
    {"load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile",
     "fromregex", "memmap", "open_memmap", "DataSource", "tofile", "recfromcsv", "recfromtxt"}
)  # fmt: skip
# The harmless names of dangerous modules (`types.FunctionType` builds code;
# torch's own allowlist holds `torch.serialization._get_layout`).
_HARMLESS: Final = frozenset({"types.SimpleNamespace", "torch.serialization._get_layout"})


def is_dangerous(*names: str) -> bool:
    """True when any spelling in `names` (`module.name`) can run code when loaded."""
    return any(_reason(name) for name in names)


def why_dangerous(module: str, attr: str) -> str:
    """The reason to show beside a dangerous global (empty when it is not dangerous)."""
    if "." in attr:
        return f"the dotted attribute {attr!r} walks from {module} to other objects"
    return _reason(f"{module}.{attr}")


def _reason(name: str) -> str:
    if name.startswith("copyreg.extension."):
        return "an EXT code: whatever the reader's copyreg registry maps it to"
    if name.startswith(DYNAMIC_GLOBAL):
        return "its name is computed while loading: it can be any global at all"
    name = py3_name(name)  # what CPython's unpickler loads for a Python 2 name
    if name.startswith("__builtins__."):  # no such module; scanners flag it as builtins
        name = "builtins." + name[len("__builtins__.") :]
    if name in _HARMLESS:
        return ""
    if name in _NAMES:
        return _NAMES[name]
    module, _, attr = name.rpartition(".")
    if attr.startswith("_") and module in _PRIVATE_HELPERS:
        return _PRIVATE_HELPERS[module]
    if module in _PREFIXED and attr.startswith(_PREFIXED[module][0]):
        return _PREFIXED[module][1]
    if (module == "numpy" or module.startswith("numpy.")) and attr in _NUMPY_FILE_FUNCTIONS:
        return _FILES
    while module:
        if module in _MODULES:
            return _MODULES[module]
        module = module.rpartition(".")[0]
    return ""


def is_dangerous_global(module: str, attr: str, *also: str) -> bool:
    """`is_dangerous` for a global as the pickle spells it, with the dotted-attribute rule."""
    return "." in attr or is_dangerous(f"{module}.{attr}", *also)
