"""The offline tables, JSON files beside this module (`scripts/` regenerates them).

- `torch_rules.json`: every torch release's `weights_only` rules (`scan.torch_table`);
- `numpy_names.json`: which names each numpy release has (`scan.numpy_table`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any


@functools.cache
def table(name: str) -> dict[str, Any]:
    """The table in file `name`, as stored, read once per process.

    From this folder, or through importlib.resources where the package is
    installed zipped (no folder to read from).
    """
    path = Path(__file__).with_name(name)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:  # pragma: no cover - a zipped install
        from importlib import resources

        text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    found: dict[str, Any] = json.loads(text)
    return found
