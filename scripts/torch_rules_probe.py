"""Probe one installed torch: its `weights_only` rules, read and measured.

    python torch_rules_probe.py OUT.json

Run by `scripts/torch_rules.py` with the python of a throwaway venv that holds
one torch release (and a numpy it supports), with this checkout on
`PYTHONPATH` (nothing of it is installed there; it needs only the standard
library). Writes one JSON object to OUT.json:

- `rules`: every field `TorchRules.from_installed()` reads, produced by that
  very function, so the table equals what it reads;
- `api`: which public helpers exist (`add_safe_globals`, ...);
- `behaviours`: small benign pickles of our own, each loaded for real by
  `torch.load(..., weights_only=True)` (or the unpickler itself), with the
  outcome: `ok` and the result's type, or the error (its inner text);
- `opcodes_measured`: the opcodes the unpickler does not refuse with
  `Unsupported operand N` (each fed alone, as the first opcode after PROTO);
- `sources`: sha256 of the unpickler and serialization modules, so patch
  releases whose rules agree can still be told apart.

Every pickle loaded here is built below from our own benign objects, and
only torch's `weights_only=True` unpickler ever loads one, except the single
probe of the `weights_only` default, which loads our own harmless class.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import inspect
import io
import json
import os
import pickletools
import platform
import re
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

PROBE_FORMAT = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ENFORCE = re.compile(r"\[enforce fail at [^\]]*\] \.? *")
# Lines of torch's wrapper around the unpickler's own message.
_WRAPPER_LINES = (
    "Weights only load failed", "(1)", "(2)", "Check the documentation", "Please file an issue",
    "In PyTorch 2.6", "Re-running", "Do it only",
)  # fmt: skip
_TYPES_MODULE = '''
"""Benign types for the torch rules probe."""


class Plain:
    def __init__(self):
        self.a = 0


class MyDict(dict):
    pass


class MyList(list):
    pass


class Outer:
    class Inner:
        pass


def make_dict():
    return {"made": 1}


def make_plain():
    return Plain()
'''


# --- a tiny pickle assembler -------------------------------------------------


def proto(p: int) -> bytes:
    return b"\x80" + bytes([p])


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def uni(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def int1(n: int) -> bytes:
    return b"K" + bytes([n])


EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT = b")", b"]", b"}"
REDUCE, NEWOBJ, BUILD, SETITEM, APPEND, APPENDS = b"R", b"\x81", b"b", b"s", b"a", b"e"
MARK, TUPLE1, STOP = b"(", b"\x85", b"."


def call(module: str, name: str, p: int = 2) -> bytes:
    """`module.name()` via GLOBAL + REDUCE, leaving the result on the stack."""
    return proto(p) + glob(module, name) + EMPTY_TUPLE + REDUCE


# --- loading -----------------------------------------------------------------


def inner_error(exc: BaseException) -> str:
    """The part of torch's message that says what went wrong (no wrapper, no ANSI)."""
    text = _ANSI.sub("", str(exc))
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
        text = text.split("\n\nCheck the documentation", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(_WRAPPER_LINES)]
    text = kept[0] if kept else (lines[0] if lines else "")
    for cut in (" In PyTorch 2.6,", " Re-running `torch.load`"):
        text = text.split(cut, 1)[0]
    # C++ source positions and addresses change between builds, not the rule.
    text = _ENFORCE.sub("", text)
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    return text[:300]


def outcome(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run `fn`; `ok` and the result's type, or the exception's type and inner text."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = fn()
        except Exception as exc:
            return {"ok": False, "exc": type(exc).__name__, "error": inner_error(exc)}
    return {"ok": True, "type": f"{type(value).__module__}.{type(value).__qualname__}"}


class Probe:
    """One torch's measurements; `run()` returns the JSON object."""

    def __init__(self, workdir: str) -> None:
        import torch

        self.torch = torch
        self.dir = workdir
        self.serialization = torch.serialization
        self.count = 0
        base = io.BytesIO()
        torch.save({"which": 0, "w": torch.arange(3.0)}, base)
        with zipfile.ZipFile(base) as zf:
            self.saved = [(n, zf.read(n)) for n in zf.namelist()]
        self.main = next(n for n, _ in self.saved if n.endswith("/data.pkl"))
        self.prefix = self.main.split("/")[0]

    # files

    def path(self, suffix: str = ".pt") -> str:
        self.count += 1
        return os.path.join(self.dir, f"f{self.count}{suffix}")

    def zip_file(self, entries: list[tuple[str, bytes]]) -> str:
        path = self.path()
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            warnings.simplefilter("ignore")
            for name, data in entries:
                zf.writestr(name, data)
        return path

    def ckpt(self, pickle_bytes: bytes) -> str:
        """A torch.save layout whose data.pkl is `pickle_bytes`."""
        return self.zip_file([(n, pickle_bytes if n == self.main else d) for n, d in self.saved])

    # loading

    @contextlib.contextmanager
    def allowlisted(self, objs: list[Any]) -> Iterator[None]:
        add = getattr(self.serialization, "add_safe_globals", None)
        if not objs:
            yield
            return
        if add is None:
            raise RuntimeError("no add_safe_globals in this torch")
        try:
            add(objs)
            yield
        finally:
            self.serialization.clear_safe_globals()

    def load(self, pickle_bytes: bytes, allow: list[Any] | None = None) -> dict[str, Any]:
        path = self.ckpt(pickle_bytes)
        return self.load_path(path, allow)

    def load_path(self, path: str, allow: list[Any] | None = None) -> dict[str, Any]:
        def go() -> Any:
            with self.allowlisted(allow or []):
                return self.torch.load(path, weights_only=True)

        return outcome(go)

    # the measurements

    def api(self) -> dict[str, Any]:
        ser = self.serialization
        names = (
            "add_safe_globals", "safe_globals", "get_safe_globals", "clear_safe_globals",
            "get_unsafe_globals_in_checkpoint", "skip_data", "get_crc32_options",
            "set_crc32_options", "get_default_mmap_options", "set_default_mmap_options",
        )  # fmt: skip
        out: dict[str, Any] = {name: hasattr(ser, name) for name in names}
        params = inspect.signature(self.torch.load).parameters
        out["load_has_weights_only"] = "weights_only" in params
        out["load_has_mmap"] = "mmap" in params
        default = params["weights_only"].default if "weights_only" in params else None
        out["weights_only_signature_default"] = repr(default)
        out["default_protocol"] = getattr(ser, "DEFAULT_PROTOCOL", None)
        return out

    def default_weights_only(self) -> dict[str, Any]:
        """`torch.load(f)` on a file holding our own (harmless) class."""
        import ckptprobe_types  # type: ignore[import-not-found]

        path = self.ckpt(proto(2) + glob("ckptprobe_types", "Plain") + EMPTY_TUPLE + NEWOBJ + STOP)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = self.torch.load(path)
            except Exception as exc:
                result: dict[str, Any] = {
                    "weights_only": True,
                    "exc": type(exc).__name__,
                    "error": inner_error(exc),
                }
            else:
                result = {"weights_only": not isinstance(value, ckptprobe_types.Plain)}
        result["warnings"] = sorted(
            {
                f"{w.category.__name__}: {_ANSI.sub('', str(w.message)).splitlines()[0][:120]}"
                for w in caught
                if "pickle protocol" not in str(w.message)
            }
        )
        return result

    def behaviours(self) -> dict[str, Any]:
        import ckptprobe_types as t

        has_allowlist = hasattr(self.serialization, "add_safe_globals")
        out: dict[str, Any] = {}

        def case(name: str, data: bytes, allow: list[Any] | None = None) -> None:
            if allow and not has_allowlist:
                out[name] = {"ok": False, "exc": "n/a", "error": "no add_safe_globals"}
                return
            out[name] = self.load(data, allow)

        one_set = EMPTY_LIST + int1(1) + APPEND + TUPLE1 + REDUCE + STOP
        for p in (0, 2, 3, 4):
            head = proto(p) if p else b""  # protocol 0/1 pickles have no PROTO opcode
            case(f"py2_set_protocol_{p}", head + glob("__builtin__", "set") + one_set)
            case(
                f"py2_set_protocol_{p}_allowlisted",
                head + glob("__builtin__", "set") + one_set,
                [set],
            )
        case("builtins_set", proto(2) + glob("builtins", "set") + one_set)
        case("user_global", call("ckptprobe_types", "make_dict") + STOP, [t.make_dict])
        case(
            "tuple_form",
            call("ckptprobe_fake", "Thing") + STOP,
            [(t.make_dict, "ckptprobe_fake.Thing")],
        )
        case("qualname_dotted", call("ckptprobe_types", "Outer.Inner") + STOP, [t.Outer.Inner])
        case("qualname_short", call("ckptprobe_types", "Inner") + STOP, [t.Outer.Inner])
        state = EMPTY_DICT + uni("a") + int1(1) + SETITEM + BUILD
        case("build_plain_dict", proto(2) + EMPTY_DICT + EMPTY_DICT + BUILD + STOP)
        case("build_default_allowed", call("collections", "Counter") + EMPTY_DICT + BUILD + STOP)
        case("build_user_allowlisted", call("ckptprobe_types", "Plain") + state + STOP, [t.Plain])
        case(
            "build_reduced_type_unlisted",
            call("ckptprobe_types", "make_plain") + state + STOP,
            [t.make_plain],
        )
        case(
            "newobj_default_allowed",
            proto(2) + glob("collections", "OrderedDict") + EMPTY_TUPLE + NEWOBJ + STOP,
        )
        case(
            "newobj_user_allowlisted",
            proto(2) + glob("ckptprobe_types", "Plain") + EMPTY_TUPLE + NEWOBJ + STOP,
            [t.Plain],
        )
        item = uni("a") + int1(1) + SETITEM + STOP
        case("setitem_ordereddict", call("collections", "OrderedDict") + item)
        case("setitem_counter", call("collections", "Counter") + item)
        case("setitem_user_dict_subclass", call("ckptprobe_types", "MyDict") + item, [t.MyDict])
        case("setitem_user_object", call("ckptprobe_types", "Plain") + item, [t.Plain])
        case(
            "append_user_list_subclass",
            call("ckptprobe_types", "MyList") + int1(1) + APPEND + STOP,
            [t.MyList],
        )
        case(
            "appends_user_list_subclass",
            call("ckptprobe_types", "MyList") + MARK + int1(1) + int1(2) + APPENDS + STOP,
            [t.MyList],
        )
        case("blocklisted_module", call("os", "getcwd") + STOP)
        case("blocklisted_module_allowlisted", call("os", "getcwd") + STOP, [os.getcwd])
        case("unknown_global", call("ckptprobe_types", "make_dict") + STOP)
        case("bytes_value", proto(2) + glob("_codecs", "encode") + uni("a") + uni("latin1")
             + b"\x86" + REDUCE + STOP)  # fmt: skip
        persid = b"Q"  # BINPERSID
        case("persistent_id_not_storage", proto(2) + uni("module") + TUPLE1 + persid + STOP)
        out.update(self.numpy_cases())
        out.update(self.container_cases())
        return {k: out[k] for k in sorted(out)}

    def numpy_cases(self) -> dict[str, Any]:
        import codecs
        import pickle

        try:
            import numpy as np
        except Exception as exc:
            return {"numpy": {"ok": False, "exc": type(exc).__name__, "error": str(exc)[:200]}}
        core = np._core if hasattr(np, "_core") and np.__version__ >= "2" else np.core
        out: dict[str, Any] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = pickle.dumps(np.arange(3.0), protocol=2)
            scalar = pickle.dumps(np.float64(1.5), protocol=2)
        dtype_cls = type(np.dtype(np.float64))
        has_allowlist = hasattr(self.serialization, "add_safe_globals")
        base_array = [core.multiarray._reconstruct, np.ndarray, np.dtype]
        for name, data, allow in (
            ("numpy_array", array, []),
            ("numpy_array_without_dtype_class", array, [*base_array, codecs.encode]),
            ("numpy_array_without_encode", array, [*base_array, dtype_cls]),
            ("numpy_array_allowlisted", array, [*base_array, dtype_cls, codecs.encode]),
            ("numpy_scalar", scalar, []),
            ("numpy_scalar_allowlisted", scalar, [core.multiarray.scalar, np.dtype, dtype_cls]),
        ):
            if allow and not has_allowlist:
                out[name] = {"ok": False, "exc": "n/a", "error": "no add_safe_globals"}
            else:
                out[name] = self.load(data, allow)
        return out

    def container_cases(self) -> dict[str, Any]:
        torch, prefix, ents = self.torch, self.prefix, self.saved
        layouts = {
            "layout_as_saved": ents,
            "layout_root_members": [(n.split("/", 1)[1], d) for n, d in ents],
            "layout_member_outside_folder": [*ents, ("other/x", b"1")],
            "layout_root_readme_first": [("README", b"hi"), *ents],
            "layout_no_version": [(n, d) for n, d in ents if not n.endswith("/version")],
            "layout_dot_data_version_only": [
                (n.replace(f"{prefix}/version", f"{prefix}/.data/version"), d) for n, d in ents
            ],
            "layout_upper_case_main": [(n.replace("data.pkl", "DATA.PKL"), d) for n, d in ents],
        }
        out = {name: self.load_path(self.zip_file(entries)) for name, entries in layouts.items()}
        legacy = self.path()
        torch.save({"w": torch.arange(3.0)}, legacy, _use_new_zipfile_serialization=False)
        out["legacy_format"] = self.load_path(legacy)
        script = self.path()

        def jit_save() -> None:
            torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), script)

        made = outcome(jit_save)
        out["torchscript"] = self.load_path(script) if made["ok"] else {"jit_save": made}
        raw = self.path(".pkl")
        with open(raw, "wb") as fh:
            fh.write(proto(2) + EMPTY_DICT + STOP)
        out["plain_pickle_file"] = self.load_path(raw)
        return out

    def unsafe_globals_helper(self) -> dict[str, Any] | None:
        helper = getattr(self.serialization, "get_unsafe_globals_in_checkpoint", None)
        if helper is None:
            return None
        one_set = EMPTY_LIST + int1(1) + APPEND + TUPLE1 + REDUCE + STOP
        out: dict[str, Any] = {}
        for p in (2, 4):
            path = self.ckpt(proto(p) + glob("__builtin__", "set") + one_set)
            try:
                out[f"py2_set_protocol_{p}"] = sorted(helper(path))
            except Exception as exc:
                out[f"py2_set_protocol_{p}"] = f"{type(exc).__name__}: {inner_error(exc)}"
        return out

    def opcodes(self) -> list[str]:
        """Opcodes the unpickler implements: fed alone, it does not say `Unsupported operand`."""
        from torch import _weights_only_unpickler as wou

        supported = []
        for op in pickletools.opcodes:
            code = ord(op.code)
            data = proto(2) + bytes([code]) + b"\x00" * 16 + STOP
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    wou.Unpickler(io.BytesIO(data), encoding="utf-8").load()  # type: ignore[no-untyped-call]
            except Exception as exc:
                if f"Unsupported operand {code}" in str(exc):
                    continue
            supported.append(op.name)
        return sorted(supported)

    def sources(self) -> dict[str, str]:
        out = {}
        for mod in ("_weights_only_unpickler", "serialization", "_utils"):
            path = os.path.join(os.path.dirname(self.torch.__file__), f"{mod}.py")
            with open(path, "rb") as fh:
                out[f"torch/{mod}.py"] = hashlib.sha256(fh.read()).hexdigest()
        return out


def rules_fields() -> dict[str, Any]:
    """`TorchRules.from_installed()`, field by field, as JSON values."""
    from pytest_ckptcompat.scan.rules import TorchRules

    rules = TorchRules.from_installed()
    # The behaviour fields are measured below, not read; keep the data fields.
    measured = set(rules.behaviours()) if hasattr(rules, "behaviours") else set()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(rules):
        if f.name not in measured:
            out[f.name] = to_json(getattr(rules, f.name))
    return out


def to_json(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, dict):
        if all(isinstance(k, tuple) for k in value):
            return sorted([list(k), list(v)] for k, v in value.items())
        return dict(sorted(value.items()))
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    for var in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        os.environ.pop(var, None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ckptprobe-") as workdir:
        with open(os.path.join(workdir, "ckptprobe_types.py"), "w") as fh:
            fh.write(_TYPES_MODULE)
        sys.path.insert(0, workdir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
        result: dict[str, Any] = {
            "probe_format": PROBE_FORMAT,
            "torch_version": torch.__version__,
            "torch_dist_version": importlib.metadata.version("torch"),
            "python": platform.python_version(),
        }
        try:
            result["numpy_version"] = importlib.metadata.version("numpy")
        except importlib.metadata.PackageNotFoundError:
            result["numpy_version"] = None
        steps: list[tuple[str, Callable[[], Any]]] = []
        probe = Probe(workdir)
        steps = [
            ("rules", rules_fields),
            ("api", probe.api),
            ("default_weights_only", probe.default_weights_only),
            ("behaviours", probe.behaviours),
            ("unsafe_globals_helper", probe.unsafe_globals_helper),
            ("opcodes_measured", probe.opcodes),
            ("sources", probe.sources),
        ]
        failures = {}
        for key, step in steps:
            try:
                result[key] = step()
            except Exception:
                failures[key] = traceback.format_exc(limit=5)
        result["failures"] = failures
    result["probe_seconds"] = round(time.monotonic() - started, 2)
    with open(argv[0], "w") as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
