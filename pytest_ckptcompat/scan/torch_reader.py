"""The installed torch's `weights_only` rules, without `import torch` when the table knows it.

`installed_rules()` reads the installed torch's version from its package
metadata (`dists`), and takes its rules from the offline table
(`torch_table`): `import torch` costs seconds, a scan of a small file
milliseconds. A build the table does not hold exactly (`torch_table.holds`:
a nightly, a pre-release, a source or other local build such as
`2.6.0+mybuild`, a release newer than the table; a build variant such as
`+cu124` is the release) is imported once, its rules read with
`TorchRules.from_installed()` and cached (`rules_cache_dir()`), keyed on its
version, where it is installed and its unpickler's source file (size and
modification time), so a rebuilt torch in the same place is read again. Its
rules then say so (`TorchRules.provenance`), and so does every scan.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Final

from ..errors import CkptCompatError
from . import torch_table
from .dists import Installed, installed
from .rules import TorchRules

#: Bump when the cached JSON changes shape (older files are then ignored).
_CACHE_FORMAT: Final = 1
#: Overrides where the rules of unknown torch builds are cached.
CACHE_ENV: Final = "CKPTCOMPAT_CACHE_DIR"


class TorchNotInstalledError(CkptCompatError):
    """No torch here, and no `--torch` to predict for."""


def installed_rules() -> TorchRules:
    """The `weights_only` rules of the torch installed here, without `import torch` if known.

    From the table when it holds the installed build (the rules keep the full
    version, `2.13.0+cpu`); otherwise read from torch once and cached, with
    `provenance` saying so: what is read is data, and the few behaviours that
    are code follow the release constants (`releases`) of its major.minor.
    """
    found = installed("torch")
    if found is None:
        raise TorchNotInstalledError(
            "torch is not installed here; scan judges files against the installed torch "
            f"(or predict one with --torch, e.g. --torch {torch_table.known_versions()[-1]})"
        )
    if torch_table.holds(found.version):
        return dataclasses.replace(torch_table.rules_for(found.version), version=found.version)
    rules = cached_rules(found)
    return dataclasses.replace(rules, provenance=read_here(found.version, rules.release))


def read_here(version: str, release: tuple[int, int]) -> str:
    """What a scan says about rules read from an installed torch the table does not hold."""
    try:
        what = torch_table.what_build(version)
    except torch_table.UnknownTorchVersionError:  # no PEP 440 version: say it as it is
        what = "a build the rules table does not hold"
    # `from_installed` takes them from the release constants (`releases`) of its major.minor.
    like = f"release {release[0]}.{release[1]}" if release != (0, 0) else "the oldest torch"
    return (
        f"torch {version} is {what}: its allowlist, blocklist, opcodes and name mapping were "
        "read from it; the behaviours that are code, not data (BUILD and NEWOBJ targets, the "
        f"(obj, name) form, ...), are assumed to be those of {like}"
    )


def rules_cache_dir() -> Path:
    """Where the rules of torch builds the table does not know are cached.

    `$CKPTCOMPAT_CACHE_DIR` if set; else the user cache folder
    (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS,
    `%LOCALAPPDATA%` on Windows), under `pytest-ckptcompat/torch-rules`.
    """
    if override := os.environ.get(CACHE_ENV):
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pytest-ckptcompat" / "torch-rules"


def _cache_key(found: Installed) -> dict[str, object]:
    unpickler = Path(found.location) / "_weights_only_unpickler.py"
    try:
        info = unpickler.stat()
        stamp: list[int] = [info.st_size, info.st_mtime_ns]
    except OSError:
        stamp = []
    return {"version": found.version, "location": found.location, "unpickler": stamp}


def cache_path(found: Installed) -> Path:
    """The cache file of one installed torch build (version, folder and unpickler stamp)."""
    key = json.dumps(_cache_key(found), sort_keys=True).encode()
    import hashlib  # here: a scan of a known torch never needs it

    digest = hashlib.sha256(key).hexdigest()[:16]
    safe = re.sub(r"[^\w.+-]", "_", found.version)
    return rules_cache_dir() / f"torch-{safe}-{digest}.json"


def cached_rules(found: Installed) -> TorchRules:
    """The rules of an installed torch the table does not know: cached, or read once and cached."""
    path = cache_path(found)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") == _CACHE_FORMAT and doc.get("key") == _cache_key(found):
            return TorchRules.from_json(doc["rules"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache yet, or an unreadable one: read torch again
    try:
        rules = TorchRules.from_installed()
    except ImportError as exc:
        raise TorchNotInstalledError(f"torch is installed but cannot be imported ({exc})") from None
    doc = {"format": _CACHE_FORMAT, "key": _cache_key(found), "rules": rules.to_json()}
    try:
        from ..files import atomic_write

        atomic_write(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    except OSError:
        pass  # a read-only home: the rules are still right, just not cached
    return rules
