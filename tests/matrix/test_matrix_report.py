"""The matrix report and the gate, on cell reports two real environments wrote.

The bundled example project (examples/trainer) runs in this suite's
environment (torch >= 2.6, numpy 2) and in a real torch 2.5.1 / numpy 1.25.2
one: both write their goldens, both read all of them (the two phases of the
nox matrix, without nox), and `ckptcompat report` / `ckptcompat gate` run on
what they wrote. The findings asserted are the ones torch really gives.
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

from pytest_ckptcompat.environment import environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "trainer"
OLD_TAG = "torch2.5.1-numpy1.25.2-py3.11"
ARTIFACTS = 7

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        int(np.__version__.split(".")[0]) < 2
        or tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) < (2, 6),
        reason="the second reader of this test is a torch >= 2.6, numpy 2 environment",
    ),
]


def _pytest(*runs: tuple[Path, tuple[str, ...]]) -> None:
    """The example project's tests, one run per (python, args), all at once.

    As the matrix runs a phase's cells: in parallel (`nox --parallel`).
    """
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE / "src")}
    procs = [
        subprocess.Popen(
            [
                str(python),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(EXAMPLE / "tests"),
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for python, args in runs
    ]
    try:
        for proc in procs:
            out, err = proc.communicate()
            # 0 or 1 (some loads fail: the findings); anything else is a broken run
            assert proc.returncode in (0, 1), out[-3000:] + err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, old_python) -> dict[str, Path]:
    """Both phases in both environments, and one planted regression: {name: cell report}.

    As the nox matrix runs them: every environment writes its goldens (all at
    once), then every environment reads all of them (all at once). With the
    reads, the torch 2.5 reader once more without the project's allowlist: a
    regression planted for real, for the gate (key "regressed").
    """
    work = tmp_path_factory.mktemp("matrix")
    goldens = work / "goldens"
    pythons = {OLD_TAG: old_python, environment()["tag"]: Path(sys.executable)}
    _pytest(
        *[
            (python, (f"--ckpt-compat-dir={goldens}", "--ckpt-compat-update"))
            for python in pythons.values()
        ]
    )
    reports = {tag: work / "cells" / f"{tag}.json" for tag in pythons}
    reports["regressed"] = work / "regressed" / f"{OLD_TAG}.json"
    read = (f"--ckpt-compat-dir={goldens}", "--ckpt-compat")
    _pytest(
        *[
            (python, (*read, f"--ckpt-compat-report={reports[tag]}"))
            for tag, python in pythons.items()
        ],
        (
            old_python,
            (
                *read,
                f"--ckpt-compat-report={reports['regressed']}",
                "-o",
                "ckpt_compat_safe_globals=",
            ),
        ),
    )
    return reports


@pytest.fixture(scope="module")
def cells(runs) -> dict[str, Path]:
    """{reader tag: cell report} of the two environments."""
    return {tag: path for tag, path in runs.items() if tag != "regressed"}


@pytest.fixture(scope="module")
def report(cells, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    proc = _cli("report", *map(str, cells.values()), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (
        f"2 reader(s) x 2 writer(s) x {ARTIFACTS} artifact(s) = {4 * ARTIFACTS} loads"
        in proc.stdout
    )
    return out


def _proved_report(cell_reports: dict[str, Path], out: Path, old_python: Path) -> Path:
    """The report of these cells with its printed fix proved in each reader, as the matrix runs it.

    `ckptcompat report`, then `ckptcompat check-fix` of its snippet in every reader,
    then the report again with their results: a baseline is written only from a
    matrix whose fix was proved.
    """
    goldens = next(iter(cell_reports.values())).parents[1] / "goldens"
    cells = [str(p) for p in cell_reports.values()]
    assert _cli("report", *cells, "--out", str(out)).returncode == 0
    checks = []
    for tag in cell_reports:
        python = old_python if tag == OLD_TAG else Path(sys.executable)
        check = out / f"{tag}.fix.json"
        proc = subprocess.run(
            [str(python), "-m", "pytest_ckptcompat", "check-fix", str(out / "safe_globals.py"),
             str(goldens), "--out", str(check)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        checks.append(str(check))
    proc = _cli("report", *cells, *checks, "--out", str(out))
    assert "fix verified on 2/2 readers" in proc.stdout, proc.stdout[-2000:]
    return out


def test_global_table_shows_what_torch_did(report):
    doc = json.loads((report / "matrix.json").read_text())
    assert doc["schema"] == "ckptcompat.matrix/1"
    new = environment()["tag"]
    status = {g["name"]: g["status"] for g in doc["globals"]}
    # builtins.set: refused by torch 2.5, allowed by default from 2.6
    assert status["builtins.set"] == {OLD_TAG: "blocked", new: "allowed"}
    # numpy 2 spells numpy._core, which numpy 1.25 does not have at all; the
    # project's allowlist registers both spellings (an alias where the running
    # numpy spells it otherwise), which torch 2.5 looks up without importing
    assert status["numpy._core.multiarray.scalar"] == {OLD_TAG: "allowed-user", new: "allowed-user"}
    assert status["numpy.core.multiarray.scalar"][OLD_TAG] == "allowed-user"
    assert status["argparse.Namespace"] == {OLD_TAG: "allowed-user", new: "allowed-user"}
    assert status["torch._utils._rebuild_tensor_v2"] == {OLD_TAG: "allowed", new: "allowed"}
    fix = next(g["fix"] for g in doc["globals"] if g["name"] == "builtins.set")
    assert fix["allowed_by_default_in"] == [new]
    assert "sorted(the_set)" in fix["change"]
    core = next(g["fix"] for g in doc["globals"] if g["name"] == "numpy._core.multiarray.scalar")
    # the fix is right on numpy 1 and 2 and every torch >= 2.4: both spellings
    assert core is None  # nothing refuses it any more: the project's ini had both spellings


def test_grid_per_artifact(report):
    doc = json.loads((report / "matrix.json").read_text())
    new = environment()["tag"]
    grid = {(o["artifact"], o["writer"], o["reader"]): o for o in doc["outcomes"]}
    assert len(grid) == 4 * ARTIFACTS
    assert grid["run_info", new, OLD_TAG]["outcome"] == "blocked"
    assert grid["run_info", new, OLD_TAG]["blocked"] == ["builtins.set"]
    assert grid["run_info", OLD_TAG, new]["outcome"] == "ok"
    # numpy 2's scalar under numpy 1.25 and torch 2.5: no numpy._core there, and
    # still it loads, through the alias the project's two spellings register
    assert grid["metric", new, OLD_TAG]["outcome"] == "ok"
    assert grid["metric", OLD_TAG, new]["outcome"] == "ok"
    assert grid["hparams", OLD_TAG, new]["outcome"] == "ok"


def test_markdown_html_junit(report):
    md = (report / "matrix.md").read_text()
    assert "| `builtins.set` | ❌ blocked | ✅ allowed |" in md
    assert "### `metric`" in md
    assert "allow_checkpoint_globals()" in md  # the one snippet for every reader
    assert len(md.encode()) < 1024 * 1024  # GitHub's step summary limit
    page = (report / "matrix.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<td class="blocked">blocked</td>' in page
    assert "<script" not in page  # self-contained: nothing to fetch, nothing to run
    assert "http" not in page.split("</style>")[0]
    suite = ET.parse(report / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))  # grouped in per-file suites
    assert len(cases) == 4 * ARTIFACTS  # one per (artifact, writer, reader)
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures", "-1")) == len(failed) > 0
    blocked = next(c for c in failed if c.get("classname") == "ckptcompat.run_info")
    assert blocked.find("failure").get("message") == "blocked: builtins.set"  # type: ignore[union-attr]


def test_gate_passes_on_its_baseline_and_fails_on_a_planted_regression(
    report, cells, runs, old_python, tmp_path
):
    # The printed fix is not proved until each reader applied it: no baseline yet.
    baseline = tmp_path / "baseline.json"
    proc = _cli("gate", str(report / "matrix.json"), "--write-baseline", str(baseline))
    assert proc.returncode == 2
    assert "no baseline from a matrix whose printed fix is not proved: " in proc.stderr
    assert not baseline.exists()
    report = _proved_report(cells, tmp_path / "proved", old_python)
    proc = _cli("gate", str(report / "matrix.json"), "--write-baseline", str(baseline))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(baseline.read_text())["schema"] == "ckptcompat.baseline/1"
    proc = _cli("gate", str(report / "matrix.json"), "--baseline", str(baseline))
    assert (proc.returncode, proc.stdout.splitlines()[-1]) == (0, "gate: passed")

    # A regression planted for real: the torch 2.5 reader lost the project's allowlist.
    regressed = runs["regressed"]
    new_cell = next(p for t, p in cells.items() if t != OLD_TAG)
    out = _proved_report(
        {OLD_TAG: regressed, environment()["tag"]: new_cell}, tmp_path / "regressed", old_python
    )
    proc = _cli("gate", str(out / "matrix.json"), "--baseline", str(baseline))
    assert proc.returncode == 1
    assert "gate: FAILED" in proc.stdout
    assert (
        f"hparams: written by {OLD_TAG}, read by {OLD_TAG}: ok -> blocked (argparse.Namespace)"
        in proc.stdout
    )
    assert f"argparse.Namespace in {OLD_TAG}: allowed-user -> blocked" in proc.stdout
    # ... and undoing it is good news, not a failure
    worse = tmp_path / "worse.json"
    assert _cli("gate", str(out / "matrix.json"), "--write-baseline", str(worse)).returncode == 0
    proc = _cli("gate", str(report / "matrix.json"), "--baseline", str(worse))
    assert proc.returncode == 0
    assert "fixed since the baseline (good news)" in proc.stdout
    assert f"argparse.Namespace in {OLD_TAG}: blocked -> allowed-user" in proc.stdout


def test_upgrade_mode(report):
    new = environment()["tag"]
    # downgrading is what breaks here: torch 2.5 refuses the set, numpy 1.25 has no numpy._core
    proc = _cli(
        "gate", str(report / "matrix.json"), "--current", new[:11], "--candidate", "torch2.5.1"
    )
    assert proc.returncode == 1
    assert f"upgrade {new} -> {OLD_TAG}" in proc.stdout
    assert (
        f"reading run_info written by {new}: ok under {new}, blocked (builtins.set) under {OLD_TAG}"
        in proc.stdout
    )
    assert f"builtins.set: allowed under {new}, blocked under {OLD_TAG}" in proc.stdout
    proc = _cli(
        "gate", str(report / "matrix.json"), "--current", "torch2.5.1", "--candidate", new[:11]
    )
    assert "builtins.set: blocked under" in proc.stdout
    assert "fixed by the upgrade" in proc.stdout


@pytest.mark.slow
def test_the_matrix_proves_its_own_fix(cells, report, old_python, tmp_path):
    """Each reader applies the report's safe_globals.py and loads every golden with plain torch."""
    snippet = report / "safe_globals.py"
    assert "allow_checkpoint_globals()" in snippet.read_text()
    goldens = next(iter(cells.values())).parents[1] / "goldens"
    checks = []
    for tag, python in ((OLD_TAG, old_python), (environment()["tag"], Path(sys.executable))):
        out = tmp_path / f"{tag}.fix.json"
        proc = subprocess.run(
            [str(python), "-m", "pytest_ckptcompat", "check-fix", str(snippet), str(goldens),
             "--out", str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"{2 * ARTIFACTS} of {2 * ARTIFACTS} goldens load" in proc.stderr
        checks.append(str(out))
    merged = tmp_path / "merged"
    proc = _cli("report", *map(str, cells.values()), *checks, "--out", str(merged))
    assert proc.returncode == 0, proc.stderr
    assert "fix verified on 2/2 readers" in proc.stdout
    doc = json.loads((merged / "matrix.json").read_text())
    assert doc["fix"]["readers"] == {OLD_TAG: "verified", environment()["tag"]: "verified"}
    # A snippet that is not the report's counts for nothing: stale, not verified.
    (tmp_path / "other.py").write_text(
        snippet.read_text().replace("SAFE_GLOBALS = [", "SAFE_GLOBALS = [\n    set,")
    )
    stale = tmp_path / "stale.fix.json"
    _cli("check-fix", str(tmp_path / "other.py"), str(goldens), "--out", str(stale))
    proc = _cli("report", *map(str, cells.values()), str(stale), "--out", str(merged))
    assert "stale (checked another snippet)" in proc.stdout


def test_predicted_columns_between_the_installed_releases():
    from pytest_ckptcompat.matrix.predicted import predicted_releases
    from pytest_ckptcompat.scan import torch_table
    from pytest_ckptcompat.scan.releases import release_of

    got = predicted_releases(["2.5.1", "2.13.0+cpu", "2.5.1"])
    assert [release_of(v) for v in got] == [(2, m) for m in range(6, 13)]
    for version in got:  # the newest patch of its minor the table knows
        same = [v for v in torch_table.known_versions() if release_of(v) == release_of(version)]
        assert version == same[-1]
    assert predicted_releases(["2.5.1", "2.5.1+cpu"]) == []  # one minor: nothing in between
    assert predicted_releases(["2.5.1", "2.6.0"]) == []


def test_report_predicts_and_agrees_with_every_real_load(cells, tmp_path):
    goldens = next(iter(cells.values())).parent.parent / "goldens"
    proc = _cli(
        "report", *map(str, cells.values()), "--goldens", str(goldens), "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "matrix.json").read_text())
    predicted = doc["predicted"]
    assert predicted["problems"] == []
    agreement = predicted["agreement"]
    # Every golden load of both readers was predicted for that reader, and agreed.
    golden_loads = [o for o in doc["outcomes"] if o["writer"] in cells and not o["stale"]]
    assert agreement["checked"] == len(golden_loads) == 4 * ARTIFACTS
    assert agreement["disagreements"] == []
    # torch 2.5 really blocked builtins.set; 2.6 and later allow it by default.
    real = [o for o in doc["outcomes"] if o["reader"] == OLD_TAG and "builtins.set" in o["blocked"]]
    assert real
    numpys = {r["numpy"] for r in doc["readers"]}
    assert {r["numpy"] for r in predicted["readers"]} == numpys
    assert len(predicted["outcomes"]) == len(predicted["readers"]) * 2 * ARTIFACTS
    assert not any("builtins.set" in o["blocked"] for o in predicted["outcomes"])
    line = f"predictions agreed with {4 * ARTIFACTS}/{4 * ARTIFACTS} real golden loads"
    assert line in proc.stdout
    assert "## Predicted readers (not installed)" in (tmp_path / "matrix.md").read_text()
    assert "Predicted readers (not installed)" in (tmp_path / "matrix.html").read_text()


def test_a_prediction_that_disagrees_with_a_real_load_fails_the_report(cells, tmp_path):
    # A cell report that says a golden which loads under torch 2.13 was blocked by
    # builtins.set: the prediction for that reader (2.13 allows it) disagrees.
    goldens = next(iter(cells.values())).parent.parent / "goldens"
    tag = environment()["tag"]
    doc = json.loads(cells[tag].read_text())
    record = next(r for r in doc["records"] if r["kind"] == "golden" and r["outcome"] == "ok")
    record.update(outcome="blocked", blocked=["builtins.set"], message="planted")
    planted = tmp_path / "cells" / cells[tag].name
    planted.parent.mkdir()
    planted.write_text(json.dumps(doc))
    given = [str(planted if t == tag else p) for t, p in cells.items()]
    out = tmp_path / "report"
    proc = _cli("report", *given, "--goldens", str(goldens), "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        f"prediction disagrees with the real load: {record['artifact']} written by "
        f"{record['writer']}, read by {tag}: real blocked (builtins.set), predicted ok"
    ) in proc.stderr
    assert "DISAGREED with 1 of" in proc.stdout
    assert json.loads((out / "matrix.json").read_text())["predicted"]["agreement"][
        "disagreements"
    ]  # the outputs are written all the same


def test_predictions_without_the_goldens_say_nothing_was_checked(cells, tmp_path):
    # A report job that did not download the goldens: an empty section, said to be empty,
    # never "agreed".
    proc = _cli(
        "report", *map(str, cells.values()), "--goldens", str(tmp_path / "absent"),
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "no real golden load was checked against its prediction" in proc.stdout
    assert "agreed" not in proc.stdout
    predicted = json.loads((tmp_path / "out" / "matrix.json").read_text())["predicted"]
    assert predicted["agreement"]["checked"] == 0
    assert predicted["problems"] == [
        f"{tmp_path / 'absent'}: no such folder: no golden was predicted or checked"
    ]
