"""Differences between torch versions that the plugin's own calls into torch must bridge."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def safe_globals(entries: Sequence[Any]) -> Iterator[None]:
    """`torch.serialization.safe_globals(entries)` on every torch.

    2.5+ has the context manager; 2.4 only `add_safe_globals`, so the previous
    list is restored by hand (its `get_safe_globals` returns the live list:
    copy it); before 2.4 there is no allowlist at all and entries are ignored
    (the load then fails exactly as it would for the user).
    """
    import torch.serialization as ts

    if not entries or not hasattr(ts, "add_safe_globals"):
        yield
    elif hasattr(ts, "safe_globals"):
        with ts.safe_globals(list(entries)):
            yield
    else:
        before = list(ts.get_safe_globals())
        ts.add_safe_globals(list(entries))
        try:
            yield
        finally:
            ts.clear_safe_globals()
            ts.add_safe_globals(before)
