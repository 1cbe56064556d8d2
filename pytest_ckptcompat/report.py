"""The state of one pytest run's compatibility checks, its JSON report and its summary.

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
      ]
    }

`outcome` is one of ok, blocked, missing, mismatch, error. `kind` is
`golden` for a stored golden of `writer` read here, `live` for what the test
produces now, saved and loaded here (writer == reader). Records are sorted
by (artifact, writer, kind).
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .golden import atomic_write
from .outcomes import OUTCOMES, Record

SCHEMA = "ckptcompat.report/1"


@dataclass
class RunState:
    """Everything the run's `check()` calls produced (merged from xdist workers)."""

    run_id: str
    reader: dict[str, Any] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    written: list[dict[str, str]] = field(default_factory=list)
    produced: set[str] = field(default_factory=set)  # "<root>::<artifact>"
    claims: dict[str, str] = field(default_factory=dict)  # artifact path -> nodeid
    partial: bool = False  # deselection, -k, node ids, -x: never call goldens unused
    stale: list[dict[str, Any]] = field(default_factory=list)
    load_sites: dict[str, dict[str, Any]] = field(default_factory=dict)  # the runtime audit

    def add_load_sites(self, sites: list[dict[str, Any]]) -> None:
        """Merge audited torch.load call sites (deduplicated by site and decision)."""
        for site in sites:
            key = f"{site['site']}|{site['project_site']}|{site['weights_only']}"
            have = self.load_sites.get(key)
            if have is None:
                self.load_sites[key] = dict(site)
                continue
            have["calls"] += site["calls"]
            have["tests"] = sorted(set(have["tests"]) | set(site["tests"]))
            if have["loadable"] is None:
                have.update({k: site[k] for k in ("loadable", "blocked", "fix")})
            have["error"] = have["error"] or site["error"]

    def dump(self) -> str:
        """Serialise for an xdist worker's `workeroutput` (plain JSON)."""
        return json.dumps(
            {
                "reader": self.reader,
                "records": [r.to_json() for r in self.records],
                "written": self.written,
                "produced": sorted(self.produced),
                "partial": self.partial,
                "load_sites": list(self.load_sites.values()),
            }
        )

    def merge(self, text: str) -> None:
        """Merge a worker's `dump()`."""
        data = json.loads(text)
        self.reader = self.reader or data["reader"]
        self.records += [Record(**r) for r in data["records"]]
        self.written += data["written"]
        self.produced |= set(data["produced"])
        self.partial |= data["partial"]
        self.add_load_sites(data["load_sites"])

    def to_json(self) -> dict[str, Any]:
        """The `ckptcompat.report/1` document."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return {
            "schema": SCHEMA,
            "plugin": __version__,
            "created": now,
            "reader": self.reader,
            "records": [
                r.to_json()
                for r in sorted(self.records, key=lambda r: (r.artifact, r.writer, r.kind))
            ],
            "written": sorted(self.written, key=lambda w: (w["artifact"], w["writer"])),
            "stale": self.stale,
            "load_sites": sorted(self.load_sites.values(), key=lambda s: s["site"]),
        }

    def write(self, path: Path) -> None:
        """Write the report atomically."""
        atomic_write(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())

    def summary_lines(self) -> list[str]:
        """The terminal summary block's lines (empty when there is nothing to say)."""
        lines: list[str] = []
        if self.records:
            counts = Counter(r.outcome for r in self.records)
            parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
            reader = self.reader.get("tag", "?")
            lines.append(f"reader {reader}: {', '.join(parts)} ({len(self.records)} loads)")
            by_writer: dict[str, list[Record]] = {}
            for r in self.records:
                if r.outcome != "ok":
                    by_writer.setdefault(r.writer, []).append(r)
            for writer in sorted(by_writer):
                lines.append(f"  written by {writer}:")
                for r in sorted(by_writer[writer], key=lambda r: r.artifact):
                    names = ", ".join(r.blocked + r.missing)
                    lines.append(f"    {r.artifact}: {r.outcome}{f' ({names})' if names else ''}")
        if self.written:
            lines.append(f"wrote {len(self.written)} golden(s) as {self.written[0]['writer']}")
        risky = [
            s
            for s in self.load_sites.values()
            if s["weights_only"] != "True" or s["loadable"] is False
        ]
        if risky:
            lines.append(f"{len(risky)} torch.load call site(s) at risk:")
            for site in sorted(risky, key=lambda s: s["site"]):
                lines.append("  " + _describe_site(site))
                if site["fix"]:
                    lines += ["    " + line for line in site["fix"].splitlines()]
        kept = [s for s in self.stale if "deleted" not in s]
        if kept:
            lines.append(
                f"{len(kept)} golden(s) no collected test produces "
                "(delete them with --ckpt-compat-prune):"
            )
            lines += [f"  {s['path']}" for s in kept]
        pruned = [s for s in self.stale if "deleted" in s]
        if pruned:
            lines.append(
                f"pruned {len(pruned)} golden(s) no collected test produces "
                "(--ckpt-compat-prune deleted these files):"
            )
            lines += [f"  {path}" for s in pruned for path in s["deleted"]]
        return lines


def _describe_site(site: dict[str, Any]) -> str:
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
