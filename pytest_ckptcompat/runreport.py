"""A run's report (`ckptcompat.report/1`), its terminal summary and the failure table.

`ckptcompat.report/1` (what `--ckpt-compat-report FILE` writes, what the
matrix merges):

    {
      "schema": "ckptcompat.report/1",
      "plugin": "0.1.0",
      "created": "2026-11-23T20:00:00+00:00",
      "reader": {"tag", "torch", "numpy", "python", "platform"},
      "records": [                       # one per (kind, artifact, writer, reader)
        {"kind": "golden" | "live", "artifact", "writer", "reader", "outcome",
         "blocked": [...], "missing": [...], "message", "fix", "test", "writer_env": {...}}
      ],
      "written": [{"artifact", "writer", "path", "test"}],   # --ckpt-compat-update
      "stale": [{"artifact", "writer", "path", "deleted"?}],  # full runs only; deleted:
                                         # the files --ckpt-compat-prune removed
      "load_sites": [                    # the runtime audit (--ckpt-compat-audit)
        {"kind": "load-site", "site": "mylib/utils.py:102", "project_site", "weights_only",
         "effective", "env", "calls", "loadable", "blocked", "fix", "error", "tests"}
      ],
      "tests": [                         # every test of the run, collection errors included
        {"nodeid", "site": "tests/test_io.py:12", "outcome": "passed" | "skipped" | "xfailed"
         | "xpassed" | "failed" | "error", "finding": bool, "message", "where": "src/x.py:40"}
      ],
      "run": {"update": bool, "compat": bool, "exitstatus": 0, "duration": 12.3, "partial": bool},
      "cell": {"phase": "write" | "read", "problem": ""}   # added by the matrix's cell session
    }

`finding` marks a failure raised by `ckpt_compat` itself (a load the grids
show); `where` is the project line a failure was raised in. `tests` and `run`
were added after the first release: older reports lack them.

`outcome` is one of ok, blocked, missing, mismatch, error. `kind` is
`golden` for a stored golden of `writer` read here, `live` for what the test
produces now, saved and loaded here (writer == reader). Records are sorted
by (artifact, writer, kind).
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from pathlib import Path

from . import schemas
from ._version import __version__
from .files import atomic_write
from .outcomes import Record
from .runstate import RunState
from .schemas import LoadSiteDoc, ReportDoc
from .vocab import OUTCOMES


def report_doc(state: RunState) -> ReportDoc:
    """The `ckptcompat.report/1` document of a run."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    doc: ReportDoc = {
        "schema": schemas.REPORT,
        "plugin": __version__,
        "created": now,
        "reader": state.reader,
        "records": [
            r.to_json() for r in sorted(state.records, key=lambda r: (r.artifact, r.writer, r.kind))
        ],
        "written": sorted(state.written, key=lambda w: (w["artifact"], w["writer"])),
        "stale": state.stale,
        "load_sites": sorted(state.load_sites.values(), key=lambda s: s["site"]),
        "allowlist": state.allowlist,
        "tests": sorted(state.tests.values(), key=lambda t: t["nodeid"]),
        "run": state.run
        or {"update": False, "compat": False, "exitstatus": None, "duration": 0.0, "partial": True},
    }
    if state.rootdir is not None:
        doc["rootdir"] = state.rootdir
    return doc


def repo_rootdir(rootdir: Path) -> str | None:
    """`rootdir` relative to the git work tree it is in ("." at its top; None outside one).

    Paths in the report (test node ids, call sites) are relative to pytest's
    rootdir; with this, the matrix gives them from the repository, as CI
    annotations need them (a cell's rootdir is often a subfolder).
    """
    for folder in (rootdir, *rootdir.parents):
        if (folder / ".git").exists():  # a folder, or a file in a worktree or submodule
            return rootdir.relative_to(folder).as_posix()
    return None


def write_report(state: RunState, path: Path) -> None:
    """Write the run's report atomically."""
    atomic_write(path, (json.dumps(report_doc(state), indent=2) + "\n").encode())


def summary_lines(state: RunState) -> list[str]:
    """The terminal summary block's lines (empty when there is nothing to say)."""
    lines: list[str] = []
    if state.records:
        counts = Counter(r.outcome for r in state.records)
        parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
        reader = state.reader.get("tag", "?")
        lines.append(f"reader {reader}: {', '.join(parts)} ({len(state.records)} loads)")
        by_writer: dict[str, list[Record]] = {}
        for r in state.records:
            if r.outcome != "ok":
                by_writer.setdefault(r.writer, []).append(r)
        for writer in sorted(by_writer):
            lines.append(f"  written by {writer}:")
            for r in sorted(by_writer[writer], key=lambda r: r.artifact):
                names = ", ".join(r.blocked + r.missing)
                lines.append(f"    {r.artifact}: {r.outcome}{f' ({names})' if names else ''}")
    lines += _missing_writers(state)
    if state.written:
        lines.append(f"wrote {len(state.written)} golden(s) as {state.written[0]['writer']}")
    risky = [
        s
        for s in state.load_sites.values()
        if s["weights_only"] != "True" or s["loadable"] is False
    ]
    if risky:
        lines.append(f"{len(risky)} torch.load call site(s) at risk:")
        for site in sorted(risky, key=lambda s: s["site"]):
            lines.append("  " + _describe_site(site))
            if site["fix"]:
                lines += ["    " + line for line in site["fix"].splitlines()]
    kept = [s for s in state.stale if "deleted" not in s]
    if kept:
        lines.append(
            f"{len(kept)} golden(s) no collected test produces "
            "(delete them with --ckpt-compat-prune):"
        )
        lines += [f"  {s['path']}" for s in kept]
    pruned = [s for s in state.stale if "deleted" in s]
    if pruned:
        lines.append(
            f"pruned {len(pruned)} golden(s) no collected test produces "
            "(--ckpt-compat-prune deleted these files):"
        )
        lines += [f"  {path}" for s in pruned for path in s.get("deleted", [])]
    return lines


def _missing_writers(state: RunState) -> list[str]:
    """Artifacts that lack a golden from a writer the other artifacts have one from."""
    writers: dict[str, set[str]] = {}
    for r in state.records:
        if r.kind == "golden":
            writers.setdefault(r.artifact, set()).add(r.writer)
    every = set().union(*writers.values()) if writers else set()
    lines = []
    for artifact, have in sorted(writers.items()):
        if missing := sorted(every - have):
            lines.append(
                f"{artifact}: no golden from {', '.join(missing)} (the other artifacts have "
                "one: did that environment's --ckpt-compat-update run this test?)"
            )
    return lines


def _describe_site(site: LoadSiteDoc) -> str:
    """E.g. `mylib/utils.py:102 torch.load(..., weights_only omitted ...): ... fails: X`."""
    where = site["site"] + (f" (via {site['project_site']})" if site["project_site"] else "")
    text = f"{where} torch.load(..., weights_only {site['weights_only']})"
    names = ", ".join(site["blocked"]) or "see the fix"
    if site["loadable"] is False:
        if site["weights_only"].startswith("omitted"):
            return f"{text}: on torch >= 2.6 this fails: {names}"
        return f"{text}: fails under weights_only=True: {names}"
    if site["loadable"]:
        return f"{text}: would also load with weights_only=True here: pass it"
    return text


def table(records: list[Record]) -> str:
    """A small writer / outcome / globals / fix table for a failing test."""
    rows = [("writer", "outcome", "globals")]
    rows += [
        (
            r.writer + (" (now)" if r.kind == "live" else ""),
            r.outcome,
            ", ".join(r.blocked + r.missing) or "-",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
