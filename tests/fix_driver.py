"""Follow the scan's printed fix for real, in any environment, and report what torch did.

    python tests/fix_driver.py [--first-party PKG] [--no-load PATH]... FILE...

For each file: run `ckptcompat scan` (its `main()`, in this process) and take
exactly what it prints as the fix: the `ckpt_compat_safe_globals` entries and
the allowlist snippet (`scan/snippet.py`). Then, in three modes,

- `none`: no allowlist at all;
- `printed`: exec the printed code (nothing when nothing is printed);
- `per-name`: the code the per-name advice would print if the file were not
  called dangerous (`fixes.render` of every blocked name): what a user gets
  when the danger list misses a payload, so it must not open a door either;

register it for real, `torch.load(weights_only=True)` the file, read every
value it returns (repr, numpy fields), and clear the allowlist again. The scan
is also asked whether the file loads with the printed entries (`--safe-global`).
Prints one JSON object: file -> result. Progress goes to stderr, so a load
that kills the process (a segfault) names its file.

Files given with `--no-load` are scanned but never loaded (torch itself runs
them, whatever the allowlist: see `advisory_corpus.Case.torch_runs`); files
given with `--no-per-name` skip the `per-name` mode (their danger is in values
no name reveals: only the scan's detector stands between them and a crash).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import textwrap
import warnings

ALLOWLIST_HEAD = "or allowlist it, in pytest's ini (ckpt_compat_safe_globals):"
CODE_HEAD = "and where your code calls torch.load (torch >= 2.4, numpy 1 and 2):"
CODE_END = "allow_checkpoint_globals()"  # the snippet's last line: it registers the list


def parse_fix(text: str) -> tuple[list[str], str]:
    """The ini entries and the Python code of a printed fix ((), "" when none is printed)."""
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() == ALLOWLIST_HEAD]
    if not heads:
        return [], ""
    start = heads[0] + 1
    code_at = next(i for i in range(start, len(lines)) if lines[i].strip() == CODE_HEAD)
    entries = [line.strip() for line in lines[start:code_at]]
    end = next(i for i in range(code_at, len(lines)) if lines[i].strip() == CODE_END)
    code = textwrap.dedent("\n".join(lines[code_at + 1 : end + 1]))
    return entries, code


def _touch(value: object, depth: int = 0) -> None:
    """Read every value a load returned, the way code using it would."""
    if depth > 20:
        return
    repr(value)
    if isinstance(value, dict):
        for k, v in value.items():
            _touch(k, depth + 1)
            _touch(v, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _touch(v, depth + 1)
    elif type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None:
        names = value.dtype.names or ()  # type: ignore[attr-defined]
        for name in names:
            repr(value[name].tolist())  # type: ignore[index]


def _load(path: str, code: str) -> dict[str, object]:
    import torch

    namespace: dict[str, object] = {}
    try:
        exec(code, namespace)  # the printed fix, as the user pastes it
        loaded = torch.load(path, weights_only=True)
        _touch(loaded)
        return {"loads": True, "error": ""}
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        return {"loads": False, "error": f"{type(exc).__name__}: {first}"}
    finally:
        torch.serialization.clear_safe_globals()


def _scan(args: list[str]) -> tuple[int, str, str]:
    from pytest_ckptcompat.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["scan", "--no-project-config", *args])
    return code, out.getvalue(), err.getvalue()


def per_name_fix(path: str, first_party: frozenset[str]) -> tuple[list[str], str, list[str]]:
    """What the per-name advice would print for every blocked name, and the dangers' notes."""
    from pytest_ckptcompat.scan.fixes import fix_for, render
    from pytest_ckptcompat.scan.rules import TorchRules
    from pytest_ckptcompat.scan.scanner import scan_file

    rules = TorchRules.from_installed()
    scan = scan_file(path, rules)
    if scan.verdict is None:
        return [], "", []
    notes = [f"{r.name}: {r.note}" for r in scan.verdict.requirements if r.dangerous]
    entries, code = parse_fix(render(fix_for(r, first_party) for r in scan.verdict.troubles))
    return entries, code, notes


def main(argv: list[str]) -> dict[str, dict[str, object]]:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--first-party", action="append", default=[])
    parser.add_argument("--no-load", action="append", default=[])
    parser.add_argument("--no-per-name", action="append", default=[])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    party = [f"--first-party={p}" for p in args.first_party]
    out: dict[str, dict[str, object]] = {}
    for path in args.paths:
        print(f"fix_driver: {path}", file=sys.stderr, flush=True)
        code, text, err = _scan([*party, path])
        entries, fix_code = parse_fix(text)
        result: dict[str, object] = {
            "torch": torch.__version__,
            "exit": code,
            "stderr": err,
            "first_line": (text.splitlines() or [""])[0],
            "entries": entries,
            "code": fix_code,
        }
        with_entries = _scan(["--json", *party, *(f"--safe-global={e}" for e in entries), path])
        records = json.loads(with_entries[1])["files"] if with_entries[1] else []
        result["loadable_with_entries"] = records[0]["loadable"] if records else None
        result["per_name_entries"], per_name_code, result["dangers"] = per_name_fix(
            path, frozenset(args.first_party)
        )
        if path not in args.no_load:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result["none"] = _load(path, "")
                result["printed"] = _load(path, fix_code)
                if path not in args.no_per_name:
                    result["per-name"] = _load(path, per_name_code)
        out[path] = result
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
