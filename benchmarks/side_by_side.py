"""Side by side: our scanner, picklescan and fickling on the hostile corpus.

    python benchmarks/side_by_side.py [--output FILE] [--keep DIR]

Generates the hostile corpus of the test suite (tests/hostile_corpus.py, every
file a payload that would create its own sentinel file if it ever ran) plus two
harmless controls (real `torch.save` output), runs each tool on each file in
a subprocess, and prints a Markdown table, file x tool:

- `flagged`: the tool says the file is dangerous (ours: a global marked
  dangerous; picklescan: exit 1, "infected"; fickling --check-safety: exit 1);
- `missed`: the tool calls it clean (picklescan: exit 0; `missed (suspicious)`
  when it only rated a global "suspicious", which it does not count as infected);
- `crashed`: the tool gave up: an error exit, a traceback, a parse failure
  or a timeout (fickling: errors in its `ScanResult` and no unsafe verdict).

fickling runs through its Python API (`fickling.scan_file`, and
`fickling.scan_zip_archive` for zips), because its command's `--check-safety`
reads raw pickle streams only and gives up on every zip, torch.save's own
output included.

For the controls the right answer is `clean`. After every run the sentinel
folder is checked: a payload that ran would show as `RAN` (none should: all
three tools are static). Needs picklescan and fickling (the `bench`
dependency group: `pip install picklescan fickling`).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus generator lives with the tests
sys.path.insert(0, str(ROOT))

TIMEOUT = 300


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def _run(cmd: list[str], cwd: Path) -> tuple[int | None, str, float]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)
    except subprocess.TimeoutExpired:
        return None, "timeout", time.perf_counter() - start
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def ours(paths: list[Path], work: Path) -> tuple[dict[Path, str], float]:
    """One `ckptcompat scan --json` over every file (one torch import), judged per file."""
    code, out, seconds = _run(
        [sys.executable, "-m", "pytest_ckptcompat", "scan", "--json", "--no-project-config"]
        + [str(p) for p in paths],
        work,
    )
    if code not in (0, 1, 2) or "Traceback" in out:
        return {p: "crashed" for p in paths}, seconds
    doc = json.loads(out[: out.rindex("}") + 1])
    verdicts = {}
    for record in doc["files"]:
        if record["error"]:
            verdict = "crashed"
        elif any(g["dangerous"] for g in record["globals"]):
            verdict = "flagged"
        else:
            verdict = "clean" if record["loadable"] else "missed"
        verdicts[Path(record["path"])] = verdict
    return verdicts, seconds


def picklescan(path: Path, work: Path) -> tuple[str, float]:
    exe = _tool("picklescan")
    if exe is None:
        return "n/a", 0.0
    code, out, seconds = _run([exe, "-p", str(path)], work)
    if code is None or "Traceback" in out:
        return "crashed", seconds
    if code == 1:
        return "flagged", seconds
    if code == 0:
        suspicious = re.search(r"Suspicious globals: (\d+)", out)
        if suspicious and int(suspicious.group(1)):
            return "missed (suspicious)", seconds
        return "clean", seconds
    return "crashed", seconds


# fickling's command (`fickling --check-safety FILE`) reads raw pickle streams
# only: on any zip (every torch.save file) it answers "No pickle files
# detected". Its Python API scans zips member by member, so that is what runs,
# in a child process like the others.
_FICKLING = """
import json, sys, zipfile
import fickling
from fickling.analysis import Severity
path = sys.argv[1]
if zipfile.is_zipfile(path):
    results = list(fickling.scan_zip_archive(path, graceful=True).values())
else:
    results = [fickling.scan_file(path, graceful=True)]
print(json.dumps({
    "unsafe": any(r.severity > Severity.LIKELY_SAFE for r in results),
    "errors": [e for r in results for e in r.errors],
    "scanned": len(results),
}))
"""


def fickling(path: Path, work: Path) -> tuple[str, float]:
    try:
        __import__("fickling")
    except ImportError:
        return "n/a", 0.0
    code, out, seconds = _run([sys.executable, "-c", _FICKLING, str(path)], work)
    if code != 0 or "Traceback" in out:
        return "crashed", seconds
    doc = json.loads(out.strip().splitlines()[-1])
    if doc["unsafe"]:
        return "flagged", seconds
    if doc["errors"]:
        return "crashed", seconds
    return "clean", seconds


def _controls(folder: Path) -> list[Path]:
    import numpy as np
    import torch

    out = []
    for name, obj in {
        "control-state-dict": {"w": torch.arange(4.0), "step": 3},
        "control-numpy-scalar": {"best": np.float64(0.5), "w": torch.ones(2)},
    }.items():
        buf = io.BytesIO()
        torch.save(obj, buf)
        path = folder / f"{name}.pt"
        path.write_bytes(buf.getvalue())
        out.append(path)
    return out


def _short(verdict: str, control: bool) -> str:
    if control:  # the right answer is "clean"
        return {
            "flagged": "flagged (false alarm)",
            "missed": "clean",
            "missed (suspicious)": "clean (suspicious)",
        }.get(verdict, verdict)
    return {"clean": "missed"}.get(verdict, verdict)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the Markdown table here")
    parser.add_argument("--keep", type=Path, help="generate the corpus here and keep it")
    args = parser.parse_args(argv)

    from hostile_corpus import build_corpus

    work = Path(tempfile.mkdtemp(prefix="ckptcompat-side-by-side-"))
    folder = args.keep or work / "files"
    sentinels = work / "sentinels"
    cases = build_corpus(folder, sentinels)
    hostile = [path for _, path, _ in cases]
    controls = _controls(folder)
    files = hostile + controls

    def ran() -> list[str]:
        return sorted(p.name for p in sentinels.iterdir())

    rows: dict[Path, dict[str, str]] = {p: {} for p in files}
    seconds = {"ckptcompat": 0.0, "picklescan": 0.0, "fickling": 0.0}
    verdicts, seconds["ckptcompat"] = ours(files, work)
    for path in files:
        rows[path]["ckptcompat"] = verdicts.get(path, "crashed")
    for path in files:
        for name, tool in (("picklescan", picklescan), ("fickling", fickling)):
            verdict, took = tool(path, work)
            seconds[name] += took
            rows[path][name] = verdict
    tools = list(seconds)
    executed = ran()
    why = {path: case.why for case, path, _ in cases}

    lines = [
        "| file | what it does | " + " | ".join(tools) + " |",
        "|---|---|" + "---|" * len(tools),
    ]
    for path in files:
        control = path in controls
        cells = [_short(rows[path][t], control) for t in tools]
        cells = [
            f"**{c}**" if c.startswith("missed") or c.startswith("flagged (") else c for c in cells
        ]
        what = "harmless control (torch.save)" if control else why[path]
        lines.append(f"| `{path.name}` | {what} | " + " | ".join(cells) + " |")
    totals = []
    for t in tools:
        verdicts_t = [_short(rows[p][t], False) for p in hostile]
        flagged = sum(v == "flagged" for v in verdicts_t)
        missed = sum(v.startswith("missed") for v in verdicts_t)
        crashed = sum(v == "crashed" for v in verdicts_t)
        totals.append(f"{flagged} flagged, {missed} missed, {crashed} crashed")
    lines.append(f"| **{len(hostile)} hostile files** | | " + " | ".join(totals) + " |")
    alarms = [sum(_short(rows[p][t], True).startswith("flagged") for p in controls) for t in tools]
    lines.append(
        f"| **{len(controls)} harmless controls** | | "
        + " | ".join(f"{n} false alarm(s)" for n in alarms)
        + " |"
    )
    lines.append(
        "| seconds (all files) | | " + " | ".join(f"{seconds[t]:.1f}" for t in tools) + " |"
    )
    table = "\n".join(lines)
    versions = _versions()
    header = f"{versions}; sentinel files created by any tool: {len(executed)}"
    print(header)
    print()
    print(table)
    if args.output:
        args.output.write_text(header + "\n\n" + table + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    if executed:
        print(f"PAYLOADS RAN: {executed}", file=sys.stderr)
        return 1
    return 0


def _versions() -> str:
    from importlib import metadata

    import torch

    from pytest_ckptcompat import __version__

    parts = [f"pytest-ckptcompat {__version__} (torch {torch.__version__})"]
    for name in ("picklescan", "fickling"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"Python {sys.version.split()[0]}, " + ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
