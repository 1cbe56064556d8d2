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
      "stale": [{"artifact", "writer", "path"}]               # full runs only
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
    stale: list[dict[str, str]] = field(default_factory=list)

    def dump(self) -> str:
        """Serialise for an xdist worker's `workeroutput` (plain JSON)."""
        return json.dumps(
            {
                "reader": self.reader,
                "records": [r.to_json() for r in self.records],
                "written": self.written,
                "produced": sorted(self.produced),
                "partial": self.partial,
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
        if self.stale:
            lines.append(
                f"{len(self.stale)} golden(s) no collected test produces "
                "(delete them with --ckpt-compat-prune):"
            )
            lines += [f"  {s['path']}" for s in self.stale]
        return lines


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
