"""The pytest plugin (entry point `pytest11: ckptcompat`): options, ini keys, marker, fixture.

Importing this module must stay cheap: no torch, no numpy. Everything heavy
is imported inside the fixture, so a test session that never asks for
`ckpt_compat` pays nothing (`python -X importtime -c "import pytest_ckptcompat.plugin"`).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import (
    AUDIT_IGNORE_INI,
    DIR_INI,
    GOLDEN_FOLDER,
    MARKER_HELP,
    SAFE_GLOBALS_HELP,
    SAFE_GLOBALS_INI,
)
from .runstate import AUDITOR, STATE, claims_dir, run_state

if TYPE_CHECKING:
    from .audit import Auditor
    from .fixture import CkptCompat
    from .runstate import RunState
    from .schemas import StaleDoc


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register `--ckpt-compat` and the `ckpt_compat_*` ini keys."""
    group = parser.getgroup("ckptcompat", "checkpoint serialization compatibility")
    group.addoption(
        "--ckpt-compat",
        action="store_true",
        default=False,
        dest="ckpt_compat",
        help="compatibility mode: ckpt_compat.check loads every stored golden of every writer "
        "environment here (roundtrip works with or without it)",
    )
    group.addoption(
        "--ckpt-compat-update",
        action="store_true",
        default=False,
        dest="ckpt_compat_update",
        help="write this environment's goldens for every ckpt_compat.check (never touches "
        "other writers' goldens)",
    )
    group.addoption(
        "--ckpt-compat-dir",
        default=None,
        metavar="DIR",
        dest="ckpt_compat_dir",
        help=f"golden directory (default: the ini {DIR_INI}, else {GOLDEN_FOLDER}/ beside each "
        "test module)",
    )
    group.addoption(
        "--ckpt-compat-report",
        default=None,
        metavar="FILE",
        dest="ckpt_compat_report",
        help="write this run's outcomes as JSON (schema ckptcompat.report/1)",
    )
    group.addoption(
        "--ckpt-compat-audit",
        action="store_true",
        default=False,
        dest="ckpt_compat_audit",
        help="record every torch.load the tests make: call site, how weights_only was decided, "
        "and whether the file would load under weights_only=True (on with --ckpt-compat)",
    )
    group.addoption(
        "--ckpt-compat-prune",
        action="store_true",
        default=False,
        dest="ckpt_compat_prune",
        help="delete goldens no collected test produces (only after a full, unfiltered run)",
    )
    parser.addini(SAFE_GLOBALS_INI, SAFE_GLOBALS_HELP, type="linelist", default=[])
    parser.addini(
        AUDIT_IGNORE_INI,
        "torch.load call sites reviewed and trusted: `path:line` or a glob such as "
        "`src/mylib/legacy.py*`, one per line; the audit stops reporting them",
        type="linelist",
        default=[],
    )
    parser.addini(
        DIR_INI,
        f"golden directory, relative to the ini file (default: {GOLDEN_FOLDER}/ beside each "
        "test module); commit it",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, the run state, the xdist hooks and (when asked) the audit."""
    from .runstate import RunState

    _check_usage(config)
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    config.stash[STATE] = RunState(
        run_id=workerinput.get("ckptcompat_run", uuid.uuid4().hex), started=time.monotonic()
    )
    config.addinivalue_line("markers", MARKER_HELP)
    config.pluginmanager.register(_Passed(config.stash[STATE]), "ckptcompat-passed")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "ckptcompat-xdist")
    if config.getoption("ckpt_compat_report"):
        # The report carries every test's outcome: only when one is written.
        config.pluginmanager.register(_TestLog(config), "ckptcompat-tests")
    if config.getoption("ckpt_compat_audit") or config.getoption("ckpt_compat"):
        from .audit import Auditor

        auditor = Auditor(config.rootpath, list(config.getini(AUDIT_IGNORE_INI)))
        auditor.install()
        config.stash[AUDITOR] = auditor
        config.pluginmanager.register(_AuditHooks(auditor), "ckptcompat-audit")


def _check_usage(config: pytest.Config) -> None:
    """Refuse, in one line, what would otherwise fail in every test or as an INTERNALERROR."""
    modes = [
        flag
        for flag, dest in (
            ("--ckpt-compat", "ckpt_compat"),
            ("--ckpt-compat-update", "ckpt_compat_update"),
            ("--ckpt-compat-audit", "ckpt_compat_audit"),
        )
        if config.getoption(dest)
    ]
    if modes:
        try:
            import torch  # noqa: F401  # the modes load and save with this torch
        except ImportError as exc:
            raise pytest.UsageError(
                f"{modes[0]} needs torch, which is not importable here ({exc}): install torch "
                f"in this environment, or run pytest without {modes[0]}"
            ) from None
    if not _is_worker(config):
        from .pathoptions import check_spaced_path_options

        check_spaced_path_options(config)
    entries = config.getini(SAFE_GLOBALS_INI)
    if entries:
        from .errors import SafeGlobalError
        from .scan.allowlist import parse_entries

        where = f"{config.inipath or 'the pytest configuration'} ({SAFE_GLOBALS_INI})"
        try:
            parse_entries(entries, where)
        except SafeGlobalError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give torch its own torch.load back."""
    auditor = config.stash.get(AUDITOR, None)
    if auditor is not None:
        auditor.uninstall()


class _AuditHooks:
    """Tells the audit which test is running (registered only when the audit is on)."""

    def __init__(self, auditor: Auditor) -> None:
        self.auditor = auditor

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        self.auditor.current_test = item.nodeid  # for the sites it records
        try:
            return (yield)
        finally:
            self.auditor.current_test = ""


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class _TestLog:
    """Each test's outcome for the report (registered only when a report is written).

    Where a test runs (a worker, or this process), a failed report gets the
    project line the failure was raised in; the controller (or this process)
    folds every report into the run state.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collects = not _is_worker(config)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if call.excinfo is not None and report.failed:
            from .testlog import FINDING_ATTR, WHERE_ATTR, is_finding, where

            setattr(report, WHERE_ATTR, where(call.excinfo, self.config.rootpath))
            setattr(report, FINDING_ATTR, is_finding(call.excinfo))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.collects:
            from .testlog import record

            record(run_state(self.config).tests, report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.collects and report.failed:
            from .testlog import record_collect_error

            record_collect_error(run_state(self.config).tests, report)


class _XdistHooks:
    """Hand the run id to workers and merge their results (registered only with xdist)."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["ckptcompat_run"] = run_state(node.config).run_id

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        state = run_state(node.config)
        text = getattr(node, "workeroutput", {}).get("ckptcompat")
        if text:
            state.merge(text)
        if error is not None or not text:
            # A worker that crashed took what it produced with it: the goldens its tests
            # wrote or checked would look unused, so this run may call none unused.
            state.partial = True


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Any deselection (-k, -m, --lf...) makes the run partial: no golden is called unused."""
    if items:
        run_state(items[0].config).partial = True


def pytest_collection_finish(session: pytest.Session) -> None:
    """What was collected; node ids, --co, --lf or --sw on the command line make the run partial.

    A golden is only ever called unused when the test that wrote it was
    collected in a full run and passed without producing it (or is gone from
    a file that was collected): `--lf` skips whole files, `--co` runs nothing.
    """
    config = session.config
    state = run_state(config)
    state.collected |= {item.nodeid for item in session.items}
    options = ("collectonly", "lf", "stepwise", "stepwise_skip")
    if any("::" in arg for arg in config.args) or any(
        getattr(config.option, name, False) for name in options
    ):
        state.partial = True


class _Passed:
    """Collects the tests that passed (the controller sees every worker's reports)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed:
            self.state.passed.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Workers hand their state over; the controller finds stale goldens and writes the report."""
    config = session.config
    state = run_state(config)
    if session.shouldstop or session.shouldfail:
        state.partial = True
    auditor = config.stash.get(AUDITOR, None)
    if auditor is not None:
        state.add_load_sites([site.to_json() for site in auditor.sites.values()])
    if _is_worker(config):
        config.workeroutput["ckptcompat"] = state.dump()  # type: ignore[attr-defined]
        return
    import shutil

    shutil.rmtree(claims_dir(config), ignore_errors=True)
    if not state.partial and (state.produced or config.getoption("ckpt_compat_prune")):
        _find_stale(session, state)
    report = config.getoption("ckpt_compat_report")
    if report:
        from .runreport import repo_rootdir, write_report

        state.rootdir = repo_rootdir(config.rootpath)
        if not state.reader:
            from .environment import environment

            state.reader = environment()
        state.run = {
            "update": bool(config.getoption("ckpt_compat_update")),
            "compat": bool(config.getoption("ckpt_compat")),
            "exitstatus": int(exitstatus),
            "duration": round(time.monotonic() - state.started, 2),
            "partial": state.partial,
        }
        write_report(state, Path(report))


def _find_stale(session: pytest.Session, state: RunState) -> None:
    from .golden import GoldenStore

    config = session.config
    files = {nodeid.split("::", 1)[0] for nodeid in state.collected}
    roots = {Path(p.split("::", 1)[0]) for p in state.produced}
    if not (config.getoption("ckpt_compat_dir") or config.getini(DIR_INI)):
        roots |= {(config.rootpath / f).parent / GOLDEN_FOLDER for f in files}
    prune = config.getoption("ckpt_compat_prune")
    for root in sorted(roots):
        store = GoldenStore(root)
        for artifact in store.artifacts():
            if f"{root}::{artifact}" in state.produced:
                continue
            for golden in store.goldens(artifact):
                if not _unused(golden.meta.get("test"), state, files):
                    continue
                entry: StaleDoc = {
                    "artifact": artifact,
                    "writer": golden.writer,
                    "path": str(golden.path),
                }
                if prune:
                    entry["deleted"] = [str(p) for p in store.delete(golden)]
                state.stale.append(entry)


def _unused(test: object, state: RunState, files: set[str]) -> bool:
    """Whether this run proves a golden unused: its test ran, passed and did not produce it.

    Or its test is gone from a file this run collected (renamed or deleted).
    A golden whose test was not collected (another file, `--ignore`, `--lf`),
    or failed before producing anything, proves nothing and is kept.
    """
    if not isinstance(test, str) or "::" not in test:
        return False  # no owner recorded: never judged
    if test in state.collected:
        return test in state.passed
    return test.split("::", 1)[0] in files


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One titled block, only when there is something to say, never on xdist workers."""
    if _is_worker(config):
        return
    state = run_state(config)
    lines: list[str] = []
    if state.has_news:  # else the report modules are never imported: an idle run stays cheap
        from .runreport import summary_lines

        lines = summary_lines(state)
    if config.getoption("ckpt_compat_prune") and state.partial:
        lines.append(
            "--ckpt-compat-prune deleted nothing: only a full, unfiltered run may call a "
            "golden unused"
        )
    if not lines:
        return
    terminalreporter.write_sep("-", "ckpt-compat")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Under --ckpt-compat(-update), the environment tag this run reads and writes as."""
    if not (config.getoption("ckpt_compat") or config.getoption("ckpt_compat_update")):
        return None
    from .environment import environment

    env = environment()
    return f"ckpt-compat: {env['tag']} (torch {env['torch']}, numpy {env['numpy']})"


@pytest.fixture
def ckpt_compat(request: pytest.FixtureRequest) -> CkptCompat:
    """Save and reload objects the way your checkpoints are loaded: `torch.load(weights_only=True)`.

    `ckpt_compat.roundtrip(obj, safe_globals=())` saves `obj` with
    `torch.save`, loads it back with `weights_only=True` (allowlisting the
    ini key `ckpt_compat_safe_globals`, the `@pytest.mark.ckpt_compat`
    marker's `safe_globals` and the call's own), checks the result equals
    `obj` and returns it. When it does not load, the test fails listing every
    blocked global, where it sits in `obj` and the fix; when it loads but
    differs, the failure names each differing path and both values.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f"ckpt_compat needs torch, which is not importable here ({exc}): install torch in "
            "this environment",
            pytrace=False,
        )
    from .fixture import CkptCompat

    return CkptCompat(request)
