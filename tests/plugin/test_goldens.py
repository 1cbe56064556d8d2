"""`ckpt_compat.check` and the golden store, in real pytest runs of a small downstream project.

The runs are in this process (see tests/inprocess.py), except those with
xdist workers: there the workers and the controller are separate processes.
"""

from __future__ import annotations

import json
import os

import pytest
from inprocess import runpytest_inprocess

HEADER = """
import os
import numpy as np
import pytest
import torch

def model_state():
    torch.manual_seed(0)
    if os.environ.get("RENAMED"):
        return {"positional_embedding": torch.zeros(3), "w": torch.ones(2)}
    return {"text_model.embeddings.position_ids": torch.zeros(3), "w": torch.ones(2)}
"""
TESTS = (
    HEADER
    + """
def test_state(ckpt_compat):
    ckpt_compat.check("train_state", {"model": model_state(), "epoch": 3, "lr": 0.1})

def test_random(ckpt_compat):
    ckpt_compat.check("noise", {"w": torch.randn(4)}, compare="structure")
"""
)


@pytest.fixture
def project(pytester):
    pytester.makeini("[pytest]\naddopts = -p pytester --strict-markers\n")
    pytester.makepyfile(test_ckpt=TESTS)
    return pytester


def goldens(pytester, artifact):
    folder = pytester.path / "ckpt_goldens" / artifact
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_update_writes_golden_and_metadata_then_check_reads_it(project):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    files = goldens(project, "train_state")
    assert len(files) == 2
    meta_file = next(f for f in files if f.endswith(".json"))
    meta = json.loads((project.path / "ckpt_goldens" / "train_state" / meta_file).read_text())
    assert meta["schema"] == "ckptcompat.golden/1"
    assert meta["writer"]["tag"] == meta_file[: -len(".json")]
    assert meta["writer"]["tag"].startswith("torch")
    assert "torch._utils._rebuild_tensor_v2" in meta["globals"]
    assert meta["test"].endswith("test_state")
    import hashlib

    pt = project.path / "ckpt_goldens" / "train_state" / meta_file.replace(".json", ".pt")
    assert meta["sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest()

    report = project.path / "report.json"
    result = runpytest_inprocess(project, "--ckpt-compat", f"--ckpt-compat-report={report}")
    result.assert_outcomes(passed=2)
    doc = json.loads(report.read_text())
    assert doc["schema"] == "ckptcompat.report/1"
    assert {(r["artifact"], r["kind"]): r["outcome"] for r in doc["records"]} == {
        ("noise", "golden"): "ok",
        ("noise", "live"): "ok",
        ("train_state", "golden"): "ok",
        ("train_state", "live"): "ok",
    }
    assert doc["reader"]["tag"] == meta["writer"]["tag"]
    result.stdout.fnmatch_lines(["*- ckpt-compat -*", "reader torch*: 4 ok (4 loads)"])


def test_other_writers_goldens_are_never_touched(project):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    folder = project.path / "ckpt_goldens" / "train_state"
    (mine,) = [p for p in folder.glob("*.pt")]
    other = folder / "torch0.0.0-numpy0.0-py3.0.pt"  # a golden some other environment wrote
    other.write_bytes(mine.read_bytes())
    meta = json.loads(mine.with_suffix(".json").read_text())
    other.with_suffix(".json").write_text(json.dumps(meta))
    before = other.stat().st_mtime_ns, other.with_suffix(".json").read_bytes()
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    assert (other.stat().st_mtime_ns, other.with_suffix(".json").read_bytes()) == before
    # and --ckpt-compat reads it as a second writer
    result = runpytest_inprocess(project, "--ckpt-compat", "-k", "state")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["reader torch*: 3 ok (3 loads)"])


def test_modified_golden_is_an_error_that_says_so(project):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    (pt,) = (project.path / "ckpt_goldens" / "train_state").glob("*.pt")
    data = bytearray(pt.read_bytes())
    data[-30] ^= 0xFF
    pt.write_bytes(bytes(data))
    result = runpytest_inprocess(project, "--ckpt-compat", "-k", "state")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*error*", "*modified since it was written*"])


def test_golden_from_a_newer_plugin_gets_a_clear_message(project):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    (meta,) = (project.path / "ckpt_goldens" / "train_state").glob("*.json")
    doc = json.loads(meta.read_text())
    doc["schema_version"], doc["plugin"] = 99, "9.0.0"
    meta.write_text(json.dumps(doc))
    result = runpytest_inprocess(project, "--ckpt-compat", "-k", "state")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["*written by a newer pytest-ckptcompat (9.0.0, golden schema 99)*"]
    )


def test_renamed_layer_reads_like_load_state_dict(project, monkeypatch):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    monkeypatch.setenv("RENAMED", "1")
    result = runpytest_inprocess(project, "--ckpt-compat", "-k", "state")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*mismatch*",
            '*Missing key(s) in state_dict (model): "positional_embedding".',
            '*Unexpected key(s) in state_dict (model): "text_model.embeddings.position_ids".',
        ]
    )


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_two_tests_cannot_claim_one_name(pytester, xdist):
    pytester.makeini("[pytest]\naddopts = -p pytester --strict-markers\n")
    pytester.makepyfile(
        test_dup="""
import pytest

@pytest.mark.parametrize("i", [1, 2])
def test_it(ckpt_compat, i):
    ckpt_compat.check("same", {"i": i})
"""
    )
    if xdist:  # real workers, as a user runs them
        result = pytester.runpytest_subprocess("--ckpt-compat-update", *xdist)
    else:
        result = runpytest_inprocess(pytester, "--ckpt-compat-update")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*artifact *same is already used by *test_it*"])


def test_stale_goldens_only_in_full_runs_and_prune_is_explicit(project):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    old = project.path / "ckpt_goldens" / "retired"
    old.mkdir()
    for f in (project.path / "ckpt_goldens" / "noise").iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    partial = runpytest_inprocess(project, "--ckpt-compat", "-k", "state")
    assert "no collected test produces" not in partial.stdout.str()
    full = runpytest_inprocess(project, "--ckpt-compat")
    full.stdout.fnmatch_lines(["*1 golden(s) no collected test produces*", "*retired*"])
    assert old.is_dir()  # listing deletes nothing
    pruned = runpytest_inprocess(project, "--ckpt-compat", "--ckpt-compat-prune")
    pruned.stdout.fnmatch_lines(["*pruned 1 golden(s)*"])
    assert not old.exists()
    assert goldens(project, "noise")  # the used ones stay


def test_no_summary_when_there_is_nothing_to_say(pytester):
    pytester.makeini("[pytest]\naddopts = -p pytester\n")
    pytester.makepyfile("def test_it():\n    pass\n")
    result = runpytest_inprocess(pytester)
    assert "ckpt-compat" not in result.stdout.str()


def test_xdist_workers_report_through_the_controller(project):
    runpytest_inprocess(project, "--ckpt-compat-update").assert_outcomes(passed=2)
    report = project.path / "r.json"
    result = project.runpytest_subprocess(  # real workers and controller
        "--ckpt-compat", "-n", "2", f"--ckpt-compat-report={report}"
    )
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("- ckpt-compat -") == 1
    assert len(json.loads(report.read_text())["records"]) == 4


def test_golden_dir_option_and_bad_name(pytester, tmp_path):
    pytester.makeini("[pytest]\naddopts = -p pytester\n")
    pytester.makepyfile(
        test_x="""
def test_ok(ckpt_compat):
    ckpt_compat.check("a", [1])

def test_bad(ckpt_compat):
    ckpt_compat.check("../escape", [1])
"""
    )
    store = tmp_path / "store"
    result = runpytest_inprocess(pytester, "--ckpt-compat-update", f"--ckpt-compat-dir={store}")
    result.assert_outcomes(passed=1, failed=1)
    assert sorted(os.listdir(store)) == ["a"]
    result.stdout.fnmatch_lines(["*artifact name '../escape'*"])


def test_expect_blocked_applies_per_global_strictly(pytester):
    pytester.makeini("[pytest]\naddopts = -p pytester --strict-markers\n")
    pytester.makepyfile(
        test_known="""
import argparse, pathlib
import pytest

@pytest.mark.ckpt_compat(expect_blocked=["argparse.Namespace"])
def test_known(ckpt_compat):
    ckpt_compat.check("ns", argparse.Namespace(lr=0.1))

@pytest.mark.ckpt_compat(expect_blocked=["argparse.Namespace"])
def test_more_than_known(ckpt_compat):
    ckpt_compat.check("ns_path", argparse.Namespace(p=pathlib.Path("/x")))

@pytest.mark.ckpt_compat(expect_blocked=["argparse.Namespace"], safe_globals=["argparse.Namespace"])
def test_fixed(ckpt_compat):
    ckpt_compat.check("ns_fixed", argparse.Namespace(lr=0.1))
"""
    )
    runpytest_inprocess(pytester, "--ckpt-compat-update")
    result = runpytest_inprocess(pytester, "--ckpt-compat")
    result.assert_outcomes(xfailed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*expect_blocked lists argparse.Namespace, but nothing is blocked*"]
    )
    result.stdout.fnmatch_lines(["*blocked*pathlib.PosixPath*"])
