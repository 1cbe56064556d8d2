"""A checkpoint's tensor records, judged as the real torch.load judges them.

Each case is a real `torch.save` archive changed the way a broken download, a
hand-edited file or a bad writer changes it: a `data/<key>` record missing,
shorter or longer than its storage, compressed with a method miniz lacks, a
tensor reaching past its storage. The scan (exact machine and fast path, the
installed torch and `--torch` predictions) must say what `torch.load(...,
weights_only=True)` does: torch 2.13 here, torch 2.5.1 in the slow test (it
reads a short record past its end and loads; torch >= 2.10 refuses it).
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch_envs import real_loads

from pytest_ckptcompat.scan.container import open_checkpoint
from pytest_ckptcompat.scan.fastpath import FAST_MIN_BYTES, analyze_fast
from pytest_ckptcompat.scan.inventory import open_inventory
from pytest_ckptcompat.scan.predict import predict_file
from pytest_ckptcompat.scan.scanner import scan_file

Edit = Callable[[str, bytes], "tuple[bytes, int] | None"]
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED


def _keep(name: str, data: bytes) -> tuple[bytes, int]:
    return data, STORED


def _on(suffix: str, then: Callable[[bytes], tuple[bytes, int] | None]) -> Edit:
    def edit(name: str, data: bytes) -> tuple[bytes, int] | None:
        return then(data) if name.endswith(suffix) else (data, STORED)

    return edit


def _grow_first_tensor(name: str, data: bytes) -> tuple[bytes, int]:
    """The first tensor's shape (10,) becomes (20,): it reaches past its storage of 10."""
    if name.endswith("/data.pkl"):
        at = data.index(b"K\x0a\x85")
        data = data[:at] + b"K\x14\x85" + data[at + 3 :]
    return data, STORED


def _offset_first_tensor(name: str, data: bytes) -> tuple[bytes, int]:
    """The first tensor's offset 0 becomes 1: its last element lies past the storage."""
    if name.endswith("/data.pkl"):
        at = data.index(b"QK\x00K\x0a\x85")
        data = data[:at] + b"QK\x01K\x0a\x85" + data[at + 6 :]
    return data, STORED


CASES: dict[str, Edit] = {
    "as saved": _keep,
    "all deflated": lambda n, d: (d, DEFLATED),
    "record missing": _on("/data/0", lambda d: None),
    "empty storage's record missing": _on("/data/2", lambda d: None),
    "record short": _on("/data/0", lambda d: (d[:8], STORED)),
    "record long": _on("/data/0", lambda d: (d + b"\x00" * 8, STORED)),
    "record bzip2": _on("/data/0", lambda d: (d, zipfile.ZIP_BZIP2)),
    "record lzma": _on("/data/0", lambda d: (d, zipfile.ZIP_LZMA)),
    "empty record bzip2": _on("/data/2", lambda d: (d, zipfile.ZIP_BZIP2)),
    "tensor past its storage": _grow_first_tensor,
    "tensor offset past its storage": _offset_first_tensor,
}


def _objects(many: int) -> dict[str, object]:
    """Storage 0 of 10 floats, 1 shared by views, 2 empty; `many` small tensors after."""
    shared = torch.arange(6, dtype=torch.int64)
    out: dict[str, object] = {
        "w": torch.arange(10, dtype=torch.float32),
        "views": [shared[:3], shared[2:], shared.view(2, 3)],
        "empty": torch.zeros(0),
        "half": torch.ones(3, dtype=torch.float16),
    }
    out.update({f"t{i}": torch.full((2,), float(i)) for i in range(many)})
    return out


def _rewrite(raw: bytes, edit: Edit) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            changed = edit(info.filename, src.read(info))
            if changed is None:
                continue
            item = zipfile.ZipInfo(info.filename, info.date_time)
            item.compress_type = changed[1]
            dst.writestr(item, changed[0])
    return out.getvalue()


def _build(root: Path, many: int) -> dict[str, Path]:
    buf = io.BytesIO()
    torch.save(_objects(many), buf)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, edit in CASES.items():
        path = root / (name.replace(" ", "_").replace("'", "") + ".pt")
        path.write_bytes(_rewrite(buf.getvalue(), edit))
        files[name] = path
    return files


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    return _build(tmp_path_factory.mktemp("records") / "small", 0)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> dict[str, Path]:
    """The same cases with a data.pkl over the fast path's threshold."""
    return _build(tmp_path_factory.mktemp("records") / "big", 12_000)


def _loads(path: Path) -> bool:
    try:
        torch.load(path, weights_only=True)
    except Exception:  # any failure of the real loader is "does not load"
        return False
    return True


EXPECTED_HERE = {  # torch 2.13, measured; the test also checks the real load says the same
    "as saved": True,
    "all deflated": True,
    "record missing": False,
    "empty storage's record missing": False,
    "record short": False,
    "record long": False,
    "record bzip2": False,
    "record lzma": False,
    "empty record bzip2": False,
    "tensor past its storage": False,
    "tensor offset past its storage": False,
}


@pytest.mark.parametrize("size", ["small", "big"])
@pytest.mark.parametrize("case", list(CASES))
def test_scan_agrees_with_the_real_load(request, rules, case, size):
    path = request.getfixturevalue(size)[case]
    real = _loads(path)
    if rules.release == (2, 13):
        assert real == EXPECTED_HERE[case]  # the cases still test what they say
    scan = scan_file(path, rules)
    assert scan.error is None
    assert scan.loadable == real, scan.reasons()
    if not real:
        assert any(o.code == "records" for o in scan.verdict.obstacles), scan.reasons()
    assert not any("could not read" in n for n in scan.notes), scan.notes


def test_the_big_files_are_read_by_the_fast_path(big, rules):
    for path in big.values():
        blob = next(b for b in open_checkpoint(path).pickles if b.main)
        assert len(blob.data) - blob.start > FAST_MIN_BYTES
        facts = analyze_fast(blob.data, blob.start, supported=rules.supported_opcodes)
        assert facts is not None, path.name
        assert len(facts.storages) == 12_004
        assert facts.unread_storages == facts.unread_tensors == 0


def test_a_short_record_is_a_note_for_torch_before_2_10(small):
    prediction = predict_file(small["record short"], ["2.5.1", "2.9.1", "2.10.0", "2.13.0"])
    loads = {v: s.loadable for v, s in prediction.scans.items()}
    assert loads == {"2.5.1": True, "2.9.1": True, "2.10.0": False, "2.13.0": False}
    note = " ".join(prediction.scans["2.5.1"].notes)
    assert "reads memory past the record's end" in note


def test_show_lists_the_same_problems(small):
    inv = open_inventory(small["record bzip2"])
    assert any("compression method 12" in p for p in inv.problems)
    inv = open_inventory(small["tensor past its storage"])
    assert any("needs 20 elements of storage 0, which holds 10" in p for p in inv.problems)
    assert open_inventory(small["as saved"]).problems == []


@pytest.mark.slow
@pytest.mark.parametrize("size", ["small", "big"])
def test_torch_2_5_agrees_with_its_scan_and_with_the_prediction(request, old_python, size):
    files = request.getfixturevalue(size)
    paths = [str(p) for p in files.values()]
    real = real_loads(old_python, paths)
    assert real[str(files["record short"])] is True  # torch < 2.10 reads past the record
    assert real[str(files["record missing"])] is False
    proc = subprocess.run(
        [
            str(old_python),
            "-m",
            "pytest_ckptcompat",
            "scan",
            "--json",
            "--no-project-config",
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    scanned = {r["path"]: r["loadable"] for r in json.loads(proc.stdout)["files"]}
    assert scanned == real
    predicted = {p: predict_file(p, ["2.5.1"]).scans["2.5.1"].loadable for p in paths}
    assert predicted == real


# --- where torch puts the storages ---------------------------------------------------

LOCATIONS = {
    "cpu": True,
    "meta": True,
    "cuda:0": False,
    "mps": False,
    "xpu": False,
    "cpu:0": False,  # torch's cpu tag is exactly "cpu"
    "somewhere": False,
}


def _located(root: Path, many: int) -> dict[str, Path]:
    """A real archive whose storages all name `location` (the first id's string, memoized)."""
    buf = io.BytesIO()
    torch.save(_objects(many), buf)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for location in LOCATIONS:
        raw = location.encode()

        def edit(name: str, data: bytes, raw: bytes = raw) -> tuple[bytes, int]:
            if name.endswith("/data.pkl"):
                literal = b"X\x03\x00\x00\x00cpu"
                assert data.count(literal) == 1  # every later id GETs it from the memo
                data = data.replace(literal, b"X" + len(raw).to_bytes(4, "little") + raw)
            return data, STORED

        out[location] = root / f"{location.replace(':', '_')}.pt"
        out[location].write_bytes(_rewrite(buf.getvalue(), edit))
    return out


@pytest.mark.parametrize("many", [0, 12_000])
def test_a_cpu_build_refuses_every_location_but_cpu_and_meta(tmp_path, rules, many):
    if not rules.version.endswith("+cpu"):
        pytest.skip(f"needs a CPU build of torch (this is {rules.version})")
    for location, path in _located(tmp_path, many).items():
        real = _loads(path)
        assert real == LOCATIONS[location], location  # measured on torch 2.13.0+cpu
        scan = scan_file(path, rules)
        assert scan.loadable == real, (location, scan.reasons())
        if not real:
            assert f"storages saved on {location}: a CPU build of torch" in " ".join(scan.reasons())


def test_another_build_is_told_what_the_location_needs(tmp_path):
    files = _located(tmp_path, 0)
    prediction = predict_file(files["cuda:0"], ["2.5.1"]).scans["2.5.1"]
    assert prediction.loadable  # a CUDA build on a machine with a GPU loads it
    assert any(
        n.startswith("storages saved on cuda:0: torch.load puts them there")
        for n in prediction.notes
    )
    assert not [
        n for n in predict_file(files["meta"], ["2.5.1"]).scans["2.5.1"].notes if "saved on" in n
    ]


def test_a_float8_tensor_does_not_hide_the_others_on_the_fast_path(tmp_path, rules):
    """One `_rebuild_tensor_v3` tensor (float8) in a big pickle: the v2 ones are still checked."""
    buf = io.BytesIO()
    objects = _objects(12_000)
    objects["f8"] = torch.zeros(4, dtype=torch.float8_e4m3fn)
    torch.save(objects, buf)
    path = tmp_path / "f8.pt"
    path.write_bytes(_rewrite(buf.getvalue(), _grow_first_tensor))
    blob = next(b for b in open_checkpoint(path).pickles if b.main)
    assert analyze_fast(blob.data, blob.start, supported=rules.supported_opcodes) is not None
    assert not _loads(path)
    scan = scan_file(path, rules)
    assert not scan.loadable
    assert any("needs 20 elements of storage 0" in r for r in scan.reasons()), scan.reasons()


@pytest.mark.parametrize("member", ["/data/0", "/.data/serialization_id", "/byteorder"])
def test_an_encrypted_record_is_one_torch_cannot_read(tmp_path, rules, member):
    """miniz refuses an encrypted member ("unsupported encryption"): the scan's one rule for
    what torch can read (`ziparchive.torch_refusal`) says so for records of each kind."""
    buf = io.BytesIO()
    torch.save(_objects(0), buf)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        (info,) = [i for i in zf.infolist() if i.filename.endswith(member)]
    # The encryption flag (bit 0) in its local header and its central directory entry,
    # on bytes left as they were (zipfile clears flags it writes itself).
    data[info.header_offset + 6] |= 0x1
    entry = data.index(b"PK\x01\x02")  # the first central directory entry
    while data[entry + 46 : entry + 46 + len(info.filename)] != info.filename.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 8] |= 0x1
    path = tmp_path / "encrypted.pt"
    path.write_bytes(bytes(data))
    assert not _loads(path)
    scan = scan_file(path, rules)
    assert not scan.loadable
    assert any("encrypted" in r for r in scan.reasons()), scan.reasons()


def test_a_legacy_file_saved_on_a_gpu_is_judged_like_a_zip(tmp_path, rules):
    if not rules.version.endswith("+cpu"):
        pytest.skip(f"needs a CPU build of torch (this is {rules.version})")
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    assert raw.count(b"X\x03\x00\x00\x00cpu") == 1
    path = tmp_path / "legacy_cuda.pt"
    path.write_bytes(raw.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"))
    assert not _loads(path)
    scan = scan_file(path, rules)
    assert scan.format == "torch-legacy"
    assert not scan.loadable
    assert any("storages saved on cuda:0" in r for r in scan.reasons()), scan.reasons()
