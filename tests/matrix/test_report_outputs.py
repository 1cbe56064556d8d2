"""`ckptcompat report`'s outputs as other tools read them.

- junit.xml: valid against the Jenkins/xunit schema pytest's own tests validate
  `--junitxml` with (tests/data/junit-10.xsd), `file` given from the repository
  (each cell's pytest rootdir in the repository comes in its report), `time` on
  every testcase and suite;
- matrix.md: under GitHub's 1 MiB step-summary limit for 45 cells x 30
  artifacts, summarised and pointing at the HTML, which keeps everything;
- the run report of a real pytest run says where its rootdir sits in the repository.

Real `ckptcompat report` runs on hand-made cell reports, and real pytest runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_ckptcompat.matrix.render import STEP_SUMMARY_LIMIT, markdown

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests" / "data" / "junit-10.xsd"


def _tag(i: int) -> str:
    torch = ["2.4.1", "2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1", "2.10.0", "2.11.0", "2.13.0"]
    numpy = ["1.25.2", "1.26.4", "2.0.2", "2.2.6", "2.4.1"]
    return f"torch{torch[i // 5]}-numpy{numpy[i % 5]}-py3.11"


def _cell_reports(folder: Path, n_cells: int, n_artifacts: int, rootdir: str = "examples/trainer"):
    """Read and write reports of `n_cells` cells, each reading every cell's golden of each
    artifact; a third of the loads blocked, some mismatching, each with torch-like text."""
    tags = [_tag(i) for i in range(n_cells)]
    artifacts = [f"artifact_{a:02d}_with_a_realistic_name" for a in range(n_artifacts)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r, reader in enumerate(tags):
        tests = [
            {
                "nodeid": f"tests/test_ckpt.py::test_{a}",
                "site": f"tests/test_ckpt.py:{10 + 3 * i}",
                "outcome": "failed" if r % 3 == 0 else "passed",
                "finding": r % 3 == 0,
                "message": "ckpt_compat.check: blocked" if r % 3 == 0 else "",
                "where": "",
                "duration": 0.25,
            }
            for i, a in enumerate(artifacts)
        ]
        records = []
        for w, writer in enumerate(tags):
            for i, a in enumerate(artifacts):
                kind = (w + i + r) % 7
                blocked = (
                    ["numpy._core.multiarray.scalar", "argparse.Namespace"] if kind < 2 else []
                )
                outcome = "blocked" if blocked else "mismatch" if kind == 2 else "ok"
                message = (
                    "UnpicklingError: Unsupported global: GLOBAL numpy._core.multiarray.scalar "
                    "was not an allowed global by default."
                    if blocked
                    else f"['lr']: 0.{w}{i} != 0.{r}{i}; ['epoch']: {w} != {r}"
                    if outcome == "mismatch"
                    else ""
                )
                records.append(
                    {
                        "kind": "golden",
                        "artifact": a,
                        "writer": writer,
                        "outcome": outcome,
                        "blocked": blocked,
                        "missing": [],
                        "message": message,
                        "globals": dict.fromkeys(blocked, "blocked")
                        | {"torch._utils._rebuild_tensor_v2": "allowed"},
                        "test": f"tests/test_ckpt.py::test_{a}",
                        "duration": 0.5,
                    }
                )
        for phase, suffix in (("write", ".write.json"), ("read", ".json")):
            doc = {
                "schema": "ckptcompat.report/1",
                "reader": {"tag": reader, "torch": reader[5:].split("-")[0], "python": "3.11"},
                "records": records if phase == "read" else [],
                "written": [
                    {"artifact": a, "writer": reader, "path": "", "test": ""} for a in artifacts
                ]
                if phase == "write"
                else [],
                "tests": tests,
                "load_sites": [
                    {
                        "site": "src/trainer/io.py:41",
                        "project_site": "",
                        "weights_only": "omitted (default True)",
                        "effective": True,
                        "calls": 3,
                        "loadable": r % 3 != 0,
                        "blocked": [],
                        "fix": "allowlist numpy._core.multiarray.scalar",
                        "error": "UnpicklingError: blocked" if r % 3 == 0 else "",
                        "tests": ["tests/test_ckpt.py::test_load"],
                    }
                ],
                "allowlist": [],
                "run": {
                    "update": phase == "write",
                    "compat": phase == "read",
                    "exitstatus": 1 if r % 3 == 0 else 0,
                    "duration": 42.5,
                    "partial": False,
                },
                "rootdir": rootdir,
            }
            path = folder / f"{reader}{suffix}"
            path.write_text(json.dumps(doc))
            paths.append(path)
    return paths


def report(paths: list[Path], out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "report", *map(str, paths), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    return report(_cell_reports(tmp / "cells", 3, 2), tmp / "report")


def test_junit_is_valid_against_the_schema_pytest_validates_with(small):
    import xmlschema  # a test dependency (pyproject's `test` group)

    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(str(small / "junit.xml"))  # raises on the first violation


def test_junit_files_are_given_from_the_repository_with_times(small):
    root = ET.parse(small / "junit.xml").getroot()
    assert root.get("time") is not None
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {
        "ckptcompat-matrix",
        "ckptcompat-cells",
        "ckptcompat-tests",
        "ckptcompat-load-sites",
    }
    for suite in root.iter("testsuite"):
        assert float(suite.get("time")) >= 0
    for case in root.iter("testcase"):
        assert case.get("file") is None  # the schema has no testcase file: the suite has it
        assert case.get("time") is not None
    files = {s.get("file") for s in root.iter("testsuite") if s.get("file")}
    # Relative to the cell's rootdir in its report ("tests/test_ckpt.py"); here from the repository.
    assert files == {
        "examples/trainer/tests/test_ckpt.py",
        "examples/trainer/src/trainer/io.py",
    }
    tests = suites["ckptcompat-tests"]
    (per_file,) = tests.findall("testsuite")
    cases = per_file.findall("testcase")
    assert float(cases[0].get("time")) == 0.25
    failure = next(c.find("failure") for c in cases if c.find("failure") is not None)
    assert "test at examples/trainer/tests/test_ckpt.py:10" in failure.text
    loads = suites["ckptcompat-matrix"]
    assert loads.get("time") == f"{0.5 * 3 * 3 * 2:.3f}"
    assert int(loads.get("tests")) == 3 * 3 * 2
    cells = suites["ckptcompat-cells"].findall("testcase")
    assert [c.get("time") for c in cells] == ["85.000"] * 3  # both phases


def test_a_cell_without_a_rootdir_keeps_its_paths(tmp_path):
    paths = _cell_reports(tmp_path / "cells", 1, 1, rootdir=".")
    root = ET.parse(report(paths, tmp_path / "report") / "junit.xml").getroot()
    assert {s.get("file") for s in root.iter("testsuite") if s.get("file")} == {
        "tests/test_ckpt.py",
        "src/trainer/io.py",
    }


@pytest.mark.slow
def test_45_cells_by_30_artifacts_fit_a_github_step_summary(tmp_path):
    out = report(_cell_reports(tmp_path / "cells", 45, 30), tmp_path / "report")
    md = (out / "matrix.md").read_text(encoding="utf-8")
    size = len(md.encode())
    assert size <= STEP_SUMMARY_LIMIT - 32 * 1024
    doc = json.loads((out / "matrix.json").read_text())
    full = markdown(doc, limit=10**9)
    assert len(full.encode()) > STEP_SUMMARY_LIMIT  # it needed summarising
    assert "left out to keep this page under GitHub's 1 MiB step-summary limit" in md
    assert "matrix.html" in md
    # Every artifact still has its line of counts; the cells, globals and legend stay.
    for artifact in doc["artifacts"]:
        assert f"| `{artifact}` | " in md
    assert "## Globals x reader" in md
    assert "## Legend" in md
    html = (out / "matrix.html").read_text(encoding="utf-8")
    assert html.count("<h3>") >= 30  # the HTML keeps every grid


def test_a_page_still_too_long_is_cut_at_a_line_saying_so(small):
    doc = json.loads((small / "matrix.json").read_text())
    text = markdown(doc, limit=2000)
    assert len(text.encode()) <= 2000
    assert text.endswith(
        "**The report is cut here** to stay under GitHub's 1 MiB step-summary limit: the "
        "whole report is matrix.html (beside this file; in CI, the `matrix-report` artifact).\n"
    )


def test_a_real_run_report_says_where_its_rootdir_is_in_the_repository(pytester):
    (pytester.path / ".git").mkdir()  # the repository's top
    project = pytester.path / "examples" / "demo"
    project.mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_it.py").write_text("def test_ok():\n    pass\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        result = pytester.runpytest_subprocess(f"--ckpt-compat-report={project / 'r.json'}")
    result.assert_outcomes(passed=1)
    doc = json.loads((project / "r.json").read_text())
    assert doc["rootdir"] == "examples/demo"
    (test,) = doc["tests"]
    assert test["duration"] >= 0
