"""Scan verdict versus the real `torch.load(weights_only=True)`, in any environment.

    python tests/agreement.py FILE...      # prints one JSON object: file -> result

Run by the tests with this environment's python and with the old one
(`old_python`: torch 2.5.1, numpy 1.25.2), so a corpus is checked against
every torch the tests install. Each result holds what torch did (`loads`,
and the error's first line) and what the scan says (`loadable`, `main`: the
member it judged, `problems`). Only benign test files are ever given to it.
"""

from __future__ import annotations

import json
import sys
import warnings


def main(paths: list[str]) -> dict[str, dict[str, object]]:
    import torch

    from pytest_ckptcompat.scan.container import open_checkpoint
    from pytest_ckptcompat.scan.rules import TorchRules
    from pytest_ckptcompat.scan.scanner import scan_file

    rules = TorchRules.from_installed()
    out: dict[str, dict[str, object]] = {}
    for path in paths:
        result: dict[str, object] = {"torch": torch.__version__}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                loaded = torch.load(path, weights_only=True)
                result["loads"], result["error"] = True, ""
                # The test files mark which member torch unpickled: {"which": n}.
                result["which"] = loaded.get("which") if isinstance(loaded, dict) else None
            except Exception as exc:
                result["loads"] = False
                result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        scan = scan_file(path, rules)
        result["loadable"] = scan.loadable
        result["scan_error"] = scan.error
        result["reasons"] = scan.reasons() if not scan.loadable else []
        try:
            ckpt = open_checkpoint(path)
            result["main"] = next((b.member for b in ckpt.pickles if b.main), None)
            main = next((b for b in ckpt.pickles if b.main), None)
            result["main_bytes"] = bytes(main.data).hex() if main else None
        except Exception as exc:  # reported through scan_error too
            result["main"] = f"<{exc}>"
        out[path] = result
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
