"""The environment tag (`torch2.6.0-numpy2.2.6-py3.11`) and the versions behind it."""

from __future__ import annotations

import platform
import re
import sys
from typing import Any

from .scan.releases import version_key


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(mod.__version__)


def environment() -> dict[str, Any]:
    """torch, numpy, python and platform of this process (imports torch and numpy)."""
    torch = _version("torch")
    numpy = _version("numpy")
    python = ".".join(map(str, sys.version_info[:2]))
    return {
        "tag": tag(torch, numpy, python),
        "torch": torch,
        "numpy": numpy,
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def tag(torch: str | None, numpy: str | None, python: str) -> str:
    """`torch2.13.0-numpy2.4.6-py3.11`: local build suffixes (`+cpu`) dropped."""
    parts = [f"torch{(torch or 'none').split('+')[0]}", f"numpy{numpy or 'none'}", f"py{python}"]
    return "-".join(parts)


_TAG = re.compile(r"^torch(?P<torch>[^-]+)-numpy(?P<numpy>[^-]+)-py(?P<python>[^-]+)$")


def parse_tag(text: str) -> dict[str, str] | None:
    """`torch2.5.1-numpy1.25.2-py3.11` -> torch 2.5.1, numpy 1.25.2, python 3.11 (or None)."""
    m = _TAG.match(text)
    return m.groupdict() if m else None


def tag_key(tag: str) -> tuple[Any, ...]:
    """Sort environment tags by torch, then numpy, then python version (not as strings)."""
    parts = parse_tag(tag)
    if parts is None:
        return ((), (), (), tag)
    return (*(version_key(parts[k]) for k in ("torch", "numpy", "python")), tag)
