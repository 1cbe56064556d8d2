"""The matrix document (`ckptcompat.matrix/1`) as Markdown, HTML and JUnit XML.

- Markdown fits a GitHub step summary: the global x reader table with the fix
  beside each troubled global, then one writer x reader grid per artifact.
- HTML is one self-contained file (inline CSS, no scripts), readable from disk.
- JUnit has one testcase per (artifact, writer, reader), so CI lists failures natively.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from ..environment import parse_tag
from ..scan.fixes import render as render_fixes
from ..schemas import MatrixDoc, MatrixGlobal, MatrixOutcome
from .merge import fix_notes, fix_of, fix_verified_line

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
_NOT_READ = "·"


def env_label(tag: str, sep: str = "<br>") -> str:
    """`torch2.5.1-numpy1.25.2-py3.11` -> `torch 2.5.1<br>numpy 1.25.2<br>py 3.11`."""
    parts = parse_tag(tag)
    if parts is None:
        return tag
    return sep.join(f"{k.replace('python', 'py')} {v}" for k, v in parts.items())


def summary_line(doc: MatrixDoc) -> str:
    """`8 readers x 8 writers x 7 artifacts = 448 loads: 300 ok, 100 blocked, ...`."""
    counts = doc["counts"]
    total = sum(counts.values())
    parts = ", ".join(f"{counts[o]} {o}" for o in _OUTCOME_MD if counts.get(o))
    return (
        f"{len(doc['readers'])} reader(s) x {len(doc['writers'])} writer(s) x "
        f"{len(doc['artifacts'])} artifact(s) = {total} loads: {parts}"
    )


def _fix_cell(entry: MatrixGlobal) -> str:
    # Short: what to change, what to allowlist, where torch allows it anyway.
    # The longer notes are listed once, under "How to fix".
    fix = entry.get("fix")
    if not fix:
        return ""
    bits = [fix["change"]] if fix["change"] else []
    if fix["entries"]:
        bits.append("or allowlist " + ", ".join(f"`{e}`" for e in fix["entries"]))
    torches = dict.fromkeys(t.split("-")[0] for t in fix["allowed_by_default_in"])
    if torches:
        bits.append("allowed by default in " + ", ".join(torches))
    return "; ".join(bits)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(doc: MatrixDoc) -> str:
    """The whole report as GitHub-flavoured Markdown."""
    readers = [r["tag"] for r in doc["readers"]]
    out = ["# Checkpoint compatibility matrix", "", summary_line(doc) + ".", ""]
    out += [
        "## Globals x reader",
        "",
        "Every global a golden holds, as written in the pickle, and what each reader's "
        "`torch.load(weights_only=True)` does with it (with the project's allowlist).",
        "",
        "| global | " + " | ".join(env_label(r) for r in readers) + " | fix |",
        "|---|" + "---|" * len(readers) + "---|",
    ]
    for g in doc["globals"]:
        cells = [_STATUS_MD.get(g["status"].get(r, ""), _NOT_READ) for r in readers]
        out.append(f"| `{g['name']}` | " + " | ".join(cells) + f" | {_md(_fix_cell(g))} |")
    fixes = [f for f in (fix_of(g) for g in doc["globals"]) if f is not None]
    if fixes:
        out += ["", "### How to fix", "", "```", render_fixes(fixes, code=False), "```", ""]
        out += [f"- {note}" for note in fix_notes(doc)]
    snippet = doc.get("fix", {}).get("snippet")
    if snippet:
        out += ["", "### The allowlist, for every reader", "", fix_verified_line(doc) + "."]
        out += [f"- {line}" for line in doc["fix"]["failures"]]
        out += ["", "```python", snippet, "```", ""]
    out += ["", "## Writer x reader, per artifact", ""]
    out.append("Rows: the environment that wrote the golden; columns: the one that read it.")
    by_artifact = _grid(doc)
    for artifact in doc["artifacts"]:
        out += ["", f"### `{artifact}`", ""]
        out.append("| writer \\ reader | " + " | ".join(env_label(r) for r in readers) + " |")
        out.append("|---|" + "---|" * len(readers))
        for writer in doc["writers"]:
            row = by_artifact.get(artifact, {}).get(writer, {})
            cells = [_outcome_md(row.get(r)) for r in readers]
            out.append(f"| {env_label(writer, ' ')} | " + " | ".join(cells) + " |")
    out.append("")
    return "\n".join(out)


def _outcome_md(o: MatrixOutcome | None) -> str:
    if o is None:
        return _NOT_READ
    names = [f"`{n}`" for n in o["blocked"]] + [f"`{n}` (missing)" for n in o["missing"]]
    return "<br>".join([_OUTCOME_MD[o["outcome"]], *names])


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
td.allowed, td.ok { background: #dafbe1; }
td.allowed-user { background: #eefbe9; }
td.blocked { background: #ffd8d3; }
td.missing { background: #fff1c2; }
td.mismatch { background: #e7dcff; }
td.error { background: #ffb3b8; }
td.none { color: #8c959f; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
.fix { max-width: 42em; font-size: 13px; }
"""


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
    parts.append("<h2>Writer x reader, per artifact</h2>")
    by_artifact = _grid(doc)
    for artifact in doc["artifacts"]:
        parts.append(f"<h3><code>{e(artifact)}</code></h3>")
        parts.append(f"<table><tr><th>writer \\ reader</th>{head}</tr>")
        for writer in doc["writers"]:
            row = by_artifact.get(artifact, {}).get(writer, {})
            tds = "".join(_outcome_td(row.get(r)) for r in readers)
            parts.append(f"<tr><th>{env_label(e(writer))}</th>{tds}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _outcome_td(o: MatrixOutcome | None) -> str:
    if o is None:
        return f'<td class="none">{_NOT_READ}</td>'
    e = html.escape
    names = "".join(f"<br><code>{e(n)}</code>" for n in o["blocked"])
    names += "".join(f"<br><code>{e(n)}</code> (missing)" for n in o["missing"])
    title = f' title="{e(o["message"])}"' if o["message"] else ""
    return f'<td class="{o["outcome"]}"{title}>{o["outcome"]}{names}</td>'


def junit(doc: MatrixDoc) -> str:
    """JUnit XML: one testcase per (artifact, writer, reader); anything but ok fails."""
    failures = sum(1 for o in doc["outcomes"] if o["outcome"] != "ok")
    suite = ET.Element(
        "testsuite",
        name="ckptcompat-matrix",
        tests=str(len(doc["outcomes"])),
        failures=str(failures),
        errors="0",
        skipped="0",
        timestamp=doc["created"],
    )
    for o in doc["outcomes"]:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"ckptcompat.{o['artifact']}",
            name=f"{o['writer']} -> {o['reader']}",
            file=o["test"].split("::")[0] if o["test"] else "",
        )
        if o["outcome"] != "ok":
            names = ", ".join(o["blocked"] + o["missing"])
            failure = ET.SubElement(
                case,
                "failure",
                type=o["outcome"],
                message=f"{o['outcome']}{': ' + names if names else ''}",
            )
            failure.text = o["message"]
    root = ET.Element("testsuites", name="ckptcompat")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
