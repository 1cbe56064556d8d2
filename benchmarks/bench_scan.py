"""Scan speed and prediction agreement: pytest-ckptcompat vs torch's own helper vs picklescan.

    python benchmarks/bench_scan.py [--quick] [--runs N] [--json FILE]
                                    [--no-picklescan] [--agreement] [--env PYTHON ...]

Generates its inputs under benchmarks/_data/ (gitignored) on first use:

- tiny.pt: `{"w": torch.ones(2)}`;
- heavy.pt: 100,000 small dicts {"loss": np.float64, "step": np.int64, "w": tensor(2)},
  so data.pkl is >= 15 MB and the archive has 100,000 tensor members;
- big.pt: 4 float32 tensors of 256 MiB each (1 GiB on disk; torch.zeros, so it is quick).

Then, in one run, measured side by side (each round runs every contender
once, in turn, so machine noise hits them alike; the figure is the median of
the rounds, wall time and CPU time of the process or of the child):

1. in process: our `scan_file` (the installed torch's rules from the table,
   read once outside the timing), our prediction for every torch release
   (`predict_file(path, all)`), `torch.serialization.get_unsafe_globals_in_checkpoint`,
   picklescan's `scan_file_path` (one run: it is slow), and two floors for the
   pickle-heavy file: reading data.pkl's bytes, and a bare `pickletools.genops`
   walk over them (one run);
2. whole process: `ckptcompat scan tiny.pt` vs `picklescan -p tiny.pt` vs
   `ckptcompat scan --torch all tiny.pt`, and `scan` vs `scan --torch all` on
   heavy.pt, run from an empty folder;
3. with `--agreement`: every installed environment (this one, each
   `.venvs/*/bin/python`, and `--env PYTHON`) writes the agreement corpus
   (tests/ckpt_corpus.py, pickle protocols 2 and 4), the zip layouts of
   tests/scan/test_ziparchive.py are added, and each environment measures every
   file with its real torch and predicts every other environment from the tables
   (tests/agreement.py); a prediction agrees when the verdict and the blocking
   names are torch's.

It prints markdown tables with the ratios, the targets of issue 13 with a
pass/fail mark, and whether importing the plugin imports torch or numpy; the
exit status is 0 either way, this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "_data"
TESTS = ROOT / "tests"
HEAVY_ENTRIES = 100_000
HEAVY_MIN_PKL = 15 * 1000 * 1000
BIG_TENSORS, BIG_NUMEL = 4, 64 * 1024 * 1024  # 4 x 256 MiB of float32

sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def make_tiny(path: Path) -> None:
    import torch

    torch.save({"w": torch.ones(2)}, path)


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


def data_pkl(path: Path) -> tuple[int, int]:
    """(offset of data.pkl's bytes in the file, their size)."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data.pkl"))
        with open(path, "rb") as fh:
            fh.seek(info.header_offset + 26)
            name_len, extra_len = (
                int.from_bytes(fh.read(2), "little"),
                int.from_bytes(fh.read(2), "little"),
            )
        return info.header_offset + 30 + name_len + extra_len, info.file_size


# --- timing ------------------------------------------------------------------------------


class Timings:
    """Wall and CPU seconds of each contender, round after round."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def run(self, name: str, fn: Callable[[], object]) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        self.add(name, time.perf_counter() - wall, time.process_time() - cpu)

    def child(self, name: str, cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0, 1)) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=cwd, env=_env(), check=False)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in ok:
            raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.add(name, wall, cpu)

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "wall_s": statistics.median(self.wall[name]),
                "cpu_s": statistics.median(self.cpu[name]),
                "runs": len(self.wall[name]),
                "wall_min_s": min(self.wall[name]),
                "wall_max_s": max(self.wall[name]),
            }
            for name in self.wall
        }


# Times one scan in a fresh process running the code under `sys.argv[1]` (a checkout):
# a warm-up scan, then the timed one; prints wall and CPU seconds.
_CHILD_SCAN = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pytest_ckptcompat.scan.rules import TorchRules
from pytest_ckptcompat.scan.scanner import scan_file
rules = TorchRules.from_installed()
scan_file(sys.argv[2], rules)
cpu, wall = time.process_time(), time.perf_counter()
scan_file(sys.argv[2], rules)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def _child_scan(t: Timings, name: str, checkout: Path, path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD_SCAN, str(checkout), str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    t.add(name, float(out[0]), float(out[1]))


def in_process(
    heavy: Path, big: Path, runs: int, picklescan: bool, baseline: Path | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    import pickletools

    import torch

    from pytest_ckptcompat.scan import torch_table
    from pytest_ckptcompat.scan.predict import predict_file
    from pytest_ckptcompat.scan.scanner import scan_file
    from pytest_ckptcompat.scan.torch_reader import installed_rules

    try:
        from picklescan.scanner import scan_file_path
    except ImportError:
        scan_file_path = None
    rules = installed_rules()
    every = torch_table.known_versions()
    out = {}
    for label, path in (("pickle-heavy", heavy), ("1 GiB tensors", big)):
        t = Timings()
        contenders: dict[str, Callable[[], object]] = {
            "ours": lambda p=path: scan_file(p, rules),
            "ours --torch all": lambda p=path: predict_file(p, every),
            "torch helper": lambda p=path: torch.serialization.get_unsafe_globals_in_checkpoint(p),
        }
        if label == "pickle-heavy":
            offset, size = data_pkl(path)

            def read_bytes(p: Path = path, o: int = offset, n: int = size) -> bytes:
                with open(p, "rb") as fh:
                    fh.seek(o)
                    return fh.read(n)

            contenders["floor: read data.pkl"] = read_bytes
        for fn in contenders.values():  # warm-up: page cache, regex compiles, torch's imports
            fn()
        for i in range(runs):
            names = list(contenders)
            names = names[i % len(names) :] + names[: i % len(names)]  # rotate the order
            for name in names:
                t.run(name, contenders[name])
            if baseline is not None and label == "pickle-heavy":
                _child_scan(t, "before: ours (baseline checkout)", baseline, path)
                _child_scan(t, "after: ours, same way", ROOT, path)
        if label == "pickle-heavy":
            data = read_bytes()
            t.run("floor: pickletools.genops", lambda d=data: sum(1 for _ in pickletools.genops(d)))
        if scan_file_path is not None and picklescan:
            t.run("picklescan", lambda p=path: scan_file_path(str(p)))
        out[label] = t.summary()
        print(f"measured {label} in process", file=sys.stderr, flush=True)
    return out


def whole_process(
    tiny: Path, heavy: Path, runs: int, picklescan: bool, baseline: Path | None = None
) -> dict[str, Any]:
    ours = [sys.executable, "-m", "pytest_ckptcompat", "scan"]
    script = Path(sys.executable).with_name("picklescan")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        here = Path(tmp)  # no pytest configuration here: the scan looks, finds none
        for label, path, rounds in (("tiny", tiny, 2 * runs), ("pickle-heavy", heavy, runs)):
            t = Timings()
            contenders = {
                "ckptcompat scan": [*ours, str(path)],
                "ckptcompat scan --torch all": [*ours, "--torch", "all", str(path)],
            }
            if label == "tiny" and picklescan and script.exists():
                contenders["picklescan -p"] = [str(script), "-p", str(path)]
            if baseline is not None:
                # The same command with the baseline checkout first on the path.
                contenders["before: ckptcompat scan"] = [
                    sys.executable, "-c",
                    f"import sys; sys.path.insert(0, {str(baseline)!r}); "
                    "from pytest_ckptcompat.cli import main; sys.exit(main(sys.argv[1:]))",
                    "scan", str(path),
                ]  # fmt: skip
            for name, cmd in contenders.items():  # warm-up (and .pyc files)
                t.child("warm-up " + name, cmd, here)
            for i in range(rounds):
                names = list(contenders)
                names = names[i % len(names) :] + names[: i % len(names)]
                for name in names:
                    t.child(name, contenders[name], here)
            out[label] = {k: v for k, v in t.summary().items() if not k.startswith("warm-up")}
            print(f"measured {label} whole process", file=sys.stderr, flush=True)
    return out


# --- agreement ----------------------------------------------------------------------------


def agreement(extra_envs: list[str], venvs: bool = True) -> dict[str, Any]:
    """Each installed environment predicts every other one; count what agrees."""
    sys.path[:0] = [str(TESTS), str(TESTS / "scan")]
    from agreement import disagreements
    from test_ziparchive import _duplicates, _layouts

    agreement_py = TESTS / "agreement.py"
    pythons = [sys.executable]
    if venvs:
        pythons += sorted(str(p) for p in (ROOT / ".venvs").glob("*/bin/python"))
    pythons += extra_envs
    envs = {}
    for python in pythons:
        if python != sys.executable:  # the plugin as this checkout has it
            subprocess.run(
                [str(Path(sys.executable).with_name("uv")), "pip", "install", "-q", "--no-deps",
                 "-e", str(ROOT)],
                env={**os.environ, "VIRTUAL_ENV": str(Path(python).parent.parent)},
                check=True,
            )  # fmt: skip
        versions = subprocess.run(
            [python, "-c", "import torch, numpy; print(torch.__version__, numpy.__version__)"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        envs[python] = (versions[0].split("+")[0], versions[1])
    with tempfile.TemporaryDirectory() as tmp:
        files: list[str] = []
        for i, python in enumerate(envs):
            written = subprocess.run(
                [python, str(agreement_py), "--write-corpus", f"{tmp}/{i}-torch{envs[python][0]}"],
                capture_output=True, text=True, check=True, env=_env(),
            ).stdout  # fmt: skip
            files += json.loads(written)
        zips = {**_layouts(), **{n: d for n, (d, _) in _duplicates().items()}}
        for name, data in zips.items():
            path = Path(tmp) / "zips" / f"{name}.pt"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            files.append(str(path))
        results = {}
        for python, (torch_v, numpy_v) in envs.items():
            targets = [v for p, v in envs.items() if p != python]
            args = [a for t, n in targets for a in ("--predict", t, "--numpy", n)]
            proc = subprocess.run(
                [python, str(agreement_py), "--oracle", *args, *files],
                capture_output=True, text=True, check=False, env=_env(),
            )  # fmt: skip
            if proc.returncode:
                raise RuntimeError(f"{python}: {proc.stderr[-2000:]}")
            results[python] = json.loads(proc.stdout)
            print(f"measured torch {torch_v} / numpy {numpy_v}", file=sys.stderr, flush=True)
    pairs = []
    for by, (by_torch, by_numpy) in envs.items():
        for of, (of_torch, of_numpy) in envs.items():
            if by == of:
                continue
            wrong = disagreements(results[by], results[of], f"{of_torch}+{of_numpy}")
            pairs.append(
                {
                    "predicted_from": f"torch {by_torch} / numpy {by_numpy}",
                    "real": f"torch {of_torch} / numpy {of_numpy}",
                    "files": len(files),
                    "loads_there": sum(bool(results[of][f]["loads"]) for f in files),
                    "agree": len(files) - len(wrong),
                    "disagreements": wrong,
                }
            )
    return {"environments": [f"torch {t} / numpy {n}" for t, n in envs.values()], "pairs": pairs}


# --- idle cost ------------------------------------------------------------------------------


def idle_pytest(runs: int) -> dict[str, float]:
    """A 20-test suite not using the plugin: installed vs `-p no:ckptcompat`."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_idle.py").write_text(
            "import pytest\n\n@pytest.mark.parametrize('i', range(20))\ndef test_it(i):\n"
            "    assert i >= 0\n"
        )
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp]
        t = Timings()
        for _ in range(runs):  # interleaved so machine noise hits both alike
            t.child("with_plugin", base, Path(tmp), ok=(0,))
            t.child("without", [*base, "-p", "no:ckptcompat"], Path(tmp), ok=(0,))
    summary = t.summary()
    return {
        "with_plugin_s": summary["with_plugin"]["wall_s"],
        "without_s": summary["without"]["wall_s"],
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


# --- report ----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def report(results: dict[str, Any]) -> dict[str, bool]:
    print(
        f"\nPython {results['python']}, torch {results['torch']}, numpy {results['numpy']}, "
        f"{results['cpus']} CPUs; median of {results['runs']} rounds, contenders in turn "
        f"(picklescan and genops in process: 1 run); load average before "
        f"{results['load_before']}, after {results['load_after']}\n"
    )
    inproc = results["in_process"]
    print("In process (ms; CPU ms in brackets):\n")
    print("| file | contender | wall | CPU | its time / ours (wall, CPU) |")
    print("|---|---|---:|---:|---:|")
    for label, rows in inproc.items():
        ours = rows["ours"]
        for name, row in rows.items():
            ratio = ""
            if not name.startswith("ours"):
                wall, cpu = row["wall_s"] / ours["wall_s"], row["cpu_s"] / ours["cpu_s"]
                ratio = f"{wall:.1f}x, {cpu:.1f}x"
            print(f"| {label} | {name} | {_ms(row['wall_s'])} | {_ms(row['cpu_s'])} | {ratio} |")
    whole = results["whole_process"]
    print("\nWhole process (ms, from an empty folder):\n")
    print("| file | command | wall | CPU | vs `ckptcompat scan` (wall, CPU) |")
    print("|---|---|---:|---:|---:|")
    for label, rows in whole.items():
        ours = rows["ckptcompat scan"]
        for name, row in rows.items():
            ratio = f"{row['wall_s'] / ours['wall_s']:.2f}x, {row['cpu_s'] / ours['cpu_s']:.2f}x"
            print(f"| {label} | `{name}` | {_ms(row['wall_s'])} | {_ms(row['cpu_s'])} | {ratio} |")
    heavy, big = inproc["pickle-heavy"], inproc["1 GiB tensors"]
    tiny = whole["tiny"]
    targets = {
        "pickle-heavy >= 10x torch helper (in process, wall)": heavy["torch helper"]["wall_s"]
        / heavy["ours"]["wall_s"]
        >= 10,
        "pickle-heavy data.pkl >= 15 MB": results["heavy_data_pkl_bytes"] >= HEAVY_MIN_PKL,
        "1 GiB checkpoint <= 20 ms": big["ours"]["wall_s"] <= 0.020,
        "scan --torch all within 1.5x of scan (tiny, whole process)": tiny[
            "ckptcompat scan --torch all"
        ]["wall_s"]
        <= 1.5 * tiny["ckptcompat scan"]["wall_s"],
        "scan --torch all within 1.5x of scan (pickle-heavy, in process)": heavy[
            "ours --torch all"
        ]["wall_s"]
        <= 1.5 * heavy["ours"]["wall_s"],
    }
    if "picklescan" in heavy:
        targets["pickle-heavy >= 100x picklescan (in process)"] = (
            heavy["picklescan"]["wall_s"] / heavy["ours"]["wall_s"] >= 100
        )
    if "picklescan -p" in tiny:
        targets["tiny.pt whole process <= 2x picklescan"] = (
            tiny["ckptcompat scan"]["wall_s"] <= 2 * tiny["picklescan -p"]["wall_s"]
        )
    if "before: ours (baseline checkout)" in heavy:
        before, after = heavy["before: ours (baseline checkout)"], heavy["after: ours, same way"]
        print(
            f"\nBefore/after ({results['baseline']}), pickle-heavy, one scan in a fresh process: "
            f"{_ms(before['wall_s'])} ms -> {_ms(after['wall_s'])} ms wall "
            f"({before['wall_s'] / after['wall_s']:.1f}x), {_ms(before['cpu_s'])} -> "
            f"{_ms(after['cpu_s'])} ms CPU"
        )
    floor = heavy["floor: read data.pkl"]["wall_s"]
    genops = heavy["floor: pickletools.genops"]["wall_s"]
    print(
        f"\nFloors (pickle-heavy): reading data.pkl takes {_ms(floor)} ms, our scan "
        f"{heavy['ours']['wall_s'] / floor:.1f}x that; a bare pickletools.genops walk takes "
        f"{_ms(genops)} ms, {genops / heavy['ours']['wall_s']:.0f}x our scan."
    )
    if "agreement" in results:
        targets |= report_agreement(results["agreement"], show=False)
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
    return targets


def report_agreement(found: dict[str, Any], *, show: bool = True) -> dict[str, bool]:
    """The agreement table; its target."""
    print("\nPredictions against the real torch:\n")
    print("| predicted from | real | files | loads there | agree |")
    print("|---|---|---:|---:|---:|")
    for pair in found["pairs"]:
        print(
            f"| {pair['predicted_from']} | {pair['real']} | {pair['files']} | "
            f"{pair['loads_there']} | {pair['agree']}/{pair['files']} |"
        )
        for line in pair["disagreements"][:5]:
            print(f"|   | {line} | | | |")
    ok = all(not p["disagreements"] for p in found["pairs"])
    if show:
        print(f"\n- target predictions agree 100%: {'PASS' if ok else 'FAIL'}")
    return {"predictions agree 100% on every installed torch": ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    parser.add_argument("--runs", type=int, help="rounds per measurement (median)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    parser.add_argument("--no-picklescan", action="store_true", help="skip picklescan")
    parser.add_argument(
        "--agreement", action="store_true", help="also check predictions on every installed torch"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="PYTHON",
        help="another environment's python for --agreement (besides .venvs/*)",
    )  # fmt: skip
    parser.add_argument(
        "--no-venvs", action="store_true", help="--agreement: only this python and --env ones"
    )
    parser.add_argument(
        "--agreement-only", action="store_true", help="skip the timings (with --agreement)"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time the code of another checkout (`git archive REV | tar -x -C DIR`) "
        "side by side: `ckptcompat scan` whole process, and one scan in a fresh process",
    )
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)

    tiny = ensure(DATA / "tiny.pt", make_tiny)
    heavy = ensure(DATA / "heavy.pt", make_heavy)
    big = ensure(DATA / "big.pt", make_big)

    import numpy as np
    import torch

    results: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "runs": runs,
        "cpus": os.cpu_count(),
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "heavy_data_pkl_bytes": data_pkl(heavy)[1],
    }
    if args.agreement:
        results["agreement"] = agreement(args.env, venvs=not args.no_venvs)
    if args.agreement_only:
        results["targets"] = report_agreement(results["agreement"])
    else:
        baseline = Path(args.baseline).resolve() if args.baseline else None
        results["baseline"] = str(baseline) if baseline else None
        results["in_process"] = in_process(heavy, big, runs, not args.no_picklescan, baseline)
        results["whole_process"] = whole_process(
            tiny, heavy, runs, not args.no_picklescan, baseline
        )
        results["import"] = import_check()
        results["idle_pytest"] = idle_pytest(runs)
        results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        results["targets"] = report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
