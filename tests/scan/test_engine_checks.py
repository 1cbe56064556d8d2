"""The scan's checks for what runs code without naming a dangerous global.

- a TorchScript archive whose code defines `__setstate__` (torch.jit.load runs
  it; torch <= 2.5 does so under `torch.load(weights_only=True)`);
- a numpy dtype whose BUILD state hides objects (numpy trusts its flags);
- SETITEM into a tensor or storage (torch < 2.10 lets it through);
- tar archives and `.npy` members under other names are opened.
"""

from __future__ import annotations

import io
import pickle
import sys
import zipfile
from pathlib import Path

import pytest
from advisory_corpus import CASES, _scripted, forged_dtype_array, legacy_tar

from pytest_ckptcompat.cli import main
from pytest_ckptcompat.scan.fastpath import analyze_fast
from pytest_ckptcompat.scan.machine import analyze, hides_objects
from pytest_ckptcompat.scan.rules import TorchRules
from pytest_ckptcompat.scan.scanner import scan_file

BY_ID = {case.id: case for case in CASES}


def _data_pkl(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def test_forged_dtype_is_found_by_both_paths(rules):
    small = _data_pkl(forged_dtype_array())
    assert dict(analyze(small).forged_dtypes) == {"numpy.dtypes.Float64DType": 1}
    big = _data_pkl(BY_ID["numpy-forged-dtype-big"].build(Path("/nonexistent"), 0))
    assert len(big) > 1_000_000
    # The fast path cannot read a dtype's flags: it hands the pickle to the machine.
    assert analyze_fast(big, supported=rules.supported_opcodes) is None
    assert dict(analyze(big).forged_dtypes) == {"numpy.dtypes.Float64DType": 1}


@pytest.mark.parametrize(
    ("type_name", "state", "hides"),
    [
        ("numpy.dtypes.Float64DType", (3, "<", None, None, None, -1, -1, 0), False),
        ("numpy.dtypes.ObjectDType", (3, "|", None, None, None, -1, -1, 63), False),
        ("numpy.dtypes.ObjectDType", (3, "|", None, None, None, -1, -1, 0), True),
        ("numpy.dtype[object_]", (3, "|", None, None, None, -1, -1, 0), True),
        ("numpy.dtypes.Float64DType", (3, "<", None, ("a",), {}, 8, 1, 0), True),
        ("numpy.dtypes.VoidDType", (3, "|", ("sub",), None, None, 8, 1, 0), True),
        ("numpy.dtypes.VoidDType", (3, "|", None, ("a",), {}, 8, 1, 63), False),
        ("numpy.dtypes.DateTime64DType", (4, "<", None, None, None, -1, -1, 0, ({}, ())), False),
        ("numpy.dtype", (3, "<", None, None, None, -1, -1, 0), False),
        ("collections.OrderedDict", (3, "<", None, ("a",), {}, 8, 1, 0), False),
        ("numpy.dtypes.ObjectDType", {"flags": 0}, False),
    ],
)
def test_hides_objects(type_name, state, hides):
    assert hides_objects(type_name, state) is hides


def test_a_structured_dtype_hides_nothing_when_the_pickle_made_no_object_dtype():
    state = (3, "|", None, ("x", "y"), {}, 8, 1, 0)
    assert not hides_objects("numpy.dtypes.VoidDType", state, object_fields=False)
    assert hides_objects("numpy.dtypes.VoidDType", state, object_fields=True)


def test_honest_structured_arrays_are_not_flagged():
    import numpy as np
    import torch

    for dtype in ([("x", "f4"), ("y", "i4")], [("x", "f4"), ("o", "O")], ("f8", (2,))):
        buf = io.BytesIO()
        torch.save({"rec": np.zeros(2, dtype=dtype)}, buf)
        assert not analyze(_data_pkl(buf.getvalue())).forged_dtypes, dtype


def test_honest_numpy_pickles_keep_the_fast_path(rules):
    import numpy as np
    import torch

    buf = io.BytesIO()
    obj = {f"k{i}": (np.float64(i), np.arange(3.0), np.str_("x"), np.datetime64("2020-01-01"))
           for i in range(3000)}  # fmt: skip
    torch.save(obj, buf)
    data = _data_pkl(buf.getvalue())
    facts = analyze_fast(data, supported=rules.supported_opcodes, force=True)
    assert facts is not None
    assert not analyze(data).forged_dtypes


def test_setitem_into_a_tensor_is_dangerous_on_every_torch():
    data = _data_pkl(BY_ID["tensor-setitem"].build(Path("/nonexistent"), 0))
    facts = analyze(data)
    assert dict(facts.setitems) == {"torch.Tensor": 1}
    for version in ("2.5.1", "2.9.0", "2.13.0"):
        verdict = TorchRules(version, frozenset()).judge(facts)
        (req,) = [r for r in verdict.requirements if r.dangerous]
        assert req.name == "SETITEM on torch.Tensor"
        assert not verdict.loadable


def test_benign_torchscript_is_not_dangerous(tmp_path):
    path = tmp_path / "plain.pt"
    path.write_bytes(_scripted(None))
    scan = scan_file(path, TorchRules.from_installed())
    assert scan.verdict is not None
    assert not scan.verdict.dangerous
    assert scan.format == "torchscript"
    assert not scan.loadable


def test_benign_legacy_tar_is_still_one_line_exit_2(tmp_path):
    path = tmp_path / "old.tar"
    path.write_bytes(legacy_tar(pickle.dumps({"w": 1}, protocol=2)))
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", err)
        assert main(["scan", "--no-project-config", str(path)]) == 2
    assert err.getvalue().count("\n") == 1
    assert "legacy .tar checkpoint" in err.getvalue()


def _scan(tmp_path: Path, case_id: str):
    path = tmp_path / f"{case_id}{BY_ID[case_id].suffix}"
    path.write_bytes(BY_ID[case_id].build(tmp_path / "never-created", 0))
    return scan_file(path, TorchRules.from_installed())


def test_torchscript_setstate_is_dangerous_and_gets_no_jit_load_advice(tmp_path):
    scan = _scan(tmp_path, "torchscript-setstate")
    assert scan.verdict is not None
    (req,) = [r for r in scan.verdict.requirements if r.dangerous]
    assert req.name.startswith("TorchScript __setstate__ in ")
    assert "CVE-2025-32434" in req.note
    assert not scan.loadable
    (obstacle,) = [o for o in scan.verdict.obstacles if o.code == "torchscript"]
    assert "load it with torch.jit.load" not in obstacle.message


@pytest.mark.parametrize(
    "case_id",
    [
        "legacy-tar",
        "zip-in-tar",
        "npy-in-zip-as-bin",
        "npz-deflated-object-array",
        "gzip-pickle",
        "bz2-torch-zip",
        "xz-npy",
    ],
)
def test_pickles_in_tar_and_numpy_members_are_scanned(tmp_path, case_id):
    scan = _scan(tmp_path, case_id)
    assert scan.error is None
    assert scan.verdict is not None
    assert [r.name for r in scan.verdict.requirements if r.dangerous] == ["builtins.exec"]


def test_a_dangerous_file_gets_no_allowlist_code(tmp_path):
    """Even its plain-data names (numpy here) get no entry: the file carries a payload."""
    from pytest_ckptcompat.scan.fixes import DANGEROUS_FILE, advise

    scan = _scan(tmp_path, "numpy-forged-dtype")
    assert scan.verdict is not None
    text = advise(scan.verdict)
    assert DANGEROUS_FILE in text
    assert "add_safe_globals" not in text
    assert "numpy.ndarray" not in text


@pytest.mark.parametrize("suffix", [".pkl.gz", ".pt.bz2", ".npy.xz"])
def test_benign_compressed_files_are_one_line_exit_2(tmp_path, suffix):
    import bz2
    import gzip
    import lzma

    compress = {".pkl.gz": gzip.compress, ".pt.bz2": bz2.compress, ".npy.xz": lzma.compress}
    path = tmp_path / f"model{suffix}"
    path.write_bytes(compress[suffix](pickle.dumps({"w": [1.0, 2.0]}, protocol=2)))
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", err)
        assert main(["scan", "--no-project-config", str(path)]) == 2
    assert err.getvalue().count("\n") == 1
    assert "-compressed file: torch.load does not read it" in err.getvalue()


def test_a_gzip_bomb_is_read_no_further_than_the_cap(tmp_path, monkeypatch):
    import gzip

    from pytest_ckptcompat.scan import container

    monkeypatch.setattr(container, "MAX_DECOMPRESSED", 1 << 20)
    path = tmp_path / "bomb.pkl.gz"
    path.write_bytes(gzip.compress(b"\x80\x02]" + b"N" * (8 << 20)))
    assert len(container._decompressed(path.read_bytes(), "gzip")) == 1 << 20
    scan = scan_file(path, TorchRules.from_installed())
    assert scan.error is not None  # a truncated, harmless pickle: unreadable, one line
