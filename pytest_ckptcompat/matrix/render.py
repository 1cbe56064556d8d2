"""The matrix document (`ckptcompat.matrix/1`) as Markdown, HTML, JUnit XML and console text.

- Markdown fits a GitHub step summary: how each cell's run went, the global x
  reader table with the fix beside each troubled global, the project's tests
  and `torch.load` call sites that did not pass everywhere, then one writer x
  reader grid per artifact, each square's reason in a numbered note below it,
  and a legend of every symbol.
- HTML is one self-contained file (inline CSS, no scripts), readable from disk.
- JUnit has one testcase per (artifact, writer, reader), per cell, per
  (test, reader) and per (call site, reader), so CI lists failures natively.
- The console text is what a matrix run ends with: the cells and the globals table.
"""

from __future__ import annotations

import html
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from ..environment import parse_tag
from ..scan.fixes import render as render_fixes
from ..schemas import MatrixDoc, MatrixGlobal, MatrixOutcome, MatrixPredicted
from ..vocab import TEST_FAILURES, test_state
from .cells import site_label
from .merge import fix_notes, fix_of, fix_verified_line
from .predicted import disagreement_lines

#: Beside the report: the allowlist every reader gets (`ckptcompat check-fix` applies it).
SNIPPET_FILE = "safe_globals.py"
_STATUS_MD = {
    "allowed": "✅ allowed",
    "allowed-user": "✅ allowlisted",
    "blocked": "❌ blocked",
    "missing": "⚠️ missing",
}
_OUTCOME_MD = {
    "ok": "✅ ok",
    "blocked": "❌ blocked",
    "missing": "⚠️ missing",
    "mismatch": "≠ mismatch",
    "error": "💥 error",
}
_CELL_MD = {"ok": "✅ ok", "failed": "❌ failed", "crashed": "💥 crashed"}
_TEST_MD = {
    "passed": "✅ passed",
    "skipped": "⏭️ skipped",
    "xfailed": "➖ xfailed",
    "xpassed": "❕ xpassed",
    "failed": "❌ failed",
    "error": "💥 error",
    "finding": "🔎 finding",
}
_SITE_MD = {"works": "✅ works", "at-risk": "⚠️ at risk", "fails": "❌ fails"}
_NOT_READ = "·"
_STALE = "⌛"

#: Every symbol the reports use, and what it means (the legend, in Markdown and HTML).
LEGEND: tuple[tuple[str, str], ...] = (
    ("✅ allowed", "a global torch's own defaults let through"),
    ("✅ allowlisted", "a global the project's allowlist (ckpt_compat_safe_globals) lets through"),
    ("❌ blocked", "torch.load(weights_only=True) refuses the global, or a load it refused"),
    ("⚠️ missing", "the global names a module or object that does not exist in the reader"),
    ("✅ ok", "the golden loads under weights_only=True and equals what the code saves now"),
    ("≠ mismatch", "the golden loads but differs from what the code saves now (the note says how)"),
    (
        "💥 error",
        "the golden is corrupt, modified since written, or unreadable; for a test: it "
        "errored in set-up or teardown, or its module did not import",
    ),
    (
        _NOT_READ,
        "nothing was read there: for a global, no file holding it was read by that "
        "reader; for a load, the note says why",
    ),
    (
        _STALE,
        "stale: the golden was not rewritten by this run's write phase (the note says why): "
        "it shows what older code saved",
    ),
    (
        "✅ ok (cell)",
        "both phases of the cell ran to the end, and the project's tests passed "
        "(or failed only on findings the grids show)",
    ),
    ("❌ failed (cell)", "both phases ran to the end, but tests of the project failed or errored"),
    (
        "💥 crashed",
        "a phase of the cell did not run to the end: install failed, pytest stopped "
        "early (collection errors, usage error, no tests) or wrote no report",
    ),
    ("✅ passed / ⏭️ skipped / ➖ xfailed / ❕ xpassed", "a test's outcome, as pytest says it"),
    (
        "❌ failed",
        "a test of the project failed (the note gives its error and the line it was raised at)",
    ),
    (
        "🔎 finding",
        "a test failed on a load ckpt_compat checked: the grids and the globals table show it",
    ),
    ("✅ works", "a torch.load call site went through"),
    (
        "⚠️ at risk",
        "a torch.load call site went through without weights_only=True, and the "
        "file would not load with it (as torch >= 2.6 does when weights_only is omitted)",
    ),
    ("❌ fails", "the real torch.load call raised"),
)


def env_label(tag: str, sep: str = "<br>") -> str:
    """`torch2.5.1-numpy1.25.2-py3.11` -> `torch 2.5.1<br>numpy 1.25.2<br>py 3.11`."""
    parts = parse_tag(tag)
    if parts is None:
        return tag
    return sep.join(f"{k.replace('python', 'py')} {v}" for k, v in parts.items())


def summary_line(doc: MatrixDoc) -> str:
    """`8 reader(s) x 8 writer(s) x 7 artifact(s) = 448 loads: 300 ok, ..., 8 not read`."""
    counts = doc["counts"]
    read = sum(counts.values())
    not_read = len(doc.get("not_read", []))
    parts = [f"{counts[o]} {o}" for o in _OUTCOME_MD if counts.get(o)]
    if not_read:
        parts.append(f"{not_read} not read")
    line = (
        f"{len(doc['readers'])} reader(s) x {len(doc['writers'])} writer(s) x "
        f"{len(doc['artifacts'])} artifact(s) = {read + not_read} loads: {', '.join(parts)}"
    )
    stale = sum(1 for o in doc["outcomes"] if o.get("stale"))
    if stale:
        line += f"; {stale} of them from stale goldens"
    return line


def cells_line(doc: MatrixDoc) -> str:
    """`4 cells: 3 ok, 1 crashed` (empty for a document without cells)."""
    cells = doc.get("cells", [])
    if not cells:
        return ""
    counts = {s: sum(1 for c in cells if c["status"] == s) for s in _CELL_MD}
    return f"{len(cells)} cell(s): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def _problems(doc: MatrixDoc) -> list[tuple[str, str, str]]:
    """(cell, phase, problem) of every phase that did not go well."""
    return [
        (c["tag"], name, phase["problem"] + (f" (log: {phase['log']})" if phase["log"] else ""))
        for c in doc.get("cells", [])
        for name, phase in c["phases"].items()
        if phase["status"] != "ok"
    ]


def _phase_md(phase: Mapping[str, object] | None) -> str:
    if phase is None:
        return _NOT_READ
    tests = phase["tests"]
    assert isinstance(tests, dict)
    counts = ", ".join(f"{n} {o}" for o, n in tests.items())
    bits = [_CELL_MD[str(phase["status"])]]
    if counts:
        bits.append(counts)
    if phase["duration"]:
        bits.append(f"{phase['duration']:.0f} s")
    return "; ".join(bits)


def _torch_word(tag: str) -> str:
    """`torch2.6.0` for the tag `torch2.6.0-numpy2.2.6-py3.11`."""
    parts = parse_tag(tag)
    return f"torch{parts['torch']}" if parts else tag


def _fix_cell(entry: MatrixGlobal) -> str:
    # Short: what to change, what to allowlist, where torch allows it anyway.
    # The longer notes are listed once, under "How to fix".
    fix = entry.get("fix")
    if not fix:
        return ""
    bits = [fix["change"]] if fix["change"] else []
    if fix["entries"]:
        bits.append("or allowlist " + ", ".join(f"`{e}`" for e in fix["entries"]))
    torches = dict.fromkeys(_torch_word(t) for t in fix["allowed_by_default_in"])
    if torches:
        bits.append("allowed by default in " + ", ".join(torches))
    return "; ".join(bits)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class _Notes:
    """Numbered notes below a table: each distinct text once, in order of first use."""

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}

    def ref(self, text: str) -> int:
        return self.texts.setdefault(text, len(self.texts) + 1)

    def items(self) -> list[tuple[int, str]]:
        return [(n, t) for t, n in self.texts.items()]


def _one_line(text: str, limit: int = 400) -> str:
    line = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _square(
    o: MatrixOutcome | None, why: str, notes: _Notes
) -> tuple[str, str, list[tuple[str, bool]], list[int]]:
    """A grid square: (css class, label, [(name, missing)], note numbers)."""
    if o is None:
        return "none", _NOT_READ, [], [notes.ref(f"not read: {why}")] if why else []
    refs = []
    if o["outcome"] in ("mismatch", "error") and o["message"]:
        refs.append(notes.ref(f"{o['outcome']}: {_one_line(o['message'])}"))
    if o.get("stale"):
        refs.append(notes.ref(f"stale: {o['stale']}"))
    names = [(n, False) for n in o["blocked"]] + [(n, True) for n in o["missing"]]
    label = _OUTCOME_MD[o["outcome"]]
    return o["outcome"], (f"{_STALE} {label}" if o.get("stale") else label), names, refs


def _refs_md(refs: list[int]) -> str:
    return "".join(f" [{n}]" for n in refs)


def _not_read_why(doc: MatrixDoc) -> dict[tuple[str, str, str], str]:
    return {(n["artifact"], n["writer"], n["reader"]): n["why"] for n in doc.get("not_read", [])}


#: GitHub's limit on one step's summary (`$GITHUB_STEP_SUMMARY`): 1 MiB.
STEP_SUMMARY_LIMIT = 1024 * 1024
#: What `markdown` keeps under by default: the limit, less room for lines a workflow adds.
MARKDOWN_BUDGET = STEP_SUMMARY_LIMIT - 32 * 1024
_HTML_POINTER = "matrix.html (beside this file; in CI, the `matrix-report` artifact)"


def markdown(doc: MatrixDoc, limit: int = MARKDOWN_BUDGET) -> str:
    """The report as GitHub-flavoured Markdown, at most `limit` bytes (UTF-8).

    A step summary over GitHub's 1 MiB is refused whole, so a large matrix gets
    a summary: each artifact's writer x reader grid becomes one row of counts,
    and the page points at the HTML, which always has everything. Should even
    that be too long, the page is cut at a line, saying so.
    """
    text = _markdown(doc, grids=True)
    if len(text.encode()) <= limit:
        return text
    text = _markdown(doc, grids=False)
    if len(text.encode()) <= limit:
        return text
    tail = (
        f"\n\n**The report is cut here** to stay under GitHub's 1 MiB step-summary limit: "
        f"the whole report is {_HTML_POINTER}.\n"
    )
    room = limit - len(tail.encode())
    cut = text.encode()[:room].decode("utf-8", errors="ignore")
    return cut[: cut.rfind("\n")] + tail


def _grid_counts_md(doc: MatrixDoc) -> list[str]:
    """One row per artifact: how many squares of its grid came out how (the summary form)."""
    columns = [*_OUTCOME_MD, "not read", "stale"]
    rows: dict[str, dict[str, int]] = {a: dict.fromkeys(columns, 0) for a in doc["artifacts"]}
    for o in doc["outcomes"]:
        counts = rows.setdefault(o["artifact"], dict.fromkeys(columns, 0))
        counts[o["outcome"]] += 1
        counts["stale"] += 1 if o.get("stale") else 0
    for n in doc.get("not_read", []):
        rows.setdefault(n["artifact"], dict.fromkeys(columns, 0))["not read"] += 1
    labels = [_OUTCOME_MD.get(c, c) for c in columns]
    out = [
        "| artifact | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for artifact, counts in rows.items():
        out.append(f"| `{artifact}` | " + " | ".join(str(counts[c]) for c in columns) + " |")
    return out


def _markdown(doc: MatrixDoc, *, grids: bool) -> str:
    readers = [r["tag"] for r in doc["readers"]]
    out = ["# Checkpoint compatibility matrix", "", summary_line(doc) + ".", ""]
    out += _cells_md(doc)
    out += [
        "## Globals x reader",
        "",
        "Every global a golden holds, as written in the pickle, and what each reader's "
        "`torch.load(weights_only=True)` does with it (with the project's allowlist). "
        f"{_NOT_READ}: no file holding it was read there.",
        "",
        "| global | " + " | ".join(env_label(r) for r in readers) + " | fix |",
        "|---|" + "---|" * len(readers) + "---|",
    ]
    for g in doc["globals"]:
        cells = [_STATUS_MD.get(g["status"].get(r, ""), _NOT_READ) for r in readers]
        out.append(f"| `{g['name']}` | " + " | ".join(cells) + f" | {_md(_fix_cell(g))} |")
    stale_only = doc.get("stale_globals", [])
    if stale_only:
        out += [
            "",
            f"{_STALE} Only stale goldens hold these (the code of this run saves none):",
            "",
        ]
        out += [
            f"- `{g['name']}` in {', '.join(g['artifacts'])} (written by {', '.join(g['writers'])})"
            for g in stale_only
        ]
    fixes = [f for f in (fix_of(g) for g in doc["globals"]) if f is not None]
    if fixes:
        out += ["", "### How to fix", "", "```", render_fixes(fixes, code=False), "```", ""]
        out += [f"- {note}" for note in fix_notes(doc)]
    snippet = doc.get("fix", {}).get("snippet")
    if snippet:
        out += ["", "### The allowlist, for every reader", "", fix_verified_line(doc) + "."]
        out += [f"- {line}" for line in doc["fix"]["failures"]]
        out += ["", "```python", snippet, "```", ""]
    out += _predicted_md(doc)
    out += _tests_md(doc, readers)
    out += _sites_md(doc, readers)
    out += ["", "## Writer x reader, per artifact", ""]
    if not grids:
        squares = len(doc["outcomes"]) + len(doc.get("not_read", []))
        out.append(
            f"How the {squares} squares of each artifact's writer x reader grid came out. "
            "The grids themselves, with a note for every square that is not ok, are left out "
            "to keep this page under GitHub's 1 MiB step-summary limit: they are in "
            f"{_HTML_POINTER}."
        )
        out += ["", *_grid_counts_md(doc)]
        out += ["", "## Legend", ""]
        out += [f"- {symbol}: {meaning}" for symbol, meaning in LEGEND]
        out.append("")
        return "\n".join(out)
    out.append("Rows: the environment that wrote the golden; columns: the one that read it.")
    by_artifact = _grid(doc)
    why = _not_read_why(doc)
    for artifact in doc["artifacts"]:
        out += ["", f"### `{artifact}`", ""]
        out.append("| writer \\ reader | " + " | ".join(env_label(r) for r in readers) + " |")
        out.append("|---|" + "---|" * len(readers))
        notes = _Notes()
        for writer in doc["writers"]:
            row = by_artifact.get(artifact, {}).get(writer, {})
            cells = [
                _square_md(_square(row.get(r), why.get((artifact, writer, r), ""), notes))
                for r in readers
            ]
            out.append(f"| {env_label(writer, ' ')} | " + " | ".join(cells) + " |")
        if notes.texts:
            out.append("")
            out += [f"{n}. {_md(t)}" for n, t in notes.items()]
    out += ["", "## Legend", ""]
    out += [f"- {symbol}: {meaning}" for symbol, meaning in LEGEND]
    out.append("")
    return "\n".join(out)


def _square_md(square: tuple[str, str, list[tuple[str, bool]], list[int]]) -> str:
    _, label, names, refs = square
    shown = [f"`{n}`" + (" (missing)" if missing else "") for n, missing in names]
    return "<br>".join([label + _refs_md(refs), *shown])


def _cells_md(doc: MatrixDoc) -> list[str]:
    cells = doc.get("cells", [])
    if not cells:
        return []
    out = ["## Cells", "", cells_line(doc) + ".", ""]
    out += ["| cell | status | write phase | read phase |", "|---|---|---|---|"]
    for c in cells:
        phases = c["phases"]
        out.append(
            f"| {env_label(c['tag'], ' ')} | {_CELL_MD[c['status']]} | "
            f"{_phase_md(phases.get('write'))} | {_phase_md(phases.get('read'))} |"
        )
    problems = _problems(doc)
    if problems:
        out.append("")
        out += [f"- `{tag}`, {phase} phase: {_md(problem)}" for tag, phase, problem in problems]
    out.append("")
    return out


def _test_label(row: Mapping[str, object]) -> str:
    return _TEST_MD[test_state(str(row["outcome"]), row["finding"])]


def _test_table(
    doc: MatrixDoc,
) -> tuple[dict[str, dict[str, Mapping[str, object]]], int, list[str]]:
    """The tests to show, how many passed everywhere, those that failed only on findings.

    ({nodeid: {reader: row}}, a count, nodeids): a test that failed only on
    findings the grids show is named, not tabled.
    """
    by_test: dict[str, dict[str, Mapping[str, object]]] = {}
    for t in doc.get("tests", []):
        by_test.setdefault(t["nodeid"], {})[t["reader"]] = t
    readers = [r["tag"] for r in doc["readers"]]
    clean, findings = set(), []
    for nodeid, rows in by_test.items():
        got = [rows.get(r) for r in readers]
        if all(t is not None and t["outcome"] == "passed" for t in got):
            clean.add(nodeid)
        elif all(
            t is not None and test_state(str(t["outcome"]), t["finding"]) in ("passed", "finding")
            for t in got
        ):
            findings.append(nodeid)
    shown = {n: rows for n, rows in by_test.items() if n not in clean and n not in findings}
    return shown, len(clean), sorted(findings)


def _needs_note(t: Mapping[str, object]) -> bool:
    return t["outcome"] in TEST_FAILURES and not t["finding"]


def _test_note(t: Mapping[str, object]) -> str:
    at = f" (raised at `{t['where']}`)" if t["where"] else ""
    what = f"{t['outcome']} in the {t['phase']} phase"
    return f"`{t['nodeid']}` ({t['site']}) {what}: {t['message']}{at}"


def _tests_md(doc: MatrixDoc, readers: list[str]) -> list[str]:
    if not doc.get("tests"):
        return []
    shown, clean, findings = _test_table(doc)
    out = ["", "## The project's tests", "", f"{clean} test(s) passed in every reader."]
    if findings:
        out.append(
            f"{len(findings)} failed only on findings the grids show ({_TEST_MD['finding']}): "
            + ", ".join(f"`{n}`" for n in findings)
            + "."
        )
    if not shown:
        return out
    out.append(f"These did not pass everywhere ({_NOT_READ}: the test did not run there):")
    out += ["", "| test | " + " | ".join(env_label(r) for r in readers) + " |"]
    out.append("|---|" + "---|" * len(readers))
    notes = _Notes()
    for nodeid, rows in sorted(shown.items()):
        site = next(iter(rows.values()))["site"]
        cells = []
        for r in readers:
            t = rows.get(r)
            if t is None:
                cells.append(_NOT_READ)
                continue
            ref = [notes.ref(_test_note(t))] if _needs_note(t) else []
            cells.append(_test_label(t) + _refs_md(ref))
        out.append(f"| `{nodeid}`<br>{site} | " + " | ".join(cells) + " |")
    out.append("")
    out += [f"{n}. {_md(text)}" for n, text in notes.items()]
    return out


def _site_note(row: Mapping[str, object]) -> str:
    reader = env_label(str(row["reader"]), " ")
    if row["state"] == "fails":
        return f"{reader}: weights_only {row['weights_only']}: raised {row['error']}"
    blocked = row["blocked"]
    assert isinstance(blocked, list)
    names = ", ".join(blocked) or "see the fix"
    return (
        f"{reader}: weights_only {row['weights_only']}: went through, but would not load "
        f"under weights_only=True: {names}"
    )


def _sites(doc: MatrixDoc) -> dict[str, dict[str, Mapping[str, object]]]:
    by_site: dict[str, dict[str, Mapping[str, object]]] = {}
    for row in doc.get("load_sites", []):
        by_site.setdefault(site_label(row), {})[row["reader"]] = row
    return by_site


def _sites_md(doc: MatrixDoc, readers: list[str]) -> list[str]:
    by_site = _sites(doc)
    if not by_site:
        return []
    out = [
        "",
        "## `torch.load` call sites",
        "",
        "Every `torch.load` the tests made (the audit, on under `--ckpt-compat`), in each "
        f"reader ({_NOT_READ}: not called there).",
        "",
        "| call site | " + " | ".join(env_label(r) for r in readers) + " |",
        "|---|" + "---|" * len(readers),
    ]
    notes = _Notes()
    fixes: dict[str, str] = {}
    for label, rows in sorted(by_site.items()):
        cells = []
        for r in readers:
            row = rows.get(r)
            if row is None:
                cells.append(_NOT_READ)
                continue
            ref = [notes.ref(f"`{label}` in {_site_note(row)}")] if row["state"] != "works" else []
            cells.append(_SITE_MD[str(row["state"])] + _refs_md(ref))
            if row["state"] != "works" and row["fix"]:
                fixes.setdefault(label, str(row["fix"]))
        out.append(f"| `{label}` | " + " | ".join(cells) + " |")
    if notes.texts:
        out.append("")
        out += [f"{n}. {_md(text)}" for n, text in notes.items()]
    for label, fix in fixes.items():
        out += ["", f"For `{label}`:", "", "```", fix, "```"]
    return out


def _grid(doc: MatrixDoc) -> dict[str, dict[str, dict[str, MatrixOutcome]]]:
    grid: dict[str, dict[str, dict[str, MatrixOutcome]]] = {}
    for o in doc["outcomes"]:
        grid.setdefault(o["artifact"], {}).setdefault(o["writer"], {})[o["reader"]] = o
    return grid


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
code { font: 12px ui-monospace, monospace; }
td.allowed, td.ok, td.passed, td.works { background: #dafbe1; }
td.allowed-user { background: #eefbe9; }
td.blocked, td.failed, td.fails { background: #ffd8d3; }
td.missing, td.at-risk, td.xpassed { background: #fff1c2; }
td.mismatch, td.finding { background: #e7dcff; }
td.error, td.crashed { background: #ffb3b8; }
td.none, td.skipped, td.xfailed { color: #8c959f; }
td.stale { background-image:
  repeating-linear-gradient(45deg, transparent 0 6px, #0000000d 6px 12px); }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
.fix { max-width: 42em; font-size: 13px; }
ol.notes, ul.problems { font-size: 13px; }
"""


def _refs_html(refs: list[int]) -> str:
    return "".join(f"<sup>[{n}]</sup>" for n in refs)


def _notes_html(notes: _Notes) -> list[str]:
    if not notes.texts:
        return []
    e = html.escape
    return ['<ol class="notes">', *(f"<li>{e(t)}</li>" for _, t in notes.items()), "</ol>"]


def html_page(doc: MatrixDoc) -> str:
    """The whole report as one self-contained HTML page."""
    e = html.escape
    readers = [r["tag"] for r in doc["readers"]]
    head = "".join(f"<th>{env_label(e(r))}</th>" for r in readers)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Checkpoint compatibility matrix</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Checkpoint compatibility matrix</h1>",
        f"<p>{e(summary_line(doc))}. Created {e(doc['created'])} by pytest-ckptcompat "
        f"{e(doc['plugin'])}.</p>",
    ]
    parts += _cells_html(doc)
    parts += [
        "<h2>Globals x reader</h2>",
        f"<table><tr><th>global</th>{head}<th>fix</th></tr>",
    ]
    for g in doc["globals"]:
        cells = "".join(
            f'<td class="{e(g["status"].get(r, "none"))}">{e(g["status"].get(r, _NOT_READ))}</td>'
            for r in readers
        )
        parts.append(
            f"<tr><td><code>{e(g['name'])}</code></td>{cells}"
            f'<td class="fix">{e(_fix_cell(g))}</td></tr>'
        )
    parts.append("</table>")
    stale_only = doc.get("stale_globals", [])
    if stale_only:
        parts.append(
            f"<p>{_STALE} Only stale goldens hold these (the code of this run saves none):</p><ul>"
        )
        parts += [
            f"<li><code>{e(g['name'])}</code> in {e(', '.join(g['artifacts']))} (written by "
            f"{e(', '.join(g['writers']))})</li>"
            for g in stale_only
        ]
        parts.append("</ul>")
    fixes = [f for f in (fix_of(g) for g in doc["globals"]) if f is not None]
    if fixes:
        parts += ["<h3>How to fix</h3>", f"<pre>{e(render_fixes(fixes, code=False))}</pre>"]
        parts += ["<ul>", *(f"<li>{e(note)}</li>" for note in fix_notes(doc)), "</ul>"]
    snippet = doc.get("fix", {}).get("snippet")
    if snippet:
        parts += [
            "<h3>The allowlist, for every reader</h3>",
            f"<p>{e(fix_verified_line(doc))}.</p>",
        ]
        parts += ["<ul>", *(f"<li>{e(line)}</li>" for line in doc["fix"]["failures"]), "</ul>"]
        parts.append(f"<pre>{e(snippet)}</pre>")
    parts += _predicted_html(doc)
    parts += _tests_html(doc, readers, head)
    parts += _sites_html(doc, readers, head)
    parts.append("<h2>Writer x reader, per artifact</h2>")
    by_artifact = _grid(doc)
    why = _not_read_why(doc)
    for artifact in doc["artifacts"]:
        parts.append(f"<h3><code>{e(artifact)}</code></h3>")
        parts.append(f"<table><tr><th>writer \\ reader</th>{head}</tr>")
        notes = _Notes()
        for writer in doc["writers"]:
            row = by_artifact.get(artifact, {}).get(writer, {})
            tds = "".join(
                _square_td(
                    _square(row.get(r), why.get((artifact, writer, r), ""), notes), row.get(r)
                )
                for r in readers
            )
            parts.append(f"<tr><th>{env_label(e(writer))}</th>{tds}</tr>")
        parts.append("</table>")
        parts += _notes_html(notes)
    parts += ["<h2>Legend</h2>", "<ul>"]
    parts += [f"<li><b>{e(symbol)}</b>: {e(meaning)}</li>" for symbol, meaning in LEGEND]
    parts += ["</ul>", "</body></html>"]
    return "\n".join(parts) + "\n"


_PREDICTED_OUTCOMES = ("ok", "blocked", "missing", "error")


def _predicted_rows(predicted: MatrixPredicted) -> list[tuple[str, dict[str, int], list[str]]]:
    """Per predicted reader: its label, how many goldens came out how, the names in the way."""
    rows: dict[str, tuple[dict[str, int], dict[str, None]]] = {
        r["tag"]: (dict.fromkeys(_PREDICTED_OUTCOMES, 0), {}) for r in predicted["readers"]
    }
    for o in predicted["outcomes"]:
        counts, names = rows[o["reader"]]
        counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
        names.update(dict.fromkeys([*o["blocked"], *o["missing"]]))
    labels = {r["tag"]: f"torch {r['torch']} numpy {r['numpy']}" for r in predicted["readers"]}
    return [(labels[tag], counts, list(names)) for tag, (counts, names) in rows.items()]


def predicted_line(doc: MatrixDoc) -> str:
    """One line: the predicted columns and how the predictions fared against the real loads."""
    predicted = doc.get("predicted")
    if predicted is None:
        return ""
    agreement = predicted["agreement"]
    bad = len(agreement["disagreements"])
    checked = agreement["checked"]
    if bad:
        agreed = f"predictions DISAGREED with {bad} of {checked} real golden loads (a bug of ours)"
    elif checked:
        agreed = f"predictions agreed with {checked}/{checked} real golden loads"
    else:
        agreed = "no real golden load was checked against its prediction"
    if not predicted["releases"]:
        return f"no torch release between the installed ones to predict; {agreed}"
    loads = sum(1 for o in predicted["outcomes"] if o["outcome"] == "ok")
    return (
        f"predicted, not installed: torch {', '.join(predicted['releases'])}: {loads} of "
        f"{len(predicted['outcomes'])} golden loads would work; {agreed}"
    )


def _predicted_md(doc: MatrixDoc) -> list[str]:
    predicted = doc.get("predicted")
    if predicted is None:
        return []
    out = [
        "",
        "## Predicted readers (not installed)",
        "",
        predicted_line(doc) + ".",
        "",
        "Judged from torch's rules table with the readers' numpy and the project's allowlist "
        "(as `ckptcompat scan --torch` does): nothing was installed or loaded for these rows.",
    ]
    out += [f"- {line}" for line in disagreement_lines(predicted)]
    out += [f"- {line}" for line in predicted["problems"]]
    if predicted["readers"]:
        labels = [_OUTCOME_MD[o] for o in _PREDICTED_OUTCOMES]
        out += ["", "| predicted reader | " + " | ".join(labels) + " | in the way |"]
        out.append("|---|" + "---|" * len(labels) + "---|")
        for tag, counts, names in _predicted_rows(predicted):
            cells = " | ".join(str(counts[o]) for o in _PREDICTED_OUTCOMES)
            shown = ", ".join(f"`{n}`" for n in names) or "-"
            out.append(f"| {tag} | {cells} | {shown} |")
    return out


def _predicted_html(doc: MatrixDoc) -> list[str]:
    predicted = doc.get("predicted")
    if predicted is None:
        return []
    e = html.escape
    parts = [
        "<h2>Predicted readers (not installed)</h2>",
        f"<p>{e(predicted_line(doc))}. Judged from torch's rules table with the readers' numpy "
        "and the project's allowlist (as <code>ckptcompat scan --torch</code> does): nothing "
        "was installed or loaded for these rows.</p>",
    ]
    notes = [*disagreement_lines(predicted), *predicted["problems"]]
    if notes:
        parts += ["<ul>", *(f"<li>{e(n)}</li>" for n in notes), "</ul>"]
    if predicted["readers"]:
        head = "".join(f"<th>{e(o)}</th>" for o in _PREDICTED_OUTCOMES)
        parts.append(f"<table><tr><th>predicted reader</th>{head}<th>in the way</th></tr>")
        for tag, counts, names in _predicted_rows(predicted):
            tds = "".join(f"<td>{counts[o]}</td>" for o in _PREDICTED_OUTCOMES)
            shown = ", ".join(f"<code>{e(n)}</code>" for n in names) or "-"
            parts.append(f"<tr><th>{e(tag)}</th>{tds}<td>{shown}</td></tr>")
        parts.append("</table>")
    return parts


def _square_td(
    square: tuple[str, str, list[tuple[str, bool]], list[int]], o: MatrixOutcome | None
) -> str:
    e = html.escape
    css, _, names, refs = square
    if o is None:
        return f'<td class="none">{_NOT_READ}{_refs_html(refs)}</td>'
    shown = "".join(
        f"<br><code>{e(n)}</code>" + (" (missing)" if missing else "") for n, missing in names
    )
    title = f' title="{e(o["message"])}"' if o["message"] else ""
    stale = " stale" if o.get("stale") else ""
    label = f"{_STALE} {o['outcome']}" if stale else o["outcome"]
    return f'<td class="{css}{stale}"{title}>{label}{_refs_html(refs)}{shown}</td>'


def _cells_html(doc: MatrixDoc) -> list[str]:
    cells = doc.get("cells", [])
    if not cells:
        return []
    e = html.escape
    parts = ["<h2>Cells</h2>", f"<p>{e(cells_line(doc))}.</p>"]
    parts.append(
        "<table><tr><th>cell</th><th>status</th><th>write phase</th><th>read phase</th></tr>"
    )
    for c in cells:
        tds = "".join(
            f'<td class="{e(p["status"]) if p else "none"}">{e(_phase_md(p))}</td>'
            for p in (c["phases"].get("write"), c["phases"].get("read"))
        )
        parts.append(
            f'<tr><th>{env_label(e(c["tag"]))}</th><td class="{e(c["status"])}">'
            f"{e(c['status'])}</td>{tds}</tr>"
        )
    parts.append("</table>")
    problems = _problems(doc)
    if problems:
        parts.append('<ul class="problems">')
        parts += [
            f"<li><code>{e(tag)}</code>, {e(phase)} phase: {e(problem)}</li>"
            for tag, phase, problem in problems
        ]
        parts.append("</ul>")
    return parts


def _tests_html(doc: MatrixDoc, readers: list[str], head: str) -> list[str]:
    if not doc.get("tests"):
        return []
    e = html.escape
    shown, clean, findings = _test_table(doc)
    parts = ["<h2>The project's tests</h2>", f"<p>{clean} test(s) passed in every reader.</p>"]
    if findings:
        parts.append(
            f"<p>{len(findings)} failed only on findings the grids show (finding): "
            + ", ".join(f"<code>{e(n)}</code>" for n in findings)
            + ".</p>"
        )
    if not shown:
        return parts
    parts.append(f"<p>These did not pass everywhere ({_NOT_READ}: the test did not run there):</p>")
    parts.append(f"<table><tr><th>test</th>{head}</tr>")
    notes = _Notes()
    for nodeid, rows in sorted(shown.items()):
        site = next(iter(rows.values()))["site"]
        tds = []
        for r in readers:
            t = rows.get(r)
            if t is None:
                tds.append(f'<td class="none">{_NOT_READ}</td>')
                continue
            refs = [notes.ref(_test_note(t))] if _needs_note(t) else []
            css = "finding" if _test_label(t) == _TEST_MD["finding"] else str(t["outcome"])
            word = "finding" if css == "finding" else str(t["outcome"])
            tds.append(f'<td class="{e(css)}">{e(word)}{_refs_html(refs)}</td>')
        parts.append(f"<tr><td><code>{e(nodeid)}</code><br>{e(str(site))}</td>{''.join(tds)}</tr>")
    parts.append("</table>")
    return parts + _notes_html(notes)


def _sites_html(doc: MatrixDoc, readers: list[str], head: str) -> list[str]:
    by_site = _sites(doc)
    if not by_site:
        return []
    e = html.escape
    parts = [
        "<h2><code>torch.load</code> call sites</h2>",
        f"<p>Every <code>torch.load</code> the tests made, in each reader ({_NOT_READ}: not "
        "called there).</p>",
        f"<table><tr><th>call site</th>{head}</tr>",
    ]
    notes = _Notes()
    fixes: dict[str, str] = {}
    for label, rows in sorted(by_site.items()):
        tds = []
        for r in readers:
            row = rows.get(r)
            if row is None:
                tds.append(f'<td class="none">{_NOT_READ}</td>')
                continue
            state = str(row["state"])
            refs = [notes.ref(f"{label} in {_site_note(row)}")] if state != "works" else []
            if state != "works" and row["fix"]:
                fixes.setdefault(label, str(row["fix"]))
            tds.append(f'<td class="{e(state)}">{e(state)}{_refs_html(refs)}</td>')
        parts.append(f"<tr><td><code>{e(label)}</code></td>{''.join(tds)}</tr>")
    parts.append("</table>")
    parts += _notes_html(notes)
    for label, fix in fixes.items():
        parts += [f"<p>For <code>{e(label)}</code>:</p>", f"<pre>{e(fix)}</pre>"]
    return parts


def _seconds(value: object) -> str:
    # SUREFIRE_TIME in the Jenkins/xunit schema: digits, at most three decimals.
    try:
        return f"{max(float(value), 0.0):.3f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "0.000"


class _Suite:
    """A testsuite whose testcases are grouped by file.

    The JUnit schema pytest validates against (Jenkins' xunit, junit-10.xsd)
    has no `file` attribute on a testcase, only on a testsuite: so the cases of
    each file sit in a nested testsuite carrying `file`, which is where CI
    annotations (mikepenz/action-junit-report, Jenkins) look for it. Cases with
    no file sit in the suite itself.
    """

    def __init__(self, root: ET.Element, name: str, timestamp: str) -> None:
        self.element = ET.SubElement(root, "testsuite", name=name, timestamp=timestamp)
        self.files: dict[str, ET.Element] = {}

    def case(self, classname: str, name: str, time: object, file: str = "") -> ET.Element:
        parent = self.element
        if file:
            found = self.files.get(file)
            if found is None:  # an Element's truth is its child count (deprecated): ask for None
                found = self.files[file] = ET.SubElement(
                    self.element, "testsuite", name=file, file=file
                )
            parent = found
        return ET.SubElement(
            parent, "testcase", classname=classname, name=name, time=_seconds(time)
        )

    def finish(self) -> None:
        for child in self.files.values():
            _count(child)
        _count(self.element)


def _fail(case: ET.Element, kind: str, message: str, text: str = "") -> None:
    failure = ET.SubElement(case, "failure", type=kind, message=message)
    failure.text = text


def _count(suite: ET.Element) -> None:
    cases = list(suite.iter("testcase"))
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("time", _seconds(sum(float(c.get("time", "0")) for c in cases)))


def _in_repository(doc: MatrixDoc) -> dict[str, str | None]:
    """Each reader's pytest rootdir in the repository (None: its report did not say)."""
    return {r["tag"]: r.get("rootdir") for r in doc["readers"]}


def repo_path(rootdir: str | None, path: str) -> str:
    """A path relative to a cell's pytest rootdir, given from the repository."""
    if not path or rootdir in (None, ".", "") or path.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(str(rootdir), path))


def junit(doc: MatrixDoc) -> str:
    """JUnit XML: the loads, then the cells, the project's tests and the call sites.

    `ckptcompat-matrix` has one testcase per (artifact, writer, reader): anything
    but ok fails, a square with nothing read is skipped with its reason, a stale
    golden says so. `ckptcompat-cells`: a cell that failed or crashed fails.
    `ckptcompat-tests`: one per (test, reader), as pytest judged it.
    `ckptcompat-load-sites`: one per (call site, reader); a call that raised fails.
    Files are given from the repository (each cell's rootdir in it is in its
    report), in nested per-file suites; every testcase and suite has a `time`.
    The document is valid against the Jenkins/xunit schema pytest's own tests use.
    """
    root = ET.Element("testsuites", name="ckptcompat")
    created = doc["created"]
    roots = _in_repository(doc)
    loads = _Suite(root, "ckptcompat-matrix", created)
    for o in doc["outcomes"]:
        module = o["test"].split("::")[0] if o["test"] else ""
        file = repo_path(roots.get(o["reader"]), module)
        case = loads.case(
            f"ckptcompat.{o['artifact']}",
            f"{o['writer']} -> {o['reader']}",
            o.get("duration", 0.0),
            file,
        )
        stale = f" (stale golden: {o['stale']})" if o.get("stale") else ""
        if o["outcome"] != "ok":
            names = ", ".join(o["blocked"] + o["missing"])
            message = f"{o['outcome']}{': ' + names if names else ''}{stale}"
            at = f"\nchecked by {repo_path(roots.get(o['reader']), o['test'])}" if o["test"] else ""
            _fail(case, o["outcome"], message, o["message"] + at)
        elif stale:
            ET.SubElement(case, "system-out").text = stale.strip()
    for n in doc.get("not_read", []):
        case = loads.case(f"ckptcompat.{n['artifact']}", f"{n['writer']} -> {n['reader']}", 0)
        ET.SubElement(case, "skipped", message=f"not read: {n['why']}")
    loads.finish()
    if doc.get("cells"):
        suite = _Suite(root, "ckptcompat-cells", created)
        for c in doc["cells"]:
            took = sum(float(p.get("duration") or 0) for p in c["phases"].values())
            case = suite.case("ckptcompat.cells", c["tag"], took)
            if c["status"] != "ok":
                problems = [
                    f"{name} phase: {p['problem']}"
                    for name, p in c["phases"].items()
                    if p["problem"]
                ]
                _fail(case, c["status"], "; ".join(problems) or c["status"], "\n".join(problems))
        suite.finish()
    if doc.get("tests"):
        suite = _Suite(root, "ckptcompat-tests", created)
        for t in doc["tests"]:
            prefix = roots.get(t["reader"])
            module = repo_path(prefix, t["nodeid"].split("::")[0])
            case = suite.case(
                f"ckptcompat.tests.{t['reader']}", t["nodeid"], t.get("duration", 0.0), module
            )
            if t["outcome"] in TEST_FAILURES:
                kind = test_state(t["outcome"], t["finding"])
                at = f" (at {repo_path(prefix, t['where'])})" if t["where"] else ""
                # ` path:line` in the text: where annotation tools read the line from.
                text = f"test at {repo_path(prefix, t['site'])}" if t.get("site") else ""
                _fail(
                    case,
                    kind,
                    f"{t['outcome']} in the {t['phase']} phase: {t['message']}{at}",
                    text,
                )
            elif t["outcome"] in ("skipped", "xfailed"):
                ET.SubElement(case, "skipped", message=t["outcome"])
        suite.finish()
    if doc.get("load_sites"):
        suite = _Suite(root, "ckptcompat-load-sites", created)
        for row in doc["load_sites"]:
            label = site_label(row)
            path = row["site"].rsplit(":", 1)[0]
            inside = path and not path.startswith("/") and "site-packages/" not in path
            file = repo_path(roots.get(row["reader"]), path) if inside else ""
            case = suite.case(f"ckptcompat.load_sites.{row['reader']}", label, 0, file)
            if row["state"] == "fails":
                line = row["site"].rsplit(":", 1)[-1]
                text = "\n".join(filter(None, [row["fix"], f"at {file}:{line}" if file else ""]))
                _fail(case, "fails", f"torch.load raised: {row['error']}", text)
            elif row["state"] == "at-risk":
                ET.SubElement(case, "system-out").text = _site_note(row)
        suite.finish()
    cases = list(root.iter("testcase"))
    root.set("tests", str(len(cases)))
    root.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    root.set("errors", "0")
    root.set("time", _seconds(sum(float(c.get("time", "0")) for c in cases)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def console(doc: MatrixDoc) -> str:
    """What a matrix run ends with: the cells, the globals table, what failed where."""
    readers = [r["tag"] for r in doc["readers"]]
    short = {
        r: env_label(r, " ").replace("torch ", "t").replace("numpy ", "n").replace("py ", "py")
        for r in readers
    }
    lines = [summary_line(doc)]
    if doc.get("predicted") is not None:
        lines.append(predicted_line(doc))
    if doc.get("cells"):
        lines.append(cells_line(doc))
        lines += [f"  {tag} {phase} phase: {problem}" for tag, phase, problem in _problems(doc)]
    if doc["globals"]:
        width = max(len(g["name"]) for g in doc["globals"])
        cols = [max(len(short[r]), 12) for r in readers]
        lines.append("")
        lines.append(
            "  ".join(
                [
                    "global".ljust(width),
                    *(short[r].ljust(w) for r, w in zip(readers, cols, strict=True)),
                ]
            ).rstrip()
        )
        for g in doc["globals"]:
            cells = [
                g["status"].get(r, _NOT_READ).ljust(w) for r, w in zip(readers, cols, strict=True)
            ]
            lines.append("  ".join([g["name"].ljust(width), *cells]).rstrip())
    lines += [f"only in stale goldens: {s['name']}" for s in doc.get("stale_globals", [])]
    shown, _, _ = _test_table(doc)
    for _, rows in sorted(shown.items()):
        bad = {r: t for r, t in rows.items() if _needs_note(t)}
        for reader, t in sorted(bad.items()):
            lines.append(f"test {t['outcome']} in {reader}: {_test_note(t).replace('`', '')}")
    for label, rows in sorted(_sites(doc).items()):
        for _, row in sorted(rows.items()):
            if row["state"] == "fails":
                lines.append(f"load site fails: {label} in {_site_note(row)}")
    return "\n".join(lines)
