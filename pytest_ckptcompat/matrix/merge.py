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
from typing import Any, cast

from .. import schemas
from .._version import __version__
from ..environment import tag_key
from ..errors import ReportError
from ..files import sha256
from ..scan import releases
from ..scan.fixes import Fix, fix_for_name, snippet
from ..scan.names import is_numpy_2_only
from ..schemas import (
    FixCheckDoc,
    MatrixDoc,
    MatrixFix,
    MatrixFixCheck,
    MatrixGlobal,
    MatrixOutcome,
    MatrixReader,
)
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
    allowlist: list[str]


def _read_cell(path: Path, doc: dict[str, Any]) -> _Cell:
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
    allowlist = doc.get("allowlist", [])  # absent in reports of older plugins
    if not isinstance(allowlist, list) or not all(isinstance(n, str) for n in allowlist):
        raise ReportError(f"{path}: 'allowlist' is not a list of names")
    return _Cell(path, reader, records, allowlist)


def _fix_check(path: Path, doc: dict[str, Any]) -> FixCheckDoc:
    reader, results = doc.get("reader"), doc.get("results")
    if not isinstance(reader, dict) or not isinstance(reader.get("tag"), str):
        raise ReportError(f"{path}: no reader environment")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and {"artifact", "writer", "loads", "error"} <= set(r) for r in results
    ):
        raise ReportError(f"{path}: 'results' is not a list of golden results")
    return cast(FixCheckDoc, doc)


def merge_reports(paths: Iterable[Path]) -> MatrixDoc:
    """The `ckptcompat.matrix/1` document of these cell reports (one per reader).

    `ckptcompat.fixcheck/1` files among them (`ckptcompat check-fix`) say
    what the matrix's own fix did in each reader.
    """
    cells: list[_Cell] = []
    checks: list[FixCheckDoc] = []
    for path in map(Path, paths):
        doc = read_json(path, [schemas.REPORT, schemas.FIXCHECK])
        if doc["schema"] == schemas.FIXCHECK:
            checks.append(_fix_check(path, doc))
        else:
            cells.append(_read_cell(path, doc))
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
    allowlist = list(dict.fromkeys(n for c in cells for n in c.allowlist))
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
        "allowlist": allowlist,
        "fix": _fix_check_summary(statuses, allowlist, rows, readers, checks),
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


def _fix_json(name: str, status: dict[str, str]) -> MatrixFix | None:
    """The fix for a global that some reader refuses, right on numpy 1 and 2."""
    troubled = [r for r, s in status.items() if not is_allowed(s)]
    if not troubled:
        return None
    fix = fix_for_name(name)
    notes = [fix.warning] if fix.warning else []
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


def matrix_snippet(statuses: dict[str, dict[str, str]], allowlist: list[str]) -> Fix | None:
    """The one allowlist every reader gets: what some reader refused, plus the project's own."""
    troubled = [n for n, st in statuses.items() if any(not is_allowed(s) for s in st.values())]
    fixes = [fix_for_name(n) for n in dict.fromkeys([*troubled, *allowlist])]
    code = snippet(fixes)
    if not code:
        return None
    entries = tuple(e for f in fixes for e in f.entries)
    return Fix("<matrix>", entries, (code,), (), None)


def _fix_check_summary(
    statuses: dict[str, dict[str, str]],
    allowlist: list[str],
    rows: list[MatrixOutcome],
    readers: list[MatrixReader],
    checks: list[FixCheckDoc],
) -> MatrixFixCheck:
    """What the matrix's snippet did in each reader: verified, failed, or not checked."""
    fix = matrix_snippet(statuses, allowlist)
    code = fix.code[0] if fix else ""
    digest = sha256(code.encode())
    covered = set(fix.entries) if fix else set()
    by_reader = {c["reader"]["tag"]: c for c in checks}
    verdicts: dict[str, str] = {}
    failures: list[str] = []
    for reader in readers:
        tag = reader["tag"]
        torch = reader.get("torch") or ""
        check = by_reader.get(tag)
        if releases.release_of(torch) < releases.USER_ALLOWLIST:
            verdicts[tag] = "no allowlist (torch < 2.4)"
            continue
        if check is None:
            verdicts[tag] = "not checked"
            continue
        if check["snippet_sha256"] != digest:
            verdicts[tag] = "stale (checked another snippet)"
            continue
        loads = {(r["artifact"], r["writer"]): r for r in check["results"]}
        before = len(failures)
        for row in rows:
            if row["reader"] != tag or not _fix_should_load(row, covered):
                continue
            got = loads.get((row["artifact"], row["writer"]))
            if got is None or not got["loads"]:
                why = got["error"] if got else "the golden was not there to load"
                failures.append(
                    f"{tag}: {row['artifact']} written by {row['writer']} still fails with the "
                    f"fix: {why}"
                )
        verdicts[tag] = "verified" if len(failures) == before else "failed"
    return {"snippet": code, "sha256": digest, "readers": verdicts, "failures": failures}


def _fix_should_load(row: MatrixOutcome, covered: set[str]) -> bool:
    """Whether a load must succeed once the snippet is applied: its names are all in it."""
    if row["outcome"] in ("ok", "mismatch"):
        return True
    names = row["blocked"] + row["missing"]
    return row["outcome"] in ("blocked", "missing") and bool(names) and set(names) <= covered


def fix_verified_line(doc: MatrixDoc) -> str:
    """`fix verified on 3/4 readers (...)`: the one-line summary of the fix check."""
    fix = doc.get("fix")
    if not fix or not fix["snippet"]:
        return "no allowlist fix needed"
    verdicts = fix["readers"]
    checked = {t: v for t, v in verdicts.items() if not v.startswith("no allowlist")}
    ok = sum(v == "verified" for v in checked.values())
    line = f"fix verified on {ok}/{len(checked)} readers"
    others = sorted({v for v in checked.values() if v != "verified"})
    if others:
        line += (
            " ("
            + "; ".join(
                f"{v}: {', '.join(t for t, x in checked.items() if x == v)}" for v in others
            )
            + ")"
        )
    return line


def _missing_note(name: str, readers: list[str]) -> str:
    where = ", ".join(readers)
    if is_numpy_2_only(name) and fix_for_name(name).code:
        # Measured (torch 2.5.1 and 2.13): torch looks a global up in its
        # allowlist and never imports its module, so the snippet's alias
        # spelled `numpy._core...` loads these files even under numpy 1.25.
        return (
            f"{where}: numpy < 1.26.1 has no numpy._core; the allowlist code above registers "
            "this name anyway (an alias of numpy 1's object), and then these files load"
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
