"""Version-matrix speed: one cold cell, one warm cell (nox vs plain pytest), the whole matrix.

    python benchmarks/bench_matrix.py [--skip-cold] [--cells N] [--repeat N] [--out FILE]

Run it with the python that has nox and uv (`.venv/bin/python`, see docs/benchmarks.md),
from any folder: every command runs in the project root, with $CKPTCOMPAT_MATRIX unset
(the default matrix, matrix/matrix.toml) unless --matrix says otherwise. Goldens and
reports go to the matrix's own folders (matrix/goldens, matrix/cells, matrix/report).

1. Cold cell: `nox --envdir TMP -s CELL --install-only -- write` with UV_CACHE_DIR set
   to a new empty folder, so the venv is created and torch (the CUDA build from the
   index), numpy, the plugin and the example are all downloaded and installed. The
   cache and the envdir are deleted afterwards; the shared uv cache is never touched.
   Downloaded bytes are read from /proc/net/dev (every interface but lo and ifb*).
2. Warm cell: `nox -s CELL -- both` against the same two pytest commands the session
   runs, started directly with the cell venv's python, interleaved, --repeat times;
   the overhead is the median of the per-round differences. Also timed: the same
   session with `--no-install`, `nox -l` (start-up and noxfile import) and each of
   the session's two `uv pip install` calls on their own.
3. Whole matrix: one unmeasured `nox -s matrix` to build any missing cell venvs, then
   `nox -s matrix -- -j 1` and `nox -s matrix -- -j 2`, with the time of each phase (write,
   read, report and gate) taken from when the driver starts it.

Every measured run records the 1-minute load average before it and the CPU other
processes used while it ran (/proc/stat minus this script's children, in cores):
the machine has 2 cores and is shared. A run during which other processes used more
than --max-foreign cores is repeated (up to --retries times) and marked if it still was.
The targets (from the issue) get a pass/fail mark; the exit status is 0 either way,
this is a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "benchmarks" / "_data" / "bench_matrix_logs"
TARGET_COLD_S = 90.0
TARGET_WARM_OVERHEAD_S = 10.0
TARGET_WARM_OVERHEAD_RATIO = 0.5  # issue 16: nox's overhead at most half the cell's own pytest
TARGET_MATRIX_S = 180.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from pytest_ckptcompat.matrix.config import ENV_VAR, Cell, Matrix, load_matrix  # noqa: E402


@dataclass
class Run:
    """One timed command."""

    label: str
    wall_s: float
    returncode: int
    load_before: float
    foreign_cores: float  # CPU used by other processes during the run, in cores
    disturbed: bool = False
    waited_s: float = 0.0  # waiting for other processes to go quiet, before the run
    marks: dict[str, float] = field(default_factory=dict)  # seconds from start
    log: str = ""


def _cpu_busy_s() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _own_cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def rx_bytes() -> int:
    """Bytes received so far on every interface but loopback and traffic-shaping ones."""
    total = 0
    with open("/proc/net/dev", encoding="ascii") as f:
        for line in f.readlines()[2:]:
            name, data = line.split(":", 1)
            name = name.strip()
            if name != "lo" and not name.startswith("ifb"):
                total += int(data.split()[0])
    return total


def tree_bytes(path: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Disk usage of a folder, each hard-linked file once (and none already in `seen`)."""
    seen = set() if seen is None else seen
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def remove_tree(path: Path) -> None:
    def make_writable(func: Callable[..., Any], p: str, _exc: object) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        os.chmod(p, 0o700)
        func(p)

    if path.exists():
        shutil.rmtree(path, onerror=make_writable)


class Runner:
    """Runs commands from the project root, timed, with the load noted."""

    def __init__(
        self, env: dict[str, str], max_foreign: float, retries: int, max_wait: float
    ) -> None:
        self.env = env
        self.max_foreign = max_foreign
        self.retries = retries
        self.max_wait = max_wait
        self.count = 0
        LOGS.mkdir(parents=True, exist_ok=True)

    def wait_quiet(self) -> float:
        """Wait (up to --max-wait s) until other processes use under --max-foreign cores."""
        start = time.perf_counter()
        while True:
            busy0 = _cpu_busy_s()
            time.sleep(3)
            cores = (_cpu_busy_s() - busy0) / 3
            waited = time.perf_counter() - start
            if cores < self.max_foreign or waited > self.max_wait:
                return waited
            print(f"    waiting: other processes use {cores:.2f} cores", file=sys.stderr)
            time.sleep(7)

    def once(
        self,
        label: str,
        cmd: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        ok: Sequence[int] = (0,),
        marks: dict[str, re.Pattern[str]] | None = None,
        quiet: bool = True,
    ) -> Run:
        waited = self.wait_quiet() if quiet else 0.0
        self.count += 1
        slug = re.sub(r"[^\w.-]+", "_", label)
        log = LOGS / f"{self.count:03d}-{slug}.log"
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {' '.join(cmd)}", file=sys.stderr)
        load = os.getloadavg()[0]
        busy0, own0 = _cpu_busy_s(), _own_cpu_s()
        seen: dict[str, float] = {}
        start = time.perf_counter()
        with log.open("w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=ROOT,
                env=env or self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                for name, pattern in (marks or {}).items():
                    if name not in seen and pattern.search(line):
                        seen[name] = time.perf_counter() - start
            returncode = proc.wait()
        wall = time.perf_counter() - start
        foreign = max(0.0, (_cpu_busy_s() - busy0) - (_own_cpu_s() - own0)) / wall
        run = Run(label, wall, returncode, load, foreign, foreign > self.max_foreign, waited, seen)
        run.log = str(log.relative_to(ROOT))
        print(
            f"    {wall:.2f} s, exit {returncode}, load {load:.2f}, other processes "
            f"{foreign:.2f} cores{' (disturbed)' if run.disturbed else ''}",
            file=sys.stderr,
            flush=True,
        )
        if returncode not in ok:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
            raise SystemExit(f"{label} failed (exit {returncode}), see {log}:\n" + "\n".join(tail))
        return run

    def measure(self, label: str, cmd: Sequence[str], **kwargs: Any) -> Run:
        """`once`, repeated while other processes disturbed it (up to --retries times)."""
        run = self.once(label, cmd, **kwargs)
        for _ in range(self.retries):
            if not run.disturbed:
                break
            print("    repeating: disturbed by other processes", file=sys.stderr)
            run = self.once(label, cmd, **kwargs)
        return run


def venv_dir(envdir: str, cell: Cell) -> Path:
    """Where `nox --envdir ENVDIR` puts a cell's venv (nox's own rule when importable)."""
    try:
        from nox.sessions import _normalize_path

        return ROOT / _normalize_path(envdir, cell.tag)
    except ImportError:  # pragma: no cover - nox moved it
        name = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "-", cell.tag).lower()).strip("-")
        return ROOT / envdir / name


def pytest_commands(matrix: Matrix, cell: Cell, python: Path) -> list[list[str]]:
    """The write and read commands of noxmatrix's cell session, run with `python -m pytest`."""
    base = [
        str(python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *matrix.pytest_args,
        *matrix.tests,
        f"--ckpt-compat-dir={ROOT / matrix.goldens}",
    ]
    folder = ROOT / matrix.cell_reports
    return [
        [*base, "--ckpt-compat-update", f"--ckpt-compat-report={folder / cell.tag}.write.json"],
        [*base, "--ckpt-compat", f"--ckpt-compat-report={folder / cell.tag}.json"],
    ]


def index_cells(matrix: Matrix) -> list[Cell]:
    """Cells whose torch comes from the index (no wheel for it in a find-links folder)."""
    local = set()
    for link in matrix.find_links:
        folder = Path(link)
        if folder.is_dir():
            local |= {re.split(r"[-+]", p.name)[1] for p in folder.glob("torch-*.whl")}
    return [c for c in matrix.cells if c.torch not in local] or list(matrix.cells)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def first_cells_matrix(source: Path, cells: Sequence[Cell], folder: Path) -> Path:
    """A copy of `source` with only `cells`: the first as the product, the rest included."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    doc = tomllib.loads(source.read_text(encoding="utf-8"))
    first, rest = cells[0], cells[1:]
    lines = [
        f"# The first {len(cells)} cells of {source} (benchmarks/bench_matrix.py --cells)",
        "[matrix]",
        *(
            f"{axis} = [{json.dumps(getattr(first, axis))}]"
            for axis in ("python", "torch", "numpy")
        ),
        "include = " + _toml([asdict(c) for c in rest]),
    ]
    for table in ("install", "run"):
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml(value)}" for key, value in doc.get(table, {}).items()]
    path = folder / "matrix.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_matrix(path)  # the same validation nox will do
    return path


def tool_version(cmd: Sequence[str]) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).strip().splitlines()
    return out[-1] if out and proc.returncode == 0 else "not found"


def machine() -> dict[str, Any]:
    return {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uv": tool_version([sys.executable, "-m", "uv", "--version"]),
        "nox": tool_version([sys.executable, "-m", "nox", "--version"]),
        "load_at_start": os.getloadavg()[0],
    }


def cold_cell(runner: Runner, cell: Cell, tmp_parent: str | None) -> dict[str, Any]:
    shared = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv").resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-matrix-cold-", dir=tmp_parent)).resolve()
    cache, envdir = tmp / "uv-cache", tmp / "nox"
    if cache == shared or shared in cache.parents:
        raise SystemExit(f"refusing: the fresh cache {cache} would be inside {shared}")
    env = {**runner.env, "UV_CACHE_DIR": str(cache)}
    # --install-only skips session.run; the write phase is the one that runs nothing else
    # (the read phase reads the report its skipped pytest run did not write). --verbose
    # puts uv's own lines (what it downloaded, in how long) in the log.
    cmd = [*NOX, "--envdir", str(envdir), "-s", cell.tag, "--install-only", "--verbose"]
    cmd += ["--", "write"]
    try:
        rx0 = rx_bytes()
        run = runner.once(f"cold {cell.tag}", cmd, env=env)
        downloaded = rx_bytes() - rx0
        seen: set[tuple[int, int]] = set()
        cache_bytes = tree_bytes(cache, seen)
        # uv hard-links from its cache into the venv: count only what is the venv's own.
        venv_bytes = tree_bytes(venv_dir(str(envdir), cell), seen)
    finally:
        remove_tree(tmp)
    return {
        "cell": cell.tag,
        "command": "TMP=$(mktemp -d); UV_CACHE_DIR=$TMP/uv-cache "
        + " ".join(NOX_SHOWN + cmd[len(NOX) :]).replace(str(tmp), "$TMP"),
        "run": asdict(run),
        "downloaded_bytes": downloaded,
        "cache_bytes": cache_bytes,
        "venv_bytes": venv_bytes,
    }


def warm_cell(runner: Runner, matrix: Matrix, cell: Cell, repeat: int) -> dict[str, Any]:
    venv = venv_dir(".nox", cell)  # nox's default envdir, relative
    nox_both = [*NOX, "-s", cell.tag, "--", "both"]
    nox_noinstall = [*NOX, "-s", cell.tag, "--no-install", "--", "both"]
    # Builds the venv if missing; unmeasured.
    runner.once(f"warm-up {cell.tag}", nox_both, quiet=False)
    direct = pytest_commands(matrix, cell, venv / "bin" / "python")
    uv = [sys.executable, "-m", "uv", "pip", "install", "--python", str(venv / "bin" / "python")]
    installs = {
        "torch_numpy": [*uv, *matrix.index_args(), f"torch=={cell.torch}", f"numpy=={cell.numpy}"],
        "packages": [*uv, *matrix.index_args(), *(p for e in matrix.packages for p in e.split())],
    }
    rounds: list[dict[str, Any]] = []
    for i in range(repeat):
        nox_run = runner.measure(f"warm nox both #{i + 1}", nox_both, marks=CELL_MARKS)
        # Both pytest commands must be undisturbed: repeat the pair, not one of them.
        pair = [runner.once(f"warm pytest write+read #{i + 1}", c, ok=(0, 1)) for c in direct]
        for _ in range(runner.retries):
            if not any(r.disturbed for r in pair):
                break
            print("    repeating the pair: disturbed by other processes", file=sys.stderr)
            pair = [runner.once(f"warm pytest write+read #{i + 1}", c, ok=(0, 1)) for c in direct]
        noinstall = runner.measure(
            f"warm nox --no-install both #{i + 1}", nox_noinstall, marks=CELL_MARKS
        )
        parts = {
            "nox_list": runner.measure(f"nox -l #{i + 1}", [*NOX, "-l"]),
            **{
                name: runner.measure(f"uv pip install {name} #{i + 1}", cmd)
                for name, cmd in installs.items()
            },
        }
        pytest_s = sum(r.wall_s for r in pair)
        rounds.append(
            {
                "nox": asdict(nox_run),
                "pytest": [asdict(r) for r in pair],
                "nox_no_install": asdict(noinstall),
                "parts": {k: asdict(v) for k, v in parts.items()},
                "pytest_s": pytest_s,
                "overhead_s": nox_run.wall_s - pytest_s,
                "overhead_no_install_s": noinstall.wall_s - pytest_s,
            }
        )
    return {
        "cell": cell.tag,
        "commands": {
            "nox": " ".join(NOX_SHOWN + nox_both[len(NOX) :]),
            "nox_no_install": " ".join(NOX_SHOWN + nox_noinstall[len(NOX) :]),
            "pytest": [
                " ".join([*c[:1], "-m", "pytest", "...", *c[-1:]]).replace(f"{ROOT}/", "")
                for c in direct
            ],
            "pytest_full": [" ".join(c) for c in direct],
            "installs": {k: " ".join(v) for k, v in installs.items()},
        },
        "rounds": rounds,
    }


# The lines nox logs as a cell session starts each step (nox > uv pip install ...).
CELL_MARKS = {
    "install_torch": re.compile(r"^nox > uv pip install .*torch=="),
    "install_packages": re.compile(r"^nox > uv pip install .*-e "),
    "pytest_write": re.compile(r"^nox > (python -m )?pytest .*--ckpt-compat-update"),
    "pytest_read": re.compile(r"^nox > (python -m )?pytest .*--ckpt-compat( |$)"),
}
# The matrix session prints a line as each phase starts (its cells' output goes to logs).
MATRIX_MARKS = {
    "write": re.compile(r"^write phase: \d+ cell"),
    "read": re.compile(r"^read phase: \d+ cell"),
    "report": re.compile(r"-m pytest_ckptcompat report\b"),
}


def whole_matrix(
    runner: Runner, jobs: Sequence[int], repeat: int, warmup: bool
) -> list[dict[str, Any]]:
    if warmup:  # builds the venvs of cells not built yet (warm uv cache)
        runner.once("matrix warm-up", [*NOX, "-s", "matrix"], ok=(0, 1), quiet=False)
    results = []
    for j in jobs:
        cmd = [*NOX, "-s", "matrix", "--", "-j", str(j)]
        runs = [
            runner.measure(f"matrix -j {j} #{i + 1}", cmd, ok=(0, 1), marks=MATRIX_MARKS)
            for i in range(repeat)
        ]
        results.append(
            {
                "jobs": j,
                "command": " ".join(NOX_SHOWN + cmd[len(NOX) :]),
                "runs": [asdict(r) for r in runs],
            }
        )
    return results


NOX = [sys.executable, "-m", "nox"]
NOX_SHOWN = ["nox"]


def _med(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f} to {max(values):.{digits}f}" if len(values) > 1 else "-"


def _load(runs: Sequence[dict[str, Any]]) -> str:
    loads = [r["load_before"] for r in runs]
    foreign = [r["foreign_cores"] for r in runs]
    mark = " (disturbed)" if any(r["disturbed"] for r in runs) else ""
    if len(runs) == 1:
        return f"{loads[0]:.2f} / {foreign[0]:.2f}{mark}"
    return f"{min(loads):.2f}-{max(loads):.2f} / {max(foreign):.2f}{mark}"


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


STEP_NAMES = {
    "start": "nox start-up, noxfile import, venv reuse check",
    "install_torch": "`uv pip install torch==... numpy==...` (already installed)",
    "install_packages": "`uv pip install -e . -e examples/trainer` (rebuilds both)",
    "pytest_write": "pytest, write phase (`--ckpt-compat-update`)",
    "pytest_read": "pytest, read phase (`--ckpt-compat`), report check, exit",
}


def steps(run: dict[str, Any]) -> dict[str, float]:
    """Seconds per step of a cell session, from when nox logged the start of each."""
    marks = sorted(run["marks"].items(), key=lambda kv: kv[1])
    if not marks:
        return {}
    names = ["start", *(name for name, _ in marks)]
    times = [0.0, *(t for _, t in marks), run["wall_s"]]
    return {name: times[i + 1] - times[i] for i, name in enumerate(names)}


def render_warm_steps(warm: dict[str, Any]) -> list[str]:
    rounds = warm["rounds"]
    columns: dict[str, dict[str, list[float]]] = {"nox": {}, "nox_no_install": {}}
    for r in rounds:
        for column, per_step in columns.items():
            for name, secs in steps(r[column]).items():
                per_step.setdefault(name, []).append(secs)
    direct = {
        "pytest_write": [r["pytest"][0]["wall_s"] for r in rounds],
        "pytest_read": [r["pytest"][1]["wall_s"] for r in rounds],
    }
    alone = {
        "start": ("nox_list", "`nox -l`"),
        "install_torch": ("torch_numpy", "alone"),
        "install_packages": ("packages", "alone"),
    }

    def cell(values: list[float] | None) -> str:
        return "-" if not values else f"{_med(values):.2f}"

    lines = [
        f"Where the warm cell's time goes (median of {len(rounds)} rounds, seconds): each step "
        "of the nox session, from the moment nox logs its start; the same command run "
        "directly; and each overhead step timed alone against the same venv.",
        "",
        "| step | `nox -- both` | `nox --no-install -- both` | direct | alone |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in STEP_NAMES.items():
        part = alone.get(name)
        alone_values = [r["parts"][part[0]]["wall_s"] for r in rounds] if part else None
        alone_text = cell(alone_values) + (f" ({part[1]})" if part and part[1] != "alone" else "")
        lines.append(
            f"| {label} | {cell(columns['nox'].get(name))} "
            f"| {cell(columns['nox_no_install'].get(name))} | {cell(direct.get(name))} "
            f"| {alone_text} |"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} cores, {m['system']}, Python {m['python']} (driver), "
        f"{m['uv']}, nox {m['nox']}; matrix {results['matrix']} ({results['cells']} cells); "
        f"{m['date']}, load average {m['load_at_start']:.2f} at start.",
        "",
        "| measurement | command | runs | median (s) | range (s) | target | "
        "load before / other processes (cores) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    cold = results.get("cold", [])
    for c in cold:
        r = c["run"]
        lines.append(
            f"| cold cell {c['cell']}: venv + torch, numpy, plugin, example; empty uv cache "
            f"| `{c['command']}` | 1 | {r['wall_s']:.1f} | - "
            f"| <= {TARGET_COLD_S:.0f} s: {_mark(r['wall_s'] <= TARGET_COLD_S)} "
            f"| {_load([r])} |"
        )
    warm = results.get("warm")
    if warm:
        rounds = warm["rounds"]
        nox_s = [r["nox"]["wall_s"] for r in rounds]
        pytest_s = [r["pytest_s"] for r in rounds]
        over = [r["overhead_s"] for r in rounds]
        noinst = [r["nox_no_install"]["wall_s"] for r in rounds]
        over_noinst = [r["overhead_no_install_s"] for r in rounds]
        pytest_runs = [p for r in rounds for p in r["pytest"]]
        n = len(rounds)
        tag = warm["cell"]
        cmds = warm["commands"]
        lines += [
            f"| warm cell {tag}: nox, write + read | `{cmds['nox']}` | {n} "
            f"| {_med(nox_s):.1f} | {_spread(nox_s)} | | {_load([r['nox'] for r in rounds])} |",
            f"| warm cell {tag}: the same two pytest runs, direct "
            f"| `{cmds['pytest'][0]}`, then `{cmds['pytest'][1]}` | {n} "
            f"| {_med(pytest_s):.1f} | {_spread(pytest_s)} | | {_load(pytest_runs)} |",
            f"| **warm cell overhead** (nox minus pytest, per round) | | {n} "
            f"| **{_med(over):.1f}** | {_spread(over)} "
            f"| <= {TARGET_WARM_OVERHEAD_S:.0f} s: "
            f"{_mark(_med(over) <= TARGET_WARM_OVERHEAD_S)} | |",
            f"| **warm cell overhead / its pytest** | | {n} "
            f"| **{_med(over) / _med(pytest_s):.0%}** | "
            f"| <= {TARGET_WARM_OVERHEAD_RATIO:.0%}: "
            f"{_mark(_med(over) <= TARGET_WARM_OVERHEAD_RATIO * _med(pytest_s))} | |",
            f"| warm cell {tag}: nox `--no-install`, write + read | `{cmds['nox_no_install']}` "
            f"| {n} | {_med(noinst):.1f} | {_spread(noinst)} | "
            f"| {_load([r['nox_no_install'] for r in rounds])} |",
            f"| warm cell overhead with `--no-install` | | {n} | {_med(over_noinst):.1f} "
            f"| {_spread(over_noinst)} | | |",
        ]
    for mx in results.get("matrix_runs", []):
        walls = [r["wall_s"] for r in mx["runs"]]
        rc = sorted({r["returncode"] for r in mx["runs"]})
        lines.append(
            f"| whole matrix, {results['cells']} cells, warm, {mx['jobs']} at a time "
            f"(exit {', '.join(map(str, rc))}) | `{mx['command']}` | {len(walls)} "
            f"| {_med(walls):.1f} | {_spread(walls)} "
            f"| <= {TARGET_MATRIX_S:.0f} s: {_mark(_med(walls) <= TARGET_MATRIX_S)} "
            f"| {_load(mx['runs'])} |"
        )
    if cold:
        lines.append("")
        for c in cold:
            lines.append(
                f"- cold cell {c['cell']}: {_gb(c['downloaded_bytes'])} received over the "
                f"network, {_gb(c['cache_bytes'])} in the fresh uv cache (unpacked), "
                f"{c['venv_bytes'] / 1e6:.0f} MB more in the venv (the rest is hard links "
                "into the cache); "
                f"{c['downloaded_bytes'] / c['run']['wall_s'] / 1e6:.0f} MB/s on average."
            )
    if warm:
        lines += ["", *render_warm_steps(warm)]
    for mx in results.get("matrix_runs", []):
        phases = []
        for r in mx["runs"]:
            t = r["marks"]
            if {"write", "read", "report"} <= set(t):
                phases.append(
                    (
                        t["write"],
                        t["read"] - t["write"],
                        t["report"] - t["read"],
                        r["wall_s"] - t["report"],
                    )
                )
        if phases:
            med = [_med([p[i] for p in phases]) for i in range(4)]
            if mx is results["matrix_runs"][0]:
                lines += [
                    "",
                    "Whole matrix by phase (median, seconds from the driver's start of each):",
                    "",
                    "| jobs | driver start-up | write phase | read phase | report + gate |",
                    "|---:|---:|---:|---:|---:|",
                ]
            lines.append(
                f"| {mx['jobs']} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.1f} |"
            )
    lines += [
        "",
        "Load: the 1-minute load average before the run, and the CPU that processes other "
        "than the benchmark's used during it (cores, averaged over the run).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="no cold cell (downloads GBs)")
    parser.add_argument("--skip-warm", action="store_true", help="no warm-cell measurement")
    parser.add_argument("--skip-matrix", action="store_true", help="no whole-matrix runs")
    parser.add_argument("--cells", type=int, help="whole matrix: only its first N cells")
    parser.add_argument("--repeat", type=int, default=3, help="warm-cell rounds (median)")
    parser.add_argument("--matrix-repeat", type=int, default=1, help="runs per whole matrix")
    parser.add_argument("--jobs", default="1,2", help="whole matrix: cells at a time (1,2)")
    parser.add_argument("--no-warmup", action="store_true", help="no unmeasured matrix run")
    parser.add_argument(
        "--cell", help="warm cell (default: the newest torch the index serves, first numpy)"
    )
    parser.add_argument(
        "--cold-cell", action="append", help="cold cell (repeatable; default: as --cell)"
    )
    parser.add_argument("--matrix", help=f"matrix file (sets ${ENV_VAR}; default: unset)")
    parser.add_argument("--tmp", help="folder for the cold cell's cache and venvs (default: /tmp)")
    parser.add_argument(
        "--max-foreign", type=float, default=0.3, help="cores other processes may use (0.3)"
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats of a disturbed run (2)")
    parser.add_argument(
        "--max-wait", type=float, default=900, help="s to wait for a quiet machine (900)"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--json", metavar="FILE", help="also write every number as JSON")
    parser.add_argument("--from-json", metavar="FILE", help="only print the table of a --json")
    args = parser.parse_args()
    if args.from_json:
        print(render(json.loads(Path(args.from_json).read_text(encoding="utf-8"))))
        return 0

    env = dict(os.environ)
    env.pop(ENV_VAR, None)
    if args.matrix:
        env[ENV_VAR] = str(Path(args.matrix).resolve())
    # nox's uv backend and the driver's sub-nox calls find uv beside this python.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    matrix = load_matrix(env.get(ENV_VAR) or ROOT / "matrix" / "matrix.toml")
    warm_tag = args.cell
    if warm_tag is None:  # the newest torch the index serves, with the first numpy
        newest = max(index_cells(matrix), key=lambda c: tuple(map(int, c.torch.split("."))))
        warm_tag = next(c for c in matrix.cells if c.torch == newest.torch).tag
    cold_tags = args.cold_cell or [warm_tag]
    runner = Runner(env, args.max_foreign, args.retries, args.max_wait)
    results: dict[str, Any] = {
        "machine": machine(),
        "matrix": str(matrix.path.resolve().relative_to(ROOT))
        if matrix.path.resolve().is_relative_to(ROOT)
        else str(matrix.path),
        "cells": len(matrix.cells),
    }
    print(json.dumps(results["machine"]), file=sys.stderr)

    if not args.skip_cold:
        results["cold"] = [cold_cell(runner, matrix.cell(t), args.tmp) for t in cold_tags]
    if not args.skip_warm:
        results["warm"] = warm_cell(runner, matrix, matrix.cell(warm_tag), args.repeat)
    if not args.skip_matrix:
        jobs = [int(j) for j in args.jobs.split(",")]
        if args.cells and args.cells < len(matrix.cells):
            with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
                path = first_cells_matrix(matrix.path, matrix.cells[: args.cells], Path(tmp))
                runner.env = {**env, ENV_VAR: str(path)}
                results["cells"] = args.cells
                results["matrix_runs"] = whole_matrix(
                    runner, jobs, args.matrix_repeat, not args.no_warmup
                )
                runner.env = env
        else:
            results["matrix_runs"] = whole_matrix(
                runner, jobs, args.matrix_repeat, not args.no_warmup
            )

    table = render(results)
    print("\n" + table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
