"""`ckptcompat show`: what a checkpoint holds, read statically, agrees with the real objects.

- The value-tree walk (`scan.structure`) names exactly the globals the symbolic
  machine names, opcode for opcode, on every corpus file (protocols 2 and 4),
  every hostile payload and random opcode streams; it fails where the machine
  fails.
- Every tensor `show` lists has the dtype, shape and storage sharing of the
  tensor torch.save was given (the corpus and a training checkpoint: tied
  weights, views, Parameters, float8, numpy, a whole nn.Module, the legacy
  format, a plain pickle).
- safetensors files: the header's tensors, metadata and totals.
- Files that can run code are shown (statically), that global marked, and
  nothing runs; hostile nesting and memo reuse cost no more than the file.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import pathlib
import pickle
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ckpt_corpus import CASES, save_case
from hostile_corpus import HOSTILE, build_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ckptcompat.errors import PickleFormatError
from pytest_ckptcompat.scan.container import open_checkpoint
from pytest_ckptcompat.scan.inventory import open_inventory
from pytest_ckptcompat.scan.machine import OPCODE_NAMES, analyze
from pytest_ckptcompat.scan.show import prepare, show_json, show_text
from pytest_ckptcompat.scan.structure import build_tree


def _show(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "show", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _doc(path: Path) -> dict:
    return show_json(prepare(open_inventory(path)))


# --- the walk names what the machine names ----------------------------------------------


def _machine_globals(data: bytes, start: int = 0) -> dict[tuple[str, str], int] | str:
    try:
        facts = analyze(data, start)
    except PickleFormatError as exc:
        return f"error: {str(exc).split(' at byte ')[0]}"
    return {(r.module, r.attr): r.count for r in facts.globals.values()}


def _tree_globals(data: bytes, start: int = 0) -> dict[tuple[str, str], int] | str:
    try:
        tree = build_tree(data, start)
    except PickleFormatError as exc:
        return f"error: {str(exc).split(' at byte ')[0]}"
    return dict(tree.globals)


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("show-corpus")
    out = []
    for case in CASES:
        obj = case.make()
        for protocol in (2, 4):
            path = root / f"{case.id}.p{protocol}.pt"
            save_case(obj, path, protocol)
            out.append((case.id, protocol, obj, path))
    return out


def test_the_walk_names_what_the_machine_names_on_the_corpus(corpus_files):
    for cid, protocol, _, path in corpus_files:
        for blob in open_checkpoint(path).pickles:
            data = bytes(blob.data)
            assert _tree_globals(data, blob.start) == _machine_globals(data, blob.start), (
                cid,
                protocol,
                blob.member,
            )


@pytest.mark.parametrize("case", [c for c in HOSTILE if c.suffix == ".pkl"], ids=lambda c: c.id)
def test_the_walk_names_what_the_machine_names_on_hostile_pickles(tmp_path, case):
    data = case.build(tmp_path / "sentinel")
    assert _tree_globals(data) == _machine_globals(data)
    assert not (tmp_path / "sentinel").exists()


_OPS = sorted(OPCODE_NAMES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(st.tuples(st.sampled_from(_OPS), st.binary(max_size=6)), min_size=1, max_size=30),
    proto=st.integers(0, 5),
)
def test_the_walk_agrees_with_the_machine_on_random_opcode_streams(body, proto):
    data = b"\x80" + bytes([proto]) + b"".join(bytes([op]) + arg for op, arg in body) + b"."
    assert _tree_globals(data) == _machine_globals(data)


# --- tensors as torch.save was given them ----------------------------------------------


def _real_tensors(obj: object) -> list[tuple[str, tuple[int, ...]]]:
    """(dtype, shape) of every tensor reachable in `obj`, as the pickle holds it (each once)."""
    out, seen, todo = [], set(), [obj]
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, torch.Tensor):
            if o.layout == torch.strided and not o.is_quantized:
                out.append((str(o.dtype).removeprefix("torch."), tuple(o.shape)))
            continue
        if isinstance(o, torch.nn.Module):
            todo.extend(vars(o).values())
        elif isinstance(o, dict):
            todo.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            todo.extend(o)
        elif hasattr(o, "__dict__") and not isinstance(o, type):
            todo.extend(vars(o).values())
    return sorted(out)


def test_every_tensor_of_the_corpus_is_shown_as_it_was_saved(corpus_files):
    for cid, protocol, obj, path in corpus_files:
        doc = _doc(path)
        shown = sorted(
            (e["dtype"], tuple(e["shape"]))
            for e in doc["entries"]
            if e["kind"] == "tensor" and e.get("layout") is None
        )
        assert shown == _real_tensors(obj), (cid, protocol)
        assert doc["tensors"] == len(shown), (cid, protocol)


def _training_checkpoint() -> dict:
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    sd["tied.weight"] = sd["0.weight"]  # the same tensor twice
    return {
        "epoch": 3,
        "state_dict": sd,
        "optimizer": torch.optim.Adam(model.parameters()).state_dict(),
        "hparams": argparse.Namespace(lr=0.1, data=pathlib.Path("/data/x")),
        "best": np.float64(0.93),
        "tags": ["a", "b"],
        "f8": torch.zeros(4, dtype=torch.float8_e4m3fn),
        "view": sd["0.weight"][1:],  # a view of the same storage
        "param": torch.nn.Parameter(torch.randn(2, 2, generator=g)),
        "array": np.arange(6, dtype=np.int32).reshape(2, 3),
    }


@pytest.fixture(scope="module")
def training_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "ckpt.pt"
    torch.save(_training_checkpoint(), path)
    return path


def test_a_training_checkpoint_in_json(training_file):
    doc = _doc(training_file)
    assert doc["format"] == "torch-zip"
    by_path = {e["path"]: e for e in doc["entries"]}
    w = by_path["state_dict.0.weight"]
    assert (w["kind"], w["dtype"], w["shape"], w["numel"], w["bytes"]) == (
        "tensor", "float32", [4, 3], 12, 48,
    )  # fmt: skip
    assert by_path["state_dict.tied.weight"] == {
        "path": "state_dict.tied.weight", "key": "tied.weight", "depth": 2, "kind": "ref",
        "type": "torch.Tensor", "same_as": "state_dict.0.weight",
    }  # fmt: skip
    assert by_path["view"]["shape"] == [3, 3]
    assert by_path["view"]["offset"] == 3
    assert by_path["view"]["storage"] == w["storage"]
    assert by_path["param"]["type"] == "torch.nn.parameter.Parameter"
    assert by_path["param"]["requires_grad"] is True
    assert by_path["f8"]["dtype"] == "float8_e4m3fn"
    assert by_path["epoch"]["value"] == "3"
    assert by_path["best"]["value"] == "float64(0.93)"
    assert by_path["hparams"]["kind"] == "object"
    assert by_path["hparams.data"]["value"] == "pathlib.PosixPath('/data/x')"
    assert by_path["hparams.lr"]["value"] == "0.1"
    assert by_path["array"]["kind"] == "array"
    assert (by_path["array"]["dtype"], by_path["array"]["shape"]) == ("int32", [2, 3])
    assert by_path["optimizer.param_groups[0].lr"]["value"] == "0.001"
    assert doc["shared"] == [
        {
            "storage": w["storage"], "dtype": "float32", "bytes": 48,
            "tensors": ["state_dict.0.weight", "state_dict.tied.weight", "view"],
        }
    ]  # fmt: skip
    dtypes = {d["dtype"]: d for d in doc["dtypes"]}
    assert dtypes["float8_e4m3fn"] == {
        "dtype": "float8_e4m3fn",
        "tensors": 1,
        "numel": 4,
        "bytes": 4,
    }
    assert dtypes["float32"]["tensors"] == 6  # 4 in the state dict, the view, the Parameter
    # each storage once: 48 + 16 + 32 + 8 (state dict) + 4 (f8) + 16 (param)
    assert doc["bytes"] == 124
    assert not any(g["dangerous"] for g in doc["globals"])


def test_a_training_checkpoint_as_text(training_file):
    proc = _show(str(training_file))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        f"{training_file}: torch-zip, 7 tensors in 6 storages, 43 elements, 124 B of tensor data"
    )
    text = proc.stdout
    assert "state_dict                    OrderedDict, 5 entries (+ attribute _metadata)" in text
    assert "tied.weight                 (same tensor as state_dict.0.weight)" in text
    assert "storage 0 (float32, 48 B): state_dict.0.weight, state_dict.tied.weight, view" in text
    assert "best                          numpy float64 0.93" in text


def test_legacy_format_and_plain_pickle(tmp_path):
    obj = _training_checkpoint()
    legacy = tmp_path / "legacy.pt"
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    doc = _doc(legacy)
    assert doc["format"] == "torch-legacy"
    shown = sorted((e["dtype"], tuple(e["shape"])) for e in doc["entries"] if e["kind"] == "tensor")
    assert shown == _real_tensors(obj)
    assert len(doc["shared"]) == 1
    plain = tmp_path / "plain.pkl"
    with open(plain, "wb") as fh:
        pickle.dump({"a": [1, 2.5, "x"], "b": {"c": None}}, fh)
    doc = _doc(plain)
    assert doc["format"] == "pickle"
    assert {e["path"]: e.get("value") for e in doc["entries"]}["a"] == "[1, 2.5, 'x']"
    assert "a plain pickle, not a torch.save file" in doc["problems"][0]


def test_a_whole_module_is_shown_with_its_parameters(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(3, 2), path)
    doc = _doc(path)
    tensors = {e["path"]: e for e in doc["entries"] if e["kind"] == "tensor"}
    assert {k: v["shape"] for k, v in tensors.items()} == {
        "._parameters.weight": [2, 3],
        "._parameters.bias": [2],
    }
    assert doc["entries"][0]["type"] == "torch.nn.modules.linear.Linear"


def test_a_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    tensors = {"b": torch.zeros(2, 2, dtype=torch.float16), "a": torch.ones(3)}
    save_file(tensors, str(path), metadata={"format": "pt"})
    doc = _doc(path)
    assert doc["format"] == "safetensors"
    assert doc["metadata"] == {"format": "pt"}
    assert [(e["path"], e["dtype"], e["shape"], e["bytes"]) for e in doc["entries"]] == [
        ("a", "float32", [3], 12),
        ("b", "float16", [2, 2], 8),
    ]
    assert (doc["tensors"], doc["numel"], doc["bytes"]) == (2, 7, 20)
    text = _show(str(path)).stdout
    assert text.splitlines()[0].startswith(
        f"{path}: safetensors, 2 tensors, 7 elements, 20 B of tensor data, header "
    )
    assert "  metadata: format=pt" in text


def test_json_schema_and_errors(tmp_path, training_file):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(b"\x10\0\0\0\0\0\0\0{}")
    proc = _show("--json", str(training_file), str(bad))
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "ckptcompat.show/1"
    assert doc["files"][0]["error"] is None
    assert doc["files"][1]["error"].startswith(f"{bad}: invalid safetensors file")
    assert proc.stderr.startswith(f"ckptcompat: error: {bad}: invalid safetensors file")


# --- hostile files: shown, marked, never run --------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("show-hostile")
    sentinels = root / "sentinels"
    files = build_corpus(root / "files", sentinels)
    yield files, sentinels
    time.sleep(0.2)
    assert sorted(p.name for p in sentinels.iterdir()) == [], "a hostile payload ran"


def test_hostile_files_are_shown_with_their_dangerous_globals_marked(hostile):
    files, sentinels = hostile
    proc = _show("--json", *(str(p) for _, p, _ in files))
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    records = {Path(r["path"]).name: r for r in json.loads(proc.stdout)["files"]}
    for case, path, _ in files:
        record = records[path.name]
        if record["error"] is not None:
            # unreadable and nothing dangerous could be read: only broken payloads
            assert "error" in record["error"] or ":" in record["error"], case.id
            continue
        dangerous = {g["name"] for g in record["globals"] if g["dangerous"]}
        assert dangerous, (case.id, record["globals"])
    time.sleep(0.1)
    assert list(sentinels.iterdir()) == []


def test_a_dangerous_call_is_marked_in_the_tree(tmp_path):
    # {"cmd": os.system("echo pwned")}, protocol 0: shown as the call it is
    data = b"(dp0\nVcmd\np1\ncos\nsystem\n(Vecho pwned\ntRs."
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    proc = _show(str(path))
    assert proc.returncode == 0, proc.stderr
    assert "  cmd  os.system('echo pwned')  DANGEROUS: runs commands or code" in proc.stdout
    assert "DANGEROUS os.system x1: runs commands or code" in proc.stdout
    doc = json.loads(_show("--json", str(path)).stdout)["files"][0]
    cmd = next(e for e in doc["entries"] if e["path"] == "cmd")
    assert cmd["dangerous"] == "runs commands or code"


def _nested(depth: int) -> bytes:
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def test_deep_nesting_is_cut_at_the_depth_limit(tmp_path):
    path = tmp_path / "deep.pkl"
    path.write_bytes(_nested(100_000))
    start = time.perf_counter()
    proc = _show(str(path))
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start < 30
    assert len(proc.stdout) < 20_000
    assert "nested deeper than shown" in proc.stdout
    everything = _show("--depth", "0", "--json", str(path))
    assert len(json.loads(everything.stdout)["files"][0]["entries"]) == 100_000


def test_memo_reuse_is_shown_once(tmp_path):
    # t0 = []; t(i+1) = (ti, ti): 2**60 leaves when expanded, 61 objects in the pickle
    body = b"\x80\x02]q\x00"
    for i in range(60):
        body += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1])
    path = tmp_path / "laughs.pkl"
    path.write_bytes(body + b".")
    start = time.perf_counter()
    proc = _show("--depth", "0", str(path))
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start < 30
    assert proc.stdout.count("(same object as") == 60


def test_show_reads_no_tensor_bytes(tmp_path):
    # A checkpoint whose storage records are garbage after the zip directory is built: show
    # reads the pickle and the directory only, so it does not notice (and does not care).
    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(1024, 1024)}, path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("big/data/0")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 64
    raw[start : start + 1000] = b"\xff" * 1000
    path.write_bytes(bytes(raw))
    doc = _doc(path)
    assert doc["bytes"] == 4 << 20
    assert doc["problems"] == []


def test_a_missing_storage_record_is_a_problem(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith("/data/0"):
                dst.writestr(item, src.read(item))
    path = tmp_path / "nostorage.pt"
    path.write_bytes(out.getvalue())
    doc = _doc(path)
    assert doc["problems"] == [
        "storage 0: no archive/data/0 record in the archive (torch.load fails)"
    ]


def test_show_never_imports_torch(tmp_path, training_file):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from pytest_ckptcompat.cli import main\n"
        f"assert main(['show', {str(training_file)!r}]) == 0\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "state_dict" in proc.stdout


def test_show_text_is_stable_for_a_small_file(tmp_path):
    path = tmp_path / "small.pt"
    torch.save(collections.OrderedDict(w=torch.zeros(2, 3), b=torch.zeros(3)), path)
    assert show_text(prepare(open_inventory(path))) == "\n".join(
        [
            f"{path}: torch-zip, 2 tensors in 2 storages, 9 elements, 36 B of tensor data",
            "  w  float32  [2, 3]  6 elements  24 B",
            "  b  float32  [3]     3 elements  12 B",
            "dtypes:",
            "  float32  2 tensors  9 elements  36 B",
            "globals (3): collections.OrderedDict, torch.FloatStorage, "
            "torch._utils._rebuild_tensor_v2",
        ]
    )


def test_a_closed_pipe_is_no_traceback(tmp_path):
    path = tmp_path / "many.pkl"
    with open(path, "wb") as fh:
        pickle.dump({f"key{i}": i for i in range(20_000)}, fh)  # ~0.5 MB of text: > a pipe
    proc = subprocess.run(
        f"{sys.executable} -m pytest_ckptcompat show {path} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.startswith(f"{path}: pickle")
    assert proc.stderr == ""


def _edited(tmp_path, name, edit_pickle, drop=""):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if drop and item.filename.endswith(drop):
                continue
            if item.filename.endswith("/data.pkl"):
                data = edit_pickle(data)
            dst.writestr(item, data)
    path = tmp_path / name
    path.write_bytes(out.getvalue())
    return path


def test_show_reads_storage_ids_as_the_scan_does(tmp_path):
    """An integer storage key (torch reads data/0) and a negative stride: show's problems
    are the scan's (`scan.storages`), whichever walk read the pickle."""
    from pytest_ckptcompat.scan.scanner import scan_file
    from pytest_ckptcompat.scan.torch_table import rules_for

    int_key = _edited(
        tmp_path, "intkey.pt", lambda d: d.replace(b"X\x01\x00\x00\x000", b"K\x00", 1), "/data/0"
    )
    negative = _edited(
        tmp_path, "negstride.pt", lambda d: d.replace(b"K\x01\x85", b"J\xff\xff\xff\xff\x85", 1)
    )
    for path, fragment in (
        (int_key, "storage 0: no archive/data/0 record in the archive"),
        (negative, "stride [-1]"),
    ):
        with pytest.raises(Exception):  # noqa: B017, PT011 - torch refuses both, in its own words
            torch.load(path, weights_only=True)
        scan = scan_file(path, rules_for("2.13.0"))
        assert any(fragment in r for r in scan.reasons()), scan.reasons()
        assert any(fragment in p for p in _doc(path)["problems"]), _doc(path)["problems"]


def test_the_main_pickle_is_the_one_torch_reads_whatever_the_member_order(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        folder = src.namelist()[0].split("/")[0]
        dst.writestr(f"{folder}/aaa_extra.pkl", pickle.dumps({"x": 1}, protocol=2))
        for item in src.infolist():
            dst.writestr(item, src.read(item))
    path = tmp_path / "order.pt"
    path.write_bytes(out.getvalue())
    text = subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "show", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"other pickles (torch.load does not read them): {folder}/aaa_extra.pkl" in text
