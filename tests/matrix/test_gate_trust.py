"""The gate trusts only what a matrix can vouch for, and gates its predicted columns too.

Matrix documents are built by the real merge (`merge_reports`) from cell reports
of two readers (torch 2.5.1 / numpy 1.25.2 and torch 2.13.0 / numpy 2.2.6) and
real goldens this process `torch.save`s, so the predicted columns (torch 2.6 to
2.12) come from the real scan and rules table. The cell records say what those
torches really do, so every real load agrees with its prediction.

The goldens hold a dtype the rules table dates: `torch.uint16` is allowed by
default from torch 2.6, `torch.int4` from 2.7. Torch 2.5.1 refuses both, torch
2.13 allows both: swapping one for the other changes no real outcome, and turns
the predicted torch 2.6.0 columns from ok to blocked. No allowlist makes a
dtype load, so those matrices print no fix; a golden holding a `set` (refused
by 2.5.1, allowed from 2.6) gets one, which the fix phase must prove.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from pytest_ckptcompat.cli import main
from pytest_ckptcompat.golden import GoldenStore
from pytest_ckptcompat.matrix.gate import (
    against_baseline,
    baseline_of,
    baseline_problems,
    baseline_text,
    load_doc,
    upgrade,
)
from pytest_ckptcompat.matrix.merge import merge_reports
from pytest_ckptcompat.schemas import MatrixDoc

ROOT = Path(__file__).resolve().parents[2]
A, B = "torch2.5.1-numpy1.25.2-py3.11", "torch2.13.0-numpy2.2.6-py3.11"
VERSIONS = {A: ("2.5.1", "1.25.2"), B: ("2.13.0", "2.2.6")}
P26_N1, P26_N2 = "torch2.6.0-numpy1.25.2 (predicted)", "torch2.6.0-numpy2.2.6 (predicted)"
P27_N1 = "torch2.7.1-numpy1.25.2 (predicted)"
PREDICTED_LOADS = 2 * 7 * 2  # writers x predicted releases (2.6 to 2.12) x numpys
PASSED = {"nodeid": "t.py::test_x", "site": "t.py:3", "outcome": "passed", "finding": False}


#: What a golden holds -> the global its pickle names.
HELD = {"uint16": "torch.uint16", "int4": "torch.int4", "set": "builtins.set"}


def _cell_reports(folder: Path, held: str, *, lie: bool = False, **read_b: object) -> list[Path]:
    """Goldens of `x` from both readers holding `held` (`HELD`), and each reader's read report.

    `lie`: A's report says its loads went through (its torch really refuses all of HELD).
    `read_b`: fields of B's read report to replace (`tests`, `run`).
    """
    name = HELD[held]
    store = GoldenStore(folder / "goldens")
    for writer in (A, B):
        buf = io.BytesIO()
        torch.save(
            {"w": torch.zeros(2), "held": {1, 2} if held == "set" else getattr(torch, held)}, buf
        )
        store.write("x", buf.getvalue(), {"writer": {"tag": writer}})
    paths = []
    for tag, (torch_version, numpy_version) in VERSIONS.items():
        blocked = tag == A and not lie  # torch 2.5.1 allows none of HELD by default
        doc = {
            "schema": "ckptcompat.report/1",
            "reader": {"tag": tag, "torch": torch_version, "numpy": numpy_version},
            "records": [
                {
                    "kind": "golden",
                    "artifact": "x",
                    "writer": writer,
                    "outcome": "blocked" if blocked else "ok",
                    "blocked": [name] if blocked else [],
                    "globals": {name: "blocked" if blocked else "allowed"},
                    "test": "t.py::test_x",
                }
                for writer in (A, B)
            ],
            "tests": [PASSED],
            "run": {"update": False, "compat": True, "exitstatus": 0, "duration": 1.0,
                    "partial": False},
        }  # fmt: skip
        if tag == B:
            doc.update(read_b)
        paths.append(folder / f"{tag}.json")
        paths[-1].write_text(json.dumps(doc))
    return paths


def _fix_checks(
    folder: Path, paths: list[Path], *, sha: str | None = None, loads: bool = True
) -> list[Path]:
    """What `ckptcompat check-fix` writes in each reader with the report's snippet applied.

    `sha`: the snippet it applied (default: the report's own); `loads`: whether A's
    golden loaded in A with it.
    """
    doc = merge_reports(paths)
    checks = []
    for tag in VERSIONS:
        check = {
            "schema": "ckptcompat.fixcheck/1",
            "created": "",
            "reader": {"tag": tag},
            "snippet_sha256": sha or doc["fix"]["sha256"],
            "results": [
                {"artifact": "x", "writer": w, "loads": loads or (tag, w) != (A, A), "error": ""}
                for w in (A, B)
            ],
        }
        checks.append(folder / f"{tag}.fix.json")
        checks[-1].write_text(json.dumps(check))
    return checks


def _matrix(folder: Path, held: str, **kw: object) -> MatrixDoc:
    """The merged matrix of `_cell_reports`, its printed fix (if any) proved in both readers."""
    paths = _cell_reports(folder, held, **kw)  # type: ignore[arg-type]
    return merge_reports([*paths, *_fix_checks(folder, paths)], goldens=folder / "goldens")


def test_the_matrices_are_what_the_tests_below_assume(tmp_path):
    old, new = _matrix(tmp_path / "old", "uint16"), _matrix(tmp_path / "new", "int4")
    proved = _matrix(tmp_path / "set", "set")
    for doc in (old, new, proved):
        assert doc["predicted"]["agreement"] == {"checked": 4, "disagreements": []}
        assert doc["fix"]["readers"] == {A: "verified", B: "verified"}
        assert baseline_problems(dict(doc)) == []
    assert not old["fix"]["snippet"]
    assert not new["fix"]["snippet"]
    assert "builtins.set" in proved["fix"]["snippet"]
    assert [o["outcome"] for o in old["outcomes"]] == [o["outcome"] for o in new["outcomes"]]
    assert not [o for o in old["predicted"]["outcomes"] if o["outcome"] != "ok"]
    broken = {
        (o["writer"], o["reader"]) for o in new["predicted"]["outcomes"] if o["outcome"] != "ok"
    }
    assert broken == {(w, r) for w in (A, B) for r in (P26_N1, P26_N2)}


# --- predicted columns against a baseline ----------------------------------------------


def test_the_baseline_keeps_the_predicted_loads(tmp_path):
    baseline = baseline_of(dict(_matrix(tmp_path, "int4")))
    assert len(baseline["predicted"]) == PREDICTED_LOADS
    assert baseline["predicted"][0] == {
        "artifact": "x", "writer": A, "reader": P26_N1, "torch": "2.6.0", "numpy": "1.25.2",
        "outcome": "blocked",
    }  # fmt: skip
    # One row per line in the file, and it reads back.
    path = tmp_path / "baseline.json"
    path.write_text(baseline_text(baseline))
    assert f'{{"artifact": "x", "writer": "{A}", "reader": "{P26_N1}"' in path.read_text()
    assert load_doc(path)["predicted"] == baseline["predicted"]


def test_a_predicted_break_the_baseline_did_not_have_fails_the_gate(tmp_path):
    baseline = baseline_of(dict(_matrix(tmp_path / "old", "uint16")))
    now = dict(_matrix(tmp_path / "new", "int4"))
    result = against_baseline(now, baseline)
    # Every real load and global status is as it was: only the predictions say it.
    assert result.regressions == [
        f"x: written by {w}, read by {r}: ok in the baseline, predicted blocked (torch.int4)"
        for w in (A, B)
        for r in (P26_N1, P26_N2)
    ]
    assert not result.passed
    assert "gate: FAILED" in result.text()


def test_a_predicted_break_the_baseline_already_had_is_not_new(tmp_path):
    known = dict(_matrix(tmp_path / "new", "int4"))
    assert against_baseline(known, baseline_of(known)).passed
    # ... and a predicted break that went away is good news.
    result = against_baseline(dict(_matrix(tmp_path / "old", "uint16")), baseline_of(known))
    assert result.passed
    assert f"x: written by {A}, read by {P26_N1}: blocked in the baseline, predicted ok" in (
        result.fixed
    )


def test_predicted_loads_are_matched_by_torch_minor(tmp_path):
    # A newer rules table moves a column to a newer patch of its minor: still compared.
    baseline = baseline_of(dict(_matrix(tmp_path / "old", "uint16")))
    for row in baseline["predicted"]:
        row["torch"] = row["torch"].replace("2.6.0", "2.6.9")
        row["reader"] = row["reader"].replace("2.6.0", "2.6.9")
    result = against_baseline(dict(_matrix(tmp_path / "new", "int4")), baseline)
    assert len(result.regressions) == 4
    assert not [n for n in result.notes if "predicted" in n]


def test_a_baseline_without_predictions_still_loads_and_says_they_were_not_compared(tmp_path):
    # A baseline written before predicted columns (the committed one, as it was) loads.
    committed = json.loads((ROOT / "matrix" / "ci-baseline.json").read_text())
    committed.pop("predicted", None)
    (tmp_path / "before.json").write_text(json.dumps(committed))
    assert "predicted" not in load_doc(tmp_path / "before.json")
    baseline = baseline_of(dict(_matrix(tmp_path / "old", "uint16")))
    del baseline["predicted"]
    result = against_baseline(dict(_matrix(tmp_path / "new", "int4")), baseline)
    assert result.passed
    assert result.notes == [
        f"the baseline predates predicted columns: the matrix's {PREDICTED_LOADS} predicted "
        "load(s) were not compared (rewrite it with --write-baseline)"
    ]


def test_a_matrix_without_predictions_says_they_were_not_compared(tmp_path):
    baseline = baseline_of(dict(_matrix(tmp_path / "old", "uint16")))
    paths = _cell_reports(tmp_path / "new", "int4")
    now = merge_reports([*paths, *_fix_checks(tmp_path / "new", paths)])  # no goldens given
    assert "predicted" not in now
    result = against_baseline(dict(now), baseline)
    assert result.passed
    assert result.notes == [
        "the matrix has no predicted columns (its report was given no goldens): the "
        f"baseline's {PREDICTED_LOADS} predicted load(s) were not compared"
    ]


# --- predicted columns in upgrade mode -------------------------------------------------


def test_upgrade_to_a_predicted_release_compares_reading(tmp_path):
    doc = dict(_matrix(tmp_path, "int4"))
    result = upgrade(doc, B, P26_N2)
    assert result.regressions == [
        f"reading x written by {w}: ok under {B}, predicted blocked (torch.int4) under {P26_N2}"
        for w in (A, B)
    ]
    assert result.notes == [
        f"{P26_N2} is predicted from the rules table, not installed: only its reading of the "
        "goldens is compared, not the files it would write, the project's tests or its "
        "torch.load call sites"
    ]
    result = upgrade(doc, A, P27_N1)
    assert result.passed
    assert f"reading x written by {A}: blocked under {A}, predicted ok under {P27_N1}" in (
        result.fixed
    )


def test_the_cli_names_a_predicted_candidate(tmp_path, capsys):
    out = tmp_path / "report"
    paths = _cell_reports(tmp_path, "int4")
    given = [*map(str, paths), *map(str, _fix_checks(tmp_path, paths))]
    assert main(["report", *given, "--goldens", str(tmp_path / "goldens"), "--out", str(out)]) == 0
    m = str(out / "matrix.json")
    capsys.readouterr()
    assert main(["gate", m, "--current", "torch2.13", "--candidate", "torch2.6.0-numpy2.2"]) == 1
    assert f"upgrade {B} -> {P26_N2}\n" in capsys.readouterr().out
    assert main(["gate", m, "--current", "torch2.13", "--candidate", "torch2.6"]) == 2
    assert f"--candidate 'torch2.6' matches several readers (readers: {P26_N1}, {P26_N2})" in (
        capsys.readouterr().err
    )
    # An installed reader comes first: torch2.1 is 2.13 here, not predicted 2.10 to 2.12.
    assert main(["gate", m, "--current", A, "--candidate", "torch2.1"]) == 0
    assert f"upgrade {A} -> {B}\n" in capsys.readouterr().out
    # --current is the environment you run now: never a predicted one.
    assert main(["gate", m, "--current", "torch2.6.0-numpy2.2", "--candidate", B]) == 2
    assert "--current 'torch2.6.0-numpy2.2' is not a reader of this matrix" in (
        capsys.readouterr().err
    )


# --- no baseline from a matrix that cannot vouch for itself ----------------------------


def test_no_baseline_from_a_partial_run(tmp_path):
    run = {"update": False, "compat": True, "exitstatus": 0, "duration": 1.0, "partial": True}
    doc = dict(_matrix(tmp_path, "uint16", run=run))
    assert baseline_problems(doc) == [
        f"no baseline from a partial run: pytest ran part of the tests in {B} (read phase) (a "
        "deselection, node ids, --lf, -x, or a crashed xdist worker): the loads of the tests "
        "it did not run would be missing from the baseline; run them all"
    ]


def test_no_baseline_from_a_matrix_whose_project_tests_failed(tmp_path):
    broken = {**PASSED, "outcome": "failed", "message": "OSError: disk full", "where": "a.py:9"}
    run = {"update": False, "compat": True, "exitstatus": 1, "duration": 1.0, "partial": False}
    doc = dict(_matrix(tmp_path, "uint16", tests=[broken], run=run))
    assert baseline_problems(doc) == [
        f"no baseline from a matrix whose project tests failed: {B}: read phase: 1 test(s) of "
        "the project failed: t.py::test_x failed: OSError: disk full (at a.py:9): what they did "
        "not get to check would be missing from the baseline; fix them, or mark a known "
        "failure xfail"
    ]
    # A test that fails on a compatibility finding is what the matrix is for: no problem.
    finding = {**broken, "finding": True}
    assert baseline_problems(dict(_matrix(tmp_path / "f", "uint16", tests=[finding]))) == []


@pytest.mark.parametrize(
    ("checks", "verdict"),
    [
        ({}, "not checked"),  # the fix phase did not run
        ({"sha": "0" * 64}, "stale (checked another snippet)"),
        ({"loads": False}, "failed"),  # A's golden still did not load in A
    ],
)
def test_no_baseline_from_a_matrix_whose_printed_fix_is_not_proved(tmp_path, checks, verdict):
    paths = _cell_reports(tmp_path, "set")
    given = [*paths, *(_fix_checks(tmp_path, paths, **checks) if checks else [])]
    doc = dict(merge_reports(given, goldens=tmp_path / "goldens"))
    unproved = f"{A} ({verdict}), {B} ({verdict})" if verdict != "failed" else f"{A} (failed)"
    assert baseline_problems(doc) == [
        f"no baseline from a matrix whose printed fix is not proved: {unproved}: run the fix "
        "phase (`nox -s matrix` does; or `ckptcompat check-fix` in each reader, its JSON given "
        "to `ckptcompat report`)"
    ]


def test_no_baseline_from_a_matrix_whose_predictions_disagree_with_a_real_load(tmp_path):
    # A's report says torch 2.5.1 loaded both goldens; the rules table says it refuses int4.
    doc = dict(_matrix(tmp_path, "int4", lie=True))
    assert baseline_problems(doc) == [
        "no baseline from a matrix whose predictions disagree with a real load: x written by "
        f"{A}, read by {A}: real ok, predicted blocked; and 1 more: its predicted columns "
        "cannot be trusted (a bug of pytest-ckptcompat's tables or scan: please report it)"
    ]


def test_the_cli_refuses_in_one_line_and_writes_nothing(tmp_path, capsys):
    run = {"update": False, "compat": True, "exitstatus": 0, "duration": 1.0, "partial": True}
    paths = _cell_reports(tmp_path, "set", run=run)  # a partial run, a fix never checked
    out = tmp_path / "report"
    assert main(["report", *map(str, paths), "--goldens", str(tmp_path / "goldens"),
                 "--out", str(out)]) == 0  # fmt: skip
    baseline = tmp_path / "kept" / "baseline.json"
    baseline.parent.mkdir()
    baseline.write_text("the baseline the team committed\n")
    capsys.readouterr()
    m = str(out / "matrix.json")
    assert main(["gate", m, "--write-baseline", str(baseline)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"ckptcompat: error: {m}: no baseline from a partial run: ")
    assert "; no baseline from a matrix whose printed fix is not proved: " in captured.err
    assert baseline.read_text() == "the baseline the team committed\n"
    assert [p.name for p in baseline.parent.iterdir()] == ["baseline.json"]  # no temp file


# --- the gate fails what the run failed ------------------------------------------------


def test_the_gate_fails_a_matrix_whose_printed_fix_is_not_proved(tmp_path):
    baseline = baseline_of(dict(_matrix(tmp_path / "base", "set")))
    paths = _cell_reports(tmp_path / "now", "set")
    unproved = merge_reports(paths, goldens=tmp_path / "now" / "goldens")  # no fix checks
    result = against_baseline(dict(unproved), baseline)
    assert not result.passed
    assert result.regressions == [
        f"the matrix's printed fix is not proved: {A} (not checked), {B} (not checked): run "
        "the fix phase (`nox -s matrix` does; or `ckptcompat check-fix` in each reader, its "
        "JSON given to `ckptcompat report`)"
    ]
    # The same run with its fix proved passes.
    assert against_baseline(dict(_matrix(tmp_path / "proved", "set")), baseline).passed


def test_an_upgrade_gate_fails_on_an_unproved_fix_in_the_readers_it_compares(tmp_path):
    folder = tmp_path / "m"
    paths = _cell_reports(folder, "set")
    checks = _fix_checks(folder, paths, loads=False)  # A's own golden fails to load in A
    doc = dict(merge_reports([*paths, *checks], goldens=folder / "goldens"))
    assert doc["fix"]["readers"][A] == "failed"
    assert any("not proved: " + A in r for r in upgrade(doc, A, B).regressions)


def test_the_gate_fails_a_matrix_whose_predictions_disagree(tmp_path):
    baseline = baseline_of(dict(_matrix(tmp_path / "base", "uint16")))
    lying = _matrix(tmp_path / "lie", "uint16", lie=True)
    assert lying["predicted"]["agreement"]["disagreements"]
    result = against_baseline(dict(lying), baseline)
    assert any(
        r.startswith("the matrix's predictions disagree with a real load: ")
        for r in result.regressions
    )


def test_before_the_fix_phase_the_report_says_what_proves_the_fix(tmp_path):
    from pytest_ckptcompat.matrix.merge import fix_verified_line

    paths = _cell_reports(tmp_path / "m", "set")
    draft = merge_reports(paths, goldens=tmp_path / "m" / "goldens")
    assert fix_verified_line(draft) == (
        "fix not proved yet: none of the 2 readers has applied it (the fix phase does: "
        "`nox -s matrix` runs it, or `ckptcompat check-fix` in each reader)"
    )
    assert fix_verified_line(_matrix(tmp_path / "p", "set")) == "fix verified on 2/2 readers"


def test_a_reader_whose_numpy_the_table_lacks_is_a_problem_not_a_crash(tmp_path):
    paths = _cell_reports(tmp_path, "uint16")
    doc = json.loads(paths[1].read_text())
    doc["reader"]["numpy"] = "9.9.0"  # a numpy newer than the names table
    paths[1].write_text(json.dumps(doc))
    matrix = merge_reports(paths, goldens=tmp_path / "goldens")
    problems = matrix["predicted"]["problems"]
    assert "numpy 9.9.0 is not in the numpy names table: not predicted" in problems
    assert {o["reader"].split("-numpy")[1] for o in matrix["predicted"]["outcomes"]} == {
        "1.25.2 (predicted)"
    }
    assert matrix["predicted"]["agreement"]["checked"] == 2  # A's loads only
    assert any(
        p.startswith(
            "no baseline from a matrix whose predicted columns are incomplete: numpy 9.9.0"
        )
        for p in baseline_problems(dict(matrix))
    )
