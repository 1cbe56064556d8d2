"""`show` and `diff` read no tensor bytes: they cost what a scan costs.

    python benchmarks/bench_show.py [--quick] [--json FILE]

Uses the inputs of bench_scan.py (benchmarks/_data/, generated on first use)
plus `big.safetensors`, the same 1 GiB of tensors exported with safetensors.
In one process, median of N runs, it times on each file:

- `scan`: `scan_file` (torch's rules read once, outside the timing);
- `show`: `open_inventory` + `prepare` + the text (what `ckptcompat show` prints);
- `diff`: reading both sides and comparing (`big.pt` against `big.safetensors`,
  the pickle-heavy file against itself);

and, for each, an upper bound on what the process touched: its minor page
faults (4 KiB each: the memory-mapped file's pages read, and any heap the run
grows) plus the bytes `read()` returned (`/proc/self/io` `rchar`). Reading one
tensor of the 1 GiB files would show as 256 MiB. Then the commands end to end
(`ckptcompat scan | show | diff`, a new process each: show and diff import no
torch, scan must read the installed torch's rules).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scan import DATA, _env, ensure, make_big, make_heavy  # noqa: E402

PAGE = resource.getpagesize()


def make_big_safetensors(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file(
        {f"layer{i}.weight": torch.zeros(64 * 1024 * 1024) for i in range(4)},
        str(path),
        metadata={"format": "pt"},
    )


def _rchar() -> int:
    try:
        with open("/proc/self/io") as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(fn: Callable[[], object], runs: int) -> dict[str, float]:
    """Median seconds, and the most pages faulted in / bytes read by one run."""
    times, faults, reads = [], [], []
    for _ in range(runs):
        f0, r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, _rchar()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        reads.append(_rchar() - r0)
    return {
        "seconds": statistics.median(times),
        "touched_bytes": max(faults) * PAGE,
        "read_bytes": max(reads),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 5")
    parser.add_argument("--runs", type=int, help="runs per measurement (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)

    heavy = ensure(DATA / "heavy.pt", make_heavy)
    big = ensure(DATA / "big.pt", make_big)
    big_st = ensure(DATA / "big.safetensors", make_big_safetensors)

    import torch

    from pytest_ckptcompat.diff import read_side
    from pytest_ckptcompat.scan.inventory import open_inventory
    from pytest_ckptcompat.scan.rules import TorchRules
    from pytest_ckptcompat.scan.scanner import scan_file
    from pytest_ckptcompat.scan.show import prepare, show_text
    from pytest_ckptcompat.scan.statedict import compare

    rules = TorchRules.from_installed()

    def show(path: Path) -> Callable[[], object]:
        return lambda: show_text(prepare(open_inventory(path)))

    def diff(a: Path, b: Path) -> Callable[[], object]:
        return lambda: compare(
            read_side(str(a), None, (), "A").sd, read_side(str(b), None, (), "B").sd
        )

    cases = {
        "1 GiB torch zip (big.pt)": (big, big_st),
        "1 GiB safetensors (big.safetensors)": (big_st, big),
        "pickle-heavy (heavy.pt)": (heavy, heavy),
    }
    results: dict[str, Any] = {"torch": torch.__version__, "runs": runs, "files": {}}
    for label, (path, other) in cases.items():
        scan_file(path, rules)  # warm-up: page cache, numpy's dtype lookup
        show(path)()
        row = {
            "file_bytes": path.stat().st_size,
            "scan": measure(lambda p=path: scan_file(p, rules), runs),
            "show": measure(show(path), runs),
            "diff": measure(diff(path, other), runs),
        }
        results["files"][label] = row
        print(f"measured {label}", file=sys.stderr, flush=True)

    cli: dict[str, float] = {}
    commands = {
        "scan big.pt": ["scan", "--no-project-config", str(big)],
        "show big.pt": ["show", str(big)],
        "show big.safetensors": ["show", str(big_st)],
        "diff big.pt big.safetensors": ["diff", str(big), str(big_st)],
    }
    for label, argv in commands.items():
        cmd = [sys.executable, "-m", "pytest_ckptcompat", *argv]
        cli[label] = measure(
            lambda c=cmd: subprocess.run(c, capture_output=True, check=False, env=_env()), runs
        )["seconds"]
    results["cli"] = cli
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results["load_average"] = load
    print(
        f"\ntorch {results['torch']}, {os.cpu_count()} CPUs, median of {runs} runs, "
        f"load average {load:.1f}\n"
    )
    print(
        "| file | size | scan (s) | show (s) | diff (s) | show: faults + reads "
        "| diff: faults + reads |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, row in results["files"].items():
        cells = [
            label,
            f"{row['file_bytes'] / 2**30:.2f} GiB" if row["file_bytes"] > 2**29
            else f"{row['file_bytes'] / 1e6:.1f} MB",
            f"{row['scan']['seconds']:.4f}",
            f"{row['show']['seconds']:.4f}",
            f"{row['diff']['seconds']:.4f}",
            f"{(row['show']['touched_bytes'] + row['show']['read_bytes']) / 1e6:.2f} MB",
            f"{(row['diff']['touched_bytes'] + row['diff']['read_bytes']) / 1e6:.2f} MB",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print("\n| command (new process) | seconds |\n|---|---:|")
    for label, seconds in cli.items():
        print(f"| `ckptcompat {label}` | {seconds:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
