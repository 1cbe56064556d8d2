"""The safetensors header reader refuses exactly what safetensors itself refuses.

`scan.safetensors.read_header` is checked against the installed safetensors
(its Rust `deserialize`, the code `safe_open` and `load_file` run) on crafted
headers, on random mutations of real files, and on real files of every dtype.
Then `ckptcompat scan` on safetensors files: valid ones exit 0, broken ones 2,
and bytes made to be both a safetensors file and a pickle are reported for
what the pickle would run.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ckptcompat.errors import UnreadableCheckpointError
from pytest_ckptcompat.scan.safetensors import read_header
from pytest_ckptcompat.scan.scanner import scan_file

safetensors = pytest.importorskip("safetensors")
from safetensors import deserialize  # noqa: E402
from safetensors.torch import save as st_save  # noqa: E402


def _file(header: object, data: bytes = b"", *, raw: bytes | None = None) -> bytes:
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _t(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def _theirs(data: bytes) -> list[tuple[str, str, list[int]]] | None:
    try:
        return sorted((k, v["dtype"], list(v["shape"])) for k, v in deserialize(data))
    except Exception:
        return None


def _ours(data: bytes) -> list[tuple[str, str, list[int]]] | None:
    try:
        header = read_header(data, "f")
    except UnreadableCheckpointError:
        return None
    return sorted((t.name, t.dtype, list(t.shape)) for t in header.tensors)


A1 = '"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
CRAFTED = {
    "empty": _file({}),
    "one": _file({"a": _t("F32", [2], 0, 8)}, b"\0" * 8),
    "scalar": _file({"a": _t("F32", [], 0, 4)}, b"\0" * 4),
    "zero numel first": _file({"a": _t("F32", [0, 3], 0, 0), "b": _t("U8", [1], 0, 1)}, b"\0"),
    "zero numel last": _file({"b": _t("U8", [1], 0, 1), "a": _t("F32", [0], 1, 1)}, b"\0"),
    "gap": _file({"a": _t("U8", [2], 1, 3)}, b"\0" * 3),
    "overlap": _file({"a": _t("U8", [2], 0, 2), "b": _t("U8", [2], 1, 3)}, b"\0" * 3),
    "end before begin": _file({"a": _t("U8", [0], 0, 0), "b": _t("U8", [1], 1, 0)}, b"\0"),
    "trailing data": _file({"a": _t("U8", [2], 0, 2)}, b"\0" * 3),
    "short data": _file({"a": _t("U8", [2], 0, 2)}, b"\0"),
    "size mismatch": _file({"a": _t("F32", [2], 0, 4)}, b"\0" * 4),
    "F4 even": _file({"a": _t("F4", [4], 0, 2)}, b"\0" * 2),
    "F4 odd": _file({"a": _t("F4", [3], 0, 2)}, b"\0" * 2),
    "F6": _file({"a": _t("F6_E2M3", [4], 0, 3)}, b"\0" * 3),
    "C64": _file({"a": _t("C64", [2], 0, 16)}, b"\0" * 16),
    "E8M0": _file({"a": _t("F8_E8M0", [2], 0, 2)}, b"\0" * 2),
    "unknown dtype": _file({"a": _t("C128", [1], 0, 16)}, b"\0" * 16),
    "lower-case dtype": _file({"a": _t("f32", [1], 0, 4)}, b"\0" * 4),
    "metadata": _file({"__metadata__": {"format": "pt"}, "a": _t("U8", [1], 0, 1)}, b"\0"),
    "metadata null": _file({"__metadata__": None, "a": _t("U8", [1], 0, 1)}, b"\0"),
    "metadata not strings": _file({"__metadata__": {"k": 1}}),
    "metadata a string": _file({"__metadata__": "x"}),
    "extra field": _file({"a": {**_t("U8", [1], 0, 1), "x": [1, {"y": None}]}}, b"\0"),
    "missing field": _file({"a": {"dtype": "U8", "shape": [1]}}, b"\0"),
    "negative shape": _file({"a": _t("U8", [-1], 0, 1)}, b"\0"),
    "float shape": _file({"a": _t("U8", [1.0], 0, 1)}, b"\0"),  # type: ignore[list-item]
    "bool shape": _file({"a": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, b"\0"),
    "three offsets": _file({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}),
    "tensor not an object": _file({"a": 3}),
    "not an object": _file([]),
    "overflow": _file(
        None,
        b"\0",
        raw=b'{"a": {"dtype": "U8", "shape": [18446744073709551615, 2], "data_offsets": [0, 1]}}',
    ),
    "u64 + 1": _file(
        None,
        b"\0",
        raw=b'{"a": {"dtype": "U8", "shape": [18446744073709551616], "data_offsets": [0, 1]}}',
    ),
    "minus zero": _file(
        None, b"\0", raw=b'{"a": {"dtype": "U8", "shape": [-0], "data_offsets": [0, 0]}}'
    ),
    "leading space": _file(None, b"\0", raw=b" {" + A1.encode() + b"}"),
    "tabs and newlines": _file(None, b"\0", raw=b"\t\n{" + A1.encode() + b"}\r\n  "),
    "trailing NUL": _file(None, b"\0", raw=b"{" + A1.encode() + b"}\0"),
    "BOM": _file(None, b"\0", raw=b"\xef\xbb\xbf{" + A1.encode() + b"}"),
    "NaN": _file(
        None, b"\0", raw=b'{"a": {"dtype": "U8", "shape": [NaN], "data_offsets": [0, 1]}}'
    ),
    "Infinity offset": _file(
        None, raw=b'{"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, Infinity]}}'
    ),
    "invalid UTF-8": _file(
        None, b"\0", raw=b'{"\xff": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    ),
    "lone surrogate": _file(
        None, b"\0", raw=b'{"\\ud800": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    ),
    "surrogate pair": _file(
        None,
        b"\0",
        raw=b'{"\\ud83d\\ude00": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}',
    ),
    "escaped dtype": _file(
        None, b"\0", raw=b'{"a": {"dtype": "U\\u0038", "shape": [1], "data_offsets": [0, 1]}}'
    ),
    "duplicate field": _file(
        None,
        b"\0",
        raw=b'{"a": {"dtype": "U8", "d\\u0074ype": "U8", "shape": [1], "data_offsets": [0, 1]}}',
    ),
    "duplicate metadata": _file(None, raw=b'{"__metadata__": null, "__metadata__": null}'),
    "duplicate tensor, last wins": _file(
        None,
        b"\0\0",
        raw=b"{" + A1.encode() + b', "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}',
    ),
    "nested 127": _file(
        None, b"\0", raw=b"{" + A1.encode()[:-1] + b', "x": ' + b"[" * 125 + b"]" * 125 + b"}}"
    ),
    "nested 128": _file(
        None, b"\0", raw=b"{" + A1.encode()[:-1] + b', "x": ' + b"[" * 126 + b"]" * 126 + b"}}"
    ),
    "brackets in strings do not nest": _file(
        None, b"\0", raw=b"{" + A1.encode()[:-1] + b', "x": "' + b"[" * 300 + b'"}}'
    ),
    "header too large": struct.pack("<Q", 100_000_001) + b"{}",
    "header past the end": struct.pack("<Q", 50) + b"{}",
    "too short": b"\x02\0\0",
    "zero-length header": struct.pack("<Q", 0),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_headers_agree_with_safetensors(name):
    data = CRAFTED[name]
    assert _ours(data) == _theirs(data)


def _valid_file() -> bytes:
    g = torch.Generator().manual_seed(0)
    return st_save(
        {
            "visual.conv1.weight": torch.randn(4, 3, 2, 2, generator=g),
            "logit_scale": torch.ones([]),
            "ids": torch.arange(5),
            "half": torch.zeros(3, dtype=torch.float16),
            "mask": torch.zeros(2, dtype=torch.bool),
        },
        metadata={"format": "pt"},
    )


VALID = _valid_file()
HEADER_END = 8 + int.from_bytes(VALID[:8], "little")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, HEADER_END + 8), st.integers(0, 255)), min_size=1, max_size=4
    ),
    cut=st.one_of(st.none(), st.integers(0, len(VALID))),
)
def test_mutated_files_agree_with_safetensors(edits, cut):
    data = bytearray(VALID)
    for at, value in edits:
        if at < len(data):
            data[at] = value
    mutated = bytes(data[:cut] if cut is not None else data)
    assert _ours(mutated) == _theirs(mutated)


_JSON_TEXT = st.text(alphabet='{}[]":, 0123456789-aFUdtypeshaoffs_I8', max_size=60)


@settings(max_examples=300, deadline=None)
@given(text=_JSON_TEXT, data=st.binary(max_size=8))
def test_random_header_text_agrees_with_safetensors(text, data):
    raw = _file(None, data, raw=text.encode())
    assert _ours(raw) == _theirs(raw)


DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.uint16,
    torch.uint32,
    torch.uint64,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
]


def test_real_files_of_every_dtype(tmp_path):
    tensors = {f"t_{str(dt).removeprefix('torch.')}": torch.zeros(2, 3, dtype=dt) for dt in DTYPES}
    path = tmp_path / "all.safetensors"
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    header = read_header(path.read_bytes(), str(path))
    got = {t.name: (t.torch_dtype, t.shape) for t in header.tensors}
    assert got == {k: (str(v.dtype).removeprefix("torch."), (2, 3)) for k, v in tensors.items()}
    assert header.file_size == path.stat().st_size


def test_the_reason_is_named(tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(VALID[:-3])
    with pytest.raises(UnreadableCheckpointError) as info:
        read_header(path.read_bytes(), str(path))
    assert str(info.value).startswith(f"{path}: invalid safetensors file: incomplete metadata")


# --- ckptcompat scan ---------------------------------------------------------------------


def _scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "scan", "--no-project-config", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_scan_of_a_safetensors_file_exits_0(tmp_path, rules):
    path = tmp_path / "model.safetensors"
    path.write_bytes(VALID)
    result = scan_file(path, rules)
    assert result.error is None
    assert result.loadable
    assert result.format == "safetensors"
    assert result.notes[0].startswith("safetensors: no pickle, loads with safetensors (5 tensors")
    proc = _scan(str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: safetensors: no pickle, loads with safetensors")
    doc = json.loads(_scan("--json", str(path)).stdout)
    assert doc["files"][0]["format"] == "safetensors"
    assert doc["files"][0]["loadable"]


def test_scan_of_a_broken_safetensors_file_exits_2(tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(VALID[:-1])
    proc = _scan(str(path))
    assert proc.returncode == 2
    covered = len(VALID) - HEADER_END
    assert proc.stderr.strip() == (
        f"ckptcompat: error: {path}: invalid safetensors file: incomplete metadata, file not "
        f"fully covered: the tensors cover {covered} bytes, the file holds {covered - 1} after "
        "the header"
    )


def test_a_safetensors_lookalike_that_is_a_pickle_is_reported_for_what_it_runs(tmp_path, rules):
    # PROTO 2, LONG1 of 5 bytes (0 0 0 0 '{'): bytes 4-7 are zero and byte 8 is '{', as in a
    # safetensors file; then POP and a protocol 0 call of os.system.
    data = b"\x80\x02\x8a\x05\0\0\0\0{0cos\nsystem\n(S'echo pwned'\ntR."
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    result = scan_file(path, rules)
    assert result.verdict is not None
    assert result.verdict.dangerous
    assert not result.loadable
    assert "os.system" in [r.name for r in result.verdict.requirements]
    proc = _scan(str(path))
    assert proc.returncode == 1
    assert "DANGEROUS" in proc.stdout


@pytest.mark.parametrize("first", sorted(b"\x80(]}).NIFLSVcdlpgtK"))
def test_a_header_whose_length_starts_like_a_pickle(tmp_path, rules, first):
    # The header length's low byte is any byte (safetensors pads its own to 8, others need
    # not); when it is one a pickle can start with, the file is also walked as a pickle,
    # which fails at once: still a clean safetensors file.
    text = json.dumps({"w": _t("F32", [2], 0, 8)}).encode()
    text += b" " * ((first - len(text)) % 256)
    data = _file(None, b"\0" * 8, raw=text)
    assert data[0] == first
    assert _theirs(data) is not None
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    result = scan_file(path, rules)
    assert result.error is None
    assert result.loadable
    assert result.notes[0].startswith("safetensors: no pickle")
    from pytest_ckptcompat.scan.inventory import open_inventory

    inv = open_inventory(path)
    assert inv.format == "safetensors"
    assert inv.problems == []
