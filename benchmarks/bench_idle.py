"""What the installed plugin costs a pytest run that does not use it.

    python benchmarks/bench_idle.py [--runs N] [--tests N] [--json FILE]

A suite of N trivial tests (default 200) that uses neither the fixture nor an
option runs with the plugin installed and with `-p no:ckptcompat` (the plugin
not loaded at all), alternately, --runs times each (default 11): machine noise
hits both alike. Reported: the median wall time of each, their ratio, and the
median of the per-round differences; the target (issue 16) is at most 2%.
Also: what importing the plugin imports (it must not import torch or numpy,
nor the modules only a checking run needs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.02
#: Modules a run that checks nothing must not import (each costs milliseconds or seconds).
HEAVY = ("torch", "numpy", "pytest_ckptcompat.outcomes", "pytest_ckptcompat.runreport",
         "pytest_ckptcompat.compare", "pytest_ckptcompat.scan.rules")  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CKPTCOMPAT"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # as a CI checkout runs: no stray caches either way
    return env


def _run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench_idle: {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def measure(runs: int, tests: int) -> dict[str, object]:
    """Alternating runs of the suite with and without the plugin: medians and ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_idle.py").write_text(
            "import pytest\n\n\n"
            f"@pytest.mark.parametrize('i', range({tests}))\n"
            "def test_it(i):\n    assert i >= 0\n"
        )
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
        _run(base, folder)  # warm the file system caches for both
        with_plugin, without = [], []
        for i in range(runs):
            print(f"round {i + 1}/{runs}", file=sys.stderr, flush=True)
            # Alternate which goes first, so neither always runs on a warmer machine.
            pair = [(with_plugin, base), (without, [*base, "-p", "no:ckptcompat"])]
            for times, cmd in pair if i % 2 == 0 else reversed(pair):
                times.append(_run(cmd, folder))
    w, wo = statistics.median(with_plugin), statistics.median(without)
    diffs = [a - b for a, b in zip(with_plugin, without, strict=True)]
    return {
        "tests": tests,
        "runs": runs,
        "with_plugin_s": w,
        "without_s": wo,
        "ratio": w / wo,
        "median_difference_ms": statistics.median(diffs) * 1000,
        "with_plugin_all_s": with_plugin,
        "without_all_s": without,
    }


def imports() -> dict[str, object]:
    """What `import pytest_ckptcompat.plugin` brings in that an idle run must not need."""
    code = (
        "import sys, pytest, pytest_ckptcompat.plugin\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True
    ).stdout.split()
    return {"heavy_imported": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="rounds (default: %(default)s)")
    parser.add_argument("--tests", type=int, default=200, help="tests (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    found = {**measure(args.runs, args.tests), **imports(), "load_before": load}
    ratio = float(found["ratio"])  # type: ignore[arg-type]
    print(
        f"pytest, {args.tests} tests not using the plugin, median of {args.runs} alternating "
        f"runs (load average before: {load:.2f}):\n"
        f"  plugin installed:     {found['with_plugin_s']:.3f} s\n"
        f"  -p no:ckptcompat:     {found['without_s']:.3f} s\n"
        f"  ratio {ratio:.3f} (median difference {found['median_difference_ms']:+.1f} ms)\n"
        f"  heavy modules imported by the plugin: {found['heavy_imported'] or 'none'}\n"
        f"- target installed-and-unused within 2%: {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
