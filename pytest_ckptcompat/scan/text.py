"""Plain-text rendering of scans for people (the CLI and failure messages)."""

from __future__ import annotations

from collections.abc import Sequence

from .fixes import advise
from .rules import TorchRules
from .scanner import FileScan
from .verdict import Requirement

_ORDER = {"blocked": 0, "missing": 1, "allowed-user": 2, "allowed": 3}


def requirement_lines(reqs: Sequence[Requirement], indent: str = "  ") -> list[str]:
    """One aligned line per requirement, blocked ones first."""
    reqs = sorted(reqs, key=lambda r: (_ORDER[r.status], r.name))
    width = max((len(r.name) for r in reqs), default=0)
    lines = []
    for r in reqs:
        flags = " DANGEROUS" if r.dangerous else ""
        where = "" if r.kind == "global" else f" (checked at {r.kind.upper()})"
        note = f"  [{r.note}]" if r.note else ""
        lines.append(f"{indent}{r.status:<12} {r.name:<{width}} x{r.count}{where}{flags}{note}")
    return lines


def scan_text(
    results: Sequence[FileScan],
    rules: TorchRules,
    first_party: frozenset[str] = frozenset(),
    *,
    reader: str | None = None,
) -> str:
    """The human-readable report of `ckptcompat scan`.

    `reader` names the reader in each file's first line (default `torch <version>`).
    """
    reader = reader or f"torch {rules.version}"
    out: list[str] = []
    for res in results:
        if res.error:  # reported on stderr by the CLI
            continue
        assert res.verdict is not None
        if res.format == "safetensors" and not res.verdict.requirements and res.loadable:
            out.append(f"{res.path}: {res.notes[0] if res.notes else 'safetensors'}")
            continue
        verdict = "loadable" if res.loadable else "NOT loadable"
        danger = ", DANGEROUS (can run code)" if res.verdict.dangerous else ""
        out.append(f"{res.path}: {res.format}, {verdict} with {reader}{danger}")
        out += requirement_lines(res.verdict.requirements)
        out += [f"  {o.code}: {o.message}" for o in res.verdict.obstacles]
        out += [f"  note: {note}" for note in res.notes]
        if res.verdict.troubles or res.verdict.obstacles:
            text = advise(res.verdict, first_party)
            out += ["  " + line for line in text.splitlines()]
    return "\n".join(out)
