"""nox sessions for the version matrix (imported as `pytest_ckptcompat.noxmatrix`).

A downstream `noxfile.py` needs three lines (and nox plus pytest-ckptcompat
installed where nox runs):

    import nox
    from pytest_ckptcompat.noxmatrix import add_matrix_sessions
    add_matrix_sessions()          # reads matrix/matrix.toml (or $CKPTCOMPAT_MATRIX)

Sessions it registers:

- one per cell, named after the cell's environment tag
  (`nox -s torch2.5.1-numpy1.25.2-py3.11 -- write|read|both [pytest args]`),
  tagged `cell`, in a uv-backed venv that is reused from run to run. Each cell
  installs torch, numpy, `[install] packages`, and pytest-ckptcompat itself
  (the same one nox runs with: its checkout, its URL or its version) with pytest;
- `matrix` (the only session a bare `nox` runs): every cell writes its goldens,
  then every cell reads all of them, then `report`, then `gate` when a
  baseline exists. One line per cell and phase as it finishes; each one's full
  output in `<cells>/logs/<tag>.<phase>.log`. `nox -s matrix -- --tests PATH`
  points every cell at other tests; cells run one per core (`-j 1`: one at a
  time);
- `report`: merge the cell reports into `matrix/report/` (md, html, json, junit);
- `gate`: fail on regressions against the baseline; `baseline`: write it
  (only when asked by name: never after a failed gate).

The phases are separate nox invocations of the same cell sessions, so CI can
fan the cells out as jobs (`nox -l --json` lists them) and pass goldens and
cell reports between them as artifacts. Each phase keeps its report whatever
happens (`<cells>/<tag>.write.json`, `<cells>/<tag>.json`): a phase that did
not run to the end says why in it (`cell.problem`), so the matrix shows a
crashed cell instead of the last good report.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from .. import schemas
from .._version import __version__
from ..errors import MatrixError
from .cells import MATRIX_PHASES, log_file, phase_entry
from .config import DEFAULT_MATRIX, ENV_VAR, Cell, Matrix, load_matrix
from .merge import unproved_readers
from .render import SNIPPET_FILE

if TYPE_CHECKING:
    import nox

#: After the reads and a first report: each cell applies the report's allowlist
#: snippet and loads every golden with plain torch (`ckptcompat check-fix`).
FIX_PHASE = "fix"
PHASES = (*MATRIX_PHASES, "both", FIX_PHASE)
CELL_TAG = "cell"
# What pytest runs with in each phase of a cell. A later phase (say, one that
# checks a printed fix in every reader) is one more entry here, after "read",
# and one more name in cells.MATRIX_PHASES: the cell session, the driver's
# loop, the reports and their merge all go by these.
PHASE_FLAGS: dict[str, tuple[str, ...]] = {
    "write": ("--ckpt-compat-update",),
    "read": ("--ckpt-compat",),
}
#: The driver's nox options per phase: later phases reuse what the write phase
#: installed (`--no-install` still installs a venv that does not exist).
PHASE_NOX_FLAGS: dict[str, tuple[str, ...]] = {
    "write": (),
    "read": ("--no-install",),
    FIX_PHASE: ("--no-install",),
}
PLUGIN = "pytest-ckptcompat"


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


# --- one cell -----------------------------------------------------------------------


def report_path(matrix: Matrix, tag: str, phase: str) -> Path:
    """Where a cell's phase keeps its report: `<tag>.json` (read), `<tag>.<phase>.json`."""
    name = f"{tag}.json" if phase == "read" else f"{tag}.{phase}.json"
    return Path(matrix.cell_reports) / name


def fix_path(matrix: Matrix, tag: str) -> Path:
    """Where a cell keeps what applying the matrix's allowlist did (`ckptcompat.fixcheck/1`)."""
    return Path(matrix.cell_reports) / f"{tag}.fix.json"


def snippet_path(matrix: Matrix) -> Path:
    """The allowlist `ckptcompat report` writes beside the matrix report."""
    return Path(matrix.report) / SNIPPET_FILE


def log_path(matrix: Matrix, tag: str, phase: str) -> Path:
    """Where the matrix run keeps a cell's phase's full output."""
    return log_file(Path(matrix.cell_reports), tag, phase)


def _cell_session(nox: Any, matrix: Matrix, cell: Cell) -> None:
    def session(session: nox.Session) -> None:
        from nox.command import CommandFailed

        phase, tests, extra = _cell_args(session.posargs, matrix)
        root = Path.cwd()
        phases = MATRIX_PHASES if phase == "both" else (phase,)
        try:
            # Also before the fix phase: a CI job runs it in a fresh venv (a warm one's
            # stamp makes this free).
            _install(session, matrix, cell)
        except CommandFailed as exc:
            problem = f"the install failed ({exc.reason or 'see its output'})"
            for p in phases if phase != FIX_PHASE else ():  # no fix check says "not checked"
                _keep(root / report_path(matrix, cell.tag, p), _stub(cell, p, problem))
            session.error(f"cell {cell.tag}: {problem}")
        if phase == FIX_PHASE:
            _check_fix(session, matrix, cell, root)
            return
        missing = _missing_tools(session)
        if missing:
            problem = missing_message(missing, matrix)
            for p in phases:
                _keep(root / report_path(matrix, cell.tag, p), _stub(cell, p, problem))
            session.error(f"cell {cell.tag}: {problem}")
        base = [
            "-p",
            "no:cacheprovider",
            *matrix.pytest_args,
            *extra,
            *tests,
            f"--ckpt-compat-dir={root / matrix.goldens}",
        ]
        for p in phases:
            _run_phase(session, cell, p, base, root / report_path(matrix, cell.tag, p))

    session.__doc__ = f"Cell python {cell.python}, torch {cell.torch}, numpy {cell.numpy}."
    nox.session(
        session,
        name=cell.tag,
        python=cell.python,
        venv_backend="uv",
        reuse_venv=True,
        tags=[CELL_TAG],
        default=False,  # a bare `nox` runs the matrix, which runs the cells
        allow_parallel=True,
        download_python="never",  # a missing interpreter is an error, not a download
    )


def _check_fix(session: nox.Session, matrix: Matrix, cell: Cell, root: Path) -> None:
    """Apply the report's allowlist in this cell and load every golden with plain torch."""
    snippet = root / snippet_path(matrix)
    # An earlier run's check must not stand in for this one's (if check-fix fails to
    # write one, the reader's fix is "not checked", which fails the run and the gate).
    (root / fix_path(matrix, cell.tag)).unlink(missing_ok=True)
    if not snippet.is_file():
        session.error(f"no {snippet}: `nox -s report` writes it once some reader refuses a global")
    session.run(
        "python", "-m", "pytest_ckptcompat", "check-fix", str(snippet), str(root / matrix.goldens),
        "--out", str(root / fix_path(matrix, cell.tag)), success_codes=[0, 1],
    )  # fmt: skip


#: In the cell's venv: what its installs were made from (`install_key`), written last.
INSTALL_STAMP = ".ckptcompat-installed"
# Run once the installs are done: bytecode for what every pytest process of the cell
# imports (uv compiles none, and under PYTHONDONTWRITEBYTECODE each process would compile
# torch again, about a second), then the stamp.
_FINISH_INSTALL = (
    "import sys, pathlib, torch, numpy, pytest; "
    "pathlib.Path(sys.prefix, sys.argv[1]).write_text(sys.argv[2], encoding='utf-8')"
)


def install_key(matrix: Matrix, cell: Cell, packages: Sequence[str]) -> str:
    """What a cell's installs depend on: the pins, the installer's arguments, local projects.

    Local projects (`-e FOLDER`, a folder) count by their build files: an editable
    install follows source edits by itself, but not a change of its dependencies.
    A local find-links folder counts by the torch and numpy wheels it holds for the
    pins (name, size, time): a rebuilt wheel of the same version installs again.
    """
    import hashlib

    digest = hashlib.sha256()
    parts = [PLUGIN, cell.torch, cell.numpy, *matrix.index_args(), *packages]
    for part in parts:
        digest.update(part.encode() + b"\0")
        folder = Path(part)
        for name in ("pyproject.toml", "setup.py", "setup.cfg"):
            if (folder / name).is_file():
                digest.update(name.encode() + (folder / name).read_bytes())
    for link in matrix.find_links:
        for pin in (f"torch-{cell.torch}", f"numpy-{cell.numpy}"):
            for wheel in sorted(Path(link).glob(f"{pin}*")) if Path(link).is_dir() else ():
                info = wheel.stat()
                digest.update(f"{wheel.name} {info.st_size} {info.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def _install(session: nox.Session, matrix: Matrix, cell: Cell) -> None:
    """Install the cell, or nothing when its venv's stamp says it is up to date."""
    packages = [*_split(matrix.packages), *plugin_requirement(matrix)]
    key = install_key(matrix, cell, packages)
    stamp = Path(session.virtualenv.location or "") / INSTALL_STAMP
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == key:
        session.log(f"installs up to date ({stamp} matches torch, numpy and [install] packages)")
        return
    stamp.unlink(missing_ok=True)  # an install that fails half-way leaves no stamp
    session.install(*matrix.index_args(), f"torch=={cell.torch}", f"numpy=={cell.numpy}")
    if packages:
        session.install(*matrix.index_args(), *packages)
    # run_install: skipped, like the installs, under `--no-install` (no stamp then).
    session.run_install(
        "python", "-c", _FINISH_INSTALL, INSTALL_STAMP, key,
        env={"PYTHONDONTWRITEBYTECODE": ""}, silent=True,
    )  # fmt: skip


_PIP_NAMES = {"pytest": "pytest", "pytest_ckptcompat": PLUGIN}
_PREFLIGHT = (
    "import importlib.util as u; "
    "print(' '.join(m for m in ('pytest', 'pytest_ckptcompat') if u.find_spec(m) is None))"
)


def missing_message(missing: Sequence[str], matrix: Matrix) -> str:
    """The one line a cell says when its venv lacks pytest or this plugin."""
    add = " and ".join(f'"{_PIP_NAMES[m]}"' for m in missing)
    return (
        f"{' and '.join(missing)} not importable in the cell's venv: add {add} to "
        f'[install] packages in {matrix.path} (from a checkout: "-e /path/to/pytest-ckptcompat")'
    )


def _missing_tools(session: nox.Session) -> list[str]:
    """The names of pytest and this plugin, if the cell's venv lacks them (not imported)."""
    out = session.run("python", "-c", _PREFLIGHT, silent=True)
    if not isinstance(out, str):  # `--install-only`: nothing ran
        return []
    return out.split()


def _run_phase(session: nox.Session, cell: Cell, phase: str, base: list[str], report: Path) -> None:
    """Run pytest for one phase and keep its report, whatever happened."""
    from nox.command import CommandFailed

    partial = report.with_name(report.name + ".partial")
    partial.unlink(missing_ok=True)
    # The last run's report is set aside while this one runs: killed (Ctrl-C, a CI
    # timeout), the phase leaves no report, which `ckptcompat report` shows as a
    # crashed cell, instead of the last run's passing one.
    previous = report.with_name(report.name + ".previous")
    if report.is_file():
        os.replace(report, previous)
    failed = ""
    started = time.monotonic()
    try:
        ran = session.run(
            "python", "-m", "pytest", *base, *PHASE_FLAGS[phase],
            f"--ckpt-compat-report={partial}",
            # pytest exit 1 means some test failed: the report says which and why.
            success_codes=[0, 1],
        )  # fmt: skip
    except CommandFailed as exc:
        ran, failed = True, exc.reason or "pytest failed"
    if ran is None:  # `nox --install-only`: pytest did not run, the last report stays
        if previous.is_file():
            os.replace(previous, report)
        return
    previous.unlink(missing_ok=True)
    problem = ""
    try:
        doc: dict[str, Any] = json.loads(partial.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = _stub(cell, phase, "")
        doc["run"]["duration"] = round(time.monotonic() - started, 2)
        problem = f"pytest wrote no report ({failed or 'it exited 0 or 1'}): see its output"
    else:
        reader = doc.get("reader", {}).get("tag")
        if reader != cell.tag:
            problem = f"it installed {reader}: pin the versions the cell names"
    doc["cell"] = {"phase": phase, "problem": problem}
    _keep(report, doc)
    partial.unlink(missing_ok=True)
    entry = phase_entry(doc, report, cell.tag, phase)
    if entry["status"] == "crashed":
        session.error(f"cell {cell.tag}, {phase} phase: {entry['problem']}")


def _stub(cell: Cell, phase: str, problem: str) -> dict[str, Any]:
    """The report of a phase pytest wrote none for: the cell, the phase, and why."""
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {
        "schema": schemas.REPORT,
        "plugin": __version__,
        "created": created,
        "reader": {
            "tag": cell.tag,
            "torch": cell.torch,
            "numpy": cell.numpy,
            "python": cell.python,
            "platform": "",
        },
        "records": [],
        "written": [],
        "stale": [],
        "load_sites": [],
        "tests": [],
        "run": {
            "update": phase == "write",
            "compat": phase == "read",
            "exitstatus": None,
            "duration": 0.0,
            "partial": True,
        },
        "cell": {"phase": phase, "problem": problem},
    }


def _keep(path: Path, doc: dict[str, Any]) -> None:
    from ..files import atomic_write

    atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode())


def plugin_requirement(matrix: Matrix) -> list[str]:
    """Installer arguments for the pytest-ckptcompat nox runs with (none if listed already).

    A checkout (this package imported from a folder with its pyproject.toml):
    `-e FOLDER`; installed from a folder, a file or a VCS URL: the same again;
    from an index: `pytest-ckptcompat==VERSION`. pytest comes with it.
    """
    if _listed(matrix):
        return []
    here = Path(__file__).resolve().parents[2]
    if _is_checkout(here):
        return ["-e", str(here)]
    from importlib import metadata

    try:
        dist = metadata.distribution(PLUGIN)
    except metadata.PackageNotFoundError:
        return []  # the cell's preflight says what to add
    direct = dist.read_text("direct_url.json")
    if not direct:
        return [f"{PLUGIN}=={dist.version}"]
    info = json.loads(direct)
    url = str(info.get("url", ""))
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        path = unquote(urlparse(url).path)
        if info.get("dir_info", {}).get("editable"):
            return ["-e", path]
        return [path] if Path(path).exists() else []
    vcs = info.get("vcs_info")
    if vcs:
        return [f"{PLUGIN} @ {vcs['vcs']}+{url}@{vcs.get('commit_id', '')}".rstrip("@")]
    return [f"{PLUGIN} @ {url}"]


def _is_checkout(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    try:
        return f'name = "{PLUGIN}"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        return False


def _listed(matrix: Matrix) -> bool:
    """Whether `[install] packages` already install pytest-ckptcompat."""
    names = (PLUGIN, "pytest_ckptcompat")
    for entry in matrix.packages:
        target = entry.split(maxsplit=1)[-1].strip()
        if target.lower().startswith(names):
            return True
        if target.startswith(("-", "git+", "http")):
            continue
        folder = Path(target)
        if _is_checkout(folder if folder.is_absolute() else Path.cwd() / folder):
            return True
    return False


# --- the driver ---------------------------------------------------------------------


def _driver_sessions(nox: Any, matrix: Matrix) -> None:
    cli = [sys.executable, "-m", "pytest_ckptcompat"]
    report_json = f"{matrix.report}/matrix.json"

    def report(session: nox.Session) -> None:
        """Merge the cell reports into the matrix report (md, html, json, junit)."""
        files = [str(p) for p in _cell_reports(matrix)]
        session.run(
            *cli, "report", *files, "--matrix", str(matrix.path), "--out", matrix.report,
            external=True,
        )  # fmt: skip

    def gate(session: nox.Session) -> None:
        """Exit 1 on any regression against the baseline (matrix/baseline.json)."""
        session.run(*cli, "gate", report_json, "--baseline", matrix.baseline, external=True)

    def baseline(session: nox.Session) -> None:
        """Write the baseline the gate compares with, from the last matrix report."""
        session.run(*cli, "gate", report_json, "--write-baseline", matrix.baseline, external=True)

    def run_matrix(session: nox.Session) -> None:
        """Every cell writes its goldens, every cell reads them all, then report and gate."""
        from nox.command import CommandFailed

        opts = _matrix_args(session.posargs)
        jobs = (os.cpu_count() or 1) if opts.jobs == "auto" else int(opts.jobs)
        nox_cmd = [sys.executable, "-m", "nox", "-f", str(Path.cwd() / "noxfile.py")]
        cell_args = [*(f"--tests={t}" for t in opts.tests), *opts.pytest_args]
        for path in _cell_reports(matrix):
            path.unlink()  # outputs of an earlier run; goldens are never touched here
        logs = Path(matrix.cell_reports) / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        for line in cold_estimate(matrix):
            print(line, flush=True)
        started = time.monotonic()
        for phase in MATRIX_PHASES:
            # A cell that fails (say, its install) does not stop the others: its
            # report says why, and the report and the gate show it.
            _run_phase_everywhere(matrix, phase, nox_cmd, cell_args, jobs)
        report(session)
        doc = json.loads(Path(report_json).read_text(encoding="utf-8"))
        if doc["fix"]["snippet"]:
            # The matrix proves its own fix: every reader applies the snippet it printed.
            _run_phase_everywhere(matrix, FIX_PHASE, nox_cmd, [], jobs)
            report(session)
            doc = json.loads(Path(report_json).read_text(encoding="utf-8"))
        print(f"cells done in {time.monotonic() - started:.0f} s; full output in {logs}/")
        unproved = unproved_readers(doc)
        if unproved:  # the allowlist we print is not shown to do what we say: loudly
            where = ", ".join(f"{t} ({v})" for t, v in unproved.items())
            session.error(f"the printed allowlist is not proved in {where}: see the report")
        bad = [c for c in doc.get("cells", []) if c["status"] != "ok"]
        crashed = [c["tag"] for c in bad if c["status"] == "crashed"]
        if Path(matrix.baseline).is_file():
            try:
                gate(session)
            except CommandFailed:
                session.error("the gate failed: see above")
        else:
            session.log(f"no baseline at {matrix.baseline}: `nox -s baseline` writes one")
            failed = [c["tag"] for c in bad if c["status"] == "failed"]
            if failed:
                session.error(
                    f"tests of the project failed in: {', '.join(failed)} (with a baseline, "
                    "the gate decides which failures are known)"
                )
        if crashed:
            session.error(f"cells that crashed: {', '.join(crashed)}")

    for func, name, default in (
        (run_matrix, "matrix", True),
        (report, "report", False),
        (gate, "gate", False),
        (baseline, "baseline", False),  # only when asked: never after a failed gate
    ):
        nox.session(func, name=name, python=False, tags=["matrix-driver"], default=default)


def _run_phase_everywhere(
    matrix: Matrix, phase: str, nox_cmd: list[str], cell_args: list[str], jobs: int
) -> None:
    """Run one phase in every cell, `jobs` at a time; one line per cell as it finishes."""
    cells = list(matrix.cells)
    width = max(len(c.tag) for c in cells)
    lock = threading.Lock()
    done = 0
    env = {**os.environ, ENV_VAR: str(matrix.path)}
    print(
        f"{phase} phase: {len(cells)} cell(s), {min(jobs, len(cells))} at a time",
        flush=True,
    )

    def run(cell: Cell) -> tuple[Cell, int, float]:
        log = log_path(matrix, cell.tag, phase)
        started = time.monotonic()
        with open(log, "wb") as out:
            cmd = [*nox_cmd, *PHASE_NOX_FLAGS[phase], "-s", cell.tag, "--", phase, *cell_args]
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
        return cell, code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in as_completed([pool.submit(run, c) for c in cells]):
            cell, code, seconds = future.result()
            with lock:
                done += 1
                line = progress_line(matrix, cell, phase, code, seconds)
                print(f"[{done}/{len(cells)}] {phase:<5} {cell.tag:<{width}}  {line}", flush=True)


def progress_line(matrix: Matrix, cell: Cell, phase: str, code: int, seconds: float) -> str:
    """`ok: 6 passed, 2 finding; loads: 25 ok, 3 blocked (12 s)`, from the phase's report.

    A failed phase adds a line naming its tests; a crashed one, why and its log's last lines.
    """
    if phase == FIX_PHASE:
        return _fix_line(matrix, cell, code, seconds)
    report = report_path(matrix, cell.tag, phase)
    log = log_path(matrix, cell.tag, phase)
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = "".join(f"\n    | {t}" for t in _tail(log, 6))
        return (
            f"crashed: nox exited {code} and no report was kept ({seconds:.0f} s; log: {log}){tail}"
        )
    entry = phase_entry(doc, report, cell.tag, phase)
    text = ", ".join(f"{n} {o}" for o, n in entry["tests"].items()) or "no tests"
    if phase == "write":
        text += f"; {len(doc.get('written', []))} golden(s) written"
    else:
        loads = Counter(r["outcome"] for r in doc.get("records", []) if r.get("kind") == "golden")
        if loads:
            text += "; loads: " + ", ".join(f"{n} {o}" for o, n in loads.most_common())
    if entry["status"] == "crashed":  # why, and the end of its log
        tail = "".join(f"\n    | {t}" for t in _tail(log, 6))
        return f"crashed: {entry['problem']} ({seconds:.0f} s; log: {log}){tail}"
    line = f"{entry['status']}: {text} ({seconds:.0f} s)"
    if entry["status"] == "failed":  # which tests, and why
        line += f"\n    | {entry['problem']}"
    return line


def _fix_line(matrix: Matrix, cell: Cell, code: int, seconds: float) -> str:
    """`17 of 18 goldens load with the allowlist applied (4 s)`, from the cell's fix check."""
    try:
        doc = json.loads(fix_path(matrix, cell.tag).read_text(encoding="utf-8"))
        results = doc["results"]
    except (OSError, ValueError, KeyError, TypeError):
        tail = "".join(f"\n    | {t}" for t in _tail(log_path(matrix, cell.tag, FIX_PHASE), 6))
        return f"crashed: nox exited {code} and no fix check was kept ({seconds:.0f} s){tail}"
    loads = sum(1 for r in results if r.get("loads"))
    return f"{loads} of {len(results)} goldens load with the allowlist applied ({seconds:.0f} s)"


def _tail(path: Path, lines: int) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


# --- a cold run's disk ----------------------------------------------------------------

# Measured with uv (whose cache holds each wheel unpacked; venvs hard-link it when on
# the same file system): a Linux torch from PyPI with its CUDA libraries is 5 GB (2.5.1)
# to 8 GB (newer CUDA), a CPU build under 1 GB, a numpy about 0.1 GB. The default
# matrix filled 27 GB of uv cache, cold.
_CUDA_TORCH_GB = 8.0
_CPU_TORCH_GB = 1.0
_NUMPY_GB = 0.1


def venv_dir(tag: str) -> Path:
    """Where nox keeps a cell's venv (`.nox/<name>`, nox's own rule when importable)."""
    try:
        from nox.sessions import _normalize_path

        return Path(_normalize_path(".nox", tag))
    except ImportError:  # pragma: no cover - nox moved it
        return Path(".nox") / tag.replace(".", "-").lower()


def uv_cache() -> Path:
    """The cache folder uv uses (UV_CACHE_DIR, else XDG_CACHE_HOME/uv, else ~/.cache/uv)."""
    if os.environ.get("UV_CACHE_DIR"):
        return Path(os.environ["UV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "uv"


def _cached(cache: Path, name: str, version: str) -> bool:
    """Whether uv's cache already holds this wheel unpacked (its layout, read as a hint)."""
    archive = cache / "archive-v0"
    return any(archive.glob(f"*/{name}-{version}.dist-info")) or any(
        archive.glob(f"*/{name}-{version}+*.dist-info")  # a local build: torch-2.13.0+cpu
    )


def _cpu_build(matrix: Matrix, version: str) -> bool:
    if os.environ.get("UV_TORCH_BACKEND", "").startswith("cpu") or sys.platform != "linux":
        return True
    for link in matrix.find_links:
        folder = Path(link)
        if folder.is_dir() and any(folder.glob(f"torch-{version}[+-]*.whl")):
            return True
    return platform.machine() not in ("x86_64", "AMD64")


def cold_estimate(matrix: Matrix) -> list[str]:
    """Lines to print before a run that will build venvs: which, and the disk it may take."""
    cold = [c for c in matrix.cells if not venv_dir(c.tag).is_dir()]
    if not cold:
        return []
    cache = uv_cache()
    gigabytes = 0.0
    fetch = []
    for version in sorted({c.torch for c in cold}, key=Version):
        if _cached(cache, "torch", version):
            continue
        cpu = _cpu_build(matrix, version)
        gigabytes += _CPU_TORCH_GB if cpu else _CUDA_TORCH_GB
        fetch.append(f"torch {version} ({'CPU' if cpu else 'with CUDA libraries'})")
    for version in sorted({c.numpy for c in cold}, key=Version):
        if not _cached(cache, "numpy", version):
            gigabytes += _NUMPY_GB
            fetch.append(f"numpy {version}")
    lines = [
        f"cold run: {len(cold)} of {len(matrix.cells)} cell(s) have no venv yet "
        f"({', '.join(c.tag for c in cold)})"
    ]
    if not fetch:
        lines.append(f"  uv's cache ({cache}) already holds their torch and numpy")
        return lines
    try:
        probe = cache if cache.exists() else Path.home()
        free = f"; {shutil.disk_usage(probe).free / 1e9:.0f} GB free there"
    except OSError:
        free = ""
    lines.append(
        f"  to download into uv's cache ({cache}): {', '.join(fetch)}: "
        f"about {gigabytes:.0f} GB{free}"
    )
    return lines


# --- shared -------------------------------------------------------------------------


def _cell_reports(matrix: Matrix) -> list[Path]:
    """Every cell report of the matrix's cells there is, each phase's, and the fix checks."""
    reports = [report_path(matrix, t, phase) for t in matrix.tags for phase in MATRIX_PHASES]
    checks = [fix_path(matrix, t) for t in matrix.tags]
    return sorted(path for path in (*reports, *checks) if path.is_file())


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
