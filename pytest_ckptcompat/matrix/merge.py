"""Merge cell reports (`ckptcompat.report/1`, one per reader) into one matrix document.

`ckptcompat.matrix/1` (matrix/report/matrix.json, what `ckptcompat gate` reads):

    {
      "schema": "ckptcompat.matrix/1", "plugin": "0.1.0", "created": "...",
      "readers": [{"tag", "torch", "numpy", "python", "platform", "report"}],
      "writers": ["torch2.4.1-numpy1.25.2-py3.11", ...],
      "artifacts": ["hparams", ...],
      "outcomes": [{"artifact", "writer", "reader", "outcome", "blocked", "missing",
                    "message", "test"}],
      "globals": [{"name", "artifacts": [...], "status": {reader: "allowed" |
                   "allowed-user" | "blocked" | "missing"}, "fix": {...}}],
      "counts": {"ok": 40, "blocked": 12, ...}
    }

One outcome per (artifact, writer, reader): the stored golden of `writer`
read by `reader`. A reader whose own golden is absent (its write phase
failed) contributes its live roundtrip as the (reader, reader) outcome. A
global's status in a reader is the worst it had in any load there (missing >
blocked > allowed-user > allowed); absent means no file holding it was read.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import schemas
from .._version import __version__
from ..environment import parse_tag, tag_key
from ..errors import ReportError
from ..scan import releases
from ..scan.fixes import Fix, FixTarget, fix_for_name
from ..scan.names import is_numpy_2_only
from ..schemas import MatrixDoc, MatrixFix, MatrixGlobal, MatrixOutcome, MatrixReader
from ..vocab import OUTCOMES, is_allowed, status_rank


def read_json(path: Path, accepted: Sequence[str]) -> dict[str, Any]:
    """A JSON document of one of the `accepted` schemas, or `ReportError` naming the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema not in accepted:
        raise ReportError(f"{path}: schema is {schema!r}, expected {' or '.join(accepted)}")
    return doc  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Cell:
    path: Path
    reader: dict[str, Any]
    records: list[dict[str, Any]]


def _read_cell(path: Path) -> _Cell:
    doc = read_json(path, [schemas.REPORT])
    reader, records = doc.get("reader"), doc.get("records")
    if not isinstance(reader, dict) or not isinstance(reader.get("tag"), str):
        raise ReportError(f"{path}: no reader environment (did the run check any artifact?)")
    if not isinstance(records, list):
        raise ReportError(f"{path}: 'records' is not a list")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not {"artifact", "writer", "outcome", "kind"} <= set(r):
            raise ReportError(f"{path}: records[{i}] lacks artifact/writer/outcome/kind")
        if r["outcome"] not in OUTCOMES:
            raise ReportError(f"{path}: records[{i}]: unknown outcome {r['outcome']!r}")
    return _Cell(path, reader, records)


def merge_reports(paths: Iterable[Path]) -> MatrixDoc:
    """The `ckptcompat.matrix/1` document of these cell reports (one per reader)."""
    cells = [_read_cell(Path(p)) for p in paths]
    if not cells:
        raise ReportError("no cell reports given")
    seen: dict[str, Path] = {}
    for cell in cells:
        tag = cell.reader["tag"]
        if tag in seen:
            raise ReportError(f"{cell.path}: reader {tag} also reported by {seen[tag]}")
        seen[tag] = cell.path

    outcomes: dict[tuple[str, str, str], MatrixOutcome] = {}
    live: dict[tuple[str, str, str], MatrixOutcome] = {}
    statuses: dict[str, dict[str, str]] = {}
    holders: dict[str, set[str]] = {}
    for cell in cells:
        reader = cell.reader["tag"]
        for r in cell.records:
            key = (r["artifact"], r["writer"], reader)
            row: MatrixOutcome = {
                "artifact": r["artifact"],
                "writer": r["writer"],
                "reader": reader,
                "outcome": r["outcome"],
                "blocked": list(r.get("blocked", [])),
                "missing": list(r.get("missing", [])),
                "message": r.get("message", ""),
                "test": r.get("test", ""),
            }
            (outcomes if r["kind"] == "golden" else live)[key] = row
            for name, status in r.get("globals", {}).items():
                have = statuses.setdefault(name, {}).get(reader)
                if have is None or status_rank(status) > status_rank(have):
                    statuses[name][reader] = status
                holders.setdefault(name, set()).add(r["artifact"])
    for key, row in live.items():
        outcomes.setdefault(key, row)  # the reader's own golden is missing: its live roundtrip

    readers: list[MatrixReader] = sorted(
        (_reader(c) for c in cells), key=lambda e: tag_key(e["tag"])
    )
    rows = sorted(
        outcomes.values(), key=lambda o: (o["artifact"], tag_key(o["writer"]), tag_key(o["reader"]))
    )
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {
        "schema": schemas.MATRIX,
        "plugin": __version__,
        "created": created,
        "readers": readers,
        "writers": sorted({o["writer"] for o in rows}, key=tag_key),
        "artifacts": sorted({o["artifact"] for o in rows}),
        "outcomes": rows,
        "globals": [
            _global(name, sorted(holders[name]), statuses[name])
            for name in sorted(statuses, key=lambda n: (_global_rank(statuses[n]), n))
        ],
        "counts": {o: n for o, n in Counter(r["outcome"] for r in rows).items()},
    }


def _reader(cell: _Cell) -> MatrixReader:
    r = cell.reader
    return {
        "tag": r["tag"],
        "torch": r.get("torch"),
        "numpy": r.get("numpy"),
        "python": r.get("python", ""),
        "platform": r.get("platform", ""),
        "report": str(cell.path),
    }


def _global(name: str, artifacts: list[str], status: dict[str, str]) -> MatrixGlobal:
    return {"name": name, "artifacts": artifacts, "status": status, "fix": _fix_json(name, status)}


def _global_rank(status: dict[str, str]) -> int:
    # Troubled globals first: the table is read top-down.
    return -max(status_rank(s) for s in status.values())


def _before_tuple_form(tag: str) -> bool:
    parts = parse_tag(tag)
    return parts is not None and releases.release_of(parts["torch"]) < releases.TUPLE_FORM


def _fix_json(name: str, status: dict[str, str]) -> MatrixFix | None:
    """The fix for a global that some reader refuses, right on numpy 1 and 2."""
    troubled = [r for r, s in status.items() if not is_allowed(s)]
    if not troubled:
        return None
    old_torch = sorted({r.split("-")[0] for r in troubled if _before_tuple_form(r)}, key=tag_key)
    fix = fix_for_name(name, FixTarget("2.6+", has_tuple_form=True))
    notes = [fix.warning] if fix.warning else []
    if old_torch and fix.entries and any(c.startswith("(") for c in fix.code):
        notes.append(
            f"{', '.join(old_torch)} (< 2.6) has no (obj, name) form: there, an allowlisted numpy "
            "object matches only the spelling of the numpy it runs with, so files written under "
            "the other numpy major stay blocked"
        )
    missing = sorted((r for r, s in status.items() if s == "missing"), key=tag_key)
    if missing:
        notes.append(_missing_note(name, missing))
    allowed_by = sorted((r for r, s in status.items() if s == "allowed"), key=tag_key)
    return {
        "change": fix.change,
        "entries": list(fix.entries),
        "code": list(fix.code),
        "imports": list(fix.imports),
        "notes": notes,
        "allowed_by_default_in": allowed_by,
    }


def _missing_note(name: str, readers: list[str]) -> str:
    where = ", ".join(readers)
    if is_numpy_2_only(name):
        # Measured: torch >= 2.6 looks the name up in its allowlist and never
        # imports numpy._core, so the (obj, name) entry loads these files even
        # under numpy 1.25; older torch imports the module and cannot.
        return (
            f"{where}: numpy < 1.26.1 has no numpy._core. On torch >= 2.6 the "
            f'(obj, "{name}") entry above loads such files anyway; on older torch, readers '
            "need numpy >= 1.26.1 (or save Python numbers and tensors instead)"
        )
    return f"{where}: {name} does not exist there"


def fix_of(entry: MatrixGlobal) -> Fix | None:
    """A global row's fix as a `Fix` again, for `fixes.render` (its notes are listed apart)."""
    fix = entry.get("fix")
    if not fix:
        return None
    return Fix(
        entry["name"],
        tuple(fix["entries"]),
        tuple(fix["code"]),
        tuple(fix["imports"]),
        fix["change"],
    )


def fix_notes(doc: MatrixDoc) -> list[str]:
    """Every distinct note of the matrix's fixes, in table order."""
    notes = (n for g in doc["globals"] if (fix := g["fix"]) for n in fix["notes"])
    return list(dict.fromkeys(notes))
