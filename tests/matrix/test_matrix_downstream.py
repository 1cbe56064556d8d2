"""A downstream upgrade that breaks loading, in two real environments: the gate must fail.

`ckptlib` (tests/matrix/downstream.py) has a library loader calling
`torch.load(path)` with no `weights_only`: it loads on torch 2.5.1 (whose
default is `weights_only=False`) and raises on torch >= 2.6. Both
environments run both phases of the matrix (write, then read, each with its
report, as the nox cells do), `ckptcompat report` merges them, and the
upgrade gate must fail naming the loader's `file:line` and the test that
broke; every rendering shows both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from downstream import loader_site, loader_test, write_project

from pytest_ckptcompat.environment import environment

OLD_TAG = "torch2.5.1-numpy1.25.2-py3.11"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        int(np.__version__.split(".")[0]) < 2
        or tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) < (2, 6),
        reason="the candidate of this upgrade is a torch >= 2.6, numpy 2 environment",
    ),
]


def _pytest(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, old_python) -> Path:
    """Both phases of ckptlib in torch 2.5.1 and here; the merged report's folder."""
    work = tmp_path_factory.mktemp("downstream")
    project = write_project(work / "ckptlib")
    goldens, cells = work / "goldens", work / "cells"
    pythons = {OLD_TAG: old_python, environment()["tag"]: Path(sys.executable)}
    for phase, flags in (("write", ["--ckpt-compat-update"]), ("read", ["--ckpt-compat"])):
        for tag, python in pythons.items():
            name = f"{tag}.json" if phase == "read" else f"{tag}.write.json"
            proc = _pytest(
                python,
                project,
                f"--ckpt-compat-dir={goldens}",
                *flags,
                f"--ckpt-compat-report={cells / name}",
            )
            # 0 or 1 (a test failed: a finding, or the loader); anything else is a broken run
            assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    out = work / "report"
    proc = _cli("report", *map(str, sorted(cells.glob("*.json"))), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_upgrade_gate_fails_naming_the_loader(matrix):
    proc = _cli(
        "gate", str(matrix / "matrix.json"), "--current", "torch2.5.1", "--candidate", "torch2.13"
    )
    assert proc.returncode == 1, proc.stdout
    assert "gate: FAILED" in proc.stdout
    new = environment()["tag"]
    site = loader_site()
    nodeid, test_site = loader_test()
    # The call site: it went through on torch 2.5.1 (at risk: not weights_only) and raises now.
    assert f"torch.load at {site}: at-risk under {OLD_TAG}, fails under {new}: Unpickling" in (
        proc.stdout
    )
    # The project's test that uses it, with the line the failure was raised at.
    assert f"test {nodeid} ({test_site}): passed under {OLD_TAG}, failed under {new}: " in (
        proc.stdout
    )
    assert f"(at {site})" in proc.stdout
    # The other way round, it is good news.
    proc = _cli(
        "gate", str(matrix / "matrix.json"), "--current", "torch2.13", "--candidate", "torch2.5.1"
    )
    assert f"torch.load at {site}: fails under {new}, at-risk under {OLD_TAG}" in proc.stdout


def test_the_matrix_document_has_the_sites_and_the_tests(matrix):
    doc = json.loads((matrix / "matrix.json").read_text())
    new = environment()["tag"]
    sites = {(s["site"], s["reader"]): s for s in doc["load_sites"]}
    assert sites[loader_site(), OLD_TAG]["state"] == "at-risk"
    assert sites[loader_site(), OLD_TAG]["weights_only"].startswith("omitted (default False")
    assert "argparse.Namespace" in sites[loader_site(), OLD_TAG]["blocked"]
    assert sites[loader_site(), new]["state"] == "fails"
    assert sites[loader_site(), new]["error"].startswith("UnpicklingError")
    # The plugin's own loads are not the project's call sites.
    assert not [s for s in doc["load_sites"] if "pytest_ckptcompat" in s["site"]]
    nodeid, test_site = loader_test()
    tests = {(t["nodeid"], t["reader"]): t for t in doc["tests"]}
    assert tests[nodeid, OLD_TAG]["outcome"] == "passed"
    broken = tests[nodeid, new]
    assert (broken["outcome"], broken["finding"], broken["site"]) == ("failed", False, test_site)
    assert broken["where"] == loader_site()
    assert "Weights only load failed" in broken["message"]
    cells = {c["tag"]: c for c in doc["cells"]}
    assert cells[OLD_TAG]["status"] == "ok"
    assert cells[new]["status"] == "failed"
    assert nodeid in cells[new]["phases"]["read"]["problem"]
    assert doc["totals"]["expected"] == doc["totals"]["read"] + doc["totals"]["not_read"]
    assert doc["totals"]["stale"] == 0  # both write phases rewrote their golden


def test_every_rendering_shows_the_broken_loader(matrix):
    site = loader_site()
    nodeid, _ = loader_test()
    md = (matrix / "matrix.md").read_text()
    assert f"| `{site}` | ⚠️ at risk [1] | ❌ fails [2] |" in md
    assert f"| `{nodeid}`<br>" in md
    assert f"raised at `{site}`" in md
    assert "❌ failed (cell)" in md  # the legend
    page = (matrix / "matrix.html").read_text()
    assert f"<code>{site}</code>" in page
    assert '<td class="fails">fails<sup>[2]</sup></td>' in page
    root = ET.parse(matrix / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    sites = suites["ckptcompat-load-sites"]
    failed = [c for c in sites.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [site]
    tests = suites["ckptcompat-tests"]
    failures = [
        c.get("name")
        for c in tests.iter("testcase")
        if (f := c.find("failure")) is not None and f.get("type") == "failed"
    ]
    assert failures == [nodeid]
    cells = suites["ckptcompat-cells"]
    assert int(cells.get("failures", "0")) == 1
