"""`ckptcompat lint` output: text for people, GitHub workflow annotations (`--format github`).

JSON (`ckptcompat.lint/1`) is `LintResult.to_json`, SARIF is `sarif.lint_log`.
"""

from __future__ import annotations

from .lint import LintResult


def text(result: LintResult) -> str:
    """Two lines per finding (`path:line:col: CODE ...` and its fix), then a count."""
    lines = [finding.to_text() for finding in result.findings]
    files = len({f.path for f in result.findings})
    lines.append(
        f"ckptcompat lint: {len(result.findings)} finding(s) in {files} of "
        f"{result.files_checked} file(s) checked"
    )
    return "\n".join(lines)


def _data(value: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit, command.ts).
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


def github(result: LintResult) -> str:
    """One `::error` / `::warning` workflow command per finding (and per unreadable file).

    In a GitHub Actions step these become annotations on the pull request's diff.
    """
    lines = []
    for f in result.findings:
        level = "error" if f.severity == "error" else "warning"
        props = [f"file={_property(f.path)}", f"line={f.line}", f"col={f.col}"]
        if f.end_line:
            props.append(f"endLine={f.end_line}")
        props.append(f"title={_property(f'{f.code} {f.title}')}")
        message = f"{f.call}: {f.reason}. Fix: {f.fix}"
        lines.append(f"::{level} {','.join(props)}::{_data(message)}")
    for e in result.errors:
        lines.append(f"::error file={_property(e.path)},title=ckptcompat lint::{_data(e.problem)}")
    return "\n".join(lines)
