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
| `ckptcompat.show/1` | `ckptcompat show --json` (what a checkpoint holds) | you |
| `ckptcompat.diff/1` | `ckptcompat diff --json` (two checkpoints' keys, shapes, dtypes) | you |
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
SHOW: Final = "ckptcompat.show/1"
DIFF: Final = "ckptcompat.diff/1"


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
    skipped: dict[str, int]  # a directory scanned: files not read, by kind ("config", "other")


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
    duration: float  # seconds to load and compare it here (added later: older reports lack it)


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


class TestDoc(TypedDict):
    """One test of the run and how it went (`tests[]`; collection errors included)."""

    nodeid: str
    site: str  # path:line of the test (or of the module that failed to collect)
    outcome: str  # vocab.TestOutcome: passed, skipped, xfailed, xpassed, failed, error
    finding: bool  # it failed on a compatibility finding of ckpt_compat (check, roundtrip)
    message: str  # the failure's first line ("" when it passed)
    where: str  # path:line of the project's code the failure was raised in ("": unknown)
    duration: float  # seconds, its phases added up (added later: older reports lack it)


class RunDoc(TypedDict):
    """How the pytest run itself went (`run`)."""

    update: bool  # --ckpt-compat-update: the matrix's write phase
    compat: bool  # --ckpt-compat: the matrix's read phase
    exitstatus: int | None  # pytest's exit code (None: pytest did not get that far)
    duration: float  # seconds
    partial: bool  # deselection, -k, node ids, -x: not every test ran


class CellDoc(TypedDict):
    """What the version matrix's cell session adds to the report it keeps (`cell`)."""

    phase: str  # write, read
    problem: str  # why the phase did not run to the end ("" when it did)


class _ReportRequired(TypedDict):
    schema: str
    plugin: str
    created: str
    reader: EnvironmentDoc | dict[str, Any]
    records: list[RecordDoc]
    written: list[WrittenDoc]
    stale: list[StaleDoc]
    load_sites: list[LoadSiteDoc]
    allowlist: list[str]  # the project's ini allowlist in this run (ckpt_compat_safe_globals)
    tests: list[TestDoc]
    run: RunDoc


class ReportDoc(_ReportRequired, total=False):
    """`ckptcompat.report/1`: one pytest run in one reader environment.

    `allowlist`, `tests` and `run` were added later: reports written before lack them.
    """

    cell: CellDoc
    # The pytest rootdir relative to the git work tree it is in ("." at its top), so
    # test and call-site paths (relative to the rootdir) can be given from the repository.
    rootdir: str


# --- ckptcompat.matrix/1 -------------------------------------------------------------


class MatrixReader(TypedDict):
    """A reader of the matrix and the cell report it came from."""

    tag: str
    torch: str | None
    numpy: str | None
    python: str
    platform: str
    report: str
    rootdir: str | None  # its cell's pytest rootdir in the repository (None: not known)


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
    stale: str  # why the golden read is not from this run's write phase ("": it is)
    duration: float  # seconds the reader took to load and compare it (0: not recorded)


class MatrixNotRead(TypedDict):
    """An (artifact, writer, reader) of the grid with no outcome, and why (`not_read[]`)."""

    artifact: str
    writer: str
    reader: str
    why: str


class MatrixPhase(TypedDict):
    """One phase (write, read) of one cell (`cells[].phases`)."""

    status: str  # vocab.CellStatus
    problem: str  # why it did not run to the end, or which tests failed ("" when ok)
    exitstatus: int | None
    duration: float
    tests: dict[str, int]  # outcome -> number of tests
    report: str  # the cell report it came from ("" when none)
    log: str  # the phase's full output, when the matrix run kept it ("" otherwise)


class MatrixCell(TypedDict):
    """A cell of the matrix (an environment that writes and reads) and how its run went."""

    tag: str
    status: str  # vocab.CellStatus: the worse of its phases
    phases: dict[str, MatrixPhase]  # absent phase: its report was not given to the merge


class MatrixTest(TypedDict):
    """One test of the project in one reader (`tests[]`): the worse of its phases."""

    nodeid: str
    site: str
    reader: str
    outcome: str  # vocab.TestOutcome
    phase: str  # the phase that outcome comes from
    finding: bool  # failed on a compatibility finding (shown in the grids already)
    message: str
    where: str
    duration: float  # seconds, in the phase the outcome comes from


class MatrixLoadSite(TypedDict):
    """One `torch.load` call site in one reader, from the audit (`load_sites[]`)."""

    site: str  # path:line (inside an installed package: from its site-packages folder on)
    project_site: str  # the project's line that led there, for a site in a package
    reader: str
    state: str  # vocab.SiteState: works, at-risk, fails
    weights_only: str
    calls: int
    blocked: list[str]
    error: str  # what the real call raised
    fix: str
    tests: list[str]


class MatrixStaleGlobal(TypedDict):
    """A global only stale goldens hold: the code of this run no longer saves it."""

    name: str
    artifacts: list[str]
    writers: list[str]


class MatrixTotals(TypedDict):
    """`expected` = readers x writers x artifacts = `read` + `not_read`."""

    expected: int
    read: int
    not_read: int
    stale: int


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


class MatrixPredictedReader(TypedDict):
    """A predicted column: a torch release the matrix did not install, with a readers' numpy."""

    tag: str  # "torch2.9.1-numpy1.25.2 (predicted)"
    torch: str
    numpy: str  # "none": a reader without numpy


class MatrixPredictedOutcome(TypedDict):
    """What a predicted reader would do with one golden (`scan --torch`'s verdict)."""

    artifact: str
    writer: str
    reader: str  # a `MatrixPredictedReader` tag
    outcome: str  # ok, blocked, missing, error
    blocked: list[str]
    missing: list[str]


class MatrixDisagreement(TypedDict):
    """A real golden load whose prediction for the same reader said otherwise (our bug)."""

    artifact: str
    writer: str
    reader: str
    real: str  # the cell's outcome
    predicted: str
    real_names: list[str]  # blocked and missing, as the cell recorded them
    predicted_names: list[str]


class MatrixAgreement(TypedDict):
    """Predictions for the installed readers against their real loads."""

    checked: int  # golden loads compared
    disagreements: list[MatrixDisagreement]


class MatrixPredicted(TypedDict):
    """`predicted`: columns for the releases between the installed ones, and their agreement."""

    releases: list[str]
    readers: list[MatrixPredictedReader]
    outcomes: list[MatrixPredictedOutcome]
    agreement: MatrixAgreement
    problems: list[str]  # goldens not predicted, readers the table does not know


class _MatrixDocRequired(TypedDict):
    """The fields `merge_reports` always writes (see `MatrixDoc`)."""

    schema: str
    plugin: str
    created: str
    readers: list[MatrixReader]
    writers: list[str]
    artifacts: list[str]
    outcomes: list[MatrixOutcome]
    globals: list[MatrixGlobal]
    counts: dict[str, int]
    cells: list[MatrixCell]
    tests: list[MatrixTest]
    load_sites: list[MatrixLoadSite]
    not_read: list[MatrixNotRead]
    stale_globals: list[MatrixStaleGlobal]
    totals: MatrixTotals
    allowlist: list[str]  # the project's own allowlist, as its cells reported it
    fix: MatrixFixCheck


class MatrixDoc(_MatrixDocRequired, total=False):
    """`ckptcompat.matrix/1`: every reader's cell report, merged.

    Added after the first release (absent from older documents): `cells`,
    `tests`, `load_sites`, `not_read`, `stale_globals`, `totals`, `allowlist`,
    `fix`, `outcomes[].stale`, and `predicted` (when the report was given the
    goldens: `ckptcompat report --goldens`, or `--matrix`).
    """

    predicted: MatrixPredicted


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


class BaselineTest(TypedDict):
    """A project test's outcome in one reader, as the gate compares it."""

    nodeid: str
    site: str
    reader: str
    outcome: str  # vocab.TestOutcome, or `finding` for a failure on a compatibility finding


class BaselineLoadSite(TypedDict):
    """A `torch.load` call site's state in one reader, as the gate compares it."""

    site: str
    reader: str
    state: str


class BaselinePredicted(TypedDict):
    """A predicted load (a torch release the matrix did not install), as the gate compares it.

    Matched by torch minor and numpy: a newer rules table moves a column to a newer patch.
    """

    artifact: str
    writer: str
    reader: str  # the `MatrixPredictedReader` tag, "torch2.8.0-numpy2.2.6 (predicted)"
    torch: str
    numpy: str  # "none": a reader without numpy
    outcome: str  # ok, blocked, missing, error


class _BaselineRequired(TypedDict):
    schema: str
    created: str
    outcomes: list[BaselineOutcome]
    globals: list[BaselineGlobal]


class BaselineDoc(_BaselineRequired, total=False):
    """`ckptcompat.baseline/1`: what the gate compares, sorted so it diffs well.

    `tests`, `load_sites` and `predicted` were added later: a baseline without
    them is not compared on them (the gate says so). `predicted` is absent too
    when the matrix it was written from had no predicted columns.
    """

    tests: list[BaselineTest]
    load_sites: list[BaselineLoadSite]
    predicted: list[BaselinePredicted]


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


# --- ckptcompat.scan/1, fields added later ---------------------------------------------


# --- ckptcompat.show/1 ---------------------------------------------------------------


class _ShowEntryRequired(TypedDict):
    path: str  # `state_dict.fc.weight`, `optimizer.param_groups[0].lr`; '' for the root
    key: str  # its name in its parent: `fc.weight`, `[0]`, `.lr`
    depth: int
    kind: str  # tensor, mapping, sequence, set, object, array, value, ref
    type: str  # `torch.Tensor`, `collections.OrderedDict`, `builtins.int`, ...


class ShowEntry(_ShowEntryRequired, total=False):
    """One node of the tree (`files[].entries[]`), depth first; fields by kind."""

    dtype: str | None  # tensor, array: torch's dtype name (`float32`), numpy's for arrays
    shape: list[int] | None  # tensor, array
    numel: int | None  # tensor
    bytes: int | None  # tensor: numel x element size
    storage: str | None  # tensor: its storage's key (torch files)
    offset: int | None  # tensor: its offset into the storage, in elements
    layout: str  # tensor, when not strided: sparse, quantized, meta, nested, ...
    device: str  # tensor: the location torch.save recorded (`cpu`, `cuda:0`)
    requires_grad: bool  # tensor, when recorded as True
    length: int  # mapping, sequence, set: how many items
    value: str  # value (and constant sequences, sets, objects): a short rendering
    same_as: str  # ref: the path where this very object was shown first
    dangerous: str  # object: made by a global that can run code, and why
    truncated: bool  # nested deeper than the depth limit: children not shown


class ShowDtype(TypedDict):
    """Totals of one dtype (`files[].dtypes[]`)."""

    dtype: str
    tensors: int
    numel: int
    bytes: int  # each tensor's numel x element size


class ShowShared(TypedDict):
    """A storage more than one tensor entry uses (`files[].shared[]`)."""

    storage: str
    dtype: str
    bytes: int | None
    tensors: list[str]  # paths


class ShowGlobal(TypedDict):
    """A global named anywhere in the file (`files[].globals[]`)."""

    name: str
    count: int
    dangerous: bool
    why: str  # why it can run code; empty when it cannot


class ShowFile(TypedDict):
    """What one file holds (`files[]`)."""

    path: str
    format: str | None
    error: str | None
    tensors: int
    storages: int  # distinct storages (torch) or tensors (safetensors)
    numel: int
    bytes: int  # tensor data in the file: each storage once
    dtypes: list[ShowDtype]
    entries: list[ShowEntry]
    shared: list[ShowShared]
    globals: list[ShowGlobal]
    threats: list[str]  # code run at load that no dangerous global names (the scan's finding)
    metadata: dict[str, str] | None  # a safetensors file's `__metadata__`
    pickles: list[str]
    problems: list[str]  # what torch.load / safetensors would refuse
    notes: list[str]


class ShowDoc(TypedDict):
    """`ckptcompat.show/1`."""

    schema: str
    files: list[ShowFile]


# --- ckptcompat.diff/1 ---------------------------------------------------------------


class DiffSide(TypedDict):
    """One side of a diff (`a`, `b`)."""

    path: str
    format: str  # a file's format, or `directory`
    files: list[str]  # the files read (several for a directory of shards)
    key: str | None  # where the state dict was found (`state_dict`), None for the root
    tensors: int
    notes: list[str]


class DiffShape(TypedDict):
    """A key whose shape differs (`shape[]`)."""

    key: str
    a: list[int] | None
    b: list[int] | None


class DiffDtype(TypedDict):
    """A key whose dtype differs (`dtype[]`)."""

    key: str
    a: str
    b: str


class DiffSharing(TypedDict):
    """Keys that share one storage on one side and not on the other (`sharing[]`)."""

    keys: list[str]
    shared_in: str  # "a" or "b"


class DiffKind(TypedDict):
    """A key that is a tensor on one side only (`not_tensor[]`)."""

    key: str
    a: str  # the type on each side
    b: str


class DiffValues(TypedDict):
    """A key whose values differ (`values[]`, with --values)."""

    key: str
    differ: int  # elements that differ (no tensor: the differences `deep_diff` counted)
    numel: int  # 0 for an entry that is no tensor
    first: list[int]  # the index of the first one
    a: str
    b: str
    max_abs_diff: float | None
    tensor: bool  # False: an entry that is no tensor (`_extra_state`, a step count)
    at: str  # in such an entry, where its first difference is; "" for a tensor


class DiffDoc(TypedDict):
    """`ckptcompat.diff/1`: B read as a checkpoint loaded into a model shaped like A."""

    schema: str
    a: DiffSide
    b: DiffSide
    same: bool
    summary: str  # the one line: `2 missing, 1 unexpected, 1 shape, 62 dtype fp32->fp16`
    counts: dict[str, int]
    compared: int  # keys that are tensors on both sides
    missing: list[str]  # in A, not in B (load_state_dict: "Missing key(s) in state_dict")
    unexpected: list[str]  # in B, not in A ("Unexpected key(s) in state_dict")
    shape: list[DiffShape]
    dtype: list[DiffDtype]
    sharing: list[DiffSharing]
    not_tensor: list[DiffKind]
    values: list[DiffValues] | None  # None when values were not compared
    messages: list[str]  # load_state_dict(strict=True)'s lines
