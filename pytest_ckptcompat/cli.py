"""The `ckptcompat` command (also `python -m pytest_ckptcompat`).

Exit codes, for every subcommand: 0 fine, 1 an incompatibility was found,
2 bad usage or unreadable input (one line on stderr, naming the file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import CkptCompatError
from .options import SAFE_GLOBALS_INI

if TYPE_CHECKING:
    from .scan.allowlist import Allowlist
    from .scan.numpy_reader import ReaderNumpy

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
SNIPPET_FILE = "safe_globals.py"  # beside the matrix report: the allowlist every reader gets


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
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    scan = sub.add_parser(
        "scan",
        help="which globals a checkpoint needs and whether it loads here (never executes it)",
        description="Statically scan checkpoints: every global they name, its status under the "
        "torch installed here (allowed / allowed-user / blocked / missing), whether it can run "
        "code, and a loadable verdict. Nothing is unpickled. Exit 0 when every file is "
        "loadable, 1 when one is not, 2 when one cannot be read.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="checkpoint files")
    scan.add_argument("--json", action="store_true", help="print ckptcompat.scan/1 JSON")
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
    lint.add_argument("--json", action="store_true", help="print ckptcompat.lint/1 JSON")
    report = sub.add_parser(
        "report",
        help="merge the version matrix's cell reports (markdown, html, json, junit)",
        description="Merge cell reports (ckptcompat.report/1, one per reader environment, as "
        "`pytest --ckpt-compat --ckpt-compat-report FILE` writes them) into matrix.md, "
        "matrix.html, matrix.json (ckptcompat.matrix/1) and junit.xml: a global x reader table "
        "with the fix beside each blocked global, and a writer x reader grid per artifact. "
        "Exit 0 once written (findings are data; `ckptcompat gate` decides), 2 on a bad report.",
    )
    report.add_argument("reports", nargs="+", metavar="CELL_REPORT", help="cell report JSON files")
    report.add_argument(
        "--out", default="matrix/report", metavar="DIR", help="output folder (default: %(default)s)"
    )
    gate = sub.add_parser(
        "gate",
        help="fail on loads that broke: against a baseline, or for an upgrade",
        description="Exit 1 when something that loaded no longer does. With --baseline: every "
        "(artifact, writer, reader) that was ok and is not now, and every global that turned "
        "from allowed to blocked or missing (fixed ones are reported as good news). With "
        "--current/--candidate: what loads under the current environment and not under the "
        "candidate. --write-baseline writes the baseline from MATRIX_JSON.",
    )
    gate.add_argument("matrix", metavar="MATRIX_JSON", help="matrix.json from `ckptcompat report`")
    mode = gate.add_mutually_exclusive_group(required=True)
    mode.add_argument("--baseline", metavar="FILE", help="compare with this baseline")
    mode.add_argument("--write-baseline", metavar="FILE", help="write the baseline and exit 0")
    mode.add_argument("--current", metavar="TAG", help="the reader you run now (or a unique part)")
    gate.add_argument("--candidate", metavar="TAG", help="the reader you want to upgrade to")
    check_fix = sub.add_parser(
        "check-fix",
        help="apply the matrix's allowlist snippet here and load every golden with plain torch",
        description=f"Execute SNIPPET (the {SNIPPET_FILE} `ckptcompat report` writes, or any "
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
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "lint":
            return _lint(args)
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
    if args.torch is not None:
        selection = select_torch(args.torch)
        if not selection.single:
            return _scan_many(args, selection.versions, numpy, allowlist)
        from .scan import torch_table

        rules = torch_table.rules_for(selection.versions[0])
    else:
        from .scan.torch_reader import installed_rules

        rules = installed_rules()
    from . import schemas
    from .scan.scanner import scan_file

    predicted = args.torch is not None or args.numpy is not None
    types = TypeResolver(numpy)
    results = [scan_file(Path(p), rules, allowlist, types=types) for p in args.paths]
    if args.json:
        doc: schemas.ScanDoc = {
            "schema": schemas.SCAN,
            "torch": rules.version,
            "numpy": numpy.version,
            "files": [r.to_json() for r in results],
        }
        if predicted:
            doc["predicted"] = True
        print(json.dumps(doc, indent=2))
    else:
        from .scan.text import scan_text

        reader = None
        if predicted:
            reader = f"torch {rules.version} (predicted, {_numpy_words(numpy.version)})"
        print(scan_text(results, rules, first_party, reader=reader))
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
    versions: Sequence[str],
    numpy: ReaderNumpy,
    allowlist: Allowlist,
) -> int:
    from . import schemas
    from .scan.predict import predict_file

    results = [predict_file(p, versions, numpy=numpy, allowlist=allowlist) for p in args.paths]
    if args.json:
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
    return _scan_exit([(r.error, r.loadable_everywhere) for r in results])


def _numpy_words(version: str | None) -> str:
    return f"numpy {version}" if version else "no numpy"


def _lint(args: argparse.Namespace) -> int:
    # Deliberately no torch import: linting must work (and be fast) without it.
    from .lint import lint_paths

    result = lint_paths(args.paths)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        for finding in result.findings:
            print(finding.to_text())
        files = len({f.path for f in result.findings})
        print(
            f"ckptcompat lint: {len(result.findings)} finding(s) in {files} of "
            f"{result.files_checked} file(s) checked"
        )
    for error in result.errors:
        print(f"ckptcompat: error: {error}", file=sys.stderr)
    if result.errors:
        return EXIT_USAGE
    return EXIT_FOUND if result.findings else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    # No torch import: merging runs anywhere, e.g. in a CI job without torch.
    from .files import atomic_write
    from .matrix.merge import fix_verified_line, merge_reports
    from .matrix.render import html_page, junit, markdown, summary_line

    doc = merge_reports(Path(p) for p in args.reports)
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
    for name, text in outputs.items():
        atomic_write(out / name, text.encode("utf-8"))
    print(f"{summary_line(doc)}\n{fix_verified_line(doc)}")
    print(f"wrote {', '.join(str(out / n) for n in outputs)}")
    return EXIT_OK


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
        text = baseline_text(baseline_of(doc))
        atomic_write(Path(args.write_baseline), text.encode("utf-8"))
        print(f"wrote {args.write_baseline} ({len(doc['outcomes'])} loads)")
        return EXIT_OK
    if args.current:
        if not args.candidate:
            raise CkptCompatError("gate: --current needs --candidate")
        current = resolve_reader(doc, args.current, "--current")
        candidate = resolve_reader(doc, args.candidate, "--candidate")
        result = upgrade(doc, current, candidate)
        print(f"upgrade {current} -> {candidate}")
    else:
        if args.candidate:
            raise CkptCompatError("gate: --candidate needs --current")
        result = against_baseline(doc, load_doc(Path(args.baseline)))
        print(f"{args.matrix} against {args.baseline}")
    print(result.text())
    return EXIT_OK if result.passed else EXIT_FOUND
