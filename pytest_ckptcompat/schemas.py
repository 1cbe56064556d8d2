"""The JSON documents pytest-ckptcompat writes: their schema ids and their shapes.

One `TypedDict` per document and record, so mypy checks every producer and
consumer against the same definition; README.md and docs/ describe the same
fields for people. A field is only ever added (new readers of old files get
it absent), never renamed: a change of meaning is a new schema id.

| id | written by | read by |
|---|---|---|
| `ckptcompat.scan/1` | `ckptcompat scan --json` | you |
| `ckptcompat.report/1` | `pytest --ckpt-compat-report FILE` (one reader) | `ckptcompat report` |
| `ckptcompat.matrix/1` | `ckptcompat report` (every reader) | `ckptcompat gate` |
| `ckptcompat.baseline/1` | `ckptcompat gate --write-baseline` | `ckptcompat gate --baseline` |
| `ckptcompat.lint/1` | `ckptcompat lint --json` | you |
| `ckptcompat.golden/1` | `--ckpt-compat-update` (metadata beside each golden) | `--ckpt-compat` |
| `ckptcompat.fixcheck/1` | `ckptcompat check-fix` (the snippet applied) | `ckptcompat report` |
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

SCAN: Final = "ckptcompat.scan/1"
PREDICT: Final = "ckptcompat.predict/1"
REPORT: Final = "ckptcompat.report/1"
MATRIX: Final = "ckptcompat.matrix/1"
BASELINE: Final = "ckptcompat.baseline/1"
LINT: Final = "ckptcompat.lint/1"
GOLDEN: Final = "ckptcompat.golden/1"
FIXCHECK: Final = "ckptcompat.fixcheck/1"


# --- ckptcompat.scan/1 ---------------------------------------------------------------


class _ScanGlobalRequired(TypedDict):
    name: str
    status: str
    dangerous: bool
    count: int
    kind: str


class ScanGlobal(_ScanGlobalRequired, total=False):
    """One name a file needs (`files[].globals[]`)."""

    key: str  # what torch looks the name up as, when it differs (python-2 mapping)
    note: str


class ScanObstacle(TypedDict):
    """A reason the file will not load that no allowlist fixes."""

    code: str
    message: str


class ScanFile(TypedDict):
    """The scan of one file (`files[]`)."""

    path: str
    format: str | None
    loadable: bool
    globals: list[ScanGlobal]
    obstacles: list[ScanObstacle]
    reasons: list[str]
    pickles: list[str]
    error: str | None
    notes: list[str]  # facts about how torch loads the file that do not stop it


class _ScanDocRequired(TypedDict):
    schema: str
    torch: str
    numpy: str | None
    files: list[ScanFile]


class ScanDoc(_ScanDocRequired, total=False):
    """`ckptcompat.scan/1`."""

    predicted: bool  # `scan --torch X`: judged by the rules table, X is not installed here


# --- ckptcompat.predict/1 (`scan --torch` with several releases) -------------------------


class PredictedVerdict(TypedDict):
    """What one torch release does with one file (`files[].by_torch[version]`)."""

    loadable: bool
    outcome: str  # ok, blocked, missing or error (vocab.Outcome; never mismatch)
    blocked: list[str]  # names as torch looks them up, in pickle order
    missing: list[str]  # names that exist in neither spelling under the reader's numpy
    obstacles: list[ScanObstacle]  # what no allowlist fixes
    dangerous: bool


class PredictFile(TypedDict):
    """One file judged by several torch releases (`files[]`)."""

    path: str
    format: str | None
    error: str | None
    by_torch: dict[str, PredictedVerdict]  # release -> verdict, oldest first


class PredictDoc(TypedDict):
    """`ckptcompat.predict/1`: `ckptcompat scan --torch SPEC --json` for several releases."""

    schema: str
    predicted: bool  # always true
    torch: list[str]  # the releases SPEC selected, oldest first
    numpy: str | None
    files: list[PredictFile]


# --- ckptcompat.report/1 -------------------------------------------------------------


class EnvironmentDoc(TypedDict):
    """A writer or reader environment: its tag and the versions behind it."""

    tag: str
    torch: str | None
    numpy: str | None
    python: str
    platform: str


class RecordDoc(TypedDict):
    """One (artifact, writer, reader) load and its outcome (`records[]`)."""

    artifact: str
    writer: str
    reader: str
    outcome: str
    message: str
    blocked: list[str]
    missing: list[str]
    fix: str
    test: str
    writer_env: dict[str, Any]
    kind: str  # "golden": a stored golden read here; "live": saved and loaded here now
    globals: dict[str, str]  # every name the file needs -> its status in this reader


class WrittenDoc(TypedDict):
    """A golden written by `--ckpt-compat-update` (`written[]`)."""

    artifact: str
    writer: str
    path: str
    test: str


class _StaleRequired(TypedDict):
    artifact: str
    writer: str
    path: str


class StaleDoc(_StaleRequired, total=False):
    """A golden no collected test produces (`stale[]`)."""

    deleted: list[str]  # the files --ckpt-compat-prune removed


class LoadSiteDoc(TypedDict):
    """A `torch.load` call site the runtime audit saw (`load_sites[]`)."""

    kind: str
    site: str
    project_site: str
    weights_only: str
    effective: bool
    env: dict[str, str]
    calls: int
    loadable: bool | None
    blocked: list[str]
    fix: str
    error: str
    tests: list[str]


class ReportDoc(TypedDict):
    """`ckptcompat.report/1`: one pytest run in one reader environment."""

    schema: str
    plugin: str
    created: str
    reader: EnvironmentDoc | dict[str, Any]
    records: list[RecordDoc]
    written: list[WrittenDoc]
    stale: list[StaleDoc]
    load_sites: list[LoadSiteDoc]
    allowlist: list[str]  # the project's ini allowlist in this run (ckpt_compat_safe_globals)


# --- ckptcompat.matrix/1 -------------------------------------------------------------


class MatrixReader(TypedDict):
    """A reader of the matrix and the cell report it came from."""

    tag: str
    torch: str | None
    numpy: str | None
    python: str
    platform: str
    report: str


class MatrixOutcome(TypedDict):
    """One (artifact, writer, reader) of the matrix."""

    artifact: str
    writer: str
    reader: str
    outcome: str
    blocked: list[str]
    missing: list[str]
    message: str
    test: str


class MatrixFix(TypedDict):
    """How to make one global load in every reader."""

    change: str | None
    entries: list[str]
    code: list[str]
    imports: list[str]
    notes: list[str]
    allowed_by_default_in: list[str]


class MatrixGlobal(TypedDict):
    """One global, the artifacts holding it and its status in each reader."""

    name: str
    artifacts: list[str]
    status: dict[str, str]
    fix: MatrixFix | None


class MatrixDoc(TypedDict):
    """`ckptcompat.matrix/1`: every reader's cell report, merged."""

    schema: str
    plugin: str
    created: str
    readers: list[MatrixReader]
    writers: list[str]
    artifacts: list[str]
    outcomes: list[MatrixOutcome]
    globals: list[MatrixGlobal]
    counts: dict[str, int]
    allowlist: list[str]  # the project's own allowlist, as its cells reported it
    fix: MatrixFixCheck


# --- ckptcompat.fixcheck/1 -----------------------------------------------------------


class FixCheckResult(TypedDict):
    """One golden loaded by plain torch with the snippet applied."""

    artifact: str
    writer: str
    loads: bool
    error: str


class FixCheckDoc(TypedDict):
    """`ckptcompat.fixcheck/1`: one reader, every golden, the printed snippet applied."""

    schema: str
    created: str
    reader: dict[str, Any]
    snippet_sha256: str
    results: list[FixCheckResult]


class MatrixFixCheck(TypedDict):
    """The matrix's snippet and what applying it did in each reader."""

    snippet: str  # the code (also written as safe_globals.py beside the report)
    sha256: str
    # reader -> "verified" | "failed" | "not checked" | "stale" | "no allowlist (torch < 2.4)"
    readers: dict[str, str]
    failures: list[str]  # one line per golden that should load with the fix and did not


# --- ckptcompat.baseline/1 -----------------------------------------------------------


class BaselineOutcome(TypedDict):
    """An (artifact, writer, reader) outcome the gate compares."""

    artifact: str
    writer: str
    reader: str
    outcome: str


class BaselineGlobal(TypedDict):
    """A global's status in one reader, as the gate compares it."""

    name: str
    reader: str
    status: str


class BaselineDoc(TypedDict):
    """`ckptcompat.baseline/1`: what the gate compares, sorted so it diffs well."""

    schema: str
    created: str
    outcomes: list[BaselineOutcome]
    globals: list[BaselineGlobal]


# --- ckptcompat.lint/1 ---------------------------------------------------------------


class LintFindingDoc(TypedDict):
    """One risky `torch.load` call (`findings[]`)."""

    path: str
    line: int
    col: int
    code: str
    severity: str
    title: str
    call: str
    reason: str
    fix: str


class LintProblemDoc(TypedDict):
    """A path that could not be linted (`errors[]`)."""

    path: str
    problem: str


class LintDoc(TypedDict):
    """`ckptcompat.lint/1`."""

    schema: str
    files_checked: int
    findings: list[LintFindingDoc]
    errors: list[LintProblemDoc]
