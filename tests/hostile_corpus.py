"""Hostile checkpoint files, generated at test time (nothing that runs code is committed).

`build_corpus(folder, sentinels)` writes every file of `HOSTILE` into `folder`
and returns `(case, path, sentinel)` triples. Each file carries a payload that,
if any unpickler ever ran it, would create its own sentinel file (by a shell
`touch`, a spawned process, or Python's `open`), so a test proves nothing ran
by checking that `sentinels` is still empty.

The payloads are written opcode by opcode (or spliced into real `torch.save`
output); nothing here unpickles anything. `reference_globals(data)` names what
a pickle would import using only `pickletools` (the standard library's parser,
which never executes), so a test can check each payload is a well-formed
pickle that really reaches its dangerous global without running it.

Covered: `os.system`/`posix.system`/`subprocess.*`/`builtins.eval`/`exec`/
`getattr`/`__import__`/`importlib`/`marshal`+`types`/`runpy`/`mailcap`/`pydoc`
reached through GLOBAL, STACK_GLOBAL via the memo, INST and OBJ in protocols
0 and 1, EXT1/2/4 codes (what a reader that registered `copyreg.add_extension
("os", "system", code)` would call), escaped and dotted names, a name longer
than any the scanner keeps; torch zips whose pickle is `DATA.PKL`/`Data.pkl`,
two pickles in one zip, `../` member names, duplicate `data.pkl` members,
nested archives, pickles appended after a STOP (in a zip member and in a plain
file), a call followed by garbage, a 1.2 MB pickle (the scanner's fast path)
and a legacy (pre-1.6) torch file whose data pickle is hostile.
"""

from __future__ import annotations

import io
import marshal
import pickletools
import shlex
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# --- opcode emitters (protocol 0-5 byte strings, by hand) ------------------------------


def proto(n: int) -> bytes:
    return b"\x80" + bytes([n])


def glob(module: str, name: str) -> bytes:
    """GLOBAL (protocol 0 text): `c<module>\\n<name>\\n`."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def inst(module: str, name: str) -> bytes:
    """INST: call `module.name(*items since the last MARK)`."""
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def ustr(text: str) -> bytes:
    """SHORT_BINUNICODE or BINUNICODE, whichever fits."""
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def binunicode(text: str) -> bytes:
    """BINUNICODE (protocol 1+)."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def unicode0(text: str) -> bytes:
    """UNICODE (protocol 0): raw-unicode-escape text up to a newline."""
    return b"V" + text.encode("raw-unicode-escape") + b"\n"


def binbytes(raw: bytes) -> bytes:
    """BINBYTES (protocol 3+)."""
    return b"B" + struct.pack("<I", len(raw)) + raw


MARK, STOP, REDUCE, TUPLE, TUPLE1, TUPLE2 = b"(", b".", b"R", b"t", b"\x85", b"\x86"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, APPENDS, SETITEMS = b"}", b"]", b")", b"e", b"u"
STACK_GLOBAL, MEMOIZE, POP, OBJ = b"\x93", b"\x94", b"0", b"o"


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def data2(value: object) -> bytes:
    """Plain data (str, list, dict, tuple, int) as protocol 2 opcodes, without `pickle`."""
    if isinstance(value, str):
        return binunicode(value)
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    if isinstance(value, list):
        return EMPTY_LIST + (MARK + b"".join(map(data2, value)) + APPENDS if value else b"")
    if isinstance(value, tuple):
        return MARK + b"".join(map(data2, value)) + TUPLE
    if isinstance(value, dict):
        items = b"".join(data2(k) + data2(v) for k, v in value.items())
        return EMPTY_DICT + (MARK + items + SETITEMS if value else b"")
    raise TypeError(type(value))


def frame(body: bytes) -> bytes:
    """Protocol 4/5 FRAME around `body`."""
    return b"\x95" + struct.pack("<Q", len(body)) + body


def benign_pickle() -> bytes:
    """A small, harmless protocol 2 pickle: {"step": 3}."""
    return proto(2) + data2({"step": 3}) + STOP


# --- payloads -------------------------------------------------------------------------


def shell(sentinel: Path) -> str:
    return f"touch {shlex.quote(str(sentinel))}"


def py_code(sentinel: Path) -> str:
    return f"open({str(sentinel)!r}, 'w').close()"


def p0_os_system(s: Path) -> bytes:
    return glob("os", "system") + MARK + unicode0(shell(s)) + TUPLE + REDUCE + STOP


def p2_posix_system(s: Path) -> bytes:
    return proto(2) + glob("posix", "system") + binunicode(shell(s)) + TUPLE1 + REDUCE + STOP


def p0_inst_popen(s: Path) -> bytes:
    # MARK ["touch", S] INST subprocess Popen: Popen(["touch", S]).
    argv = b"(lp0\n" + unicode0("touch") + b"a" + unicode0(str(s)) + b"a"
    return MARK + argv + inst("subprocess", "Popen") + STOP


def p1_inst_check_call(s: Path) -> bytes:
    argv = EMPTY_LIST + MARK + binunicode("touch") + binunicode(str(s)) + APPENDS
    return MARK + argv + inst("subprocess", "check_call") + STOP


def p0_obj_system(s: Path) -> bytes:
    # MARK cls args OBJ (OBJ is protocol 1's opcode; an unpickler takes it in any stream).
    return MARK + glob("os", "system") + unicode0(shell(s)) + OBJ + STOP


def p1_obj_call(s: Path) -> bytes:
    argv = EMPTY_LIST + MARK + binunicode("touch") + binunicode(str(s)) + APPENDS
    return MARK + glob("subprocess", "call") + argv + OBJ + STOP


def p4_eval_memo(s: Path) -> bytes:
    # Both names reach STACK_GLOBAL only through the memo (BINGET), as picklescan's
    # memo-tracking was written for.
    names = ustr("builtins") + MEMOIZE + ustr("eval") + MEMOIZE + POP + POP
    call = binget(0) + binget(1) + STACK_GLOBAL + ustr(py_code(s)) + TUPLE1 + REDUCE
    return proto(4) + names + call + STOP


def p5_exec_frame(s: Path) -> bytes:
    body = (
        ustr("builtins") + MEMOIZE + ustr("exec") + MEMOIZE + STACK_GLOBAL + MEMOIZE
        + ustr(py_code(s)) + MEMOIZE + TUPLE1 + MEMOIZE + REDUCE + MEMOIZE + STOP
    )  # fmt: skip
    return proto(5) + frame(body)


def p2_getattr(s: Path) -> bytes:
    # getattr(pathlib.os, "system")(cmd): `pathlib.os` itself looks harmless.
    system = glob("builtins", "getattr") + glob("pathlib", "os") + binunicode("system")
    return (
        proto(2) + system + TUPLE2 + REDUCE + binunicode(shell(s)) + TUPLE1 + REDUCE + STOP
    )  # fmt: skip


def p2_import_getattr(s: Path) -> bytes:
    os_mod = glob("builtins", "__import__") + binunicode("os") + TUPLE1 + REDUCE
    system = glob("builtins", "getattr") + os_mod + binunicode("system") + TUPLE2 + REDUCE
    return proto(2) + system + binunicode(shell(s)) + TUPLE1 + REDUCE + STOP


def p2_importlib(s: Path) -> bytes:
    # operator.methodcaller("system", cmd)(importlib.import_module("os"))
    caller = glob("operator", "methodcaller") + binunicode("system") + binunicode(shell(s))
    os_mod = glob("importlib", "import_module") + binunicode("os") + TUPLE1 + REDUCE
    return proto(2) + caller + TUPLE2 + REDUCE + os_mod + TUPLE1 + REDUCE + STOP


def p3_marshal(s: Path) -> bytes:
    # types.FunctionType(marshal.loads(<code object>), {})()
    code = marshal.dumps(compile(py_code(s), "<hostile>", "exec"))
    loaded = glob("marshal", "loads") + binbytes(code) + TUPLE1 + REDUCE
    func = glob("types", "FunctionType") + loaded + EMPTY_DICT + TUPLE2 + REDUCE
    return proto(3) + func + EMPTY_TUPLE + REDUCE + STOP


def p2_runpy(s: Path) -> bytes:
    # runpy._run_code(source, {}) is exec(source, {}).
    return (
        proto(2) + glob("runpy", "_run_code") + binunicode(py_code(s)) + EMPTY_DICT
        + TUPLE2 + REDUCE + STOP
    )  # fmt: skip


def p2_mailcap(s: Path) -> bytes:
    # mailcap.findmatch runs an entry's "test" command with os.system (picklescan#69).
    caps = {"text/plain": [{"test": shell(s), "view": "true"}]}
    args = MARK + data2(caps) + binunicode("text/plain") + TUPLE
    return proto(2) + glob("mailcap", "findmatch") + args + REDUCE + STOP


def p2_pydoc(s: Path) -> bytes:
    # pydoc.pipepager(text, cmd) runs cmd in a shell.
    return (
        proto(2) + glob("pydoc", "pipepager") + binunicode("x") + binunicode(shell(s))
        + TUPLE2 + REDUCE + STOP
    )  # fmt: skip


def p4_dotted(s: Path) -> bytes:
    # Protocol 4 resolves dotted names attribute by attribute: pathlib -> os -> system.
    return (
        proto(4) + ustr("pathlib") + ustr("os.system") + STACK_GLOBAL + ustr(shell(s))
        + TUPLE1 + REDUCE + STOP
    )  # fmt: skip


def p4_long_name(s: Path) -> bytes:
    # posixpath.os.path.os.path ... .os.system: 300+ characters, one global.
    attr = "os" + ".path.os" * 40 + ".system"
    return (
        proto(4) + ustr("posixpath") + ustr(attr) + STACK_GLOBAL + ustr(shell(s))
        + TUPLE1 + REDUCE + STOP
    )  # fmt: skip


def p0_escaped_names(s: Path) -> bytes:
    # UNICODE is raw-unicode-escape and STRING backslash-escaped: "\\u006fs" is "os",
    # "sy\\x73tem" is "system"; only decoded text shows what STACK_GLOBAL imports.
    module = b"V\\u006fs\n"
    attr = b"S'sy\\x73tem'\n"
    return module + attr + STACK_GLOBAL + MARK + unicode0(shell(s)) + TUPLE + REDUCE + STOP


def ext(width: int, code: int) -> Callable[[Path], bytes]:
    op = {1: b"\x82", 2: b"\x83", 4: b"\x84"}[width]

    def payload(s: Path) -> bytes:
        return (
            proto(2)
            + op
            + code.to_bytes(width, "little")
            + binunicode(shell(s))
            + (TUPLE1 + REDUCE + STOP)
        )

    return payload


def p2_call_then_garbage(s: Path) -> bytes:
    # pickle.load runs os.system, then fails on the invalid opcode 0xff.
    return proto(2) + glob("os", "system") + binunicode(shell(s)) + TUPLE1 + REDUCE + b"\xff"


def p2_big(s: Path) -> bytes:
    # 1.2 MB: large enough for the scanner's regex fast path, which must hand it over.
    pad = binunicode("x" * 1_200_000)
    evil = glob("os", "system") + binunicode(shell(s)) + TUPLE1 + REDUCE
    return proto(2) + EMPTY_LIST + MARK + pad + evil + APPENDS + STOP


# --- containers ------------------------------------------------------------------------


def torch_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip laid out like torch.save's (stored members, `archive/` folder)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def real_torch_save() -> bytes:
    """What torch.save writes for a small state dict (imports torch)."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0), "step": 3}, buf)
    return buf.getvalue()


def _repacked(transform: Callable[[str, bytes], list[tuple[str, bytes]]]) -> bytes:
    """Real torch.save output with each member passed through `transform`."""
    out = []
    with zipfile.ZipFile(io.BytesIO(real_torch_save())) as zf:
        for info in zf.infolist():
            out += transform(info.filename, zf.read(info))
    return torch_zip(out)


def zip_main_renamed(name: str) -> Callable[[Path], bytes]:
    def build(s: Path) -> bytes:
        def swap(member: str, data: bytes) -> list[tuple[str, bytes]]:
            if member.endswith("/data.pkl"):
                return [(member.replace("data.pkl", name), p2_posix_system(s))]
            return [(member, data)]

        return _repacked(swap)

    return build


def zip_with_extra(name: str, payload: Callable[[Path], bytes]) -> Callable[[Path], bytes]:
    def build(s: Path) -> bytes:
        def add(member: str, data: bytes) -> list[tuple[str, bytes]]:
            if member.endswith("/version"):
                return [(member, data), (name, payload(s))]
            return [(member, data)]

        return _repacked(add)

    return build


def zip_appended(s: Path) -> bytes:
    def append(member: str, data: bytes) -> list[tuple[str, bytes]]:
        if member.endswith("/data.pkl"):
            return [(member, data + p2_posix_system(s))]
        return [(member, data)]

    return _repacked(append)


def zip_duplicate_data_pkl(s: Path) -> bytes:
    def dup(member: str, data: bytes) -> list[tuple[str, bytes]]:
        if member.endswith("/data.pkl"):
            return [(member, data), (member, p2_posix_system(s))]
        return [(member, data)]

    return _repacked(dup)


def evil_torch_zip(s: Path) -> bytes:
    return torch_zip([("inner/data.pkl", p2_posix_system(s)), ("inner/version", b"3\n")])


def zip_nested_only(s: Path) -> bytes:
    return torch_zip([("model.pt", evil_torch_zip(s))])


def zip_nested_twice(s: Path) -> bytes:
    middle = torch_zip([("middle/weights.zip", evil_torch_zip(s))])
    return torch_zip(
        [("archive/data.pkl", benign_pickle()), ("archive/bundle.zip", middle)]
    )  # fmt: skip


def pickle_appended(s: Path) -> bytes:
    return benign_pickle() + p0_os_system(s)


def legacy_hostile(s: Path) -> bytes:
    """A real legacy (pre-1.6) torch file whose data pickle (the 4th of 5) is hostile."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    ends, pos = [], 0
    for _ in range(5):  # the five pickles, split by pickletools (no unpickling)
        for op, _arg, at in pickletools.genops(io.BytesIO(raw[pos:])):
            if op.name == "STOP":
                pos += at + 1
                break
        ends.append(pos)
    data_start, data_end = ends[2], ends[3]
    evil = proto(2) + glob("os", "system") + binunicode(shell(s)) + TUPLE1 + REDUCE + STOP
    return raw[:data_start] + evil + raw[data_end:]


@dataclass(frozen=True)
class Hostile:
    """One hostile file: how it is built and what it must be flagged for."""

    id: str
    suffix: str
    build: Callable[[Path], bytes]
    dangerous: tuple[str, ...]  # globals the scan must flag as dangerous (any of them)
    why: str


HOSTILE: tuple[Hostile, ...] = (
    Hostile("os-system-global-p0", ".pkl", p0_os_system, ("os.system",), "GLOBAL, protocol 0"),
    Hostile("posix-system-p2", ".pkl", p2_posix_system, ("posix.system",), "GLOBAL, protocol 2"),
    Hostile("inst-popen-p0", ".pkl", p0_inst_popen, ("subprocess.Popen",), "INST, protocol 0"),
    Hostile(
        "inst-check-call-p1", ".pkl", p1_inst_check_call, ("subprocess.check_call",),
        "INST, protocol 1",
    ),
    Hostile("obj-system-p0", ".pkl", p0_obj_system, ("os.system",), "OBJ in a protocol 0 stream"),
    Hostile("obj-call-p1", ".pkl", p1_obj_call, ("subprocess.call",), "OBJ, protocol 1"),
    Hostile(
        "eval-stack-global-memo-p4", ".pkl", p4_eval_memo, ("builtins.eval",),
        "STACK_GLOBAL whose names come from the memo",
    ),
    Hostile(
        "exec-stack-global-p5", ".pkl", p5_exec_frame, ("builtins.exec",),
        "STACK_GLOBAL inside a protocol 5 FRAME",
    ),
    Hostile(
        "getattr-p2", ".pkl", p2_getattr, ("builtins.getattr",),
        "getattr(pathlib.os, 'system'): the module named is harmless",
    ),
    Hostile(
        "import-getattr-p2", ".pkl", p2_import_getattr, ("builtins.__import__",),
        "getattr(__import__('os'), 'system')",
    ),
    Hostile(
        "importlib-p2", ".pkl", p2_importlib, ("importlib.import_module",),
        "methodcaller('system', cmd)(importlib.import_module('os')) (picklescan#74)",
    ),
    Hostile(
        "marshal-p3", ".pkl", p3_marshal, ("marshal.loads", "types.FunctionType"),
        "FunctionType(marshal.loads(code), {})() (picklescan#74)",
    ),
    Hostile("runpy-p2", ".pkl", p2_runpy, ("runpy._run_code",), "runpy._run_code(src, {})"),
    Hostile(
        "mailcap-p2", ".pkl", p2_mailcap, ("mailcap.findmatch",),
        "mailcap.findmatch runs the entry's test command (picklescan#69)",
    ),
    Hostile("pydoc-p2", ".pkl", p2_pydoc, ("pydoc.pipepager",), "pydoc.pipepager runs a shell"),
    Hostile(
        "dotted-name-p4", ".pkl", p4_dotted, ("pathlib.os.system",),
        "STACK_GLOBAL('pathlib', 'os.system'): a dotted name walks to os",
    ),
    Hostile(
        "long-name-p4", ".pkl", p4_long_name, ("posixpath.os" + ".path.os" * 40 + ".system",),
        "a 300-character dotted name",
    ),
    Hostile(
        "escaped-names-p0", ".pkl", p0_escaped_names, ("os.system",),
        "UNICODE '\\u006fs' + STRING 'sy\\x73tem' into STACK_GLOBAL",
    ),
    Hostile(
        "ext1-p2", ".pkl", ext(1, 0xF0), ("copyreg.extension.240",),
        "EXT1 code (whatever the reader's copyreg maps it to)",
    ),
    Hostile("ext2-p2", ".pkl", ext(2, 0xBEEF), ("copyreg.extension.48879",), "EXT2 code"),
    Hostile("ext4-p2", ".pkl", ext(4, 0x7FFFFFF0), ("copyreg.extension.2147483632",), "EXT4"),
    Hostile(
        "call-then-garbage-p2", ".pkl", p2_call_then_garbage, ("os.system",),
        "os.system, then an invalid opcode: pickle.load runs the call before failing",
    ),
    Hostile(
        "big-pickle-p2", ".pkl", p2_big, ("os.system",),
        "1.2 MB pickle (the regex fast path must hand it to the exact machine)",
    ),
    Hostile(
        "pickle-appended", ".pkl", pickle_appended, ("os.system",),
        "a harmless pickle, then a second one after its STOP",
    ),
    Hostile(
        "zip-DATA.PKL", ".pt", zip_main_renamed("DATA.PKL"), ("posix.system",),
        "torch zip whose pickle is archive/DATA.PKL (torch loads it)",
    ),
    Hostile(
        "zip-Data.pkl", ".pt", zip_main_renamed("Data.pkl"), ("posix.system",),
        "torch zip whose pickle is archive/Data.pkl",
    ),
    Hostile(
        "zip-two-pickles", ".pt", zip_with_extra("archive/extra.pkl", p0_os_system),
        ("os.system",), "torch.save output plus archive/extra.pkl",
    ),
    Hostile(
        "zip-dotdot", ".pt", zip_with_extra("archive/../../evil.pkl", p0_os_system),
        ("os.system",), "a member named archive/../../evil.pkl",
    ),
    Hostile(
        "zip-duplicate-data.pkl", ".pt", zip_duplicate_data_pkl, ("posix.system",),
        "two members named archive/data.pkl, the second hostile",
    ),
    Hostile(
        "zip-appended", ".pt", zip_appended, ("posix.system",),
        "a pickle appended after data.pkl's STOP (torch ignores it)",
    ),
    Hostile(
        "zip-nested", ".pt", zip_with_extra("archive/inner.pt", evil_torch_zip),
        ("posix.system",), "a torch zip inside a torch zip",
    ),
    Hostile(
        "zip-nested-only", ".zip", zip_nested_only, ("posix.system",),
        "a zip holding only a hostile model.pt",
    ),
    Hostile(
        "zip-nested-twice", ".pt", zip_nested_twice, ("posix.system",),
        "zip in a zip in a zip",
    ),
    Hostile(
        "legacy-hostile", ".pt", legacy_hostile, ("os.system",),
        "legacy torch format, hostile data pickle",
    ),
)  # fmt: skip


def build_corpus(folder: Path, sentinels: Path) -> list[tuple[Hostile, Path, Path]]:
    """Write every hostile file into `folder`; each one's sentinel lives in `sentinels`."""
    folder.mkdir(parents=True, exist_ok=True)
    sentinels.mkdir(parents=True, exist_ok=True)
    out = []
    for case in HOSTILE:
        sentinel = sentinels / case.id
        path = folder / f"{case.id}{case.suffix}"
        path.write_bytes(case.build(sentinel))
        out.append((case, path, sentinel))
    return out


def reference_globals(data: bytes) -> set[str]:
    """What a pickle would import (GLOBAL/INST, STACK_GLOBAL via the memo, EXT), by pickletools.

    pickletools already decodes UNICODE and STRING arguments, so escaped
    names come out as the unpickler would see them. Pickles following a STOP
    are read too (what a second `pickle.load` would run), and reading stops at
    the first invalid byte (what an unpickler runs before failing).
    """
    names: set[str] = set()
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        memo: dict[int, object] = {}
        recent: list[object] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    names.add(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL":
                    names.add(f"{recent[-2]}.{recent[-1]}")
                elif op.name in ("EXT1", "EXT2", "EXT4"):
                    names.add(f"copyreg.extension.{arg}")
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "STRING"):
                    recent.append(arg)
                elif op.name == "MEMOIZE":
                    memo[len(memo)] = recent[-1] if recent else None
                elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                    memo[arg] = recent[-1] if recent else None
                elif op.name in ("BINGET", "LONG_BINGET", "GET"):
                    recent.append(memo.get(arg))
        except ValueError:  # not (or no longer) a pickle
            break
    return names
