"""How each cell's run went, on hand-made cell reports: status and why, stale goldens,
squares nothing was read into, the legend, and the gate's rules for them.

The real runs are in test_matrix_downstream.py (two real environments) and
test_matrix_nox.py (the nox sessions); these pin each rule on small documents.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_ckptcompat.cli import main
from pytest_ckptcompat.errors import ReportError
from pytest_ckptcompat.matrix.gate import against_baseline, baseline_of, upgrade
from pytest_ckptcompat.matrix.merge import merge_reports, unproved_readers
from pytest_ckptcompat.matrix.render import (
    LEGEND,
    SNIPPET_FILE,
    console,
    html_page,
    junit,
    markdown,
)

A, B = "torch2.5.1-numpy1.25.2-py3.11", "torch2.13.0-numpy2.2.6-py3.11"


def _test(nodeid: str, outcome: str, *, finding: bool = False, message: str = "") -> dict:
    return {
        "nodeid": nodeid,
        "site": nodeid.split("::")[0] + ":3",
        "outcome": outcome,
        "finding": finding,
        "message": message,
        "where": "src/lib.py:9" if message else "",
    }


def _report(
    reader: str,
    phase: str,
    *,
    records=(),
    written=(),
    tests=(),
    exitstatus=0,
    problem=None,
    sites=(),
) -> dict:
    doc = {
        "schema": "ckptcompat.report/1",
        "reader": {"tag": reader},
        "records": list(records),
        "written": [{"artifact": a, "writer": reader, "path": "", "test": ""} for a in written],
        "tests": list(tests),
        "load_sites": list(sites),
        "run": {
            "update": phase == "write",
            "compat": phase == "read",
            "exitstatus": exitstatus,
            "duration": 1.5,
            "partial": False,
        },
    }
    if problem is not None:
        doc["cell"] = {"phase": phase, "problem": problem}
    return doc


def _rec(artifact: str, writer: str, outcome: str = "ok", kind: str = "golden", **g: str) -> dict:
    return {
        "kind": kind,
        "artifact": artifact,
        "writer": writer,
        "outcome": outcome,
        "blocked": [k.replace("_", ".") for k, v in g.items() if v == "blocked"],
        "globals": {k.replace("_", "."): v for k, v in g.items()},
        "test": "t.py::test_x",
    }


def _write(folder: Path, docs: dict[str, dict]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in docs.items():
        (folder / name).write_text(json.dumps(doc))
        paths.append(folder / name)
    return paths


def _healthy(tmp_path: Path) -> list[Path]:
    """Two cells, both phases ok; A's golden of `x` holds builtins.set (blocked in A)."""
    passed = [_test("t.py::test_x", "passed")]
    return _write(
        tmp_path / "cells",
        {
            f"{A}.write.json": _report(A, "write", written=["x"], tests=passed),
            f"{B}.write.json": _report(B, "write", written=["x"], tests=passed),
            f"{A}.json": _report(
                A,
                "read",
                records=[_rec("x", A, "blocked", builtins_set="blocked"), _rec("x", B)],
                tests=[_test("t.py::test_x", "failed", finding=True)],
                exitstatus=1,
            ),
            f"{B}.json": _report(
                B,
                "read",
                records=[_rec("x", A, builtins_set="allowed"), _rec("x", B)],
                tests=passed,
            ),
        },
    )


def test_healthy_cells_and_totals(tmp_path):
    doc = merge_reports(_healthy(tmp_path))
    assert [(c["tag"], c["status"]) for c in doc["cells"]] == [(A, "ok"), (B, "ok")]
    assert doc["cells"][0]["phases"]["read"]["tests"] == {"finding": 1}
    assert doc["totals"] == {"expected": 4, "read": 4, "not_read": 0, "stale": 0}
    assert all(o["stale"] == "" for o in doc["outcomes"])


def test_a_crashed_read_phase_and_a_missing_cell(tmp_path):
    paths = _healthy(tmp_path)
    # B's read phase: pytest interrupted by a collection error (exit 2)
    error = _test("t.py", "error", message="ImportError: no module named lib")
    crashed = _report(B, "read", exitstatus=2, problem="", tests=[error])
    (tmp_path / "cells" / f"{B}.json").write_text(json.dumps(crashed))
    C = "torch2.15.0-numpy2.2.6-py3.11"
    doc = merge_reports(paths, expect=[A, B, C])
    cells = {c["tag"]: c for c in doc["cells"]}
    assert cells[A]["status"] == "ok"
    assert cells[B]["status"] == "crashed"
    assert cells[B]["phases"]["read"]["problem"] == (
        "pytest was interrupted (exit 2): collection errors, or stopped: "
        "t.py: ImportError: no module named lib"
    )
    assert cells[C]["status"] == "crashed"  # expected by the matrix, reported nothing
    assert cells[C]["phases"]["write"]["problem"].startswith("no report from its write phase")
    # Every square of the grid is read or explained: 3 readers x 3 writers x 1 artifact.
    t = doc["totals"]
    assert (t["expected"], t["read"], t["not_read"]) == (9, 2, 7)
    why = {(n["writer"], n["reader"]): n["why"] for n in doc["not_read"]}
    assert why[A, B] == f"{B}'s read phase did not run to the end"
    assert why[C, A] == f"{C}'s write phase wrote no report in this run"
    md = markdown(doc)
    assert "| torch 2.13.0 numpy 2.2.6 py 3.11 | 💥 crashed |" in md
    assert f"- `{B}`, read phase: pytest was interrupted (exit 2)" in md
    assert re.search(r"\| · \[\d+\]", md)  # a square nothing was read into names its note
    assert "3 reader(s) x 3 writer(s) x 1 artifact(s) = 9 loads: 1 ok, 1 blocked, 7 not read" in md


def test_stale_goldens_are_marked_and_their_globals_kept_apart(tmp_path):
    paths = _healthy(tmp_path)
    # A's write phase did not rewrite x this time (its test failed before check()).
    broken = _test("t.py::test_x", "failed", message="PicklingError: can't pickle lambda")
    write = _report(A, "write", exitstatus=1, tests=[broken])
    (tmp_path / "cells" / f"{A}.write.json").write_text(json.dumps(write))
    doc = merge_reports(paths)
    stale = {(o["writer"], o["reader"]): o["stale"] for o in doc["outcomes"]}
    reason = f"not rewritten by {A}'s write phase in this run (it failed)"
    assert stale == {(A, A): reason, (A, B): reason, (B, A): "", (B, B): ""}
    # builtins.set only came from A's stale golden: not blamed on this run's code.
    assert [g["name"] for g in doc["globals"]] == []
    assert doc["stale_globals"] == [{"name": "builtins.set", "artifacts": ["x"], "writers": [A]}]
    cells = {c["tag"]: c for c in doc["cells"]}
    assert cells[A]["status"] == "failed"
    assert (
        "t.py::test_x failed: PicklingError: can't pickle lambda (at src/lib.py:9)"
        in (cells[A]["phases"]["write"]["problem"])
    )
    md = markdown(doc)
    assert "⌛ ❌ blocked [1]" in md
    assert f"1. stale: {reason}" in md
    assert "⌛ Only stale goldens hold these" in md
    assert doc["totals"]["stale"] == 2
    assert "; 2 of them from stale goldens" in md
    page = html_page(doc)
    assert 'class="blocked stale"' in page
    cases = ET.fromstring(junit(doc).split("\n", 1)[1]).find("testsuite").iter("testcase")
    messages = [c.find("failure").get("message") for c in cases if c.find("failure") is not None]
    assert messages == [f"blocked: builtins.set (stale golden: {reason})"]


def test_mismatch_says_why_in_markdown(tmp_path):
    paths = _healthy(tmp_path)
    doc = json.loads(paths[3].read_text())
    doc["records"][1] = {**_rec("x", B, "mismatch"), "message": "step: 3 != 4\nlr: 0.1 != 0.2"}
    paths[3].write_text(json.dumps(doc))
    md = markdown(merge_reports(paths))
    assert "≠ mismatch [1]" in md
    assert "1. mismatch: step: 3 != 4; lr: 0.1 != 0.2" in md


def test_the_legend_names_every_symbol_the_reports_use(tmp_path):
    paths = _healthy(tmp_path)
    (tmp_path / "cells" / f"{A}.write.json").write_text(
        json.dumps(_report(A, "write", exitstatus=2))
    )
    doc = merge_reports(paths, expect=[A, B, "torch2.15.0-numpy2.2.6-py3.11"])
    md = markdown(doc)
    legend = md[md.index("## Legend") :]
    body = md[: md.index("## Legend")]
    symbols = set(re.findall(r"[✅❌⚠️💥≠·⌛🔎⏭➖❕]", body))
    explained = set(re.findall(r"[✅❌⚠️💥≠·⌛🔎⏭➖❕]", legend))
    assert symbols <= explained, symbols - explained
    assert len(LEGEND) == len(re.findall(r"^- ", legend, re.M))
    page = html_page(doc)
    assert all(html.escape(meaning) in page for _, meaning in LEGEND)


def test_console_ends_with_the_globals_table(tmp_path):
    text = console(merge_reports(_healthy(tmp_path)))
    lines = text.splitlines()
    assert lines[0].startswith("2 reader(s) x 2 writer(s) x 1 artifact(s) = 4 loads")
    assert lines[1] == "2 cell(s): 2 ok"
    assert re.match(r"^global +t2\.5\.1 n1\.25\.2 py3\.11 +t2\.13\.0 n2\.2\.6 py3\.11$", lines[3])
    assert re.match(r"^builtins\.set +blocked +allowed$", lines[4])


def test_report_cli_with_the_matrix_file_expects_every_cell(tmp_path, capsys):
    toml = tmp_path / "m.toml"
    toml.write_text(
        '[matrix]\npython = ["3.11"]\ntorch = ["2.5.1", "2.13.0"]\nnumpy = ["1.25.2"]\n'
    )
    (only,) = _write(tmp_path / "cells", {f"{A}.json": _report(A, "read")})
    assert main(["report", str(only), "--matrix", str(toml), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "2 cell(s): 2 crashed" in out  # A: no write report; the other: nothing at all
    assert main(["report", "--out", str(tmp_path / "out")]) == 2
    assert "give cell reports, or --matrix" in capsys.readouterr().err


def test_gate_fails_on_a_crashed_cell_and_refuses_a_baseline_of_it(tmp_path):
    paths = _healthy(tmp_path)
    good = merge_reports(paths)
    baseline = baseline_of(good)
    assert baseline["tests"] == [
        {"nodeid": "t.py::test_x", "site": "t.py:3", "reader": A, "outcome": "finding"},
        {"nodeid": "t.py::test_x", "site": "t.py:3", "reader": B, "outcome": "passed"},
    ]
    paths[3].write_text(
        json.dumps(_report(B, "read", exitstatus=None, problem="the install failed"))
    )
    bad = merge_reports(paths)
    result = against_baseline(bad, baseline)
    assert result.regressions[0] == (
        f"cell {B} crashed: read phase: the install failed: what it did not check is not safe"
    )
    # what the crashed reader did not check is said once, with the crash
    assert not [r for r in result.regressions if "not checked now" in r or "not run now" in r]
    assert result.notes[0] == "2 load(s) ok in the baseline not checked by crashed cells"
    with pytest.raises(ReportError, match=f"no baseline from a matrix with a crashed cell: {B}"):
        baseline_of(bad)
    up = upgrade(bad, A, B)
    assert up.regressions[0].startswith(f"cell {B} crashed: read phase: the install failed")


def test_gate_on_tests_and_call_sites(tmp_path):
    site = {"site": "src/lib.py:9", "project_site": "", "weights_only": "omitted (default False)",
            "effective": False, "loadable": False, "blocked": ["argparse.Namespace"], "error": "",
            "calls": 1, "fix": "", "tests": ["t.py::test_load"]}  # fmt: skip
    paths = _healthy(tmp_path)
    a_read, b_read = json.loads(paths[2].read_text()), json.loads(paths[3].read_text())
    a_read["tests"].append(_test("t.py::test_load", "passed"))
    a_read["load_sites"] = [site]
    b_read["tests"].append(_test("t.py::test_load", "failed", message="UnpicklingError: nope"))
    b_read["load_sites"] = [{**site, "effective": True, "error": "UnpicklingError: nope"}]
    paths[2].write_text(json.dumps(a_read))
    paths[3].write_text(json.dumps(b_read))
    doc = merge_reports(paths)
    result = upgrade(doc, A, B)
    assert result.regressions == [
        f"test t.py::test_load (t.py:3): passed under {A}, failed under {B}: UnpicklingError: "
        "nope (at src/lib.py:9)",
        f"torch.load at src/lib.py:9: at-risk under {A}, fails under {B}: UnpicklingError: nope",
    ]
    assert f"test t.py::test_x (t.py:3): finding under {A}, passed under {B}" in result.fixed
    # Against a baseline that had both working in B: both are regressions there too.
    was = baseline_of(merge_reports(_healthy(tmp_path / "again")))
    was["tests"].append({"nodeid": "t.py::test_load", "site": "t.py:3", "reader": B,
                         "outcome": "passed"})  # fmt: skip
    was["load_sites"] = [{"site": "src/lib.py:9", "reader": B, "state": "works"}]
    result = against_baseline(doc, was)
    assert result.regressions == [
        f"test t.py::test_load (t.py:3) in {B}: passed -> failed: UnpicklingError: nope "
        "(at src/lib.py:9)",
        f"torch.load at src/lib.py:9 in {B}: works -> fails: UnpicklingError: nope",
    ]
    # A new test that fails, a failure on a finding that became a failure of the test itself.
    was["tests"] = [t for t in was["tests"] if t["nodeid"] != "t.py::test_load"]
    was["tests"] = [{**t, "outcome": "finding"} if t["reader"] == B else t for t in was["tests"]]
    b_read["tests"][0] = _test("t.py::test_x", "error", message="RuntimeError: boom")
    paths[3].write_text(json.dumps(b_read))
    result = against_baseline(merge_reports(paths), was)
    assert (
        f"test t.py::test_load (t.py:3) in {B}: failed, and not in the baseline: "
        in (result.regressions[0])
    )
    assert result.regressions[1].startswith(f"test t.py::test_x (t.py:3) in {B}: finding -> error")


def test_a_baseline_without_tests_or_sites_says_so(tmp_path):
    doc = merge_reports(_healthy(tmp_path))
    old = baseline_of(doc)
    del old["tests"], old["load_sites"]
    result = against_baseline(doc, old)
    assert result.passed  # the only failing test fails on a finding: not a new failure of its own
    assert any("predates test outcomes" in n for n in result.notes)


SAVES = """
import os

def test_state(ckpt_compat):
    state = {"step": 3}
    if os.environ.get("SAVE_BREAKS"):
        state["hook"] = lambda: None  # torch.save cannot pickle it
    ckpt_compat.check("state", state)

def test_other():
    pass
"""


def test_a_write_phase_whose_torch_save_raises(pytester, monkeypatch):
    """For real: the golden it could not rewrite is stale, the cell failed, the test named."""
    pytester.makepyfile(test_saves=SAVES)
    goldens, cells = pytester.path / "goldens", pytester.path / "cells"
    tag = __import__("pytest_ckptcompat.environment").environment.environment()["tag"]

    def run(phase: str) -> None:
        flag = "--ckpt-compat-update" if phase == "write" else "--ckpt-compat"
        name = f"{tag}.write.json" if phase == "write" else f"{tag}.json"
        args = ["-p", "no:cacheprovider", f"--ckpt-compat-dir={goldens}", flag]
        pytester.runpytest(*args, f"--ckpt-compat-report={cells / name}")

    run("write")  # the earlier release: its golden stays behind
    monkeypatch.setenv("SAVE_BREAKS", "1")
    run("write")
    monkeypatch.delenv("SAVE_BREAKS")
    run("read")
    write = json.loads((cells / f"{tag}.write.json").read_text())
    assert write["run"]["exitstatus"] == 1
    assert write["written"] == []
    (broken,) = [t for t in write["tests"] if t["outcome"] != "passed"]
    assert (broken["nodeid"], broken["outcome"], broken["finding"]) == (
        "test_saves.py::test_state",
        "failed",
        False,
    )
    assert "pickle" in broken["message"].lower()
    line = SAVES.strip().splitlines().index('    ckpt_compat.check("state", state)') + 1
    assert broken["where"] == f"test_saves.py:{line}"  # the check() that saved it
    doc = merge_reports(sorted(cells.glob("*.json")))
    (cell,) = doc["cells"]
    assert cell["status"] == "failed"
    assert cell["phases"]["write"]["problem"].startswith(
        "1 test(s) of the project failed: test_saves.py::test_state failed: "
    )
    assert cell["phases"]["read"]["status"] == "ok"
    (golden,) = doc["outcomes"]
    assert golden["stale"] == f"not rewritten by {tag}'s write phase in this run (it failed)"


def test_a_printed_allowlist_is_proved_only_where_it_was_applied_for_real():
    readers = {
        "t24": "no allowlist (torch < 2.4)",
        "t25": "verified",
        "t26": "not checked",
        "t27": "stale (checked another snippet)",
        "t28": "failed",
        "t29": "not checked",
    }
    cells = [{"tag": t, "status": "crashed" if t == "t29" else "ok"} for t in readers]
    doc = {"fix": {"snippet": "import torch", "readers": readers}, "cells": cells}
    # A fix phase that did not run, ran another snippet, or failed is no proof; a crashed
    # cell fails the run on its own.
    assert unproved_readers(doc) == {
        "t26": "not checked",
        "t27": "stale (checked another snippet)",
        "t28": "failed",
    }
    assert unproved_readers({"fix": {"snippet": "", "readers": readers}, "cells": cells}) == {}


def test_a_report_without_a_fix_removes_an_earlier_runs_snippet(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / SNIPPET_FILE).write_text("# the snippet of an earlier run\n")
    passed = [_test("t.py::test_x", "passed")]
    paths = _write(
        tmp_path / "cells",
        {
            f"{A}.json": _report(A, "read", records=[_rec("x", A), _rec("x", B)], tests=passed),
            f"{B}.json": _report(B, "read", records=[_rec("x", A), _rec("x", B)], tests=passed),
        },
    )
    doc = merge_reports(paths)
    assert doc["fix"]["snippet"] == ""  # nothing blocked: no allowlist to print
    assert main(["report", *map(str, paths), "--out", str(out)]) == 0
    assert not (out / SNIPPET_FILE).exists()  # the matrix must not check-fix a stale one


def test_a_partial_phase_is_not_green(tmp_path):
    # `nox -s matrix -- -k x`, node ids, --lf: the tests it did not run checked nothing,
    # and their squares would only show as "not read" under an all-ok cell.
    paths = _healthy(tmp_path)
    read_b = next(p for p in paths if p.name == f"{B}.json")
    doc = json.loads(read_b.read_text())
    doc["run"]["partial"] = True
    read_b.write_text(json.dumps(doc))
    merged = merge_reports(paths)
    cell = next(c for c in merged["cells"] if c["tag"] == B)
    assert cell["status"] == "failed"
    assert cell["phases"]["read"]["problem"].startswith("pytest ran part of the tests")
    assert next(c for c in merged["cells"] if c["tag"] == A)["status"] == "ok"
