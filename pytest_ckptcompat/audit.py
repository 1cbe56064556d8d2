"""Runtime audit: every `torch.load` the code under test makes, and whether it is safe.

While tests run (`--ckpt-compat-audit`, or `--ckpt-compat`), `torch.load` is
wrapped. The wrapper records, per call site:

- where: the first frame outside torch (the caller), and when that frame is
  inside an installed package, also the first frame of the project's own
  code that led there;
- how `weights_only` was decided: passed True / passed False / omitted (and
  then this torch's default), and the `TORCH_FORCE_(NO_)WEIGHTS_ONLY_LOAD`
  environment overrides;
- for a load that did not use `weights_only=True`: whether the same bytes
  would load under it here, from a static scan (nothing is executed that the
  original call would not have executed), with the blocked globals and the fix.

Then it calls the real `torch.load` with the same arguments: what it returns
or raises is unchanged.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schemas import LoadSiteDoc

_TRUE = ("1", "y", "yes", "true")


@dataclass
class LoadSite:
    """One call site of torch.load and what the audit found there."""

    site: str  # path:line of the caller outside torch
    project_site: str  # first frame of the project's own code that led there ("" = same)
    weights_only: str  # "True" / "False" / "omitted (default True)" ...
    effective: bool  # what torch used for this call
    env: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    loadable: bool | None = None  # under weights_only=True here (None: could not tell)
    blocked: list[str] = field(default_factory=list)
    fix: str = ""
    error: str = ""  # what the real call raised, if it did
    tests: list[str] = field(default_factory=list)
    kind: str = "load-site"

    def to_json(self) -> LoadSiteDoc:
        """The record as it stands in `ckptcompat.report/1` (`load_sites`)."""
        return asdict(self)  # type: ignore[return-value]  # the fields are LoadSiteDoc's


class Auditor:
    """Wraps torch.load for one session and collects `LoadSite`s."""

    def __init__(self, rootdir: Path, ignore: list[str]) -> None:
        self.rootdir = rootdir.resolve()
        self.ignore = ignore
        self.sites: dict[str, LoadSite] = {}
        self.current_test = ""
        self._originals: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        """Wrap `torch.load` and `torch.serialization.load` (one function in torch)."""
        import torch
        import torch.serialization

        original = torch.serialization.load
        wrapper = self._wrap(original)
        for owner, name in ((torch, "load"), (torch.serialization, "load")):
            self._originals.append((owner, name, getattr(owner, name)))
            setattr(owner, name, wrapper)

    def uninstall(self) -> None:
        """Put the real functions back."""
        for owner, name, fn in reversed(self._originals):
            setattr(owner, name, fn)
        self._originals.clear()

    def _wrap(self, original: Any) -> Any:
        @functools.wraps(original)
        def load(f: Any, *args: Any, **kwargs: Any) -> Any:
            site = None
            try:
                site = self._record(f, args, kwargs)
            except Exception:  # the audit must never change what torch.load does
                site = None
            try:
                return original(f, *args, **kwargs)
            except Exception as exc:
                if site is not None and not site.error:
                    site.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                raise

        load.__ckptcompat_audit__ = True  # type: ignore[attr-defined]
        return load

    def _record(self, f: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LoadSite | None:
        caller, project = self._call_site(sys._getframe(2))
        if self._ignored(caller) or (project and self._ignored(project)):
            return None
        passed = kwargs.get("weights_only", args[3] if len(args) > 3 else None)
        decided, effective, env = _decide(passed, kwargs.get("pickle_module"))
        key = f"{caller}|{project}|{decided}"
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = LoadSite(caller, project, decided, effective, env)
        site.calls += 1
        if self.current_test and self.current_test not in site.tests:
            site.tests.append(self.current_test)
        if decided != "True" and site.loadable is None:
            self._judge(site, f)
        return site

    def _judge(self, site: LoadSite, f: Any) -> None:
        """Would the same bytes load under weights_only=True here? (static scan only)"""
        from .project_config import first_party_packages
        from .scan.fixes import advise
        from .scan.rules import TorchRules
        from .scan.scanner import scan_file

        path, temporary = _bytes_source(f)
        if path is None:
            return
        try:
            rules = TorchRules.from_installed()
            scan = scan_file(path, rules)
        finally:
            if temporary:
                path.unlink(missing_ok=True)
        if scan.verdict is None:
            return
        site.loadable = scan.loadable
        blocked = scan.verdict.troubles
        site.blocked = [r.lookup for r in blocked] + [o.message for o in scan.verdict.obstacles]
        if blocked or scan.verdict.obstacles:
            site.fix = advise(scan.verdict, first_party_packages(self.rootdir))

    def _call_site(self, frame: Any) -> tuple[str, str]:
        """(first frame outside torch, first project frame when the former is a package)."""
        caller = ""
        while frame is not None:
            filename = frame.f_code.co_filename
            module = frame.f_globals.get("__name__", "")
            if not (module == "torch" or module.startswith("torch.")):
                caller = f"{self._show(filename)}:{frame.f_lineno}"
                break
            frame = frame.f_back
        if frame is None or self._is_project(frame.f_code.co_filename):
            return caller, ""
        # A load inside a third-party package: also name the project code that led there.
        while frame is not None:
            if self._is_project(frame.f_code.co_filename):
                return caller, f"{self._show(frame.f_code.co_filename)}:{frame.f_lineno}"
            frame = frame.f_back
        return caller, ""

    def _is_project(self, filename: str) -> bool:
        """The project's own code: under the rootdir, not an environment inside it."""
        path = str(Path(filename).resolve())
        root = str(self.rootdir)
        return path.startswith(root + os.sep) and "site-packages" not in path[len(root) :]

    def _show(self, filename: str) -> str:
        try:
            return str(Path(filename).resolve().relative_to(self.rootdir))
        except ValueError:
            return filename

    def _ignored(self, site: str) -> bool:
        import fnmatch

        return any(
            fnmatch.fnmatch(site, pattern) or site.startswith(pattern + ":")
            for pattern in self.ignore
        )


def _decide(passed: Any, pickle_module: Any) -> tuple[str, bool, dict[str, str]]:
    """How weights_only was decided for one call, and what torch used."""
    import torch

    env = {
        k: os.environ[k]
        for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        if k in os.environ
    }
    major, minor = (int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    default = (major, minor) >= (2, 6) and pickle_module is None
    if passed is None:
        decided, effective = f"omitted (default {default} on torch {torch.__version__})", default
        if env.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").lower() in _TRUE:
            effective = False
    else:
        decided, effective = str(bool(passed)), bool(passed)
    if env.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "").lower() in _TRUE:
        effective = True
    return decided, effective, env


def _bytes_source(f: Any) -> tuple[Path | None, bool]:
    """(a path holding the bytes `f` names, whether it is a temporary copy).

    File objects are copied and put back at their position, so the real call
    reads exactly what it would have read.
    """
    if isinstance(f, (str, os.PathLike)):
        return Path(f), False
    if not (hasattr(f, "read") and hasattr(f, "seek") and hasattr(f, "tell")):
        return None, False
    import tempfile

    try:
        position = f.tell()
        data = f.read()
        f.seek(position)
    except (OSError, io.UnsupportedOperation):
        return None, False
    if not isinstance(data, bytes):
        return None, False
    fd, name = tempfile.mkstemp(prefix="ckptcompat-audit-", suffix=".pt")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name), True
