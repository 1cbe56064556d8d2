"""Scan speed: pytest-ckptcompat vs torch's own helper vs picklescan.

    python benchmarks/bench_scan.py [--quick] [--json FILE]

Generates its inputs under benchmarks/_data/ (gitignored) on first use:

- heavy.pt: 100,000 small dicts {"loss": np.float64, "step": np.int64, "w": tensor(2)},
  so data.pkl is >= 15 MB and the archive has 100,000 tensor members;
- big.pt: 4 float32 tensors of 256 MiB each (1 GiB on disk; torch.zeros, so it is quick).

Then, in one run, it times (time.perf_counter, median of N runs; picklescan once,
it is slow) our in-process `scan_file` (rules built once, outside the timing),
`torch.serialization.get_unsafe_globals_in_checkpoint`, and picklescan's
`scan_file_path`, prints a markdown table with the ratios, the end-to-end CLI
time when `pytest_ckptcompat/cli.py` exists, and whether importing the plugin
imports torch or numpy. The speed targets (from the issue) are printed with a
pass/fail mark; the exit status is 0 either way, this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "_data"
HEAVY_ENTRIES = 100_000
HEAVY_MIN_PKL = 15 * 1000 * 1000
BIG_TENSORS, BIG_NUMEL = 4, 64 * 1024 * 1024  # 4 x 256 MiB of float32

sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def make_heavy(path: Path) -> None:
    import numpy as np
    import torch

    gen = torch.Generator().manual_seed(0)
    obj = {
        f"entry_{i:06d}": {
            "loss": np.float64(i * 0.25),
            "step": np.int64(i),
            "w": torch.randn(2, generator=gen),
        }
        for i in range(HEAVY_ENTRIES)
    }
    torch.save(obj, path)


def make_big(path: Path) -> None:
    import torch

    torch.save({f"layer{i}.weight": torch.zeros(BIG_NUMEL) for i in range(BIG_TENSORS)}, path)


def ensure(path: Path, make: Callable[[Path], None]) -> Path:
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        make(tmp)
        tmp.replace(path)  # never leave a half-written file behind to be reused
        print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return path


def data_pkl_size(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist() if i.filename.endswith("/data.pkl"))


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_time(path: Path, runs: int) -> float:
    cmd = [sys.executable, "-m", "pytest_ckptcompat", "scan", str(path), "--json"]

    def run() -> None:
        # The exit status says whether the file loads; only a crash matters here.
        proc = subprocess.run(cmd, capture_output=True, env=_env(), check=False)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"CLI failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")

    return median_time(run, runs)


def idle_pytest(runs: int) -> dict[str, float]:
    """A 20-test suite not using the plugin: installed vs `-p no:ckptcompat`."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_idle.py").write_text(
            "import pytest\n\n@pytest.mark.parametrize('i', range(20))\ndef test_it(i):\n"
            "    assert i >= 0\n"
        )
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp]

        def run(extra: list[str]) -> Callable[[], None]:
            return lambda: subprocess.run([*base, *extra], capture_output=True, check=True)

        # Interleave so machine noise hits both alike.
        with_plugin, without = [], []
        for _ in range(runs):
            with_plugin.append(median_time(run([]), 1))
            without.append(median_time(run(["-p", "no:ckptcompat"]), 1))
    return {
        "with_plugin_s": statistics.median(with_plugin),
        "without_s": statistics.median(without),
    }


def import_check() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_ckptcompat.plugin"],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["import failed"]}
    modules = set()
    total_us = 0
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line.split(":", 1)[1].split("|")]
        if not parts[0].isdigit():
            continue
        name = parts[2]
        modules.add(name.strip())
        if name == "pytest_ckptcompat.plugin":
            total_us = int(parts[1])
    heavy = sorted(m for m in modules if m.split(".")[0] in ("torch", "numpy"))
    return {
        "plugin_import_s": total_us / 1e6,
        "imports_torch": any(m.split(".")[0] == "torch" for m in heavy),
        "imports_numpy": any(m.split(".")[0] == "numpy" for m in heavy),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 5")
    parser.add_argument("--runs", type=int, help="runs per measurement (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    parser.add_argument("--no-picklescan", action="store_true", help="skip picklescan")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)

    heavy = ensure(DATA / "heavy.pt", make_heavy)
    big = ensure(DATA / "big.pt", make_big)

    import numpy as np
    import torch

    from pytest_ckptcompat.scan.rules import TorchRules
    from pytest_ckptcompat.scan.scanner import scan_file

    try:
        from picklescan.scanner import scan_file_path
    except ImportError:
        scan_file_path = None

    rules = TorchRules.from_installed()
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "runs": runs,
        "cpus": os.cpu_count(),
        "files": {},
    }
    for label, path in (("pickle-heavy", heavy), ("1 GiB tensors", big)):
        scan = scan_file(path, rules)  # warm-up: page cache, numpy's dtype lookup
        if scan.error:
            raise SystemExit(f"scan failed: {scan.error}")
        row: dict[str, Any] = {
            "path": str(path.relative_to(ROOT)),
            "file_bytes": path.stat().st_size,
            "data_pkl_bytes": data_pkl_size(path),
            "loadable": scan.loadable,
        }
        row["ours_s"] = median_time(lambda p=path: scan_file(p, rules), runs)
        torch.serialization.get_unsafe_globals_in_checkpoint(path)  # warm-up
        row["torch_s"] = median_time(
            lambda p=path: torch.serialization.get_unsafe_globals_in_checkpoint(p), runs
        )
        if scan_file_path is not None and not args.no_picklescan:
            start = time.perf_counter()
            scan_file_path(str(path))
            row["picklescan_s"] = time.perf_counter() - start
        row["cli_s"] = cli_time(path, runs)
        results["files"][label] = row
        print(f"measured {label}", file=sys.stderr, flush=True)
    results["import"] = import_check()
    results["idle_pytest"] = idle_pytest(runs)

    print(
        f"\nPython {results['python']}, torch {results['torch']}, numpy {results['numpy']}, "
        f"{results['cpus']} CPUs; median of {runs} runs (picklescan: 1 run)\n"
    )
    print(
        "| file | data.pkl | ours (s) | torch helper (s) | picklescan (s) "
        "| torch / ours | picklescan / ours | CLI end-to-end (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, row in results["files"].items():
        ours = row["ours_s"]
        ps = row.get("picklescan_s")
        cli = row["cli_s"]
        cells = [
            label,
            f"{row['data_pkl_bytes'] / 1e6:.2f} MB",
            f"{ours:.4f}",
            f"{row['torch_s']:.4f}",
            "-" if ps is None else f"{ps:.3f}",
            f"{row['torch_s'] / ours:.1f}x",
            "-" if ps is None else f"{ps / ours:.0f}x",
            f"{cli:.3f}",
        ]
        print("| " + " | ".join(cells) + " |")
    heavy_row, big_row = results["files"]["pickle-heavy"], results["files"]["1 GiB tensors"]
    targets = {
        "pickle-heavy >= 5x torch helper": heavy_row["torch_s"] / heavy_row["ours_s"] >= 5,
        "pickle-heavy data.pkl >= 15 MB": heavy_row["data_pkl_bytes"] >= HEAVY_MIN_PKL,
        "1 GiB checkpoint <= 20 ms": big_row["ours_s"] <= 0.020,
    }
    results["targets"] = targets
    print()
    for name, ok in targets.items():
        print(f"- target {name}: {'PASS' if ok else 'FAIL'}")
    imp = results["import"]
    if "error" in imp:
        print(f"- plugin import: failed ({imp['error']})")
    else:
        print(
            f"- `import pytest_ckptcompat.plugin`: {imp['plugin_import_s'] * 1000:.1f} ms, "
            f"imports torch: {imp['imports_torch']}, imports numpy: {imp['imports_numpy']}"
        )
    idle = results["idle_pytest"]
    print(
        f"- pytest, 20 tests not using the plugin: {idle['with_plugin_s']:.3f} s installed, "
        f"{idle['without_s']:.3f} s with -p no:ckptcompat"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
