"""`ckptcompat scan`: output, JSON schema and exit codes, through the real console entry."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from run_cli import ckptcompat


@pytest.fixture
def files(tmp_path):
    ok = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(2)}, ok)
    ns = tmp_path / "ns.pt"
    torch.save({"hparams": argparse.Namespace(lr=0.1), "m": np.float64(1.0)}, ns)
    return ok, ns


def test_json_schema_and_verdicts(files):
    ok, ns = files
    proc = ckptcompat("scan", "--json", "--no-project-config", ok, ns)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "ckptcompat.scan/1"
    first, second = doc["files"]
    assert first["loadable"] is True
    assert first["error"] is None
    assert first["format"] == "torch-zip"
    statuses = {g["name"]: g["status"] for g in second["globals"]}
    assert statuses["argparse.Namespace"] == "blocked"
    assert statuses["numpy.dtypes.Float64DType"] == "blocked"
    assert {"name", "status", "dangerous", "count"} <= set(second["globals"][0])
    assert second["loadable"] is False
    assert second["reasons"]


@pytest.mark.skipif(
    tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) < (2, 4),
    reason="torch < 2.4 has no allowlist",
)
def test_safe_global_option_and_ini(files, tmp_path):
    _, ns = files
    names = [
        "_codecs.encode",  # default-allowed from torch 2.5; 2.4 needs it listed
        "argparse.Namespace",
        "numpy._core.multiarray.scalar",
        "numpy.core.multiarray.scalar",
        "numpy.dtype",
        "numpy.dtypes.Float64DType",
    ]
    args = [a for n in names for a in ("--safe-global", n)]
    assert ckptcompat("scan", "--no-project-config", *args, ns).returncode == 0
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nckpt_compat_safe_globals =\n" + "".join(f"    {n}\n" for n in names)
    )
    assert ckptcompat("scan", ns, cwd=tmp_path).returncode == 0
    assert ckptcompat("scan", "--no-project-config", ns, cwd=tmp_path).returncode == 1


def test_unreadable_input_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    proc = ckptcompat("scan", "--no-project-config", empty, tmp_path / "missing.pt")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"ckptcompat: error: {empty}: empty file (0 bytes)",
        f"ckptcompat: error: {tmp_path / 'missing.pt'}: no such file",
    ]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_bad_usage_exit_2(tmp_path):
    proc = ckptcompat("scan", "--safe-global", "not a name", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ckptcompat: error: --safe-global: 'not a name'")
    assert ckptcompat("frobnicate").returncode == 2


def test_dangerous_pickle_is_flagged_and_never_run(tmp_path):
    sentinel = tmp_path / "ran"
    evil = tmp_path / "evil.pkl"
    # protocol 0 pickle calling os.system; the scanner must flag it and run nothing
    evil.write_bytes(b"cos\nsystem\n(V" + f"touch {sentinel}".encode() + b"\ntR.")
    proc = ckptcompat("scan", "--json", "--no-project-config", evil)
    assert proc.returncode == 1
    record = json.loads(proc.stdout)["files"][0]
    assert record["loadable"] is False
    assert any(g["name"] == "os.system" and g["dangerous"] for g in record["globals"])
    assert not sentinel.exists()
