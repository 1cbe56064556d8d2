"""`scan_file`: which globals a checkpoint needs and whether it loads here, without loading it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import CkptCompatError, PickleFormatError, UnreadableCheckpointError
from ..schemas import ScanFile, ScanGlobal
from .allowlist import Allowlist
from .container import Checkpoint, PickleBlob, checkpoint_from_bytes, open_checkpoint
from .fastpath import analyze_fast
from .machine import PickleFacts, TypeResolver, analyze
from .names import all_importable
from .rules import TorchRules
from .safetensors import Header
from .storages import RecordProblem, extent_problems, location_problem, record_problems
from .verdict import Obstacle, Requirement, Verdict


@dataclass
class FileScan:
    """The scan of one file: its verdict under one torch, or why it could not be read."""

    path: str
    format: str | None = None
    verdict: Verdict | None = None
    pickles: list[str] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # facts about loading that are no obstacle

    @property
    def loadable(self) -> bool:
        """True when torch.load(weights_only=True) would succeed here."""
        return self.verdict is not None and self.verdict.loadable

    def reasons(self) -> list[str]:
        """Why it does not load, one line each (empty when it does)."""
        if self.error:
            return [self.error]
        assert self.verdict is not None
        out = [
            f"blocked global {r.name}"
            for r in self.verdict.requirements
            if r.kind == "global" and r.status == "blocked"
        ]
        out += [
            f"missing global {r.name}: {r.note}"
            for r in self.verdict.requirements
            if r.status == "missing"
        ]
        out += [
            f"blocked at {r.kind.upper()}: {r.name}"
            for r in self.verdict.requirements
            if r.kind != "global" and r.status == "blocked"
        ]
        out += [o.message for o in self.verdict.obstacles]
        return out

    def to_json(self) -> ScanFile:
        """The `files[]` record of the `ckptcompat.scan/1` schema."""
        reqs = self.verdict.requirements if self.verdict else ()
        return {
            "path": self.path,
            "format": self.format,
            "loadable": self.loadable,
            "globals": [_global_json(r) for r in reqs],
            "obstacles": [
                {"code": o.code, "message": o.message}
                for o in (self.verdict.obstacles if self.verdict else ())
            ],
            "reasons": self.reasons() if not self.loadable else [],
            "pickles": self.pickles,
            "error": self.error,
            "notes": self.notes,
        }


def _global_json(r: Requirement) -> ScanGlobal:
    out: ScanGlobal = {
        "name": r.name,
        "status": r.status,
        "dangerous": r.dangerous,
        "count": r.count,
        "kind": r.kind,
    }
    if r.key:
        out["key"] = r.key
    if r.note:
        out["note"] = r.note
    return out


def walk_for(
    blob: PickleBlob,
    supported: frozenset[int],
    types: TypeResolver,
    track: frozenset[int] = frozenset(),
) -> PickleFacts:
    """The facts of one pickle for readers that together support the opcodes `supported`.

    The fast path consumes only opcodes in `supported` and records the first
    offset of each one in `track` (those some of the readers lack), so its
    facts hold for each reader; any other opcode sends the pickle to the
    exact machine, which records every opcode for each torch to judge.
    """
    if blob.facts is not None:
        return blob.facts
    facts = analyze_fast(blob.data, blob.start, supported=supported, types=types, track=track)
    if facts is None:
        facts = analyze(blob.data, blob.start, types=types)
    return facts


#: How `_judge` walks a pickle (`_Walks`: each pickle once, however many torches judge it).
Walker = Callable[[PickleBlob], PickleFacts]


def scan_file(
    path: str | os.PathLike[str],
    rules: TorchRules,
    allowlist: Allowlist | None = None,
    *,
    types: TypeResolver | None = None,
) -> FileScan:
    """Scan one checkpoint file; never raises for a bad file (see `FileScan.error`)."""
    return _scan(os.fspath(path), lambda: open_checkpoint(path), rules, allowlist, types)


def scan_bytes(
    data: bytes,
    rules: TorchRules,
    allowlist: Allowlist | None = None,
    *,
    shown: str = "<torch.save output>",
    types: TypeResolver | None = None,
) -> FileScan:
    """`scan_file` for checkpoint bytes held in memory (a golden, a `torch.save` buffer)."""
    return _scan(shown, lambda: checkpoint_from_bytes(data, shown), rules, allowlist, types)


def scan_checkpoint(
    ckpt: Checkpoint, rules: TorchRules, allowlist: Allowlist | None = None
) -> FileScan:
    """`scan_file` for a checkpoint already opened (`container.open_checkpoint`)."""
    return _scan(ckpt.path, lambda: ckpt, rules, allowlist, None)


def _scan(
    shown: str,
    opener: Callable[[], Checkpoint],
    rules: TorchRules,
    allowlist: Allowlist | None,
    types: TypeResolver | None,
) -> FileScan:
    return scan_for(shown, opener, [rules], allowlist, types)[0]


def scan_for(
    shown: str,
    opener: Callable[[], Checkpoint],
    readers: Sequence[TorchRules],
    allowlist: Allowlist | None = None,
    types: TypeResolver | None = None,
) -> list[FileScan]:
    """One checkpoint judged by several torches: opened once, each pickle walked once.

    `opener` returns the checkpoint (`open_checkpoint(path)` or
    `checkpoint_from_bytes(data)`); the result has one `FileScan` per reader,
    in order, each exactly what `scan_file` with that reader's rules returns.
    """
    allowlist = allowlist or Allowlist()
    types = types or TypeResolver()
    try:
        ckpt = opener()
    except UnreadableCheckpointError as exc:
        return [FileScan(shown, error=str(exc)) for _ in readers]
    walker = _Walks([r.supported_opcodes for r in readers], types)
    records: dict[int, list[RecordProblem]] = {}  # the same for every reader: found once
    out = []
    for rules in readers:
        try:
            out.append(_judge(ckpt, rules, allowlist, types, walker, records))
        except UnreadableCheckpointError as exc:
            out.append(FileScan(shown, error=str(exc)))
        except CkptCompatError as exc:  # pragma: no cover - defensive: every error names the file
            out.append(FileScan(shown, error=f"{shown}: {exc}"))
    return out


class _Walks:
    """Each pickle of a checkpoint walked once, for readers supporting the opcode sets given."""

    def __init__(self, supported: Sequence[frozenset[int]], types: TypeResolver) -> None:
        self.supported = frozenset.union(*supported)
        self.track = self.supported - frozenset.intersection(*supported)
        self.types = types
        # Keyed on the blob's buffer (kept alive by the checkpoint) and start.
        self.done: dict[tuple[int, int, str], PickleFacts | PickleFormatError] = {}

    def __call__(self, blob: PickleBlob) -> PickleFacts:
        key = (id(blob.data), blob.start, blob.member)
        if key not in self.done:
            try:
                self.done[key] = walk_for(blob, self.supported, self.types, self.track)
            except PickleFormatError as exc:
                self.done[key] = exc
        found = self.done[key]
        if isinstance(found, PickleFormatError):
            raise PickleFormatError(str(found), partial=found.partial)
        return found


def _judge(
    ckpt: Checkpoint,
    rules: TorchRules,
    allowlist: Allowlist,
    types: TypeResolver,
    walker: Walker,
    records: dict[int, list[RecordProblem]],
) -> FileScan:
    requirements: dict[str, Requirement] = {}
    obstacles: list[Obstacle] = [
        Obstacle("format", p)
        for p in ckpt.problems
        if rules.release >= ckpt.since.get(p, (0, 0))  # a problem of later torches only
    ]
    notes: list[str] = []
    torchscript = ckpt.format == "torchscript"
    if torchscript:
        # torch.load hands a TorchScript archive to torch.jit.load: the
        # weights_only unpickler never reads it, on any torch.
        # Its advice (torch.jit.load) holds only for an archive that runs no code of
        # its own while loading; for one that does, the only advice is not to load it.
        how = _JIT_LOAD_RUNS_CODE if ckpt.load_code else _JIT_LOAD
        if rules.refuses_torchscript:
            obstacles.append(Obstacle("torchscript", _TORCHSCRIPT.format(rules.version, how)))
        else:
            notes.append(_TORCHSCRIPT_OLD.format(rules.version, how))
    if ckpt.header is not None:
        notes.append(safetensors_note(ckpt.header))
    errors = list(ckpt.errors)
    members: list[str] = []
    queue = list(ckpt.pickles)
    while queue:
        blob = queue.pop(0)
        malformed = None
        try:
            facts = walker(blob)
            if blob.optional and not _plausible(facts):
                continue  # text that happens to parse (`class X:` starts with GLOBAL)
        except PickleFormatError as exc:
            partial = exc.partial if isinstance(exc.partial, PickleFacts) else None
            # A real unpickler runs everything before the bad byte: what it
            # would have called there is reported, whatever comes after.
            if partial is None or not _names_danger(partial, rules) or not _plausible(partial):
                if not blob.optional:  # else: a member that is not a pickle after all
                    where = blob.member
                    if ckpt.format == "torch-legacy":
                        where = f"legacy torch file, {blob.member} pickle"
                    errors.append(f"{where}: {exc}")
                continue
            facts, malformed = partial, str(exc)
        members.append(blob.member)
        # torch reads the main pickle (all five of a legacy file); the others
        # (other members, nested archives, pickles appended after a STOP)
        # matter for what they would run, not for loading.
        counts = (blob.main or ckpt.format == "torch-legacy") and not torchscript
        missing = {**allowlist.missing, **types.missing(facts)}
        judged = _add_requirements(requirements, facts, blob, counts, rules, allowlist, missing)
        if malformed is not None:
            obstacles.append(
                Obstacle(
                    "malformed",
                    f"{blob.member}: {malformed}; an unpickler runs everything before that byte",
                )
            )
        elif counts:
            obstacles.extend(judged.obstacles)
            if blob.main and ckpt.format == "torch-zip":
                _judge_records(ckpt, facts, rules, obstacles, notes, records)
            # Where torch puts the storages: a zip's main pickle, a legacy file's pickles.
            # A torch build labelled +cpu has no device backend; a table release may be any.
            obstacle, note = location_problem(facts.locations, rules.version.endswith("+cpu"))
            if obstacle:
                obstacles.append(Obstacle("location", obstacle))
            if note:
                notes.append(note)
        if malformed is None and blob.facts is None and facts.end < len(blob.data):
            queue.append(blob.appended(facts.end))
    if torchscript:  # the archive's own TorchScript helpers, resolved by torch.jit.load
        requirements = {
            k: r for k, r in requirements.items() if not r.name.startswith(_TORCHSCRIPT_OWN)
        }
        for member in ckpt.load_code:
            name = f"TorchScript __setstate__ in {member}"
            requirements[name] = Requirement(
                name, "build", "blocked", True, 1, False, _LOAD_TIME_CODE
            )
    verdict = Verdict(tuple(requirements.values()), tuple(obstacles))
    if errors:
        # Unreadable, unless something that could be read runs code: that is
        # reported whatever else is wrong with the file.
        if not verdict.dangerous:
            raise UnreadableCheckpointError(ckpt.path, errors[0])
        more = tuple(Obstacle("unreadable", e) for e in errors)
        verdict = Verdict(verdict.requirements, verdict.obstacles + more)
    if rules.provenance and ckpt.format != "safetensors":
        # Rules that only approximate this torch (a local or dev build) say so on every
        # file they judge (torch.load never reads a safetensors file).
        notes.append(rules.provenance)
    return FileScan(ckpt.path, ckpt.format, verdict, members, notes=notes)


def _judge_records(
    ckpt: Checkpoint,
    facts: PickleFacts,
    rules: TorchRules,
    obstacles: list[Obstacle],
    notes: list[str],
    cache: dict[int, list[RecordProblem]],
) -> None:
    """The storage records and tensor geometry of the main pickle, judged for `rules`' torch."""
    if ckpt.archive is None or ckpt.layout is None:
        return
    if id(facts) not in cache:
        cache[id(facts)] = record_problems(
            ckpt.archive, ckpt.layout.prefix, facts.storages
        ) + extent_problems(facts.storages, facts.tensors)
    for problem in cache[id(facts)]:
        if rules.release >= problem.since:
            obstacles.append(Obstacle("records", problem.message))
        elif problem.before:
            notes.append(problem.before)
    unread = facts.unread_storages + facts.unread_tensors
    if unread:
        notes.append(
            f"{unread:,} storage reference(s) or tensor(s) the scan could not read statically: "
            "their records and shapes are not checked"
        )


_LOAD_TIME_CODE = (
    "the archive's own code, run while it loads: torch.jit.load calls it, and torch <= 2.5 "
    "calls torch.jit.load even under weights_only=True (CVE-2025-32434)"
)


def safetensors_note(header: Header) -> str:
    """What a valid safetensors file is to a scan: no pickle, nothing torch.load would run."""
    count = len(header.tensors)
    return (
        f"{SAFETENSORS_NOTE} ({count} tensor{'s' if count != 1 else ''}, header valid; "
        "not a torch.load file)"
    )


SAFETENSORS_NOTE = "safetensors: no pickle, loads with safetensors"
# Names a TorchScript archive's pickles hold for torch.jit.load's own unpickler.
_TORCHSCRIPT_OWN = ("__torch__.", "torch.jit._pickle.")
_TORCHSCRIPT = "a TorchScript archive: torch {} refuses torch.load(weights_only=True) on it; {}"
_TORCHSCRIPT_OLD = (
    "a TorchScript archive: torch {}'s torch.load hands it to torch.jit.load whatever "
    "weights_only says, so the weights_only unpickler never checks it (torch >= 2.6 refuses "
    "it); {}"
)
_JIT_LOAD = (
    "load it with torch.jit.load (which runs the model's TorchScript code: trust its source)"
)
_JIT_LOAD_RUNS_CODE = (
    "its own code runs while it loads, under torch.load and torch.jit.load alike: do not load "
    "it unless you trust its source"
)


def _add_requirements(
    requirements: dict[str, Requirement],
    facts: PickleFacts,
    blob: PickleBlob,
    counts: bool,
    rules: TorchRules,
    allowlist: Allowlist,
    missing: dict[str, str],
) -> Verdict:
    """Merge the requirements of one pickle into `requirements`; its own verdict."""
    verdict = rules.judge(facts, allowlist.keys, allowlist.types, missing)
    for req in verdict.requirements:
        if not counts and not req.allowed:
            if not req.dangerous:
                continue
            req = dataclasses.replace(
                req,
                status="blocked",
                note=f"in {blob.member}, which torch.load does not read; "
                "a file that carries code is never called loadable",
            )
        prev = requirements.get(req.name)
        if prev is None:
            requirements[req.name] = req
        else:
            requirements[req.name] = dataclasses.replace(prev, count=prev.count + req.count)
    return verdict


def _plausible(facts: PickleFacts) -> bool:
    """Whether a member that only might be a pickle reads like one: every global importable."""
    return all_importable((ref.module, ref.attr) for ref in facts.globals.values())


def _names_danger(facts: PickleFacts, rules: TorchRules) -> bool:
    return rules.judge(facts).dangerous
