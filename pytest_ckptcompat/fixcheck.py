"""Prove a printed fix: run the allowlist snippet, then load every golden with plain torch.

`ckptcompat check-fix SNIPPET GOLDENS_DIR` runs in one reader environment
(a matrix cell): it executes the snippet exactly as a user would paste it
(our own generated code, never a checkpoint), then loads each stored golden
with `torch.load(weights_only=True)`: no plugin, no other allowlist. The
result (`ckptcompat.fixcheck/1`, one per reader) says which goldens the fix
made load and, for the rest, torch's own reason; `ckptcompat report` merges
them into "fix verified on N/N readers".
"""

from __future__ import annotations

import datetime
import io
import warnings
from pathlib import Path

from . import schemas
from .environment import environment
from .errors import CkptCompatError
from .golden import GoldenStore
from .scan.snippet import digest
from .schemas import FixCheckDoc, FixCheckResult


def check_fix(snippet: Path, goldens: Path) -> FixCheckDoc:
    """Apply `snippet`, then load every golden under `goldens` with torch's weights_only loader."""
    import torch

    from .outcomes import torch_says

    try:
        code = snippet.read_text(encoding="utf-8")
    except OSError as exc:
        raise CkptCompatError(f"{snippet}: cannot read ({exc.strerror or exc})") from None
    # Our own generated code, as the user pastes it: it registers the allowlist.
    exec(compile(code, str(snippet), "exec"), {"__name__": "ckptcompat_fix"})
    store = GoldenStore(goldens)
    results: list[FixCheckResult] = []
    for artifact in store.artifacts():
        for golden in store.goldens(artifact):
            if golden.format == "safetensors":
                continue  # no pickle: nothing an allowlist changes
            try:
                data = golden.read_verified()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
                loads, error = True, ""
            except Exception as exc:  # torch's refusal (or a corrupt golden) is the finding
                loads, error = False, torch_says(exc)
            results.append(
                {"artifact": artifact, "writer": golden.writer, "loads": loads, "error": error}
            )
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {
        "schema": schemas.FIXCHECK,
        "created": now,
        "reader": dict(environment()),
        "snippet_sha256": digest(code),
        "results": results,
    }
