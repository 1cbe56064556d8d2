"""nox sessions for the version matrix (imported as `pytest_ckptcompat.noxmatrix`).

A downstream `noxfile.py` needs three lines (and `pip install nox pytest-ckptcompat`):

    import nox
    from pytest_ckptcompat.noxmatrix import add_matrix_sessions
    add_matrix_sessions()          # reads matrix/matrix.toml (or $CKPTCOMPAT_MATRIX)

Sessions it registers:

- one per cell, named after the cell's environment tag
  (`nox -s torch2.5.1-numpy1.25.2-py3.11 -- write|read|both [pytest args]`),
  tagged `cell`, in a uv-backed venv that is reused from run to run;
- `matrix`: every cell writes its goldens, then every cell reads all of them,
  then `report`, then `gate` when a baseline exists. `nox -s matrix -- --tests
  PATH` points every cell at other tests; cells run one per core (`-j 1`: one
  at a time, with their output as it comes);
- `report`: merge the cell reports into `matrix/report/` (md, html, json, junit);
- `gate`: fail on regressions against the baseline; `baseline`: write it.

The phases are separate nox invocations of the same cell sessions, so CI can
fan the cells out as jobs (`nox -l --json` lists them) and pass goldens and
cell reports between them as artifacts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MatrixError
from .config import DEFAULT_MATRIX, ENV_VAR, Cell, Matrix, load_matrix

if TYPE_CHECKING:
    import nox

PHASES = ("write", "read", "both")
CELL_TAG = "cell"


def add_matrix_sessions(matrix_file: str | os.PathLike[str] | None = None) -> Matrix:
    """Register the matrix's sessions in the calling noxfile and return the matrix.

    `matrix_file` defaults to `$CKPTCOMPAT_MATRIX`, else `matrix/matrix.toml`,
    relative to the noxfile's folder (nox runs from there). A malformed file
    stops nox with one line naming the file and the key (exit 2).
    """
    import nox

    path = Path(matrix_file or os.environ.get(ENV_VAR) or DEFAULT_MATRIX)
    try:
        matrix = load_matrix(path)
    except MatrixError as exc:
        print(f"ckptcompat: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for cell in matrix.cells:
        _cell_session(nox, matrix, cell)
    _driver_sessions(nox, matrix)
    return matrix


def _cell_session(nox: Any, matrix: Matrix, cell: Cell) -> None:
    def session(session: nox.Session) -> None:
        phase, tests, extra = _cell_args(session.posargs, matrix)
        session.install(*matrix.index_args(), f"torch=={cell.torch}", f"numpy=={cell.numpy}")
        if matrix.packages:
            session.install(*matrix.index_args(), *_split(matrix.packages))
        root = Path.cwd()
        goldens = root / matrix.goldens
        base = [
            "-p",
            "no:cacheprovider",
            *matrix.pytest_args,
            *extra,
            *tests,
            f"--ckpt-compat-dir={goldens}",
        ]
        # pytest exit 1 means some load broke: that is a finding for the
        # report, not a failure of the cell. Anything else (usage error, no
        # tests, a crash) is.
        if phase in ("write", "both"):
            session.run("pytest", *base, "--ckpt-compat-update", success_codes=[0, 1])
        if phase in ("read", "both"):
            # Written aside and renamed once checked: the last good report
            # stays until this one is complete (and under `--install-only`).
            report = root / matrix.cell_reports / f"{cell.tag}.json"
            partial = report.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            ran = session.run(
                "pytest", *base, "--ckpt-compat", f"--ckpt-compat-report={partial}",
                success_codes=[0, 1],
            )  # fmt: skip
            if ran is None:  # `nox --install-only`: pytest did not run
                return
            if not partial.is_file():
                session.error(f"cell {cell.tag} wrote no report: see pytest's output above")
            reader = json.loads(partial.read_text(encoding="utf-8"))["reader"].get("tag")
            if reader != cell.tag:
                session.error(
                    f"cell {cell.tag} installed {reader}: pin the versions the cell names"
                )
            partial.replace(report)

    session.__doc__ = f"Cell python {cell.python}, torch {cell.torch}, numpy {cell.numpy}."
    nox.session(
        session,
        name=cell.tag,
        python=cell.python,
        venv_backend="uv",
        reuse_venv=True,
        tags=[CELL_TAG],
        allow_parallel=True,
        download_python="never",  # a missing interpreter is an error, not a download
    )


def _driver_sessions(nox: Any, matrix: Matrix) -> None:
    cli = [sys.executable, "-m", "pytest_ckptcompat"]
    report_json = f"{matrix.report}/matrix.json"

    def report(session: nox.Session) -> None:
        """Merge the cell reports into the matrix report (md, html, json, junit)."""
        files = [str(p) for p in _cell_reports(matrix)]
        if not files:
            session.error(f"no cell reports under {matrix.cell_reports}: run the cells first")
        session.run(*cli, "report", *files, "--out", matrix.report, external=True)

    def gate(session: nox.Session) -> None:
        """Exit 1 on any regression against the baseline (matrix/baseline.json)."""
        session.run(*cli, "gate", report_json, "--baseline", matrix.baseline, external=True)

    def baseline(session: nox.Session) -> None:
        """Write the baseline the gate compares with, from the last matrix report."""
        session.run(*cli, "gate", report_json, "--write-baseline", matrix.baseline, external=True)

    def run_matrix(session: nox.Session) -> None:
        """Every cell writes its goldens, every cell reads them all, then report and gate."""
        opts = _matrix_args(session.posargs)
        nox_cmd = [sys.executable, "-m", "nox", "-f", str(Path.cwd() / "noxfile.py")]
        if opts.jobs != "1":
            nox_cmd += ["--parallel", opts.jobs]
        cell_args = [*(f"--tests={t}" for t in opts.tests), *opts.pytest_args]
        env = {ENV_VAR: str(matrix.path)}
        for path in _cell_reports(matrix):
            path.unlink()  # outputs of an earlier run; goldens are never touched here
        for phase, flags in (("write", []), ("read", ["--no-install"])):
            # A cell that fails (say, its install) must not stop the others:
            # it is named below, by the report it did not write. The read
            # phase reuses what the write phase installed (`--no-install`
            # still installs a venv that does not exist): 12 s of 150 s.
            session.run(
                *nox_cmd, *flags, "-s", *matrix.tags, "--", phase, *cell_args,
                env=env, external=True, success_codes=[0, 1],
            )  # fmt: skip
        unfinished = sorted(set(matrix.tags) - {p.stem for p in _cell_reports(matrix)})
        report(session)
        if Path(matrix.baseline).is_file():
            gate(session)
        else:
            session.log(f"no baseline at {matrix.baseline}: `nox -s baseline` writes one")
        if unfinished:
            session.error(f"cells that did not finish: {', '.join(unfinished)}")

    for func, name in (
        (run_matrix, "matrix"),
        (report, "report"),
        (gate, "gate"),
        (baseline, "baseline"),
    ):
        nox.session(func, name=name, python=False, tags=["matrix-driver"])


def _cell_reports(matrix: Matrix) -> list[Path]:
    folder = Path(matrix.cell_reports)
    return sorted(folder / f"{t}.json" for t in matrix.tags if (folder / f"{t}.json").is_file())


def _cell_args(posargs: Sequence[str], matrix: Matrix) -> tuple[str, list[str], list[str]]:
    """`write|read|both [--tests PATH]... [pytest args]` -> (phase, tests, pytest args)."""
    parser = argparse.ArgumentParser(prog="nox -s <cell> --", add_help=False)
    parser.add_argument("phase", nargs="?", choices=PHASES, default="both")
    parser.add_argument("--tests", action="append", default=[])
    opts, extra = parser.parse_known_args(list(posargs))
    return opts.phase, opts.tests or list(matrix.tests), extra


def _matrix_args(posargs: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s matrix --", add_help=False)
    parser.add_argument("--tests", action="append", default=[])
    # Cells are independent within a phase: one per core by default (measured
    # on 2 cores: the default matrix takes 79 s instead of 147 s one at a time).
    parser.add_argument("-j", "--jobs", type=_jobs, default="auto")
    opts, rest = parser.parse_known_args(list(posargs))
    opts.pytest_args = rest
    return opts


def _jobs(text: str) -> str:
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"-j {text}: give a number of cells at once, or auto")
    return text


def _split(packages: Sequence[str]) -> list[str]:
    # "-e examples/trainer" is one entry in the file and two arguments for the installer.
    return [part for entry in packages for part in entry.split(maxsplit=1)]
