"""Which version of a package is installed here, read without importing it.

`import torch` costs seconds and `importlib.metadata` tens of milliseconds;
a scan only needs the version string, which the `*.dist-info/METADATA` file
beside the package holds.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final


@dataclass(frozen=True)
class Installed:
    """A distribution installed here: its version and the folder of its package."""

    version: str
    location: str  # the package folder (`.../site-packages/torch`)


def installed(package: str) -> Installed | None:
    """The installed version of `package` (torch, numpy) without importing it.

    The package is found the way `import` would find it (`importlib.util.find_spec`
    of a top-level name imports nothing), its version read from the
    `*.dist-info/METADATA` beside it. When the package is already imported,
    its `__version__` answers. None: not installed.
    """
    module = sys.modules.get(package)
    if module is not None and getattr(module, "__version__", None):
        origin = getattr(module, "__file__", None) or ""
        return Installed(str(module.__version__), str(Path(origin).parent))
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folder = (
        Path(spec.origin).parent
        if spec.origin
        else Path(next(iter(spec.submodule_search_locations or ()), "."))
    )
    version = _own_version(folder) or _dist_info_version(folder.parent, package)
    if version is None:
        version = _metadata_version(package)  # an editable or unusual install
    return Installed(version, str(folder)) if version else None


_OWN_VERSION: Final = re.compile(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def _own_version(folder: Path) -> str | None:
    """`__version__` as the package's `version.py` spells it (torch: `2.5.1+cu124`).

    The package metadata of a torch wheel from PyPI says `2.5.1`; `torch.__version__`,
    and so the environment tag the plugin writes, says `2.5.1+cu124`: the scan says
    what `torch.__version__` says. The file is read, never run.
    """
    try:
        with open(folder / "version.py", encoding="utf-8") as fh:
            found = _OWN_VERSION.search(fh.read(4096))
    except (OSError, UnicodeDecodeError):
        return None
    return found.group(1) if found else None


_VERSION_LINE: Final = re.compile(r"^Version:\s*(\S+)\s*$", re.MULTILINE)


def _dist_info_version(site: Path, package: str) -> str | None:
    """`Version:` of `site/<package>-*.dist-info/METADATA`, when exactly one matches."""
    try:
        names = [
            n
            for n in os.listdir(site)
            if n.endswith(".dist-info") and n.split("-", 1)[0].lower() == package
        ]
    except OSError:
        return None
    if len(names) != 1:
        return None  # none, or stale copies: let importlib.metadata decide
    try:
        with open(site / names[0] / "METADATA", encoding="utf-8") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    found = _VERSION_LINE.search(head)
    return found.group(1) if found else None


def _metadata_version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
