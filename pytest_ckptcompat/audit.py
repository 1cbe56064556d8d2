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
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .scan import releases

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
            caller = sys._getframe(1)
            site, position = None, _position(f)
            try:
                site = self._record(f, args, kwargs, caller)
            except Exception:  # the audit must never change what torch.load does
                site = None
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = original(f, *args, **kwargs)
            except Exception as exc:
                _reissue(caught, caller)
                if site is not None:
                    self._failed(site, f, position, exc)
                raise
            _reissue(caught, caller)
            return result

        load.__ckptcompat_audit__ = True  # type: ignore[attr-defined]
        return load

    def _failed(self, site: LoadSite, f: Any, position: int | None, exc: Exception) -> None:
        """Record why a load failed, and for a weights_only load, what blocked it."""
        from .outcomes import torch_says

        site.error = site.error or torch_says(exc)
        if site.loadable is None:
            try:
                if position is not None:
                    f.seek(position)
                self._judge(site, f)
            except Exception:  # the real error is torch's, already re-raised to the caller
                pass

    def _record(
        self, f: Any, args: tuple[Any, ...], kwargs: dict[str, Any], frame: Any
    ) -> LoadSite | None:
        if frame.f_globals.get("__name__", "").startswith("pytest_ckptcompat."):
            return None  # the plugin's own loads (goldens) are not the project's load sites
        caller, project = self._call_site(frame)
        if self._ignored(caller) or (project and self._ignored(project)):
            return None
        explicit = "weights_only" in kwargs or len(args) > 3
        passed = kwargs.get("weights_only", args[3] if len(args) > 3 else None)
        decided, effective, env = _decide(passed, explicit, kwargs.get("pickle_module"))
        key = f"{caller}|{project}|{decided}"
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = LoadSite(caller, project, decided, effective, env)
        site.calls += 1
        if self.current_test and self.current_test not in site.tests:
            site.tests.append(self.current_test)
        if decided != "True" and site.loadable is not False:
            # Every file it loads, until one would fail: a site judged on its first
            # (plain) file only was told to pass weights_only=True.
            self._judge(site, f)
        return site

    def _judge(self, site: LoadSite, f: Any) -> None:
        """Would the same bytes load under weights_only=True here? (static scan only)"""
        from .project_config import first_party_packages
        from .scan.fixes import advise
        from .scan.rules import TorchRules
        from .scan.scanner import scan_bytes, scan_file

        rules = TorchRules.from_installed()  # fresh: the project may register globals meanwhile
        if isinstance(f, (str, os.PathLike)):
            scan = scan_file(f, rules)
        else:
            data = _peek(f)
            if data is None:
                return
            scan = scan_bytes(data, rules, shown=repr(f))
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


def _decide(passed: Any, explicit: bool, pickle_module: Any) -> tuple[str, bool, dict[str, str]]:
    """How weights_only was decided for one call, and what torch used."""
    import torch

    env = {
        k: os.environ[k]
        for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        if k in os.environ
    }
    release = releases.release_of(torch.__version__)
    default = release >= releases.WEIGHTS_ONLY_DEFAULT and pickle_module is None
    if passed is None:
        how = "None, passed explicitly:" if explicit else "omitted"
        decided = f"{how} (default {default} on torch {torch.__version__})"
        effective = default
        if env.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").lower() in _TRUE:
            effective = False
    else:
        decided, effective = str(bool(passed)), bool(passed)
    if env.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "").lower() in _TRUE:
        effective = True
    return decided, effective, env


def _position(f: Any) -> int | None:
    """Where a file object stands before torch.load reads it (None: not one, or not seekable)."""
    if isinstance(f, (str, os.PathLike)) or not hasattr(f, "tell"):
        return None
    try:
        return int(f.tell())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


def _peek(f: Any) -> bytes | None:
    """The bytes a file object holds from where it stands, put back where it was."""
    position = _position(f)
    if position is None or not hasattr(f, "read"):
        return None
    try:
        data = f.read()
        f.seek(position)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return data if isinstance(data, bytes) else None


def _reissue(caught: list[warnings.WarningMessage], caller: Any) -> None:
    """Issue torch.load's warnings again, attributed as torch attributed them.

    torch warns with `stacklevel` counted from torch.load, which the wrapper
    stands in for: a warning about the wrapper's line is re-issued for the
    caller's line and module, so the project's own warning filters (by module,
    or `-W error`) treat it exactly as without the audit.
    """
    here = __file__
    for w in caught:
        if w.filename == here:
            module = caller.f_globals.get("__name__", "")
            registry = caller.f_globals.setdefault("__warningregistry__", {})
            filename, lineno = caller.f_code.co_filename, caller.f_lineno
        else:
            module, registry, filename, lineno = None, None, w.filename, w.lineno
        warnings.warn_explicit(w.message, w.category, filename, lineno, module, registry)
