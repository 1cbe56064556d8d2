"""The `ckptcompat` command (also `python -m pytest_ckptcompat`).

Exit codes, for every subcommand: 0 fine, 1 an incompatibility was found,
2 bad usage or unreadable input (one line on stderr, naming the file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import CkptCompatError
from .options import SAFE_GLOBALS_INI

if TYPE_CHECKING:
    from .scan.allowlist import Allowlist
    from .scan.numpy_reader import ReaderNumpy

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage + message and exits 2; keep it to one line.
        self.exit(EXIT_USAGE, f"ckptcompat: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ckptcompat`."""
    parser = _Parser(
        prog="ckptcompat",
        description="Serialization compatibility of PyTorch checkpoints under "
        "torch.load(weights_only=True).",
        epilog="Exit codes, for every command: 0 fine, 1 an incompatibility, difference or "
        "regression was found, 2 bad usage or unreadable input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Not `required`: a bare `ckptcompat` prints this help (main), not an argparse error.
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    scan = sub.add_parser(
        "scan",
        help="which globals a checkpoint needs and whether it loads here (never executes it)",
        description="Statically scan checkpoints: every global they name, its status under the "
        "torch installed here (allowed / allowed-user / blocked / missing), whether it can run "
        "code, and a loadable verdict. Nothing is unpickled. A .safetensors file holds no "
        "pickle: its header is validated and it is reported as such. A directory is searched "
        "recursively for checkpoint files; configuration files are skipped and counted. Exit 0 "
        "when every file is loadable, 1 when one is not, 2 when one cannot be read.",
    )
    scan.add_argument(
        "paths", nargs="+", metavar="PATH", help="checkpoint files, or directories (recursive)"
    )
    scan.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text (default), json (ckptcompat.scan/1) or sarif (SARIF 2.1.0 for GitHub code "
        "scanning: one result per blocked, missing or dangerous global, the file as location)",
    )
    scan.add_argument(
        "--json", action="store_const", const="json", dest="format", help="same as --format json"
    )
    _include_option(scan)
    scan.add_argument(
        "--safe-global",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="allowlist a global as your code does with add_safe_globals (repeatable)",
    )
    scan.add_argument(
        "--no-project-config",
        action="store_true",
        help=f"ignore the {SAFE_GLOBALS_INI} ini key of the pytest configuration found here",
    )
    scan.add_argument(
        "--torch",
        metavar="SPEC",
        help="predict for torch releases that need not be installed, from the rules table: a "
        "version (2.6), a list (2.4,2.6), a range (>=2.4 or >=2.4,<2.9) or all; one release "
        "prints the same report as a scan under it, several one line per file "
        "(--json: ckptcompat.predict/1)",
    )
    scan.add_argument(
        "--numpy",
        metavar="VERSION",
        help="the reader's numpy for the prediction (1.23-2.4, or none; default: the numpy "
        "installed here)",
    )
    scan.add_argument(
        "--first-party",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="a top-level package whose classes advice may suggest allowlisting (default: the "
        "packages and modules beside the project's pytest configuration, and under src/)",
    )
    show = sub.add_parser(
        "show",
        help="what a checkpoint holds: keys, tensors (dtype, shape, bytes), values; never runs it",
        description="Show what checkpoints hold, statically: the tree of keys; each tensor's "
        "dtype, shape, number of elements and bytes, and the storages tensors share; each other "
        "value's type and, for constants, its value; totals per dtype. torch zip and legacy "
        "files, plain pickles and .safetensors (whose header is validated as safetensors does). "
        "Nothing is unpickled and no tensor byte is read; globals that can run code are marked. "
        "Exit 0 when every file was shown, 2 when one cannot be read.",
    )
    show.add_argument(
        "paths", nargs="+", metavar="PATH", help="checkpoint files, or directories (recursive)"
    )
    show.add_argument("--json", action="store_true", help="print ckptcompat.show/1 JSON")
    show.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="show nesting up to N levels (default 32; 0 for no limit)",
    )
    _include_option(show)
    diff = sub.add_parser(
        "diff",
        help="missing/unexpected keys, shapes, dtypes between two checkpoints; never runs them",
        description="Compare two checkpoints' state dicts statically, in the words of "
        "load_state_dict(strict=True) with B as the checkpoint and A as the model: missing and "
        "unexpected keys, size mismatches, dtype changes and storage sharing, after a one-line "
        "summary. Either side may be a torch file, a .safetensors file or a directory of shards. "
        "Nothing is unpickled unless --values is given, and then only with "
        "torch.load(weights_only=True) or safetensors. Exit 0 when they are the same, 1 when "
        "they differ, 2 when one cannot be read.",
    )
    diff.add_argument("a", metavar="A", help="the reference (the model's side)")
    diff.add_argument("b", metavar="B", help="the other (the checkpoint's side)")
    diff.add_argument(
        "--key",
        metavar="KEY",
        help="the state dict's key in both files (`state_dict`, `model.ema`; default: the root "
        "when it is a state dict, else its `state_dict` entry, else every tensor by path)",
    )
    diff.add_argument(
        "--strip-prefix",
        action="append",
        default=[],
        metavar="PREFIX",
        help="remove this prefix from keys that have it, on both sides (`module.`; repeatable)",
    )
    diff.add_argument(
        "--values",
        action="store_true",
        help="also compare tensor values: loads both with torch.load(weights_only=True) or "
        "safetensors",
    )
    diff.add_argument("--json", action="store_true", help="print ckptcompat.diff/1 JSON")
    lint = sub.add_parser(
        "lint",
        help="find torch.load calls that do not pass weights_only=True (static, never imports)",
        description="Statically find calls to torch.load / torch.serialization.load (and their "
        "aliases) that omit weights_only (CKC001), pass weights_only=False (CKC002), pass a "
        "non-literal (CKC003, check it) or pass pickle_module (CKC004). Files are parsed, never "
        "imported. Directories are searched for *.py, skipping VCS, virtualenv and build "
        "directories. Exit 0 when nothing is found, 1 when something is, 2 when a path cannot "
        "be read or parsed.",
    )
    lint.add_argument("paths", nargs="+", metavar="PATH", help="Python files or directories")
    lint.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="text (default), json (ckptcompat.lint/1), github (workflow annotations) or sarif "
        "(SARIF 2.1.0 for GitHub code scanning)",
    )
    lint.add_argument(
        "--json", action="store_const", const="json", dest="format", help="same as --format json"
    )
    lint.add_argument(
        "--config",
        metavar="PYPROJECT",
        help="read [tool.ckptcompat.lint] from this file (default: the nearest pyproject.toml "
        "with that table, from the current directory up)",
    )
    lint.add_argument(
        "--no-config", action="store_true", help="ignore [tool.ckptcompat.lint]: every code"
    )
    lint.add_argument(
        "--select",
        action="append",
        metavar="CODES",
        help="report only these codes or prefixes (comma-separated; replaces the file's select)",
    )
    lint.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODES",
        help="do not report these codes or prefixes (comma-separated; added to the file's)",
    )
    lint.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when something is found (2 still means unreadable input)",
    )
    report = sub.add_parser(
        "report",
        help="merge the version matrix's cell reports (markdown, html, json, junit)",
        description="Merge cell reports (ckptcompat.report/1, one per reader environment, as "
        "`pytest --ckpt-compat --ckpt-compat-report FILE` writes them) into matrix.md, "
        "matrix.html, matrix.json (ckptcompat.matrix/1) and junit.xml: a global x reader table "
        "with the fix beside each blocked global, each cell's status, the project's tests and "
        "torch.load call sites per reader, and a writer x reader grid per artifact. Given the "
        "goldens (--goldens, or the matrix file's), it adds predicted columns for the torch "
        "releases between the installed ones, and checks every real golden load against its "
        "prediction. Prints the cells and the globals table. Exit 0 once written (findings "
        "are data; `ckptcompat gate` decides), 1 when a prediction disagrees with a real load "
        "(a bug of ours: the outputs are written), 2 on a bad report.",
    )
    report.add_argument(
        "reports",
        nargs="*",
        metavar="CELL_REPORT",
        help="cell report JSON files: each cell's read phase (<tag>.json) and, from a matrix "
        "run, its write phase (<tag>.write.json)",
    )
    report.add_argument(
        "--out", default="matrix/report", metavar="DIR", help="output folder (default: %(default)s)"
    )
    report.add_argument(
        "--matrix",
        metavar="MATRIX_TOML",
        help="the matrix file: each of its cells is expected, and one without a report is "
        "shown (and gated) as crashed; its goldens folder is the default of --goldens",
    )
    report.add_argument(
        "--goldens",
        metavar="DIR",
        help="the goldens the cells read: predicted columns for the torch releases the matrix "
        "did not install, and each real load checked against its prediction",
    )
    gate = sub.add_parser(
        "gate",
        help="fail on loads that broke: against a baseline, or for an upgrade",
        description="Exit 1 when something that loaded no longer does. With --baseline: every "
        "(artifact, writer, reader) that was ok and is not now, every global that turned "
        "from allowed to blocked or missing, every project test that passed and fails now, "
        "every torch.load call site that went through and raises now, and every load of a "
        "predicted torch release (not installed) that was predicted ok and is predicted to "
        "fail now (fixed ones are reported as good news). With --current/--candidate: what "
        "loads, passes or goes through under the current environment and not under the "
        "candidate, named by file:line; the candidate may be a predicted reader (reading only). "
        "Both fail on a crashed cell. --write-baseline writes the baseline from MATRIX_JSON, "
        "and refuses (exit 2, nothing written) a matrix with a crashed cell, a partial run, a "
        "failing project test, a printed fix not proved in every reader, or a prediction that "
        "disagrees with a real load.",
    )
    gate.add_argument("matrix", metavar="MATRIX_JSON", help="matrix.json from `ckptcompat report`")
    mode = gate.add_mutually_exclusive_group(required=True)
    mode.add_argument("--baseline", metavar="FILE", help="compare with this baseline")
    mode.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="write the baseline and exit 0 (exit 2, nothing written, when the matrix cannot "
        "vouch for itself)",
    )
    mode.add_argument("--current", metavar="TAG", help="the reader you run now (or a unique part)")
    gate.add_argument(
        "--candidate",
        metavar="TAG",
        help="the reader you want to upgrade to (or a unique part): installed, or predicted",
    )
    check_fix = sub.add_parser(
        "check-fix",
        help="apply the matrix's allowlist snippet here and load every golden with plain torch",
        description="Execute SNIPPET (the safe_globals.py `ckptcompat report` writes, or any "
        "allowlist code you would paste), then load every golden under GOLDENS with "
        "torch.load(weights_only=True) and nothing else. Writes ckptcompat.fixcheck/1 JSON "
        "(give it to `ckptcompat report` with the cell reports). Exit 0 when every golden "
        "loads, 1 when one does not, 2 on bad input.",
    )
    check_fix.add_argument("snippet", metavar="SNIPPET", help="the allowlist code (a .py file)")
    check_fix.add_argument("goldens", metavar="GOLDENS", help="the golden directory")
    check_fix.add_argument("--out", metavar="FILE", help="write the JSON here (default: stdout)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    A reader that leaves early (`ckptcompat scan ... | head`) ends the command
    quietly with 0: no traceback, and not 1, which means "found".
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe may show only here, not while printing
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    return code


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's last flush cannot fail a second time."""
    import contextlib

    # ValueError/OSError: no real file descriptor (stdout replaced in-process).
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # A bare `ckptcompat` asks what it can do: the help, with the usage exit code
        # (as ruff and uv do), since no command ran.
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "lint":
            return _lint(args)
        if args.command == "show":
            return _show(args)
        if args.command == "diff":
            return _diff(args)
        if args.command == "report":
            return _report(args)
        if args.command == "gate":
            return _gate(args)
        if args.command == "check-fix":
            return _check_fix(args)
    except CkptCompatError as exc:
        print(f"ckptcompat: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(args.command)  # pragma: no cover - argparse enforces the choices


def _project(args: argparse.Namespace) -> tuple[list[str], frozenset[str]]:
    """The allowlist (options and the project's ini) and the project's first-party packages."""
    from .project_config import find_ini, first_party_packages, ini_lines
    from .scan.allowlist import parse_entries

    names = parse_entries(args.safe_global, "--safe-global")
    root = Path.cwd()
    if not args.no_project_config and (found := find_ini()):
        path, section = found
        names += parse_entries(ini_lines(section, SAFE_GLOBALS_INI), f"{path} ({SAFE_GLOBALS_INI})")
        root = path.parent
    first_party = frozenset(args.first_party)
    if not args.no_project_config:
        first_party |= first_party_packages(root)
    return names, first_party


def _scan(args: argparse.Namespace) -> int:
    # No `import torch` (seconds) and no `import numpy`: the rules tables answer
    # for the installed versions, read from their package metadata.
    from .scan.allowlist import Allowlist
    from .scan.machine import TypeResolver
    from .scan.predict import reader_numpy, select_torch

    names, first_party = _project(args)
    numpy = reader_numpy(args.numpy)
    allowlist = Allowlist.for_reader(names, numpy)
    found = _checkpoint_paths(args)
    if args.torch is not None:
        selection = select_torch(args.torch)
        if not selection.single:
            if args.format == "sarif":
                raise CkptCompatError(
                    "scan: --format sarif judges one torch release; give --torch one version"
                )
            return _scan_many(args, found, selection.versions, numpy, allowlist)
        from .scan import torch_table

        rules = torch_table.rules_for(selection.versions[0])
    else:
        from .scan.torch_reader import installed_rules

        rules = installed_rules()
    from . import schemas
    from .scan.scanner import FileScan, scan_file

    predicted = args.torch is not None or args.numpy is not None
    types = TypeResolver(numpy)
    results = [
        scan_file(path, rules, allowlist, types=types)
        if error is None
        else FileScan(str(path), error=error)
        for path, error in found.entries
    ]
    if args.format in ("json", "sarif"):
        doc: schemas.ScanDoc = {
            "schema": schemas.SCAN,
            "torch": rules.version,
            "numpy": numpy.version,
            "files": [r.to_json() for r in results],
        }
        if predicted:
            doc["predicted"] = True
        if found.directories:
            doc["skipped"] = dict(found.skipped)
        if args.format == "sarif":
            from .sarif import scan_log

            print(json.dumps(scan_log(doc), indent=2))
        else:
            print(json.dumps(doc, indent=2))
    else:
        from .scan.text import scan_text

        reader = None
        if predicted:
            reader = f"torch {rules.version} (predicted, {_numpy_words(numpy.version)})"
        print(scan_text(results, rules, first_party, reader=reader))
        if found.directories:
            print(_searched_line(found, len(results)))
    return _scan_exit([(r.error, r.loadable) for r in results])


def _scan_exit(results: Sequence[tuple[str | None, bool]]) -> int:
    """Print unreadable files on stderr; the exit code of `scan` for (error, loadable) pairs."""
    for error, _ in results:
        if error:
            print(f"ckptcompat: error: {error}", file=sys.stderr)
    if any(error for error, _ in results):
        return EXIT_USAGE
    return EXIT_OK if all(loadable for _, loadable in results) else EXIT_FOUND


def _scan_many(
    args: argparse.Namespace,
    found: Any,
    versions: Sequence[str],
    numpy: ReaderNumpy,
    allowlist: Allowlist,
) -> int:
    from . import schemas
    from .scan.predict import Prediction, predict_file
    from .scan.scanner import FileScan

    def unusable(path: Path, error: str) -> Prediction:  # the same for every release
        return Prediction(
            str(path), numpy.version, {v: FileScan(str(path), error=error) for v in versions}
        )

    results = [
        predict_file(path, versions, numpy=numpy, allowlist=allowlist)
        if error is None
        else unusable(path, error)
        for path, error in found.entries
    ]
    if args.format == "json":
        doc: schemas.PredictDoc = {
            "schema": schemas.PREDICT,
            "predicted": True,
            "torch": list(versions),
            "numpy": numpy.version,
            "files": [r.to_json() for r in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        for result in results:
            if not result.error:  # reported on stderr
                print(result.summary())
        if found.directories:
            print(_searched_line(found, len(results)))
    return _scan_exit([(r.error, r.loadable_everywhere) for r in results])


def _numpy_words(version: str | None) -> str:
    return f"numpy {version}" if version else "no numpy"


def _include_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="in directories, read files matching this glob (repeatable; default: checkpoint "
        "extensions .pt .pth .bin .ckpt .safetensors .pkl ...)",
    )


def _checkpoint_paths(args: argparse.Namespace) -> Any:
    """The files to read in order, directories expanded (`Found.entries`)."""
    from .scan.discover import find_checkpoints

    return find_checkpoints(args.paths, args.include)


def _searched_line(found: Any, count: int) -> str:
    folders = ", ".join(str(d) for d in found.directories)
    skipped = found.skipped_text()
    return f"{count} file(s) read under {folders}" + (f"; {skipped}" if skipped else "")


def _show(args: argparse.Namespace) -> int:
    # No torch import: showing a file is reading it, statically.
    from . import schemas
    from .scan.inventory import open_inventory
    from .scan.show import DEFAULT_DEPTH, error_json, prepare, show_json, show_text

    depth = DEFAULT_DEPTH if args.depth is None else (args.depth or None)
    found = _checkpoint_paths(args)
    records = []
    texts = []
    errors = []
    for path, problem in found.entries:
        try:
            if problem is not None:
                raise CkptCompatError(problem)
            shown = prepare(open_inventory(path), depth)
        except CkptCompatError as exc:
            errors.append(str(exc))
            records.append(error_json(str(path), str(exc)))
            continue
        if args.json:  # one rendering: the other costs a second pass over big files
            records.append(show_json(shown))
        else:
            texts.append(show_text(shown))
    if args.json:
        print(json.dumps({"schema": schemas.SHOW, "files": records}, indent=2))
    else:
        print("\n\n".join(texts))
        if found.directories:
            print(_searched_line(found, len(found.files)))
    for error in errors:
        print(f"ckptcompat: error: {error}", file=sys.stderr)
    return EXIT_USAGE if errors else EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    # No torch import unless --values: the comparison is static.
    from .diff import run_diff

    return run_diff(args)


def _lint(args: argparse.Namespace) -> int:
    # Deliberately no torch import: linting must work (and be fast) without it.
    from . import lintformat
    from .lint import CODES, lint_paths
    from .lintconfig import find_config, load_config

    if args.no_config:
        path = None
    elif args.config:
        path = Path(args.config)
    else:
        path = find_config()
    config = load_config(path, CODES).with_codes(
        [c for v in args.select for c in v.split(",")] if args.select else None,
        [c for v in args.ignore for c in v.split(",")],
        CODES,
    )
    result = lint_paths(args.paths, config)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    elif args.format == "sarif":
        from .sarif import lint_log

        print(json.dumps(lint_log(result), indent=2))
    elif args.format == "github":
        if result.findings or result.errors:
            print(lintformat.github(result))
    else:
        print(lintformat.text(result))
    for error in result.errors:
        print(f"ckptcompat: error: {error}", file=sys.stderr)
    if result.errors:
        return EXIT_USAGE
    return EXIT_FOUND if result.findings and not args.exit_zero else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    # No torch import: merging runs anywhere, e.g. in a CI job without torch.
    from .files import atomic_write
    from .matrix.merge import fix_verified_line, merge_reports
    from .matrix.render import SNIPPET_FILE, console, html_page, junit, markdown

    expect: list[str] = []
    goldens = args.goldens
    if args.matrix:
        from .matrix.config import load_matrix

        matrix = load_matrix(args.matrix)
        expect = matrix.tags
        goldens = goldens or matrix.goldens
    elif not args.reports:
        raise CkptCompatError("report: give cell reports, or --matrix (or both)")
    doc = merge_reports((Path(p) for p in args.reports), expect, Path(goldens) if goldens else None)
    disagreements: list[str] = []
    if "predicted" in doc:
        from .matrix.predicted import disagreement_lines

        disagreements = disagreement_lines(doc["predicted"])
    out = Path(args.out)
    outputs = {
        "matrix.md": markdown(doc),
        "matrix.html": html_page(doc),
        "matrix.json": json.dumps(doc, indent=2) + "\n",
        "junit.xml": junit(doc),
    }
    if doc["fix"]["snippet"]:
        # The allowlist every reader gets; `ckptcompat check-fix` applies it in a reader.
        outputs[SNIPPET_FILE] = doc["fix"]["snippet"] + "\n"
    else:
        (out / SNIPPET_FILE).unlink(missing_ok=True)  # an earlier run's: not this report's fix
    for name, text in outputs.items():
        atomic_write(out / name, text.encode("utf-8"))
    print(f"{console(doc)}\n{fix_verified_line(doc)}")
    print(f"\nwrote {', '.join(str(out / n) for n in outputs)}")
    for line in disagreements:  # the tables or the scan are wrong: ours to fix, loudly
        print(f"ckptcompat: {line}", file=sys.stderr)
    return EXIT_FOUND if disagreements else EXIT_OK


def _check_fix(args: argparse.Namespace) -> int:
    from .files import atomic_write
    from .fixcheck import check_fix

    doc = check_fix(Path(args.snippet), Path(args.goldens))
    failed = [r for r in doc["results"] if not r["loads"]]
    text = json.dumps(doc, indent=2) + "\n"
    if args.out:
        atomic_write(Path(args.out), text.encode("utf-8"))
    else:
        print(text, end="")
    print(
        f"check-fix {doc['reader']['tag']}: {len(doc['results']) - len(failed)} of "
        f"{len(doc['results'])} goldens load with {args.snippet} applied",
        file=sys.stderr,
    )
    return EXIT_FOUND if failed else EXIT_OK


def _gate(args: argparse.Namespace) -> int:
    from .errors import ReportError
    from .files import atomic_write
    from .matrix.gate import (
        against_baseline,
        baseline_of,
        baseline_text,
        load_doc,
        resolve_reader,
        upgrade,
    )

    doc = load_doc(Path(args.matrix))
    if args.write_baseline:
        try:
            baseline = baseline_of(doc)
        except ReportError as exc:  # the matrix's own problem: name it
            raise ReportError(f"{args.matrix}: {exc}") from None
        text = baseline_text(baseline)
        atomic_write(Path(args.write_baseline), text.encode("utf-8"))
        print(f"wrote {args.write_baseline} ({len(doc['outcomes'])} loads)")
        return EXIT_OK
    if args.current:
        if not args.candidate:
            raise CkptCompatError("gate: --current needs --candidate")
        current = resolve_reader(doc, args.current, "--current")
        candidate = resolve_reader(doc, args.candidate, "--candidate", predicted=True)
        result = upgrade(doc, current, candidate)
        print(f"upgrade {current} -> {candidate}")
    else:
        if args.candidate:
            raise CkptCompatError("gate: --candidate needs --current")
        result = against_baseline(doc, load_doc(Path(args.baseline)))
        print(f"{args.matrix} against {args.baseline}")
    print(result.text())
    return EXIT_OK if result.passed else EXIT_FOUND
