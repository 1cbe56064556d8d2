"""Scan verdict versus the real `torch.load(weights_only=True)`, in any environment.

    python tests/agreement.py FILE...      # prints one JSON object: file -> result
    python tests/agreement.py --oracle --predict 2.5.1 --numpy 1.25.2 FILE...
    python tests/agreement.py --write-corpus DIR   # saves the corpus here, prints the paths

Run by the tests with this environment's python and with the old one
(`old_python`: torch 2.5.1, numpy 1.25.2), so a corpus is checked against
every torch the tests install. Each result holds what torch did (`loads`,
and the error's first line) and what the scan says (`loadable`, `main`: the
member it judged, `problems`). Only benign test files are ever given to it.

`--oracle` adds `truth`: every blocking name torch reports when each is
allowlisted in turn (`ckpt_corpus.torch_truth`), and `truth_allowed`: whether
the file then loads with exactly those names allowlisted. `--predict TORCH
--numpy NUMPY` (repeatable, in pairs) adds `predicted["TORCH+NUMPY"]`: what
this environment's scanner predicts for that other torch and numpy (from the
rules tables), including, under `predicted_allowed`, with the names of
`--allow-from` (a JSON file: path -> names) allowlisted. `--write-corpus DIR`
saves the corpus of `ckpt_corpus` here (protocols 2 and 4), so another
environment can judge what this one writes. `disagreements` compares one
environment's predictions with another's measurements.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path


def main(
    paths: list[str],
    *,
    oracle: bool = False,
    predict: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
    allow_from: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, object]]:
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
                first = (str(exc).splitlines() or [""])[0]
                result["error"] = f"{type(exc).__name__}: {first[:200]}"
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
        if oracle:
            from ckpt_corpus import torch_truth

            truth = torch_truth(path)
            result["truth"] = {
                "loadable": truth.loadable,
                "blocked": truth.blocked,
                "error": truth.error,
            }
            if truth.blocked and truth.error is None:
                result["truth_allowed"] = torch_truth(path, truth.blocked).loadable
        if predict:
            result["predicted"] = {}
            result["predicted_allowed"] = {}
            needed = (allow_from or {}).get(path)
            for torch_version, numpy_version in predict:
                key = f"{torch_version}+{numpy_version}"
                result["predicted"][key] = _predicted(path, torch_version, numpy_version, [])  # type: ignore[index]
                if needed:
                    result["predicted_allowed"][key] = _predicted(  # type: ignore[index]
                        path, torch_version, numpy_version, needed
                    )
        out[path] = result
    return out


def _predicted(path: str, torch: str, numpy: str | None, allow: list[str]) -> dict[str, object]:
    """The scanner's prediction for another torch (and numpy), from the rules tables."""
    from pytest_ckptcompat.scan.predict import predict_file, reader_numpy

    prediction = predict_file(path, [torch], numpy=reader_numpy(numpy), allowlist=allow)
    scan = prediction.scans[torch]
    verdict = prediction.verdict(torch)
    return {
        "torch": torch,
        "numpy": prediction.numpy,
        "loadable": scan.loadable,
        "error": scan.error,
        "blocked": verdict["blocked"],
        "missing": verdict["missing"],
        "obstacles": [o["message"] for o in verdict["obstacles"]],
    }


def _py3(name: str) -> str:
    return name.replace("__builtin__.", "builtins.", 1)


def disagreements(
    predicted_by: dict[str, dict[str, object]], measured: dict[str, dict[str, object]], key: str
) -> list[str]:
    """Where one environment's predictions (`key`: `TORCH+NUMPY`) differ from another's truth.

    For every file: the verdict must equal whether torch loaded it; where the
    oracle ran, the blocking names (blocked or missing) must be the ones torch
    named (a subset, with an obstacle or a missing name, when torch then
    failed for another reason); and with those names allowlisted, the verdict
    must again equal torch's.
    """
    wrong = []
    for path, mine in predicted_by.items():
        real = measured[path]
        pred = mine["predicted"][key]  # type: ignore[index]
        name = "/".join(Path(path).parts[-2:])
        if pred["loadable"] != real["loads"]:
            wrong.append(
                f"{name}: predicted loadable={pred['loadable']} ({pred['blocked']}, "
                f"{pred['missing']}, {pred['obstacles']}); torch {real['torch']}: "
                f"{real['error'] or 'loads'}"
            )
            continue
        truth = real.get("truth")
        if not isinstance(truth, dict):
            continue
        names = {_py3(n) for n in [*pred["blocked"], *pred["missing"]]}
        found = {_py3(n) for n in truth["blocked"]}
        # Where the oracle cannot allowlist, it stops at the first name: torch < 2.4
        # has no allowlist, and torch 2.4 keys an object by its own module, so a
        # numpy-1 spelling under numpy 2 stays refused (the printed snippet's alias
        # fixes that; the oracle has none).
        error = _py3(truth["error"] or "")
        refused_again = "no allowlist API" in error or any(n in error for n in found)
        if truth["error"] is None and names != found:
            wrong.append(f"{name}: predicted {sorted(names)}, torch needed {sorted(found)}")
        elif truth["error"] is not None and not (
            found <= names and (pred["obstacles"] or pred["missing"] or refused_again)
        ):
            wrong.append(
                f"{name}: predicted {sorted(names)} {pred['obstacles']}, torch needed "
                f"{sorted(found)} then failed: {truth['error']}"
            )
        allowed = (mine.get("predicted_allowed") or {}).get(key)  # type: ignore[attr-defined]
        if "truth_allowed" in real and allowed and allowed["loadable"] != real["truth_allowed"]:
            wrong.append(
                f"{name}: with {truth['blocked']} allowlisted, predicted "
                f"loadable={allowed['loadable']}, torch: {real['truth_allowed']}"
            )
    return wrong


def write_corpus(folder: str) -> list[str]:
    """Save every corpus case with protocols 2 and 4 under `folder`; the paths written."""
    from ckpt_corpus import CASES, save_case

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for case in CASES:
        obj = case.make()
        for protocol in (2, 4):
            path = root / f"{case.id}-p{protocol}.pt"
            save_case(obj, path, protocol)
            written.append(str(path))
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--oracle", action="store_true")
    parser.add_argument("--predict", action="append", default=[])
    parser.add_argument("--numpy", action="append", default=[])
    parser.add_argument("--allow-from")
    parser.add_argument("--write-corpus")
    args = parser.parse_args()
    if args.write_corpus:
        print(json.dumps(write_corpus(args.write_corpus)))
    else:
        allow = json.loads(Path(args.allow_from).read_text()) if args.allow_from else None
        print(
            json.dumps(
                main(
                    args.paths,
                    oracle=args.oracle,
                    predict=list(zip(args.predict, args.numpy, strict=True)),
                    allow_from=allow,
                )
            )
        )
