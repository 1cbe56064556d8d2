"""Property-based and mutation fuzzing of the scanner (hypothesis).

Properties, whatever the bytes:

- the symbolic machine returns facts or raises `PickleFormatError`, nothing else;
- the regex fast path returns facts or None, never raises, and whenever it
  answers names exactly the machine's globals, statuses and dangers (its full
  verdict is checked on real torch.save output in tests/scan/test_fastpath.py);
- every GLOBAL/INST opcode that `pickletools` sees in a pickle the machine
  accepts is among the machine's globals (nothing can hide from the scan);
- `scan_file` on a mutated real checkpoint never raises: it gives a verdict
  or a one-line `error` naming the file; the command's `main()` exits 0, 1 or 2
  with at most one line on stderr;
- nothing ever runs: payloads that would create a sentinel file are spliced
  into the inputs, and the sentinel never appears.

The suite runs a bounded number of examples (a few seconds). For a long run:

    CKPTCOMPAT_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz.py -p no:xdist
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import pickletools
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_corpus import binunicode, glob, p0_os_system, p2_posix_system, p4_eval_memo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ckptcompat.errors import PickleFormatError
from pytest_ckptcompat.scan.fastpath import analyze_fast
from pytest_ckptcompat.scan.machine import OPCODE_NAMES, PickleFacts, analyze
from pytest_ckptcompat.scan.rules import TorchRules
from pytest_ckptcompat.scan.scanner import scan_file

EXAMPLES = int(os.environ.get("CKPTCOMPAT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=EXAMPLES <= 1000,  # the suite's run is the same every time; long runs explore
)

RULES = TorchRules.from_installed()


@pytest.fixture(scope="module")
def sentinel_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-sentinels")
    yield folder
    assert list(folder.iterdir()) == [], "a payload ran"


# --- random opcode streams ---------------------------------------------------------------

_WORDS = ["os", "system", "builtins", "eval", "torch._utils", "_rebuild_tensor_v2", "f8", "x"]


def _argument(draw, op: int) -> bytes:
    """A plausible (or deliberately wrong) argument for opcode `op`."""
    name = OPCODE_NAMES.get(op, "")
    huge = st.sampled_from([0, 1, 2, 255, 256, 2**31 - 1, 2**32 - 1, 2**63, 2**64 - 1])
    if name in ("GLOBAL", "INST"):
        return (
            draw(st.sampled_from(_WORDS)) + "\n" + draw(st.sampled_from(_WORDS)) + "\n"
        ).encode()
    if name in ("INT", "LONG", "FLOAT", "PUT", "GET", "PERSID"):
        return str(draw(st.integers(-(2**70), 2**70))).encode() + b"\n"
    if name in ("UNICODE", "STRING"):
        text = draw(st.sampled_from([*_WORDS, "'x'", "\\u006fs", "'\\x"]))
        return text.encode("utf-8", "surrogatepass") + b"\n"
    if name in ("SHORT_BINUNICODE", "SHORT_BINBYTES", "SHORT_BINSTRING"):
        body = draw(st.binary(max_size=40))
        size = draw(st.one_of(st.just(len(body)), st.integers(0, 255)))
        return bytes([size]) + body
    if name in ("BINUNICODE", "BINBYTES", "BINSTRING", "LONG4"):
        body = draw(st.binary(max_size=40))
        size = draw(st.one_of(st.just(len(body)), huge.filter(lambda v: v < 2**32)))
        return struct.pack("<I", size) + body
    if name in ("BINUNICODE8", "BINBYTES8", "BYTEARRAY8", "FRAME"):
        body = draw(st.binary(max_size=40))
        size = draw(st.one_of(st.just(len(body)), huge.filter(lambda v: v < 2**64)))
        return struct.pack("<Q", size) + body
    if name == "LONG1":
        body = draw(st.binary(max_size=8))
        return bytes([len(body)]) + body
    widths = {"BININT": 4, "BININT1": 1, "BININT2": 2, "BINFLOAT": 8, "BINPUT": 1, "BINGET": 1}
    widths |= {"LONG_BINPUT": 4, "LONG_BINGET": 4, "EXT1": 1, "EXT2": 2, "EXT4": 4, "PROTO": 1}
    if name in widths:
        return draw(st.binary(min_size=widths[name], max_size=widths[name]))
    return b""


@st.composite
def opcode_streams(draw) -> bytes:
    """Streams of real opcodes (any byte, now and then) with arguments, maybe a STOP."""
    ops = draw(
        st.lists(
            st.one_of(st.sampled_from(sorted(OPCODE_NAMES)), st.integers(0, 255)),
            max_size=60,
        )
    )
    out = bytearray(draw(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"])))
    for op in ops:
        out.append(op)
        out += _argument(draw, op)
    if draw(st.booleans()):
        out += b"."
    return bytes(out)


def _named(facts: PickleFacts):
    """What a scan says about globals: names, counts, statuses, danger."""
    v = RULES.judge(facts)
    names = {k: (g.count, g.opcodes) for k, g in facts.globals.items()}
    statuses = sorted((r.name, r.status, r.dangerous) for r in v.requirements if r.kind == "global")
    return names, statuses, v.dangerous


def _pickletools_globals(data: bytes, end: int) -> set[str]:
    names = set()
    for op, arg, pos in pickletools.genops(data):
        if pos >= end:
            break
        if op.name in ("GLOBAL", "INST"):
            names.add(arg.replace(" ", "."))
    return names


@FUZZ
@given(data=opcode_streams())
def test_random_opcode_streams(data):
    error: PickleFormatError | None = None
    try:
        facts = analyze(data)
    except PickleFormatError as exc:
        error, facts = exc, None
    if error is not None:
        assert "\n" not in str(error)
        assert error.partial is None or isinstance(error.partial, PickleFacts)
    fast = analyze_fast(data, supported=RULES.supported_opcodes, force=True) if data else None
    if facts is None:
        return
    RULES.judge(facts)
    if fast is not None:
        # The fast path trusts the pickler's structure (fastpath's docstring: what
        # APPEND/SETITEM/BUILD target, a persistent id's head), never the globals.
        assert _named(fast) == _named(facts)
    try:
        seen = _pickletools_globals(data, facts.end)
    except ValueError:  # pickletools refuses what the machine accepted: nothing to compare
        return
    assert seen <= set(facts.globals)


@FUZZ
@given(
    prefix=st.binary(max_size=30),
    suffix=st.binary(max_size=30),
    which=st.sampled_from([p0_os_system, p2_posix_system, p4_eval_memo]),
)
def test_payloads_between_random_bytes(prefix, suffix, which, sentinel_dir):
    data = prefix + which(sentinel_dir / "ran") + suffix
    try:
        facts = analyze(data)
    except PickleFormatError:
        return
    RULES.judge(facts)


# --- mutations of real checkpoints --------------------------------------------------------


def _seeds() -> dict[str, bytes]:
    """Real torch.save output (zip, legacy, protocol 4) and plain pickles to mutate."""
    state = {
        "w": torch.arange(6.0).reshape(2, 3),
        "step": 7,
        "lr": np.float64(0.1),
        "rng": np.random.RandomState(0).get_state(),
        "args": argparse.Namespace(lr=0.1),
        "s": {1, 2},
    }
    out = {}
    for name, kwargs in {
        "zip-p2": {},
        "zip-p4": {"pickle_protocol": 4},
        "legacy": {"_use_new_zipfile_serialization": False},
    }.items():
        buf = io.BytesIO()
        torch.save(state, buf, **kwargs)
        out[name] = _pinned_storage_keys(_pinned_serialization_id(buf.getvalue()))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_dated("inner/data.pkl"), pickle.dumps({"a": [1, 2]}, protocol=2))
        zf.writestr(_dated("inner/version"), b"3\n")
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as zf:
        zf.writestr(_dated("archive/data.pkl"), pickle.dumps({"b": 1}, protocol=2))
        zf.writestr(_dated("archive/inner.pt"), inner.getvalue())
    out["zip-nested"] = nested.getvalue()
    out["pickle-p0"] = pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=0)
    out["pickle-p5"] = pickle.dumps({"a": [1, 2.5, b"x" * 300], "b": frozenset([3])}, protocol=5)
    return out


# The seeds are the same bytes on every machine and every run, so the derandomized
# examples are too: CI and a local run of the suite try the same files.


def _dated(name: str) -> zipfile.ZipInfo:
    return zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))


def _pinned_serialization_id(data: bytes) -> bytes:
    """torch.save output with its random `.data/serialization_id` replaced by fixed digits.

    The member is rewritten in place, its CRC-32 too (local header, data descriptor
    and central directory), so the archive is otherwise exactly what torch wrote.
    """
    if not data.startswith(b"PK"):
        return data  # the legacy format: no zip, no id
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = [i for i in zf.infolist() if i.filename.endswith("/.data/serialization_id")]
    if not infos:
        return data  # a torch that writes none
    (info,) = infos
    out = bytearray(data)
    name_len, extra_len = struct.unpack_from("<HH", out, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    new = b"1" * info.compress_size
    out[start : start + len(new)] = new
    old_crc, new_crc = struct.pack("<I", info.CRC), struct.pack("<I", zlib.crc32(new))
    # The name's next appearance after the data is its central-directory entry's.
    central = bytes(out).index(info.filename.encode(), start + len(new)) - 46
    # Local header; data descriptor (with or without its signature); central directory.
    for at in (info.header_offset + 14, start + len(new), start + len(new) + 4, central + 16):
        if out[at : at + 4] == old_crc:
            out[at : at + 4] = new_crc
    with zipfile.ZipFile(io.BytesIO(bytes(out))) as zf:  # CRCs checked: the rewrite is whole
        assert zf.read(info.filename) == new
        assert zf.testzip() is None
    return bytes(out)


def _pinned_storage_keys(data: bytes) -> bytes:
    """The legacy format's storage keys (memory addresses, as decimal strings) made fixed.

    Each key is a BINUNICODE string of digits, in the object pickle and again in the
    list of keys after it; each distinct one becomes a fixed number of the same length.
    """
    if data.startswith(b"PK"):
        return data  # the zip format numbers its storages 0, 1, ...
    keys: dict[bytes, bytes] = {}

    def fixed(found: re.Match[bytes]) -> bytes:
        digits = found.group(2)
        new = keys.setdefault(digits, str(10 ** (len(digits) - 1) + len(keys)).encode())
        return found.group(1) + new

    return re.sub(rb"(X[\x0a-\x14]\x00\x00\x00)(\d{10,20})(?=[qr\x94])", fixed, data)


SEEDS = _seeds()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        # Half the time near the end: a zip's central directory and end records live there.
        low = max(len(data) - 400, 0) if draw(st.booleans()) else 0
        at = draw(st.integers(low, max(len(data) - 1, low)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            data[at:at] = glob("os", "system") + binunicode("true") + b"\x85R"
    return bytes(data)


def _check_scan(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    result = scan_file(path, RULES)
    if result.error is not None:
        assert result.error.startswith(f"{path}: ")
        assert "\n" not in result.error
        assert not result.loadable
    else:
        assert result.verdict is not None
        result.to_json()


@FUZZ
@given(data=mutated())
def test_mutated_checkpoints_never_crash_the_scan(tmp_path, data):
    _check_scan(tmp_path / "mutated.pt", data)


@st.composite
def mutated_data_pkl(draw) -> bytes:
    """A valid zip around a mutated data.pkl: the mutations reach the machine, not just zip."""
    with zipfile.ZipFile(io.BytesIO(SEEDS[draw(st.sampled_from(["zip-p2", "zip-p4"]))])) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members:
            if name.endswith("/data.pkl"):
                data = bytearray(data)
                for _ in range(draw(st.integers(1, 4))):
                    at = draw(st.integers(0, len(data) - 1))
                    if draw(st.booleans()):
                        data[at] = draw(st.integers(0, 255))
                    else:
                        del data[at : at + draw(st.integers(1, 8))]
                data = bytes(data)
            zf.writestr(name, data)
    return out.getvalue()


@FUZZ
@given(data=mutated_data_pkl())
def test_mutated_data_pkl_never_crashes_the_scan(tmp_path, data):
    _check_scan(tmp_path / "mutated.pt", data)


@settings(FUZZ, max_examples=max(EXAMPLES // 5, 10))
@given(data=st.one_of(mutated(), mutated_data_pkl(), st.binary(max_size=200)))
def test_the_command_exits_0_1_or_2_with_one_line(tmp_path, data, sentinel_dir):
    from pytest_ckptcompat.cli import main

    path = tmp_path / "input.pt"
    path.write_bytes(data + p0_os_system(sentinel_dir / "ran") if data[-1:] == b"." else data)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["scan", "--no-project-config", str(path)])
    assert code in (0, 1, 2)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == (code == 2)
    if code == 2:
        assert lines[0].startswith(f"ckptcompat: error: {path}: ")
