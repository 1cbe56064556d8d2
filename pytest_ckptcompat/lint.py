"""`ckptcompat lint`: find `torch.load` calls that do not say `weights_only=True`.

Static only: each file is parsed with `ast.parse` and never imported or run.
torch 2.6 flipped the default of `torch.load(weights_only=...)` from False to
True, so a call that omits it executes arbitrary pickles on older torch and
fails on non-allowlisted globals on newer torch (Opacus broke this way).

Names are resolved per scope (module, class, function, lambda, comprehension)
from the imports and simple assignments in the file: `torch.load`,
`torch.serialization.load` and their aliases are found, while `json.load`,
`pickle.load`, `np.load` or `self.load` are not.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import schemas
from .errors import LintFileError
from .schemas import LintDoc, LintFindingDoc

if TYPE_CHECKING:
    from .lintconfig import LintConfig

__all__ = [
    "CODES",
    "SKIP_DIRS",
    "Finding",
    "LintFileError",
    "LintResult",
    "iter_python_files",
    "lint_file",
    "lint_paths",
    "lint_source",
]


#: code -> (severity, what it means); CKC003 is a "check it", the others are known risks.
CODES: dict[str, tuple[str, str]] = {
    "CKC001": ("error", "weights_only omitted (or None): behaviour depends on the torch version"),
    "CKC002": ("error", "weights_only=False: the full unpickler runs"),
    "CKC003": ("warning", "weights_only is not a literal: check what it is at run time"),
    "CKC004": ("error", "pickle_module passed: the weights_only unpickler is bypassed"),
    "CKC005": (
        "warning",
        "in-memory round trip of the project's own object with weights_only omitted: "
        "torch >= 2.6 loads it with weights_only=True, which refuses what a whole object pickles",
    ),
}

#: Directory names never descended into (the roots given on the command line always are).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        "build",
        "dist",
        "site-packages",
        "dist-packages",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)

_LOAD_TARGETS = frozenset({"torch.load", "torch.serialization.load"})
_SAVE_TARGETS = frozenset({"torch.save", "torch.serialization.save"})
_PARTIAL = "functools.partial"
_BYTES_IO = frozenset({"io.BytesIO", "_io.BytesIO"})
# Modules whose names the scope pass follows through imports and assignments.
_TRACKED_MODULES = frozenset({"torch", "functools", "io", "_io"})
# Builtins the lint understands, when the file does not bind the name itself.
_BUILTINS = frozenset({"getattr", "map"})
# Calls that call their first argument with positional arguments only (`map(torch.load,
# paths)`, `pool.map(...)`, `executor.map(...)`): weights_only is keyword-only, so omitted.
_MAP_NAMES = frozenset({"map", "imap", "imap_unordered", "starmap"})
# Attribute calls the scope pass keeps: the ones that may be (or pass) a torch.load.
_CALL_ATTRS = frozenset({"load", "save", "partial"}) | _MAP_NAMES
_NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.I)
# `from M import *` binds `load` for these (both list it in __all__).
_STAR_LOAD_MODULES = frozenset({"torch", "torch.serialization"})
_CALL_WIDTH = 72
# A flagged call needs the identifier `load` (attribute, imported name or star
# import's call) and the identifier `torch` (in an import or a bare `torch.load`).
# Whole words, so DataLoader, load_state_dict, json.loads or pytorch_lightning
# alone do not make a file worth parsing.
_LOAD_WORD = re.compile(rb"\bload\b")
_TORCH_WORD = re.compile(rb"\btorch\b")
# Bound on alias chains (`a = torch; b = a; ...`); also stops `x = x` cycles.
_MAX_ALIAS_DEPTH = 10

_OMITTED_REASON = (
    "torch < 2.6 loads with weights_only=False (arbitrary code), "
    "torch >= 2.6 with True (fails on non-allowlisted globals)"
)
_SAFE_GLOBALS_HINT = (
    "if that fails on a global, allowlist it with torch.serialization.add_safe_globals([...]) "
    "or save plain state (state_dict, tensors, containers, primitives)"
)


@dataclass(frozen=True)
class Finding:
    """One risky `torch.load` call. `line` and `col` are 1-based (`col` in characters)."""

    path: str
    line: int
    col: int
    code: str
    title: str
    call: str
    reason: str
    fix: str
    end_line: int = 0  # where the call ends (1-based; 0: not known)
    end_col: int = 0  # one past its last character, as SARIF counts

    @property
    def severity(self) -> str:
        """`error` for a known risk, `warning` for one that needs a look (CKC003)."""
        return CODES[self.code][0]

    def to_text(self) -> str:
        """Two lines: `path:line:col: CODE title in call: reason` and an indented fix."""
        return (
            f"{self.path}:{self.line}:{self.col}: {self.code} {self.title} in {self.call}: "
            f"{self.reason}\n    fix: {self.fix}"
        )

    def to_json(self) -> LintFindingDoc:
        """The finding as it appears in `ckptcompat.lint/1` JSON."""
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "call": self.call,
            "reason": self.reason,
            "fix": self.fix,
        }


@dataclass
class LintResult:
    """Everything `lint_paths` found, in path order then source order."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[LintFileError] = field(default_factory=list)
    files_checked: int = 0

    def to_json(self) -> LintDoc:
        """The `ckptcompat.lint/1` document."""
        return {
            "schema": schemas.LINT,
            "files_checked": self.files_checked,
            "findings": [f.to_json() for f in self.findings],
            "errors": [{"path": e.path, "problem": e.problem} for e in self.errors],
        }


# --------------------------------------------------------------------- files


def iter_python_files(
    paths: Iterable[str | os.PathLike[str]],
    errors: list[LintFileError] | None = None,
    excluded: Callable[[str], bool] | None = None,
) -> Iterator[str]:
    """Each file given, and every `*.py` under each directory given, sorted per directory.

    Directories in `SKIP_DIRS` and virtual environments (a `pyvenv.cfg` inside)
    are skipped below the roots. `excluded` (the configuration's `exclude`)
    prunes files and folders anywhere, the ones given included. A file reached
    twice (`lint pkg pkg/m.py`) is yielded once. Missing paths and unreadable
    directories are appended to `errors` when given (and otherwise skipped).
    """
    seen: set[str] = set()
    for given in paths:
        root = os.fspath(given)
        if excluded is not None and excluded(root):
            continue
        if os.path.isfile(root):
            found: Iterable[str] = [root]
        elif os.path.isdir(root):
            found = _walk(root, errors, excluded)
        else:
            if errors is not None:
                errors.append(LintFileError(root, "no such file or directory"))
            continue
        for path in found:
            key = os.path.normcase(os.path.abspath(path))
            if key not in seen:
                seen.add(key)
                yield path


def _walk(
    root: str, errors: list[LintFileError] | None, excluded: Callable[[str], bool] | None
) -> Iterator[str]:
    def onerror(exc: OSError) -> None:
        if errors is not None:
            errors.append(LintFileError(exc.filename or root, f"cannot read ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        # Pruning dirnames in place is how os.walk is told not to descend.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
            and not (excluded is not None and excluded(os.path.join(dirpath, d)))
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.normpath(os.path.join(dirpath, name))
                if excluded is None or not excluded(path):
                    yield path


def lint_paths(
    paths: Iterable[str | os.PathLike[str]], config: LintConfig | None = None
) -> LintResult:
    """Lint files and directories (recursively, `*.py`); errors are collected, not raised.

    `config` (`[tool.ckptcompat.lint]`) chooses the codes, the excluded paths
    and the per-file ignores; `# noqa` comments are always honoured.
    """
    result = LintResult()
    excluded = config.excluded if config is not None and config.exclude else None
    for path in iter_python_files(paths, result.errors, excluded):
        result.files_checked += 1
        try:
            found = lint_file(path)
        except LintFileError as exc:
            result.errors.append(exc)
            continue
        if config is not None:
            found = [f for f in found if config.reports(path, f.code)]
        result.findings += found
    return result


def lint_file(path: str | os.PathLike[str]) -> list[Finding]:
    """The findings of one Python file; raises `LintFileError` if it cannot be read or parsed."""
    shown = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LintFileError(shown, f"cannot read ({exc.strerror})") from None
    # Cheap pre-check before decoding and parsing (which is most of the cost):
    # the words are the same bytes in any ASCII-compatible encoding, and Python
    # source allows no other.
    if not (b"load" in data and _LOAD_WORD.search(data) and _TORCH_WORD.search(data)):
        return []
    try:
        source = importlib.util.decode_source(data)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = f"line {line}: {exc.reason} ({exc.encoding}, byte {data[exc.start]:#04x})"
        raise LintFileError(shown, f"cannot parse ({problem})") from None
    except (SyntaxError, LookupError) as exc:  # a bad or unknown coding cookie
        raise LintFileError(shown, f"cannot parse ({_syntax_problem(exc)})") from None
    if "\0" in source:  # ast.parse says only "null bytes", without the line
        line = source.count("\n", 0, source.index("\0")) + 1
        raise LintFileError(shown, f"cannot parse (line {line}: a null byte)")
    try:
        return lint_source(source, shown)
    # Deeply nested source makes the parser raise RecursionError or MemoryError.
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise LintFileError(shown, f"cannot parse ({_syntax_problem(exc)})") from None


def _syntax_problem(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"line {exc.lineno or 1}: {exc.msg}"
    if isinstance(exc, RecursionError | MemoryError):
        return "nested too deeply"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -------------------------------------------------------------------- source


def lint_source(source: str, path: str = "<string>", *, noqa: bool = True) -> list[Finding]:
    """The findings of Python source text, less those a `# noqa` comment suppresses.

    `# noqa` on the line a finding is reported at suppresses every code there,
    `# noqa: CKC001` (or `CKC001,CKC004`) those codes only, as ruff and flake8
    read them. Raises `SyntaxError` (or `ValueError`, for null bytes) if it
    does not parse.
    """
    with warnings.catch_warnings():
        # Invalid escapes etc. warn while parsing: not ours to report, and they
        # would break the one-line-per-problem output.
        warnings.simplefilter("ignore")
        tree = ast.parse(source, filename=path)
    findings: list[Finding] = []
    lines: list[str] = []
    calls = _Scopes.build(tree)
    saves: dict[int, list[ast.Call]] = {}  # id(scope) -> its torch.save calls
    judged: list[tuple[ast.Call, _Scope, _Use]] = []
    for call, scope in calls:
        use = _use(call, scope)
        if use is None:
            continue
        if use.kind == "save":
            saves.setdefault(id(scope), []).append(call)
        else:
            judged.append((call, scope, use))
    for call, scope, use in judged:
        # Split only when needed; ast counts \r\n, \r and \n as line ends
        # (str.splitlines also splits at \f and others, shifting lines).
        lines = lines or source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        in_memory = use.kind == "call" and _in_memory_round_trip(
            call, scope, saves.get(id(scope), [])
        )
        findings += _judge(call, lines, path, use, in_memory=in_memory)
    if noqa and findings and "noqa" in source.lower():
        findings = _without_noqa(findings, source)
    findings.sort(key=lambda f: (f.line, f.col, f.code))
    return findings


@dataclass(frozen=True)
class _Use:
    """How a call uses torch.load (or torch.save): called, through partial, or by map."""

    kind: str  # "call", "partial", "map" or "save"
    args: list[ast.expr]  # the arguments torch.load itself gets, as far as the call shows
    keywords: list[ast.keyword]


def _use(call: ast.Call, scope: _Scope) -> _Use | None:
    targets = _resolve(call.func, scope, 0)
    if _LOAD_TARGETS & targets:
        return _Use("call", list(call.args), list(call.keywords))
    if _SAVE_TARGETS & targets:
        return _Use("save", list(call.args), list(call.keywords))
    if not call.args or not _LOAD_TARGETS & _resolve(call.args[0], scope, 0):
        return None
    if _PARTIAL in targets:  # functools.partial(torch.load, ...): its arguments are torch.load's
        return _Use("partial", list(call.args[1:]), list(call.keywords))
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else None
    if "builtins.map" in targets or name in _MAP_NAMES:
        return _Use("map", [], [])
    return None


def _in_memory_round_trip(load: ast.Call, scope: _Scope, saves: list[ast.Call]) -> bool:
    """`torch.save(obj, buf)` then `torch.load(buf)`, `buf` an `io.BytesIO()` of this scope.

    The bytes never leave the process (opacus's `clone_module`): this is a deep
    copy of the project's own object, not a file from anywhere.
    """
    source = _file_argument(load.args, load.keywords, 0)
    if not isinstance(source, ast.Name):
        return False
    buffers = scope.bindings.get(source.id, [])
    if not buffers or not all(
        isinstance(b, ast.Call) and _BYTES_IO & _resolve(b.func, scope, 0) for b in buffers
    ):
        return False
    for save in saves:
        target = _file_argument(save.args, save.keywords, 1)
        if (
            isinstance(target, ast.Name)
            and target.id == source.id
            and (save.lineno, save.col_offset) < (load.lineno, load.col_offset)
        ):
            return True
    return False


def _file_argument(
    args: list[ast.expr], keywords: list[ast.keyword], index: int
) -> ast.expr | None:
    """torch.load(f, ...) / torch.save(obj, f, ...): the file argument, positional or `f=`."""
    if len(args) > index and not any(isinstance(a, ast.Starred) for a in args[: index + 1]):
        return args[index]
    return next((k.value for k in keywords if k.arg == "f"), None)


def _without_noqa(findings: list[Finding], source: str) -> list[Finding]:
    """Drop findings whose line says `# noqa` (all codes) or `# noqa: CKC001[, ...]`."""
    import io
    import tokenize

    suppress: dict[int, frozenset[str] | None] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and (m := _NOQA.search(token.string)):
                codes = m.group("codes")
                suppress[token.start[0]] = (
                    frozenset(c.upper() for c in re.split(r"[,\s]+", codes) if c) if codes else None
                )
    except (tokenize.TokenError, SyntaxError):  # parsed by ast already: not expected
        return findings
    return [
        f
        for f in findings
        if f.line not in suppress
        or (suppress[f.line] is not None and f.code not in suppress[f.line])  # type: ignore[operator]
    ]


# What a name is bound to: a dotted torch name from an import ("torch",
# "torch.serialization.load"), an expression assigned to it (resolved lazily,
# so `T = torch` works wherever it appears), or None for anything else.
_Binding = str | ast.expr | None


class _Scope:
    __slots__ = ("bindings", "globals", "is_class", "nonlocals", "parent", "root")

    def __init__(self, parent: _Scope | None, *, is_class: bool = False) -> None:
        self.parent = parent
        self.root: _Scope = parent.root if parent else self
        self.is_class = is_class
        self.bindings: dict[str, list[_Binding]] = {}
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()

    def bind(self, name: str, value: _Binding) -> None:
        self.bindings.setdefault(name, []).append(value)

    def settle(self) -> None:
        """Apply `global` / `nonlocal` once the whole scope is walked (in any order)."""
        for name in self.globals & self.bindings.keys():
            self.root.bindings.setdefault(name, []).extend(self.bindings.pop(name))
        for name in self.nonlocals & self.bindings.keys():
            # Binds in an enclosing function: left out, that function's own bindings stand.
            del self.bindings[name]

    def lookup(self, name: str) -> _Scope | None:
        """The scope whose binding of `name` is seen here, as Python resolves it."""
        scope: _Scope | None = self
        first = True
        while scope is not None:
            # Class bodies are only visible to themselves, not to nested functions.
            if (first or not scope.is_class) and name in scope.bindings:
                return scope
            first = False
            scope = scope.parent
        return None


# Node kinds the scope pass treats specially; every other node just has its
# children visited. A dict on the exact type is much cheaper than an
# isinstance chain on every node, and this pass is half the cost of a file.
_NAME, _SKIP, _CALL, _IMPORT, _DECLARE, _ASSIGN, _FUNC, _CLASS, _COMP, _NAMED, _REST, _WITH = range(
    12
)
_KIND: dict[type[ast.AST], int] = {
    ast.Name: _NAME,
    ast.Constant: _SKIP,
    ast.Call: _CALL,
    ast.Import: _IMPORT,
    ast.ImportFrom: _IMPORT,
    ast.Global: _DECLARE,
    ast.Nonlocal: _DECLARE,
    ast.Assign: _ASSIGN,
    ast.AnnAssign: _ASSIGN,
    ast.NamedExpr: _ASSIGN,
    ast.FunctionDef: _FUNC,
    ast.AsyncFunctionDef: _FUNC,
    ast.Lambda: _FUNC,
    ast.ClassDef: _CLASS,
    ast.ListComp: _COMP,
    ast.SetComp: _COMP,
    ast.DictComp: _COMP,
    ast.GeneratorExp: _COMP,
    ast.ExceptHandler: _NAMED,
    ast.MatchAs: _NAMED,
    ast.MatchStar: _NAMED,
    ast.MatchMapping: _REST,
    ast.withitem: _WITH,
}
# Fields that never hold a node this pass needs (names, contexts, operators).
_SKIP_FIELDS = frozenset(
    {"ctx", "id", "attr", "arg", "name", "asname", "module", "level", "kind", "type_comment"}
    | {"is_async", "conversion", "simple", "op", "ops", "names", "rest", "kwd_attrs", "tag"}
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        # Non-nodes that end up on the stack (None in a list, a str) have no _fields.
        own: tuple[str, ...] = getattr(cls, "_fields", ())
        fields = _FIELDS[cls] = tuple(f for f in own if f not in _SKIP_FIELDS)
    return fields


class _Scopes:
    """One iterative pass over a module: scopes with their bindings, and candidate calls."""

    @staticmethod
    def build(tree: ast.Module) -> list[tuple[ast.Call, _Scope]]:
        """Every call that might be a `load` (`name(...)` or `x.load(...)`), with its scope."""
        calls: list[tuple[ast.Call, _Scope]] = []
        # Nested scopes are walked after the enclosing one, so the stack holds bare
        # nodes; the walk order within a scope does not matter (see settle).
        pending: list[tuple[_Scope, list[Any]]] = [(_Scope(None), list(tree.body))]
        while pending:
            scope, stack = pending.pop()
            while stack:
                node = stack.pop()
                cls = type(node)
                kind = _KIND.get(cls)
                if kind is not None:
                    if kind == _NAME:
                        if type(node.ctx) is not ast.Load:
                            scope.bind(node.id, None)
                        continue
                    if kind == _SKIP:
                        continue
                    if kind == _CALL:
                        func = node.func
                        if (
                            type(func) is ast.Name
                            or (type(func) is ast.Attribute and func.attr in _CALL_ATTRS)
                            or type(func) is ast.Call  # getattr(torch, "load")(...)
                        ):
                            calls.append((node, scope))
                    elif kind == _IMPORT:
                        for name, qualname in _import_bindings(node):
                            scope.bind(name, qualname)
                        continue
                    elif kind == _DECLARE:
                        declared = scope.globals if cls is ast.Global else scope.nonlocals
                        declared.update(node.names)
                        continue
                    elif kind == _ASSIGN:
                        # `T = torch` / `load = torch.load`: remember the expression;
                        # other targets are visited below and bind opaquely.
                        value = node.value
                        targets = node.targets if cls is ast.Assign else [node.target]
                        if value is not None and len(targets) == 1 and type(targets[0]) is ast.Name:
                            scope.bind(targets[0].id, value)
                            stack.append(value)
                            if cls is ast.AnnAssign:
                                stack.append(node.annotation)
                            continue
                    elif kind == _FUNC:
                        pending.append(_Scopes._function(node, scope, stack))
                        continue
                    elif kind == _CLASS:
                        scope.bind(node.name, None)
                        stack += node.decorator_list
                        stack += node.bases
                        stack += [k.value for k in node.keywords]
                        pending.append((_Scope(scope, is_class=True), list(node.body)))
                        continue
                    elif kind == _COMP:
                        inner = [getattr(node, f) for f in _child_fields(cls)]
                        pending.append((_Scope(scope), [*inner[:-1], *inner[-1]]))
                        continue
                    elif kind == _NAMED:
                        if node.name:
                            scope.bind(node.name, None)
                    elif kind == _WITH:
                        # `with io.BytesIO() as buf`: remember what `buf` is, like `buf = ...`.
                        target = node.optional_vars
                        if type(target) is ast.Name:
                            scope.bind(target.id, node.context_expr)
                            stack.append(node.context_expr)
                            continue
                    elif node.rest:  # _REST: `case {**rest}`
                        scope.bind(node.rest, None)
                for fname in _child_fields(cls):
                    value = getattr(node, fname)
                    if type(value) is list:
                        stack += value
                    elif value is not None:
                        stack.append(value)
            scope.settle()
        return calls

    @staticmethod
    def _function(node: Any, scope: _Scope, stack: list[Any]) -> tuple[_Scope, list[Any]]:
        """Bind a def/lambda where it stands; return its own scope and body to walk later."""
        args: ast.arguments = node.args
        if type(node) is not ast.Lambda:
            scope.bind(node.name, None)
            stack += node.decorator_list
            if node.returns:
                stack.append(node.returns)
        # Defaults and annotations are evaluated in the enclosing scope.
        stack += args.defaults
        stack += [d for d in args.kw_defaults if d is not None]
        inner = _Scope(scope)
        for a in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg):
            if a is not None:
                inner.bind(a.arg, None)
                if a.annotation:
                    stack.append(a.annotation)
        body = node.body if type(node.body) is list else [node.body]
        return inner, list(body)


def _import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None]]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            top = alias.name.partition(".")[0]
            tracked = top in _TRACKED_MODULES
            if alias.asname:  # `import torch.serialization as ser` binds the submodule
                yield alias.asname, alias.name if tracked else None
            else:  # `import torch.serialization` binds `torch`
                yield top, top if tracked else None
        return
    module = node.module or ""
    from_torch = node.level == 0 and module.partition(".")[0] in _TRACKED_MODULES
    for alias in node.names:
        if alias.name == "*":
            if node.level == 0 and module in _STAR_LOAD_MODULES:
                yield "load", f"{module}.load"
            continue
        yield alias.asname or alias.name, f"{module}.{alias.name}" if from_torch else None


def _resolve(expr: ast.expr, scope: _Scope, depth: int) -> set[str]:
    """The dotted torch names `expr` may denote here (empty when it is not torch's)."""
    if isinstance(expr, ast.Attribute):
        return {f"{base}.{expr.attr}" for base in _resolve(expr.value, scope, depth)}
    if isinstance(expr, ast.Call):
        # getattr(torch, "load") is torch.load; a computed name is nobody's guess.
        args = expr.args
        if (
            len(args) in (2, 3)
            and isinstance(args[1], ast.Constant)
            and isinstance(args[1].value, str)
            and depth < _MAX_ALIAS_DEPTH
            and "builtins.getattr" in _resolve(expr.func, scope, depth + 1)
        ):
            return {f"{base}.{args[1].value}" for base in _resolve(args[0], scope, depth + 1)}
        return set()
    if not isinstance(expr, ast.Name):
        return set()
    owner = scope.lookup(expr.id)
    if owner is None:
        # Never bound in the file: a bare `torch` is taken as the module (scripts
        # run with torch injected, or a missing import), and builtins are builtins.
        if expr.id == "torch":
            return {"torch"}
        return {f"builtins.{expr.id}"} if expr.id in _BUILTINS else set()
    found: set[str] = set()
    for binding in owner.bindings[expr.id]:
        if isinstance(binding, str):
            found.add(binding)
        elif binding is not None and depth < _MAX_ALIAS_DEPTH:
            # Any binding naming torch counts: `try: import torch / except: torch = None`
            # must still be checked, so the lint leans to reporting.
            found |= _resolve(binding, owner, depth + 1)
    return found


# ---------------------------------------------------------------- judgement


def _judge(
    call: ast.Call, lines: list[str], path: str, use: _Use, *, in_memory: bool = False
) -> list[Finding]:
    loader = call.func if use.kind == "call" else call.args[0]
    callee = _shorten(_segment(lines, loader) or "torch.load", 40)
    text = _shorten(_segment(lines, call) or f"{callee}(...)", _CALL_WIDTH)
    line = call.lineno
    col = _char_col(lines, line, call.col_offset)
    if use.kind == "partial":
        safe_call = f"partial({callee}, ..., weights_only=True)"
        via = "through functools.partial, which does not pass weights_only: "
    elif use.kind == "map":
        safe_call = f"partial({callee}, weights_only=True) as the function"
        via = f"{callee} called by {_shorten(_segment(lines, call.func), 30)}() with "
        via += "positional arguments only (weights_only is keyword-only): "
    else:
        safe_call = f"{callee}(..., weights_only=True)"
        via = ""

    end_line = call.end_lineno or line
    end_col = _char_col(lines, end_line, call.end_col_offset or 0) if call.end_lineno else 0

    def finding(code: str, title: str, reason: str, fix: str) -> Finding:
        return Finding(path, line, col, code, title, text, via + reason, fix, end_line, end_col)

    if in_memory:
        return _judge_in_memory(call, use, finding, callee)
    weights_only: ast.expr | None = None
    has_kwargs = False
    pickle_module: ast.expr | None = None
    for kw in use.keywords:
        if kw.arg == "weights_only":
            weights_only = kw.value
        elif kw.arg == "pickle_module":
            pickle_module = kw.value
        elif kw.arg is None:
            has_kwargs = True
    # torch.load(f, map_location, pickle_module, *, weights_only=...): the third
    # positional argument is pickle_module (unknowable after a *args).
    positional = use.args[:3]
    if (
        pickle_module is None
        and len(positional) == 3
        and not any(isinstance(a, ast.Starred) for a in positional)
    ):
        pickle_module = positional[2]
    if _is_const(pickle_module, None):
        pickle_module = None

    out: list[Finding] = []
    if pickle_module is not None:
        out.append(
            finding(
                "CKC004",
                "pickle_module passed",
                "a custom pickle_module bypasses the weights_only unpickler: with weights_only "
                "omitted every torch version unpickles with it (arbitrary code), and with "
                "weights_only=True torch raises",
                f"drop pickle_module and use {safe_call}; keep a custom pickle_module only for "
                "files you trust",
            )
        )
    if weights_only is None or _is_const(weights_only, None):
        if has_kwargs and weights_only is None:
            out.append(
                finding(
                    "CKC003",
                    "weights_only not a literal",
                    "check it: it may come from **kwargs, else the torch default applies "
                    f"({_OMITTED_REASON})",
                    f"pass weights_only=True explicitly: {safe_call}",
                )
            )
        elif pickle_module is None:  # with pickle_module, CKC004 already says what happens
            title = "weights_only omitted" if weights_only is None else "weights_only=None"
            out.append(
                finding("CKC001", title, _OMITTED_REASON, f"{safe_call}; {_SAFE_GLOBALS_HINT}")
            )
    elif _is_const(weights_only, False):
        out.append(
            finding(
                "CKC002",
                "weights_only=False",
                "executes any pickle (arbitrary code from the file)",
                f"{safe_call}; keep weights_only=False only for files you trust; prefer "
                "weights_only=True + torch.serialization.add_safe_globals",
            )
        )
    elif not _is_const(weights_only, True):
        shown = _shorten(_segment(lines, weights_only) or "...", 30)
        out.append(
            finding(
                "CKC003",
                "weights_only not a literal",
                f"check it: weights_only={shown} loads arbitrary code whenever it is False at run "
                "time, and follows the torch default when it is None",
                f"{safe_call}, or make sure the expression is True for files you do not trust",
            )
        )
    return out


def _judge_in_memory(
    call: ast.Call, use: _Use, finding: Callable[[str, str, str, str], Finding], callee: str
) -> list[Finding]:
    """An in-memory round trip: weights_only=True is the advice that breaks it."""
    weights_only = next((k.value for k in use.keywords if k.arg == "weights_only"), None)
    if any(k.arg is None for k in use.keywords) and weights_only is None:
        return []  # **kwargs may say anything; nothing here is a risk to anyone else
    if weights_only is not None and not _is_const(weights_only, None):
        return []  # said explicitly: False is right here, True is the author's choice
    return [
        finding(
            "CKC005",
            "in-memory round trip, weights_only omitted",
            "torch.save to an io.BytesIO and torch.load of it: the project's own object, "
            "never a file, so loading it is no risk; but torch >= 2.6 loads it with "
            "weights_only=True, which refuses the classes a whole object pickles (an "
            "nn.Module, an optimizer): weights_only=True would break this call, and the "
            "default does on torch >= 2.6",
            f"{callee}(..., weights_only=False) (safe here: the bytes never leave this "
            "process), or copy.deepcopy(obj) where the object supports it",
        )
    ]


def _is_const(expr: ast.expr | None, value: bool | None) -> bool:
    # `is`: True == 1 and False == 0, and `weights_only=0` is no literal False.
    return isinstance(expr, ast.Constant) and expr.value is value


def _segment(lines: list[str], node: ast.expr) -> str:
    """The source text of `node`, as `ast.get_source_segment` without re-splitting the file."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    start, end = node.col_offset, node.end_col_offset
    if not 0 <= first <= last < len(lines) or end is None:
        return ""
    if first == last:
        return _cut(lines[first], start, end)
    return "\n".join(
        [_cut(lines[first], start, None), *lines[first + 1 : last], _cut(lines[last], 0, end)]
    )


def _cut(line: str, start: int, end: int | None) -> str:
    # ast offsets count UTF-8 bytes.
    if line.isascii():
        return line[start:end]
    return line.encode()[start:end].decode(errors="replace")


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _char_col(lines: list[str], lineno: int, byte_offset: int) -> int:
    # ast offsets are UTF-8 bytes; editors count characters (1-based).
    if 0 < lineno <= len(lines):
        line = lines[lineno - 1]
        if not line.isascii():
            return len(line.encode()[:byte_offset].decode(errors="ignore")) + 1
    return byte_offset + 1
