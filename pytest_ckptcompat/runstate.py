"""The state of one pytest run's compatibility checks, and where it lives.

`RunState` collects what the run's `check()` calls and the audit produced;
under xdist each worker fills its own and the controller merges them
(`dump` / `merge`: plain JSON through `workeroutput`). The accessors below
are the only way plugin code reaches it, so the hooks (plugin.py) and the
fixture (fixture.py) both depend on this module, never on each other.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import DIR_INI, GOLDEN_FOLDER

if TYPE_CHECKING:
    from .audit import Auditor
    from .outcomes import Record
    from .schemas import EnvironmentDoc, LoadSiteDoc, RunDoc, StaleDoc, TestDoc, WrittenDoc


@dataclass
class RunState:
    """Everything the run's `check()` calls produced (merged from xdist workers)."""

    run_id: str
    reader: EnvironmentDoc | dict[str, Any] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    written: list[WrittenDoc] = field(default_factory=list)
    produced: set[str] = field(default_factory=set)  # "<root>::<artifact>"
    claims: dict[str, str] = field(default_factory=dict)  # artifact path -> nodeid
    partial: bool = False  # deselection, -k, node ids, -x, --co, --lf: never call goldens unused
    collected: set[str] = field(default_factory=set)  # node ids (merged from xdist workers)
    passed: set[str] = field(default_factory=set)  # node ids whose call passed
    stale: list[StaleDoc] = field(default_factory=list)
    load_sites: dict[str, LoadSiteDoc] = field(default_factory=dict)  # the runtime audit
    allowlist: list[str] = field(default_factory=list)  # the project's ini allowlist
    # Every test's outcome (controller only: xdist hands it every worker's reports),
    # recorded when a report is written.
    tests: dict[str, TestDoc] = field(default_factory=dict)
    started: float = 0.0  # time.monotonic() at configure
    rootdir: str | None = None  # pytest's rootdir in its git work tree (see repo_rootdir)
    run: RunDoc | None = None  # how pytest's session went, once it finished

    @property
    def has_news(self) -> bool:
        """Whether the terminal summary has anything to say (a run that checks nothing: no)."""
        return bool(self.records or self.written or self.load_sites or self.stale)

    def add_load_sites(self, sites: list[LoadSiteDoc]) -> None:
        """Merge audited torch.load call sites (deduplicated by site and decision)."""
        for site in sites:
            key = f"{site['site']}|{site['project_site']}|{site['weights_only']}"
            have = self.load_sites.get(key)
            if have is None:
                self.load_sites[key] = site.copy()
                continue
            have["calls"] += site["calls"]
            have["tests"] = sorted(set(have["tests"]) | set(site["tests"]))
            # The worse judgement wins, as within one process: a file that would fail
            # under weights_only=True on any worker makes the site at risk.
            if have["loadable"] is None or (have["loadable"] and site["loadable"] is False):
                have["loadable"], have["blocked"], have["fix"] = (
                    site["loadable"],
                    site["blocked"],
                    site["fix"],
                )
            have["error"] = have["error"] or site["error"]

    def dump(self) -> str:
        """Serialise for an xdist worker's `workeroutput` (plain JSON)."""
        return json.dumps(
            {
                "reader": self.reader,
                "records": [r.to_json() for r in self.records],
                "written": self.written,
                "produced": sorted(self.produced),
                "collected": sorted(self.collected),
                "partial": self.partial,
                "load_sites": list(self.load_sites.values()),
                "allowlist": self.allowlist,
            }
        )

    def merge(self, text: str) -> None:
        """Merge a worker's `dump()`."""
        data = json.loads(text)
        self.reader = self.reader or data["reader"]
        if data["records"]:
            from .outcomes import Record  # here: a run that checks nothing never imports it

            self.records += [Record(**r) for r in data["records"]]
        self.written += data["written"]
        self.produced |= set(data["produced"])
        self.collected |= set(data["collected"])
        self.partial |= data["partial"]
        self.add_load_sites(data["load_sites"])
        self.allowlist = self.allowlist or data["allowlist"]


STATE: pytest.StashKey[RunState] = pytest.StashKey()
AUDITOR: pytest.StashKey[Auditor] = pytest.StashKey()


def run_state(config: pytest.Config) -> RunState:
    """This process's run state (the controller's holds the merged one)."""
    return config.stash[STATE]


def claims_dir(config: pytest.Config) -> Path:
    """Where this run's xdist workers claim artifact names (removed at the end of the run)."""
    return Path(tempfile.gettempdir()) / f"pytest-ckptcompat-{run_state(config).run_id}"


def golden_root(config: pytest.Config, test_path: Path) -> Path:
    """Where goldens live: --ckpt-compat-dir, else the ini key, else beside the test module."""
    option = config.getoption("ckpt_compat_dir")
    if option:
        return Path(option).resolve()
    ini = str(config.getini(DIR_INI) or "")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / ini).resolve()
    return test_path.parent / GOLDEN_FOLDER
