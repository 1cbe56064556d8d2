"""The outcome of one (artifact, writer, reader): load it here, for real, and say what happened.

Outcomes (DESIGN.md vocabulary):

- `ok`: loads under `weights_only=True` here and compares equal;
- `blocked`: this torch's unpickler refuses a global (allowlisting would fix it);
- `missing`: a global the file names does not exist here (e.g. `numpy._core`
  under numpy < 1.26.1), so nothing can be allowlisted under that name;
- `mismatch`: loads, but differs from what the code produces now;
- `error`: corrupt, modified since written, or unreadable.

The truth is torch's own `torch.load`; the static scan of the same bytes
names *every* blocked global (torch names one) and tells blocked from missing.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import torchcompat
from .compare import ANY_DEVICE, deep_diff, format_mismatches, state_dict_findings
from .scan.allowlist import Allowlist
from .scan.fixes import advise
from .scan.names import is_numpy_dtype_class
from .scan.rules import TorchRules
from .scan.verdict import Verdict
from .schemas import RecordDoc
from .vocab import Outcome

Compare = str | Callable[[Any, Any], object]


@dataclass(frozen=True)
class LoadResult:
    """What loading one file here under `weights_only=True` came to."""

    outcome: Outcome
    message: str = ""
    blocked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    fix: str = ""
    globals: dict[str, str] = field(default_factory=dict)


@dataclass
class Record:
    """One (artifact, writer, reader) and what happened: a row of the run report."""

    artifact: str
    writer: str
    reader: str
    outcome: Outcome
    message: str = ""
    blocked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    fix: str = ""
    test: str = ""
    writer_env: dict[str, Any] = field(default_factory=dict)
    kind: str = "golden"
    # Every name the file needs and its status in this reader: allowed,
    # allowed-user, blocked or missing (what the matrix's global table shows).
    globals: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0  # seconds to load and compare it here

    def to_json(self) -> RecordDoc:
        """The record as it stands in `ckptcompat.report/1`."""
        return asdict(self)  # type: ignore[return-value]  # the fields are RecordDoc's


def load_outcome(
    data: bytes,
    expected: object,
    *,
    rules: TorchRules,
    allowlist: Allowlist,
    compare: Compare = "equal",
    first_party: frozenset[str] = frozenset(),
    same_devices: bool = True,
) -> LoadResult:
    """Load `data` here under weights_only=True and classify it against `expected`.

    Tensors load where a user's `torch.load` puts them (`load_here`). With
    `same_devices` (this environment's own save) each must come back on the
    device it was saved from (or the CPU, where that device is missing here);
    without it (another writer's golden, saved on that writer's hardware) the
    device is not compared, the values are.
    """
    from .scan.scanner import scan_bytes

    scan = scan_bytes(data, rules, allowlist, shown="golden")
    if scan.verdict is None:  # a corrupt golden is an outcome, not a crash
        return LoadResult("error", f"unreadable checkpoint: {scan.error}")
    verdict = for_load_here(scan.verdict)
    try:
        loaded, mapped = load_here(data, allowlist)
    except Exception as exc:  # any failure of torch.load is the finding
        return _classify_failure(exc, verdict, rules, first_party)
    # It loaded, so torch allowed every name, whatever the scan predicted.
    statuses: dict[str, str] = {
        r.lookup: r.status if r.allowed else "allowed" for r in verdict.requirements
    }
    devices = mapped if same_devices else {ANY_DEVICE: ANY_DEVICE}
    problem = _compare(expected, loaded, compare, devices)
    if problem and (note := devices_note(mapped)):
        problem = f"{problem}\n({note})"
    return LoadResult("mismatch" if problem else "ok", problem, globals=statuses)


def safetensors_outcome(data: bytes, expected: object, compare: Compare = "equal") -> LoadResult:
    """Load safetensors bytes here (header checked first) and classify them against `expected`.

    Nothing can be blocked or missing (there is no pickle): `ok`, `mismatch`,
    or `error` when the header is invalid or this safetensors / torch cannot
    read it (a dtype it does not know).
    """
    from .errors import UnreadableCheckpointError
    from .safetensors_io import load
    from .scan.safetensors import read_header

    try:
        read_header(data, "golden")
    except UnreadableCheckpointError as exc:
        return LoadResult("error", f"unreadable safetensors file: {exc}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = load(data)
    except Exception as exc:  # this reader's safetensors or torch refusing is the finding
        return LoadResult("error", f"safetensors cannot load it here: {type(exc).__name__}: {exc}")
    problem = _compare(expected, loaded, compare)
    return LoadResult("mismatch" if problem else "ok", problem)


def for_load_here(verdict: Verdict) -> Verdict:
    """The scan's verdict for `load_here`: where the storages were saved is no obstacle.

    `load_here` puts a storage on the CPU when its device is missing here.
    """
    return Verdict(
        verdict.requirements, tuple(o for o in verdict.obstacles if o.code != "location")
    )


def load_here(data: bytes, allowlist: Allowlist) -> tuple[Any, dict[str, str]]:
    """Load as a user does here: tensors on the device they were saved from, where it exists.

    A tensor saved on a device this machine does not have (`cuda:0` on a CPU-only
    runner) is loaded on the CPU, as `map_location="cpu"` does; the second value
    says which devices were so mapped (`{"cuda:0": "cpu"}`, empty when none).
    """
    import torch
    import torch.serialization as ts

    mapped: dict[str, str] = {}
    default: Any = ts.default_restore_location

    def restore(storage: Any, location: str) -> Any:
        try:
            return default(storage, location)
        except RuntimeError:  # no such device here (torch's own "use map_location" error)
            mapped[location] = "cpu"
            return storage  # torch deserialized it on the CPU

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # protocol and numpy deprecation noise
        with torchcompat.safe_globals(allowlist.entries):
            loaded = torch.load(io.BytesIO(data), weights_only=True, map_location=restore)
    return loaded, mapped


def devices_note(mapped: dict[str, str]) -> str:
    """What `load_here` did with devices, for a message ("" when it kept every one)."""
    if not mapped:
        return ""
    saved = ", ".join(sorted(mapped))
    return (
        f"saved on {saved}, which this machine does not have: loaded with "
        "map_location='cpu' and compared on the CPU"
    )


def _classify_failure(
    exc: BaseException, verdict: Verdict, rules: TorchRules, first_party: frozenset[str]
) -> LoadResult:
    message = torch_says(exc)
    blocked_reqs = verdict.troubles
    missing = [r.lookup for r in blocked_reqs if r.kind == "global" and not _exists_here(r.lookup)]
    blocked = [r.lookup for r in blocked_reqs if r.lookup not in missing]
    if isinstance(exc, (ModuleNotFoundError, AttributeError)) and not missing:
        missing = [str(getattr(exc, "name", "") or exc)]
    fix = advise(verdict, first_party) if blocked_reqs else ""
    statuses: dict[str, str] = {r.lookup: r.status for r in verdict.requirements}
    statuses |= dict.fromkeys(blocked, "blocked") | dict.fromkeys(missing, "missing")
    if missing:
        return LoadResult("missing", message, blocked, missing, fix, statuses)
    if blocked:
        return LoadResult("blocked", message, blocked, [], fix, statuses)
    obstacles = "; ".join(o.message for o in verdict.obstacles)
    message += f" ({obstacles})" if obstacles else ""
    return LoadResult("error", message, globals=statuses)


def torch_says(exc: BaseException) -> str:
    """torch.load's exception as one line: the useful sentence, without the boilerplate.

    torch wraps it in text whose shape changed in 2.4, 2.5, 2.6, 2.7 and 2.9
    (ANSI bold, "WeightsUnpickler error:", a docs link); its own fix hint names
    the bare object, so it is dropped: the fix printed with it is complete.
    """
    text = " ".join(str(exc).replace("\x1b[1m", "").replace("\x1b[0m", "").split())
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    text = text.split(" Check the documentation")[0]
    text = text.split(" Please use `torch.serialization")[0]
    return f"{type(exc).__name__}: {text[:400]}"


def _exists_here(name: str) -> bool:
    """Whether `module.name` names something in this environment, spelled exactly so.

    The name comes from the file, so nothing is imported for it: importing a
    module runs its code, and a golden that names `antigravity.x` (or any
    module on the path) must not make us run it. Modules already imported
    are looked at; others are only looked up (`find_spec`, which reads the
    file system), and a module that exists but is not imported yet counts as
    existing: "blocked" rather than "missing".
    """
    if is_numpy_dtype_class(name) or "." not in name:
        return True  # dtype classes are named by this numpy itself
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:i]))
        if module is None:
            continue
        obj: object = module
        for depth, attr in enumerate(parts[i:], start=i):
            found = _attribute(obj, attr)
            if found is _ABSENT:
                # A submodule that is not imported yet is no attribute either.
                return depth < len(parts) - 1 and _findable(".".join(parts[: depth + 1]))
            obj = found
        return True
    return _findable(parts[0])


_ABSENT = object()


def _attribute(obj: object, attr: str) -> object:
    """`getattr` of an imported module's attribute, `_ABSENT` when there is none.

    A module's `__getattr__` (numpy's for `numpy.core`) may warn or raise
    anything; the module is already imported, so its own code is trusted.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return getattr(obj, attr)
        except Exception:  # whatever a module __getattr__ raises: not there
            return _ABSENT


def _findable(module: str) -> bool:
    """`find_spec` without importing anything: only when the parent package is imported."""
    parent = module.rpartition(".")[0]
    if parent and parent not in sys.modules:
        return True  # finding it would import the parent: assume it exists
    try:
        return importlib.util.find_spec(module) is not None
    except Exception:  # a hostile name ("", NUL bytes, ...) names nothing
        return False


def _compare(
    expected: object, loaded: object, compare: Compare, devices: dict[str, str] | None = None
) -> str:
    if callable(compare):
        try:
            verdict = compare(expected, loaded)
        except AssertionError as exc:
            return f"compare callable failed: {exc}"
        return "" if verdict is None or verdict else "compare callable returned False"
    lines, covered = state_dict_findings(expected, loaded)
    mismatches = deep_diff(
        expected, loaded, structure=compare == "structure", covered=covered, devices=devices
    )
    if not mismatches and not mismatches.total and not lines:
        return ""
    text = format_mismatches(mismatches)
    return "\n".join([*lines, text]) if text else "\n".join(lines)
