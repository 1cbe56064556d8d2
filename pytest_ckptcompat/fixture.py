"""`CkptCompat`, the object behind the `ckpt_compat` fixture (imports torch lazily)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable
from typing import Any

import pytest

from .errors import CkptCompatError, SafeGlobalError
from .options import MARKER, SAFE_GLOBALS_INI
from .outcomes import (
    Compare,
    Record,
    devices_note,
    for_load_here,
    load_here,
    load_outcome,
    safetensors_outcome,
    torch_says,
)
from .project_config import first_party_packages
from .runstate import claims_dir, golden_root, run_state
from .scan.allowlist import Allowlist, parse_entries, parse_entry, spellings, torch_key
from .scan.rules import TorchRules
from .scan.verdict import Verdict
from .testlog import fail_finding

_RULES_KEY = pytest.StashKey[TorchRules]()


class CkptCompat:
    """Roundtrips objects through `torch.save` / `torch.load(weights_only=True)`."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        config = request.config
        marker = request.node.get_closest_marker(MARKER)
        self._marker_safe, self.expect_blocked = _parse_marker(marker)
        self._ini_safe = parse_entries(config.getini(SAFE_GLOBALS_INI), f"ini {SAFE_GLOBALS_INI}")
        run_state(config).allowlist = self._ini_safe
        self._first_party = first_party_packages(config.rootpath)

    def rules(self) -> TorchRules:
        """The installed torch's rules, read once per session (its own registrations read fresh)."""
        stash = self._request.config.stash
        if _RULES_KEY not in stash:
            stash[_RULES_KEY] = TorchRules.from_installed()
        import dataclasses

        from torch import _weights_only_unpickler as wou

        user = getattr(wou, "_get_user_allowed_globals", None)
        return dataclasses.replace(
            stash[_RULES_KEY], preregistered=frozenset(user()) if user else frozenset()
        )

    def roundtrip(
        self, obj: Any, *, safe_globals: Iterable[Any] = (), format: str = "torch"
    ) -> Any:
        """Save `obj`, load it with `weights_only=True`, compare, and return what loaded.

        `safe_globals` entries are `"module.name"` strings, objects, or
        `(obj, "module.name")` pairs, added to the ini and marker allowlists.
        `format="safetensors"`: save a state dict with safetensors' `save` (an
        `nn.Module` with `save_model`, which keeps tied weights tied), check
        the header as `ckptcompat scan` does, load it back with safetensors
        and compare; returns the loaded tensors (a loaded copy of the module).
        """
        __tracebackhide__ = True
        if _format(format, "ckpt_compat.roundtrip") == "safetensors":
            return self._roundtrip_safetensors(obj)
        import torch

        from .compare import deep_diff, format_mismatches

        rules = self.rules()
        allowlist = self._allowlist(safe_globals, rules)
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        data = buffer.getvalue()
        verdict = _verdict(data, rules, allowlist)
        loaded: Any = None
        mapped: dict[str, str] = {}
        error: BaseException | None = None
        try:
            loaded, mapped = load_here(data, allowlist)
        except Exception as exc:  # any failure of torch.load is the finding
            error = exc

        if self.expect_blocked:
            self._check_expected_blocked(verdict, error)
        if error is not None:
            fail_finding(self._blocked_message(obj, verdict, error, rules), pytrace=False)
        mismatches = deep_diff(obj, loaded, devices=mapped)
        if mismatches:
            note = devices_note(mapped) or "tensors loaded on the devices they were saved from"
            fail_finding(
                "ckpt_compat.roundtrip: loads under weights_only=True, but differs from what "
                f"was saved ({note}):\n{format_mismatches(mismatches)}",
                pytrace=False,
            )
        return loaded

    def _roundtrip_safetensors(self, obj: Any) -> Any:
        __tracebackhide__ = True
        import torch

        from . import safetensors_io as sio
        from .compare import deep_diff, format_mismatches
        from .errors import UnreadableCheckpointError
        from .scan.safetensors import read_header

        where = "ckpt_compat.roundtrip(format='safetensors')"
        if self.expect_blocked:
            pytest.fail(
                f"{where}: @pytest.mark.ckpt_compat(expect_blocked=[...]) lists "
                f"{', '.join(self.expect_blocked)}, but a safetensors file holds no pickle: "
                "nothing in it is ever blocked",
                pytrace=False,
            )
        try:
            saved = sio.save(obj)
        except sio.SafetensorsError as exc:
            pytest.fail(f"{where}: {exc}", pytrace=False)
        try:
            read_header(saved.data, "the safetensors output")
        except UnreadableCheckpointError as exc:  # pragma: no cover - safetensors wrote it
            pytest.fail(f"{where}: {exc}", pytrace=False)
        try:
            loaded = sio.load(saved.data)
        except Exception as exc:  # safetensors refusing its own output is the finding
            fail_finding(
                f"{where}: safetensors cannot load what it wrote: {type(exc).__name__}: {exc}",
                pytrace=False,
            )
        mismatches = deep_diff(saved.expected, loaded)
        if mismatches:
            fail_finding(
                f"{where}: loads, but differs from what was saved:\n"
                f"{format_mismatches(mismatches)}",
                pytrace=False,
            )
        if not isinstance(obj, torch.nn.Module):
            return loaded
        model = sio.load_into_copy(obj, saved.data)
        before = {k: sio.plain(v) for k, v in obj.state_dict().items()}
        after = {k: sio.plain(v) for k, v in model.state_dict().items()}
        mismatches = deep_diff(before, after)
        untied = [
            group
            for group in sio.shared_groups(obj.state_dict())
            if len({model.state_dict()[k].untyped_storage().data_ptr() for k in group}) > 1
        ]
        if mismatches or untied:
            lines = [format_mismatches(mismatches)] if mismatches else []
            lines += [f"  {', '.join(g)}: tied in the module, not after load_model" for g in untied]
            fail_finding(
                f"{where}: load_model does not give the module back:\n" + "\n".join(lines),
                pytrace=False,
            )
        return model

    def assert_loads_into(
        self,
        model: Any,
        checkpoint: Any,
        key: str | None = None,
        strict: bool = True,
        *,
        strip_prefix: str | Iterable[str] = (),
        exact_dtypes: bool = False,
    ) -> Any:
        """Check that `checkpoint` loads into `model`, naming every difference at once.

        `checkpoint` is a path (a torch or safetensors file, or a folder of
        shards) or a mapping already in memory; `key` names its state dict
        (`"state_dict"`, `"model.ema"`), `strip_prefix` removes `module.` and
        the like. Before anything is loaded, the keys, shapes and dtypes are
        compared (statically, for a file), and every missing / unexpected key,
        size mismatch and (with `exact_dtypes=True`) dtype change fails the
        test in one message, in load_state_dict's words. Then the tensors are
        loaded (`torch.load(weights_only=True)` with the test's allowlist, or
        safetensors) and `model.load_state_dict(..., strict=strict)` is called;
        its result is returned.
        """
        __tracebackhide__ = True
        from .diff import load_side, read_side, select
        from .scan.statedict import compare, from_live, strip_prefixes

        prefixes = [strip_prefix] if isinstance(strip_prefix, str) else list(strip_prefix)
        where = "ckpt_compat.assert_loads_into"
        side = None
        try:
            if isinstance(checkpoint, (str, os.PathLike)):
                side = read_side(os.fspath(checkpoint), key, prefixes, "checkpoint")
                theirs = side.sd
            else:
                theirs = strip_prefixes(from_live(select(checkpoint, key)), prefixes, "checkpoint")
        except CkptCompatError as exc:
            pytest.fail(f"{where}: {exc}", pytrace=False)
        c = compare(from_live(model.state_dict()), theirs)
        errors = c.load_state_dict_lines()
        if not strict:
            errors = [e for e in errors if not e.startswith(("Missing key", "Unexpected key"))]
        if errors or (exact_dtypes and c.dtype):
            summary = c.summary()
            lines = [
                f"{where}: {summary}",
                f"Error(s) in loading state_dict for {type(model).__name__}:",
            ]
            lines += [f"\t{e}" for e in errors]
            lines += [f"\t{o}" for o in c.other_lines()]
            lines += [f"  note: {n}" for n in theirs.notes]
            fail_finding("\n".join(lines))
        allowlist = self._allowlist((), self.rules())
        try:
            tensors = (
                load_side(side, allowlist.entries) if side is not None else select(checkpoint, key)
            )
        except CkptCompatError as exc:  # torch (weights_only) or safetensors refused it
            fail_finding(f"{where}: {exc}")
        if side is None and prefixes:
            tensors = {_strip(k, prefixes): v for k, v in tensors.items()}
        try:
            return model.load_state_dict(tensors, strict=strict)
        except RuntimeError as exc:  # the static comparison missed it: say both
            fail_finding(f"{where}: load_state_dict refuses it: {exc}")

    def check(
        self,
        name: str,
        obj: Any,
        *,
        safe_globals: Iterable[Any] = (),
        compare: Compare = "equal",
        format: str = "torch",
    ) -> None:
        """Register the golden artifact `name` and check it across writer environments.

        Always: roundtrip `obj` here. `--ckpt-compat-update`: write this
        environment's golden of `name`. `--ckpt-compat`: load every stored
        golden of `name`, from every writer, under `weights_only=True` here and
        compare it with `obj` (`compare`: `"equal"`, `"structure"` for random
        content, or a callable `(expected, loaded)` that returns False or
        raises AssertionError on a difference). The test fails unless every
        (writer, this reader) outcome is ok, with a table of what broke.
        `format="safetensors"`: the golden is a safetensors file of `obj` (a
        state dict or an `nn.Module`), read back with each reader's safetensors.
        """
        __tracebackhide__ = True
        import torch

        from .environment import environment
        from .errors import GoldenError
        from .golden import GoldenStore, check_artifact_name

        try:
            check_artifact_name(name)
        except ValueError as exc:
            raise pytest.UsageError(f"ckpt_compat.check: {exc}") from None
        if compare not in ("equal", "structure") and not callable(compare):
            raise pytest.UsageError(
                f"ckpt_compat.check: compare={compare!r}; use 'equal', 'structure' or a callable"
            )
        config = self._request.config
        state = run_state(config)
        root = golden_root(config, self._request.node.path)
        store = GoldenStore(root)
        self._claim(root / name)
        state.produced.add(f"{root}::{name}")
        rules = self.rules()
        allowlist = self._allowlist(safe_globals, rules)
        env = environment()
        tag = env["tag"]
        fmt = _format(format, f"ckpt_compat.check({name!r})")
        expected: Any = obj
        if fmt == "safetensors":
            from . import safetensors_io as sio

            try:
                saved = sio.save(obj)
            except sio.SafetensorsError as exc:
                pytest.fail(
                    f"ckpt_compat.check({name!r}, format='safetensors'): {exc}", pytrace=False
                )
            data, expected = saved.data, saved.expected
        else:
            buffer = io.BytesIO()
            torch.save(obj, buffer)
            data = buffer.getvalue()
        test = self._request.node.nodeid

        if config.getoption("ckpt_compat_update"):
            names: list[str] = []
            if fmt == "torch":
                verdict = _verdict(data, rules, allowlist)
                names = sorted(r.name for r in verdict.requirements if r.kind == "global")
            meta = {"writer": env, "globals": names, "test": test, "written": _now()}
            if fmt != "torch":
                meta["format"] = fmt
            golden = store.write(name, data, meta)
            state.written.append(
                {"artifact": name, "writer": tag, "path": str(golden.path), "test": test}
            )

        sources: list[tuple[str, dict[str, Any], bytes | GoldenError, str]] = []
        if config.getoption("ckpt_compat"):
            stored = store.goldens(name)
            if not stored:
                # Green must not mean "nothing was compared": say how to write one.
                pytest.fail(
                    f"ckpt_compat.check({name!r}): no golden of this artifact under {root}: "
                    "write this environment's with `pytest --ckpt-compat-update` (and commit it)",
                    pytrace=False,
                )
            for golden in stored:
                if "error" in golden.meta:
                    sources.append((golden.writer, {}, GoldenError(golden.meta["error"]), "torch"))
                    continue
                writer_meta = golden.meta.get("writer", {})
                try:
                    sources.append(
                        (golden.writer, writer_meta, golden.read_verified(), golden.format)
                    )
                except GoldenError as exc:
                    sources.append((golden.writer, writer_meta, exc, golden.format))
        # Always: what the code produces now, saved and loaded here ("live").
        sources.append((tag, env, data, fmt))

        records = []
        for i, (writer, writer_env, payload, source_fmt) in enumerate(sources):
            started = time.perf_counter()
            if isinstance(payload, GoldenError):
                record = Record(name, writer, tag, "error", str(payload))
            elif source_fmt == "safetensors":
                # A torch golden of the same name compares with `obj`; a safetensors one
                # with the tensors safetensors must give back.
                target = expected if fmt == "safetensors" else _safetensors_view(obj)
                res = safetensors_outcome(payload, target, compare)
                record = Record(name, writer, tag, res.outcome, res.message)
            else:
                res = load_outcome(
                    payload,
                    obj,
                    rules=rules,
                    allowlist=allowlist,
                    compare=compare,
                    first_party=self._first_party,
                    # A golden holds its writer's devices; what this code saves now, ours.
                    same_devices=i == len(sources) - 1,
                )
                record = Record(
                    name, writer, tag, res.outcome, res.message, res.blocked, res.missing, res.fix
                )
                record.globals = res.globals
            record.duration = round(time.perf_counter() - started, 4)
            record.test, record.writer_env = test, writer_env
            record.kind = "live" if i == len(sources) - 1 else "golden"
            records.append(record)
        state.reader = state.reader or env
        state.records += records
        self._fail_unless_ok(name, records)

    def _claim(self, artifact: Any) -> None:
        """Refuse a second test (in any xdist worker) using the same artifact."""
        __tracebackhide__ = True
        import hashlib
        import os
        import tempfile

        state = run_state(self._request.config)
        nodeid = self._request.node.nodeid
        key = str(artifact)
        owner = state.claims.get(key)
        if owner is None:
            folder = claims_dir(self._request.config)
            folder.mkdir(exist_ok=True)
            claim = folder / hashlib.sha256(key.encode()).hexdigest()[:32]
            # Write the claim whole, then link it into place: the link is the
            # atomic test-and-set, and whoever loses reads a complete owner.
            fd, tmp = tempfile.mkstemp(dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(nodeid)
            try:
                os.link(tmp, claim)
                owner = nodeid
            except FileExistsError:
                owner = claim.read_text(encoding="utf-8")
            finally:
                os.unlink(tmp)
            state.claims[key] = owner
        elif owner == nodeid:
            owner = f"{nodeid} (an earlier check() in the same test)"
        if owner != nodeid:
            pytest.fail(
                f"ckpt_compat.check: artifact {key} is already used by {owner}; "
                "give each check() its own name (e.g. include the parameter)",
                pytrace=False,
            )

    def _fail_unless_ok(self, name: str, records: list[Record]) -> None:
        __tracebackhide__ = True
        from .runreport import table

        expected = self._expected_spellings()
        covered = frozenset().union(*expected.values())
        known = [r for r in records if r.outcome == "blocked" and set(r.blocked) <= covered]
        bad = [r for r in records if r.outcome != "ok" and r not in known]
        if expected:
            blocked_here = {g for r in records for g in r.blocked}
            loads = sorted(e for e, names in expected.items() if not names & blocked_here)
            if loads:
                fail_finding(
                    f"ckpt_compat.check({name!r}): expect_blocked lists {', '.join(loads)}, but "
                    f"nothing is blocked on it here any more ({records[0].reader}): remove it "
                    "from @pytest.mark.ckpt_compat(expect_blocked=[...])",
                    pytrace=False,
                )
        if not bad:
            if known:  # like a strict xfail: reported, and failing once it loads
                pytest.xfail(f"blocked as expected: {', '.join(sorted(expected))}")
            return
        lines = [
            f"ckpt_compat.check({name!r}): {len(bad)} of {len(records)} writer(s) do not load "
            f"here ({records[0].reader})",
            table(records),
        ]
        for r in bad:
            lines.append(f"\n[{r.writer}] {r.outcome}: {r.message}")
            if r.fix:
                lines.append(r.fix)
        fail_finding("\n".join(lines), pytrace=False)

    def _allowlist(self, extra: Iterable[Any], rules: TorchRules) -> Allowlist:
        names = [*self._ini_safe, *self._marker_safe]
        objects: list[object] = []
        for entry in extra:
            if isinstance(entry, str):
                names.append(parse_entry(entry, "roundtrip(safe_globals=...)"))
            else:
                objects.append(entry)
        allowlist = Allowlist.build(names)
        for entry in objects:
            allowlist.entries.append(entry)
            if isinstance(entry, tuple):
                allowlist.keys |= {entry[1]}
                entry = entry[0]
            else:
                allowlist.keys |= {torch_key(entry, rules)}
            allowlist.types |= {
                f"{getattr(entry, '__module__', 'builtins')}.{getattr(entry, '__qualname__', '')}"
            }
        return allowlist

    def _check_expected_blocked(self, verdict: Verdict, error: BaseException | None) -> None:
        __tracebackhide__ = True
        expected = self._expected_spellings()
        blocked = set(verdict.blocked)
        unmatched = sorted(e for e, names in expected.items() if not names & blocked)
        if error is None or unmatched:
            loads = unmatched if error is not None else sorted(expected)
            fail_finding(
                f"ckpt_compat: expect_blocked lists {', '.join(loads)}, but "
                f"{'they now load' if len(loads) > 1 else 'it now loads'} under torch "
                f"{self.rules().version}: remove {'them' if len(loads) > 1 else 'it'} from "
                "@pytest.mark.ckpt_compat(expect_blocked=[...])",
                pytrace=False,
            )
        if blocked <= frozenset().union(*expected.values()) and not verdict.obstacles:
            pytest.xfail(f"blocked as expected: {', '.join(sorted(expected))}")

    def _expected_spellings(self) -> dict[str, frozenset[str]]:
        """Each `expect_blocked` entry and the names it stands for in a pickle written here.

        An entry names the object, as an allowlist entry does: `pathlib.PurePosixPath`
        is written `pathlib._local.PurePosixPath` by Python 3.13, and
        `numpy.core.multiarray.scalar` is `numpy._core.multiarray.scalar` under numpy 2.
        """
        return {e: spellings(e) for e in self.expect_blocked}

    def _blocked_message(
        self, obj: object, verdict: Verdict, error: BaseException, rules: TorchRules
    ) -> str:
        from .environment import environment
        from .locate import locate_globals
        from .scan.fixes import advise

        env = environment()
        lines = [
            "ckpt_compat.roundtrip: does not load under torch.load(weights_only=True) "
            f"[torch {env['torch']}, numpy {env['numpy']}]"
        ]
        blocked = verdict.troubles
        if blocked:
            places = locate_globals(obj, [r.name for r in blocked])
            width = max(len(r.name) for r in blocked)
            lines.append(f"{len(blocked)} blocked (torch's error names only the first):")
            for r in blocked:
                where = ", ".join(places.get(r.name, [])) or "?"
                extra = f"  [{r.note}]" if r.note else ""
                lines.append(f"  {r.name:<{width}}  at {where}{extra}")
        for o in verdict.obstacles:
            lines.append(f"  {o.code}: {o.message}")
        lines.append(f"torch says: {torch_says(error)}")
        if not blocked and not verdict.obstacles:
            lines.append(
                "(the static scan expected this to load: please report it to pytest-ckptcompat)"
            )
        if blocked or verdict.obstacles:
            lines.append(advise(verdict, self._first_party, also=self._ini_safe))
        return "\n".join(lines)


def _format(fmt: object, where: str) -> str:
    from .safetensors_io import check_format

    try:
        return check_format(fmt, where)
    except CkptCompatError as exc:
        raise pytest.UsageError(str(exc)) from None


def _safetensors_view(obj: Any) -> Any:
    """What safetensors gives back for `obj` (a state dict, or a module's saved tensors)."""
    from . import safetensors_io as sio

    try:
        return sio.save(obj).expected
    except sio.SafetensorsError:
        return obj


def _strip(key: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        if prefix and key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _verdict(data: bytes, rules: TorchRules, allowlist: Allowlist) -> Verdict:
    """The scan's verdict on `torch.save` output, read by the same reader as files on disk."""
    from .scan.scanner import scan_bytes
    from .scan.verdict import Obstacle

    scan = scan_bytes(data, rules, allowlist)
    if scan.verdict is None:  # torch.save wrote something the scanner cannot read: say so
        return Verdict((), (Obstacle("format", scan.error or "unreadable"),))
    return for_load_here(scan.verdict)


def _parse_marker(marker: pytest.Mark | None) -> tuple[list[str], list[str]]:
    """Strictly parse `@pytest.mark.ckpt_compat(safe_globals=[...], expect_blocked=[...])`."""
    if marker is None:
        return [], []
    if marker.args:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} takes keyword arguments only: "
            "safe_globals=[...], expect_blocked=[...]"
        )
    unknown = set(marker.kwargs) - {"safe_globals", "expect_blocked"}
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: unknown argument(s) {', '.join(sorted(unknown))}; "
            "expected safe_globals=[...], expect_blocked=[...]"
        )
    out = []
    for key in ("safe_globals", "expect_blocked"):
        value = marker.kwargs.get(key, [])
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER}({key}=...) must be a list of 'module.name' strings"
            )
        try:
            out.append([parse_entry(v, f"@pytest.mark.{MARKER}({key}=...)") for v in value])
        except SafeGlobalError as exc:
            raise pytest.UsageError(str(exc)) from None
    return out[0], out[1]


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
