"""`ckptcompat report` and `ckptcompat gate` on bad input: one line naming the file, exit 2.

And the gate's rules on small hand-made documents (the real ones are in
test_matrix_report.py): what counts as a regression, what is good news.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_ckptcompat.cli import main
from pytest_ckptcompat.matrix.gate import against_baseline, upgrade

A, B = "torch2.5.1-numpy1.25.2-py3.11", "torch2.13.0-numpy2.2.6-py3.11"


def _cell(reader: str, records: list[dict]) -> dict:
    return {"schema": "ckptcompat.report/1", "reader": {"tag": reader}, "records": records}


def _rec(artifact: str, writer: str, outcome: str, **globals_: str) -> dict:
    return {"kind": "golden", "artifact": artifact, "writer": writer, "outcome": outcome,
            "globals": {k.replace("_", "."): v for k, v in globals_.items()}}  # fmt: skip


def _write(path: Path, doc: object) -> str:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        (
            {"schema": "ckptcompat.scan/1"},
            "schema is 'ckptcompat.scan/1', expected ckptcompat.report/1",
        ),
        ({"schema": "ckptcompat.report/1", "records": []}, "no reader environment"),
        (_cell(A, [{"artifact": "x"}]), "records[0] lacks artifact/writer/outcome/kind"),
        (_cell(A, [_rec("x", A, "fine")]), "records[0]: unknown outcome 'fine'"),
    ],
)
def test_report_bad_cell_report(tmp_path, capsys, content, problem):
    path = _write(tmp_path / "cell.json", content)
    assert main(["report", path, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ckptcompat: error: {path}: {problem}")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_report_two_reports_of_one_reader(tmp_path, capsys):
    one = _write(tmp_path / "one.json", _cell(A, []))
    two = _write(tmp_path / "two.json", _cell(A, []))
    assert main(["report", one, two, "--out", str(tmp_path / "out")]) == 2
    assert f"{two}: reader {A} also reported by {one}" in capsys.readouterr().err


def test_report_missing_file(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err


def test_gate_usage_errors(tmp_path, capsys):
    cells = [_write(tmp_path / "a.json", _cell(A, [_rec("x", A, "ok")])),
             _write(tmp_path / "b.json", _cell(B, [_rec("x", A, "ok")]))]  # fmt: skip
    assert main(["report", *cells, "--out", str(tmp_path)]) == 0
    doc = str(tmp_path / "matrix.json")
    assert main(["gate", doc, "--current", "torch"]) == 2
    assert "--current needs --candidate" in capsys.readouterr().err
    assert main(["gate", doc, "--current", "torch", "--candidate", B]) == 2
    assert "--current 'torch' matches several readers" in capsys.readouterr().err
    assert main(["gate", doc, "--current", A, "--candidate", "torch9"]) == 2
    assert "--candidate 'torch9' is not a reader of this matrix" in capsys.readouterr().err
    assert main(["gate", doc, "--baseline", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["gate", doc])  # a mode is required
    assert info.value.code == 2


def _doc(rows: list[tuple[str, str, str, str]], globals_: dict[str, dict[str, str]]) -> dict:
    return {
        "schema": "ckptcompat.matrix/1",
        "outcomes": [
            {"artifact": a, "writer": w, "reader": r, "outcome": o, "blocked": [], "missing": []}
            for a, w, r, o in rows
        ],
        "globals": [{"name": n, "status": s} for n, s in globals_.items()],
    }


def test_gate_rules():
    base = _doc(
        [("x", A, A, "ok"), ("x", A, B, "blocked"), ("y", A, A, "ok")],
        {"builtins.set": {A: "allowed", B: "blocked"}},
    )
    now = _doc(
        [("x", A, A, "mismatch"), ("x", A, B, "ok"), ("z", A, A, "ok")],
        {"builtins.set": {A: "blocked", B: "allowed"}},
    )
    result = against_baseline(now, base)
    assert result.regressions == [
        f"x: written by {A}, read by {A}: ok -> mismatch",
        f"y: written by {A}, read by {A}: ok in the baseline, not checked now",
        f"builtins.set in {A}: allowed -> blocked",
    ]
    assert result.fixed == [
        f"x: written by {A}, read by {B}: blocked -> ok",
        f"builtins.set in {B}: blocked -> allowed",
    ]
    assert result.notes == ["1 load(s) not in the baseline (new artifacts or environments)"]
    assert not result.passed
    assert against_baseline(base, base).passed


def test_upgrade_checks_reading_and_writing():
    C = "torch2.15.0-numpy2.2.6-py3.11"
    doc = _doc(
        [
            ("x", A, A, "ok"), ("x", A, B, "blocked"),  # B cannot read A's files
            ("y", B, C, "missing"), ("y", A, C, "ok"),  # C cannot read files B writes
        ],
        {"numpy._core.multiarray.scalar": {A: "allowed-user", B: "missing"}},
    )  # fmt: skip
    result = upgrade(doc, A, B)
    assert result.regressions == [
        f"reading x written by {A}: ok under {A}, blocked under {B}",
        f"writing y for {C}: files from {A} load, files from {B} are missing",
        f"numpy._core.multiarray.scalar: allowed-user under {A}, missing under {B}",
    ]
