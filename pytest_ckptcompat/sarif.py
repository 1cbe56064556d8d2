"""SARIF 2.1.0 logs of `ckptcompat lint` and `ckptcompat scan`, as GitHub code scanning takes them.

One run, tool `ckptcompat`, every rule described (id, name, short and full
description, help in text and Markdown, default level, tags, and a
`security-severity` for the security rules, which GitHub shows as a severity).
Locations are relative to the folder the command ran in (the repository root,
in CI), under `%SRCROOT%`; paths outside it are absolute `file:` URIs. Each
result carries a `partialFingerprints` entry, so GitHub matches an alert across
runs without reading the file (a checkpoint is no text file to hash lines of).

tests/test_sarif.py validates both logs against the SARIF 2.1.0 JSON schema
and GitHub's ingestion rules (Microsoft's SARIF Multitool, `--rule-kind Sarif;Gh`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._version import __version__
from .urls import HOMEPAGE, README

if TYPE_CHECKING:
    from .lint import Finding, LintResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"

# GitHub reads `security-severity` (a number as a string, 0.0-10.0): 9.0 and up is
# "critical", 7.0 and up "high". A pickle that runs code when loaded, and a load
# that lets any pickle run code, are critical; a load that may, high.
_SEVERITY_CRITICAL = "9.3"
_SEVERITY_HIGH = "7.5"

# code -> (name, short description, full description, tags, security-severity or "")
_LINT_RULES: dict[str, tuple[str, str, str, tuple[str, ...], str]] = {
    "CKC001": (
        "TorchLoadWeightsOnlyOmitted",
        "torch.load without weights_only: behaviour depends on the torch version",
        "torch.load is called without weights_only (or with weights_only=None). torch before "
        "2.6 then unpickles with the full unpickler, which runs any code the file names; torch "
        "2.6 and later use weights_only=True, which refuses every global not allowlisted. "
        "Pass weights_only=True and allowlist the globals your checkpoints need with "
        "torch.serialization.add_safe_globals.",
        ("security", "correctness", "external/cwe/cwe-502"),
        _SEVERITY_HIGH,
    ),
    "CKC002": (
        "TorchLoadWeightsOnlyFalse",
        "torch.load(weights_only=False) runs any code the file names",
        "weights_only=False makes torch.load use Python's full unpickler: a checkpoint can "
        "run arbitrary code when loaded. Keep it only for files you trust; prefer "
        "weights_only=True with torch.serialization.add_safe_globals.",
        ("security", "external/cwe/cwe-502"),
        _SEVERITY_CRITICAL,
    ),
    "CKC003": (
        "TorchLoadWeightsOnlyNotLiteral",
        "torch.load's weights_only is not a literal: check it",
        "weights_only comes from an expression or **kwargs: when it is False at run time the "
        "full unpickler runs, and when it is None the torch version decides. Make sure it is "
        "True for files you do not trust.",
        ("security", "external/cwe/cwe-502"),
        _SEVERITY_HIGH,
    ),
    "CKC004": (
        "TorchLoadPickleModule",
        "torch.load with pickle_module bypasses the weights_only unpickler",
        "A custom pickle_module replaces torch's restricted unpickler: with weights_only "
        "omitted every torch version unpickles with it (arbitrary code), and with "
        "weights_only=True torch raises. Keep a custom pickle_module only for files you trust.",
        ("security", "external/cwe/cwe-502"),
        _SEVERITY_CRITICAL,
    ),
    "CKC005": (
        "TorchInMemoryRoundTrip",
        "In-memory round trip with weights_only omitted breaks on torch 2.6+",
        "torch.save to an io.BytesIO followed by torch.load of it copies the project's own "
        "object; the bytes never leave the process, so loading them is no risk. But torch 2.6 "
        "and later load with weights_only=True by default, which refuses the classes a whole "
        "object (an nn.Module, an optimizer) pickles. Use copy.deepcopy, or pass "
        "weights_only=False explicitly.",
        ("correctness",),
        "",
    ),
}

_SCAN_RULES: dict[str, tuple[str, str, str, tuple[str, ...], str]] = {
    "CKS001": (
        "CheckpointGlobalBlocked",
        "A global the checkpoint needs is blocked by torch.load(weights_only=True)",
        "The checkpoint names a global that the installed torch's weights_only unpickler "
        "refuses: torch.load(weights_only=True), the default from torch 2.6, fails on it. "
        "Allowlist it with torch.serialization.add_safe_globals if it is plain data (the "
        "message gives the fix), or save plain state instead.",
        ("correctness", "checkpoint"),
        "",
    ),
    "CKS002": (
        "CheckpointGlobalMissing",
        "A global the checkpoint needs does not exist in this environment",
        "The checkpoint names a module or object that does not exist here (for example "
        "numpy._core under numpy before 1.26.1): no allowlist entry can load it; the reader "
        "needs the package version the writer had.",
        ("correctness", "checkpoint"),
        "",
    ),
    "CKS003": (
        "CheckpointGlobalDangerous",
        "The checkpoint names a global that can run code",
        "The checkpoint names a global that can execute code when unpickled (os.system, "
        "eval, subprocess, ...). Loading it with weights_only=False runs that code; never "
        "allowlist it.",
        ("security", "checkpoint", "external/cwe/cwe-502"),
        _SEVERITY_CRITICAL,
    ),
    "CKS004": (
        "CheckpointNotLoadable",
        "Something no allowlist entry fixes stops torch.load(weights_only=True)",
        "The checkpoint does not load under torch.load(weights_only=True) for a reason no "
        "allowlist entry fixes (an opcode the unpickler refuses, items set on a dict subclass, "
        "a file that is no torch.save file...): the message says what.",
        ("correctness", "checkpoint"),
        "",
    ),
}

#: README sections (their GitHub anchors; tests/test_sarif.py checks they exist).
LINT_HELP_ANCHOR = "the-same-sites-statically-ckptcompat-lint"
SCAN_HELP_ANCHOR = "on-files-ckptcompat-scan"
_LINT_HELP = f"{README}#{LINT_HELP_ANCHOR}"
_SCAN_HELP = f"{README}#{SCAN_HELP_ANCHOR}"


def _rule(
    code: str, spec: tuple[str, str, str, tuple[str, ...], str], level: str, uri: str
) -> dict[str, Any]:
    name, short, full, tags, severity = spec
    properties: dict[str, Any] = {"tags": list(tags), "precision": "high"}
    if severity:
        properties["security-severity"] = severity
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": full, "markdown": f"{full}\n\n[More]({uri})"},
        "helpUri": uri,
        "defaultConfiguration": {"level": level},
        "properties": properties,
    }


def _uri(path: str, root: Path) -> dict[str, str]:
    """An artifactLocation: relative to `root` under %SRCROOT%, else an absolute file URI."""
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(rel.as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32]


def _log(
    rules: list[dict[str, Any]],
    results: list[dict[str, Any]],
    notifications: Sequence[Mapping[str, Any]],
    root: Path,
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ckptcompat",
                        "fullName": "pytest-ckptcompat (ckptcompat)",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": HOMEPAGE,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
                "invocations": [
                    {
                        "executionSuccessful": not any(
                            n["level"] == "error" for n in notifications
                        ),
                        "toolExecutionNotifications": list(notifications),
                    }
                ],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _notification(path: str, text: str, root: Path) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": _uri(path, root)}}],
    }


def lint_log(result: LintResult, root: Path | None = None) -> dict[str, Any]:
    """`ckptcompat lint --format sarif`: one result per finding."""
    from .lint import CODES

    root = (root or Path.cwd()).resolve()
    rules = [_rule(code, _LINT_RULES[code], CODES[code][0], _LINT_HELP) for code in CODES]
    index = {code: i for i, code in enumerate(CODES)}
    results = []
    seen: dict[tuple[str, str, str], int] = {}
    for f in result.findings:
        key = (os.path.abspath(f.path), f.code, f.call)
        seen[key] = seen.get(key, 0) + 1
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": f.severity,
                "message": {"text": f"{f.title} in {f.call}: {f.reason}. Fix: {f.fix}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": _uri(f.path, root),
                            "region": _region(f),
                        }
                    }
                ],
                # Stable across edits above the call: the file, the code, the call's text.
                "partialFingerprints": {
                    "ckptcompatLint/v1": _fingerprint(
                        _uri(f.path, root)["uri"], *key[1:], seen[key]
                    )
                },
            }
        )
    notes = [_notification(e.path, str(e), root) for e in result.errors]
    return _log(rules, results, notes, root)


def _region(f: Finding) -> dict[str, int]:
    region = {"startLine": f.line, "startColumn": f.col}
    if f.end_line and f.end_col:
        region |= {"endLine": f.end_line, "endColumn": f.end_col}
    return region


def scan_log(doc: Mapping[str, Any], root: Path | None = None) -> dict[str, Any]:
    """`ckptcompat scan --format sarif`, from its `ckptcompat.scan/1` document.

    One result per blocked, missing or dangerous global (a dangerous one under
    CKS003 whatever its status), and one per obstacle no allowlist fixes (CKS004);
    the file is the location. A file that cannot be read is a tool execution
    notification (and the run is not `executionSuccessful`).
    """
    root = (root or Path.cwd()).resolve()
    levels = {"CKS001": "error", "CKS002": "error", "CKS003": "error", "CKS004": "error"}
    rules = [_rule(code, _SCAN_RULES[code], levels[code], _SCAN_HELP) for code in _SCAN_RULES]
    index = {code: i for i, code in enumerate(_SCAN_RULES)}
    torch = doc.get("torch") or "?"
    results: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for file in doc.get("files", []):
        path = str(file["path"])
        if file.get("error"):
            notes.append(_notification(path, str(file["error"]), root))
            continue
        location = [
            {
                "physicalLocation": {
                    "artifactLocation": _uri(path, root),
                    # A checkpoint is binary: the whole file is the region (GitHub needs a line).
                    "region": {"startLine": 1},
                }
            }
        ]
        shown = _uri(path, root)["uri"]
        explained = False
        for g in _unique(file.get("globals", [])):
            status, dangerous = g["status"], bool(g.get("dangerous"))
            if not dangerous and status not in ("blocked", "missing"):
                continue
            explained |= status in ("blocked", "missing")
            code = "CKS003" if dangerous else "CKS001" if status == "blocked" else "CKS002"
            what = f"{g['kind'].upper()} {g['name']}" if g.get("kind") != "global" else g["name"]
            facts = [f"{status} under torch {torch}"]
            if dangerous:
                facts.insert(0, "can run code when unpickled")
            note = f" ({g['note']})" if g.get("note") else ""
            results.append(
                {
                    "ruleId": code,
                    "ruleIndex": index[code],
                    "level": "error",
                    "message": {"text": f"{path}: {what}: {', '.join(facts)}{note}"},
                    "locations": location,
                    "partialFingerprints": {
                        "ckptcompatScan/v1": _fingerprint(shown, code, g["name"])
                    },
                }
            )
        obstacles = [str(o["message"]) for o in file.get("obstacles", [])]
        if not obstacles and not explained and not file.get("loadable"):
            obstacles = [str(r) for r in file.get("reasons", [])] or ["does not load"]
        for message in obstacles:
            results.append(
                {
                    "ruleId": "CKS004",
                    "ruleIndex": index["CKS004"],
                    "level": "error",
                    "message": {"text": f"{path}: not loadable under torch {torch}: {message}"},
                    "locations": location,
                    "partialFingerprints": {
                        "ckptcompatScan/v1": _fingerprint(shown, "CKS004", message)
                    },
                }
            )
    return _log(rules, results, notes, root)


def _unique(globals_: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each (kind, name) once: a pickle names a global once per file, a zip may hold several."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for g in globals_:
        out.setdefault((str(g.get("kind")), str(g["name"])), g)
    return list(out.values())
