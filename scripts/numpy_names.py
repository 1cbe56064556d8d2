"""Generate the table of which numpy names exist in which numpy release.

    python scripts/numpy_names.py              # releases not in the table yet
    python scripts/numpy_names.py --refresh    # all of them again
    python scripts/numpy_names.py --only 1.26.0,1.26.1

For each numpy release (each minor's last patch from 1.23 to 2.4, plus 1.26.0
and 1.26.1, the pair that differ on `numpy._core`) this creates a throwaway uv
venv (CPython 3.11) with that numpy, runs `scripts/numpy_names_probe.py`
inside it and stores the result in `pytest_ckptcompat/scan/data/numpy_names.json`:
which of the names pickles use exist there (so a scan can predict `missing`),
the class name of each dtype (what torch's BUILD check wants allowlisted) and
the globals a pickle written by that numpy names. The venv and the dedicated
uv cache are deleted at the end. Never hand-edit the table: rerun this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from torch_rules import ROOT, parse, run_logged

TABLE = ROOT / "pytest_ckptcompat" / "scan" / "data" / "numpy_names.json"
PROBE = Path(__file__).resolve().with_name("numpy_names_probe.py")
COMMAND = "python scripts/numpy_names.py"
RELEASES = [
    "1.23.5", "1.24.4", "1.25.2", "1.26.0", "1.26.1", "1.26.4",
    "2.0.2", "2.1.3", "2.2.6", "2.3.5", "2.4.6",
]  # fmt: skip


def probe(version: str, workdir: Path, cache: Path, python: str, log: Any) -> dict[str, Any]:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    venv = workdir / f"venv-numpy-{version}"
    out = workdir / f"numpy-{version}.json"
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_PYTHON_DOWNLOADS": "never",
           "VIRTUAL_ENV": str(venv)}  # fmt: skip
    env.pop("PYTHONPATH", None)
    try:
        if run_logged([uv, "venv", "-q", "-p", python, str(venv)], log, env):
            return {"status": "unavailable", "reason": "uv venv failed"}
        if run_logged([uv, "pip", "install", f"numpy=={version}"], log, env):
            return {"status": "unavailable", "reason": "uv pip install failed (see the log)"}
        if run_logged([str(venv / "bin" / "python"), str(PROBE), str(out)], log, env):
            return {"status": "probe-failed", "reason": "the probe failed (see the log)"}
        result: dict[str, Any] = json.loads(out.read_text())
        return {"status": "ok", **result}
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated releases (default: the list above)")
    parser.add_argument("--refresh", action="store_true", help="probe releases already present")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "numpy-names")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable)
    args = parser.parse_args()
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / "uv-cache"
    table: dict[str, Any] = json.loads(TABLE.read_text()) if TABLE.exists() else {"releases": {}}
    versions = args.only.split(",") if args.only else RELEASES
    todo = [v for v in versions if args.refresh or v not in table["releases"]]
    print(f"{len(todo)} numpy release(s) to probe: {', '.join(todo) or '-'}", flush=True)
    try:
        with open(workdir / "numpy_names.log", "a") as log:
            for version in todo:
                t0 = time.monotonic()
                entry = probe(version, workdir, cache, args.python, log)
                table["releases"][version] = entry
                save(table)
                missing = sorted(k for k, v in entry.get("names", {}).items() if not v)
                print(f"{version:8} {time.monotonic() - t0:5.0f} s {entry['status']}; "
                      f"missing: {', '.join(missing) or '-'}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


def save(table: dict[str, Any]) -> None:
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "generated": f"by {COMMAND}; never edit by hand, rerun it",
        "format": 1,
        "releases": dict(sorted(table["releases"].items(), key=lambda item: parse(item[0]))),
    }
    TABLE.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
