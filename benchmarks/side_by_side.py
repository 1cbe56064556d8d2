"""Side by side: our scanner, picklescan, modelscan, fickling and modelaudit on one corpus.

    python benchmarks/side_by_side.py [--output FILE] [--keep DIR] [--tools a,b,...]

The corpus is the test suite's: the hostile files of tests/hostile_corpus.py
(how a pickle reaches a global) and tests/advisory_corpus.py (the advisories'
names, the peers' bypass classes, hostile containers, TorchScript, memory
corruption), every payload of which would create its own sentinel file or
connect to its own local port if it ever ran; and the benign checkpoints of
advisory_corpus.benign_files() (real torch.save output, TorchScript, re-zipped
and CRC-less archives). Each tool runs on each file in a child process (ours:
one `ckptcompat scan --json` over every file), and the sentinel folder is
checked at the end (a payload that ran shows as `RAN`; none should: all five
are static).

Verdicts, per file and tool:

- `flagged`: the tool says the file is dangerous (ours: a name marked
  dangerous; picklescan: exit 1, "infected"; modelscan: exit 1, issues;
  fickling: a result above LIKELY_SAFE; modelaudit: an issue of severity
  critical);
- `missed`: it calls the file clean; `missed (suspicious)` / `missed (warning)`
  when it only rated something "suspicious" (picklescan) or raised warnings
  (modelaudit), which the tool itself does not count as dangerous;
- `crashed`: the tool gave up (an error exit, a traceback, no verdict, a timeout).

On benign files the right answer is `clean`; `flagged` there is a false alarm.
fickling runs through its Python API (`fickling.scan_file`,
`fickling.scan_zip_archive` for zips): its command's `--check-safety` reads raw
pickle streams only and gives up on every zip. modelaudit runs with its
telemetry off (PROMPTFOO_DISABLE_TELEMETRY=1) and its cache off.
Needs the `bench` dependency group (`pip install picklescan modelscan fickling modelaudit`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus generators live with the tests
sys.path.insert(0, str(ROOT))

TIMEOUT = 300
TOOLS = ("ckptcompat", "picklescan", "modelscan", "fickling", "modelaudit")
_QUIET_ENV = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1"}


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def _run(cmd: list[str], cwd: Path) -> tuple[int | None, str, float]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=_QUIET_ENV,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
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
        if any(g["dangerous"] for g in record["globals"]):
            verdict = "flagged"
        elif record["error"]:
            # One line, exit 2: not a checkpoint, or unreadable (and nothing dangerous in it).
            verdict = "refused"
        else:
            verdict = "clean"
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


def modelscan(path: Path, work: Path) -> tuple[str, float]:
    exe = _tool("modelscan")
    if exe is None:
        return "n/a", 0.0
    # Exit codes: 0 no issue, 1 issues, 2 scan errors, 3 no supported file, 4 usage.
    code, out, seconds = _run([exe, "-p", str(path)], work)
    if code is None or "Traceback" in out:
        return "crashed", seconds
    if code == 1:
        return "flagged", seconds
    if code == 0:
        return "clean", seconds
    if code == 3:
        return "skipped", seconds
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
    lines = [line for line in out.splitlines() if line.startswith('{"unsafe"')]
    if not lines:
        return "crashed", seconds
    doc = json.loads(lines[-1])
    if doc["unsafe"]:
        return "flagged", seconds
    if doc["errors"]:
        return "crashed", seconds
    return "clean", seconds


def modelaudit(path: Path, work: Path) -> tuple[str, float]:
    exe = _tool("modelaudit")
    if exe is None:
        return "n/a", 0.0
    # Exit codes: 0 clean, 1 issues (of any severity), 2 errors.
    code, out, seconds = _run([exe, "scan", "--no-cache", "--format", "json", str(path)], work)
    start = out.find("{")
    if code is None or start < 0:
        return "crashed", seconds
    try:
        doc, _ = json.JSONDecoder().raw_decode(out[start:])
    except json.JSONDecodeError:
        return "crashed", seconds
    severities = {issue.get("severity") for issue in doc.get("issues", [])}
    if "critical" in severities:
        return "flagged", seconds
    if doc.get("has_errors") or code == 2:
        return "crashed", seconds
    if "warning" in severities:
        return "missed (warning)", seconds
    return "clean", seconds


PEERS = {"picklescan": picklescan, "modelscan": modelscan, "fickling": fickling,
         "modelaudit": modelaudit}  # fmt: skip


def _short(verdict: str, benign: bool) -> str:
    """The verdict as the table shows it: right answers plain, wrong ones named."""
    if benign:  # the right answer is "clean"
        return {
            "flagged": "flagged (false alarm)",
            "missed (suspicious)": "clean (suspicious)",
            "missed (warning)": "clean (warning)",
        }.get(verdict, verdict)
    return {"clean": "missed", "refused": "missed (refused)", "skipped": "missed (skipped)"}.get(
        verdict, verdict
    )


def build(folder: Path, sentinels: Path) -> tuple[list[tuple[Path, str, str]], object]:
    """The corpus: (path, class, what it does) for every file, hostile first; the listener."""
    from advisory_corpus import Listener, kind_of, write_benign
    from advisory_corpus import build_corpus as build_advisories
    from hostile_corpus import build_corpus as build_hostile

    listener = Listener()
    files = []
    for case, path, _ in build_hostile(folder / "hostile", sentinels):
        kind = "reach (opcodes)" if path.suffix == ".pkl" else "container"
        files.append((path, kind, case.why))
    for case, path, _ in build_advisories(folder / "advisory", sentinels, listener):
        files.append((path, kind_of(case), f"{case.why} ({case.source})"))
    for name, path in write_benign(folder / "benign").items():
        files.append((path, "benign", name))
    return files, listener


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the Markdown tables here")
    parser.add_argument("--keep", type=Path, help="generate the corpus here and keep it")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t in TOOLS]

    work = Path(tempfile.mkdtemp(prefix="ckptcompat-side-by-side-"))
    folder = args.keep or work / "files"
    sentinels = work / "sentinels"
    files, listener = build(folder, sentinels)
    paths = [p for p, _, _ in files]
    rows: dict[Path, dict[str, str]] = {p: {} for p in paths}
    seconds = dict.fromkeys(tools, 0.0)
    try:
        if "ckptcompat" in tools:
            verdicts, seconds["ckptcompat"] = ours(paths, work)
            for path in paths:
                rows[path]["ckptcompat"] = verdicts.get(path, "crashed")
        for name in tools:
            if name == "ckptcompat":
                continue
            for path in paths:
                verdict, took = PEERS[name](path, work)
                seconds[name] += took
                rows[path][name] = verdict
        time.sleep(0.5)
        executed = sorted(p.name for p in sentinels.iterdir())
    finally:
        listener.close()  # type: ignore[attr-defined]

    text = _report(files, rows, tools, seconds, executed)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    if executed:
        print(f"PAYLOADS RAN: {executed}", file=sys.stderr)
        return 1
    return 0


def _report(files, rows, tools, seconds, executed) -> str:
    hostile = [(p, k, w) for p, k, w in files if k != "benign"]
    benign = [(p, k, w) for p, k, w in files if k == "benign"]
    out = [f"{_versions(tools)}; sentinel files created by any tool: {len(executed)}", ""]
    # Summary by class.
    out.append("| class | files | " + " | ".join(tools) + " |")
    out.append("|---|---|" + "---|" * len(tools))
    classes = list(dict.fromkeys(k for _, k, _ in hostile))
    for klass in classes:
        members = [p for p, k, _ in hostile if k == klass]
        cells = []
        for t in tools:
            flagged = sum(rows[p][t] == "flagged" for p in members)
            cells.append(f"{flagged}/{len(members)}")
        out.append(f"| {klass} | {len(members)} | " + " | ".join(cells) + " |")
    totals = []
    for t in tools:
        verdicts = Counter(_short(rows[p][t], False) for p, _, _ in hostile)
        missed = sum(n for v, n in verdicts.items() if v.startswith("missed"))
        totals.append(f"{verdicts['flagged']} flagged, {missed} missed, "
                      f"{verdicts['crashed']} crashed")  # fmt: skip
    out.append(f"| **all hostile** | {len(hostile)} | " + " | ".join(totals) + " |")
    alarms = []
    for t in tools:
        verdicts = Counter(_short(rows[p][t], True) for p, _, _ in benign)
        alarms.append(f"{verdicts['flagged (false alarm)']} false alarms, "
                      f"{verdicts['crashed']} crashed")  # fmt: skip
    out.append(f"| **benign** | {len(benign)} | " + " | ".join(alarms) + " |")
    out.append("| seconds (all files) | | " + " | ".join(f"{seconds[t]:.0f}" for t in tools) + " |")
    # Every file where some tool is wrong.
    out += ["", "| file | class | what it is | " + " | ".join(tools) + " |",
            "|---|---|---|" + "---|" * len(tools)]  # fmt: skip
    for path, klass, what in files:
        is_benign = klass == "benign"
        cells = [_short(rows[path][t], is_benign) for t in tools]
        right = "clean" if is_benign else "flagged"
        if all(c == right for c in cells):
            continue
        cells = [c if c == right else f"**{c}**" for c in cells]
        what = what.replace("|", "\\|")
        out.append(f"| `{path.name}` | {klass} | {what} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _versions(tools: list[str]) -> str:
    from importlib import metadata

    import numpy
    import torch

    from pytest_ckptcompat import __version__

    parts = [f"pytest-ckptcompat {__version__} (torch {torch.__version__}, numpy "
             f"{numpy.__version__})"]  # fmt: skip
    for name in tools:
        if name == "ckptcompat":
            continue
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"Python {sys.version.split()[0]}, " + ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
