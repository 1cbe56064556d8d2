"""The layout's promises (docs/architecture.md), checked on the source itself.

- no import cycle, counting imports made inside functions too (a lazy import
  still runs, later), but not `if TYPE_CHECKING:` ones (they never run);
- `scan/` never imports pytest; `matrix/` never imports torch;
- one module reads zip archives;
- every exception the package defines is a `CkptCompatError`;
- the public names resolve, and `import pytest_ckptcompat` stays cheap.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_ckptcompat
from pytest_ckptcompat.errors import CkptCompatError

PACKAGE = Path(pytest_ckptcompat.__file__).parent
ROOT_NAME = "pytest_ckptcompat"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, eager: bool = False) -> set[str]:
    """Every module `module` imports when its code runs (module level or in functions).

    `eager`: only what importing `module` itself imports (not function bodies).
    """
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if eager and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from . import machine`: a submodule
                if f"{target}.{alias.name}" in MODULES:
                    found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


GRAPH = {m: {i for i in _imports(m) if i in MODULES and i != m} for m in MODULES}


def test_the_source_tree_is_what_the_test_reads():
    assert {"pytest_ckptcompat.scan.ziparchive", "pytest_ckptcompat.matrix.gate"} <= set(MODULES)
    assert "pytest_ckptcompat.scan.machine" in GRAPH["pytest_ckptcompat.scan.container"]
    # A lazy import inside a function counts.
    assert "pytest_ckptcompat.runreport" in GRAPH["pytest_ckptcompat.plugin"]


def test_no_import_cycle_eager_or_lazy():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _reaches(start: str, *, eager: bool = False) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(i for i in _imports(module, eager=eager) if i in MODULES)
    return seen


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith(f"{ROOT_NAME}.scan")])
def test_scan_never_imports_pytest(module):
    for reached in _reaches(module):
        heavy = {i.split(".")[0] for i in _imports(reached)} & {"pytest", "_pytest"}
        assert not heavy, f"{module} reaches {reached}, which imports {heavy}"


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith(f"{ROOT_NAME}.matrix")])
def test_matrix_never_imports_torch(module):
    # What importing a matrix module imports; what running it imports is
    # checked for real by test_report_and_gate_run_without_torch_or_numpy.
    for reached in _reaches(module, eager=True):
        heavy = {i.split(".")[0] for i in _imports(reached, eager=True)} & {"torch", "numpy"}
        assert not heavy, f"{module} reaches {reached}, which imports {heavy}"


def test_only_the_zip_reader_reads_zip_archives():
    readers = sorted(m for m in MODULES if {"zipfile", "zlib"} & _imports(m))
    assert readers == [f"{ROOT_NAME}.scan.ziparchive"]


def test_every_exception_is_a_ckptcompat_error():
    strays = []
    for info in pkgutil.walk_packages(pytest_ckptcompat.__path__, f"{ROOT_NAME}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not issubclass(obj, CkptCompatError)
            ):
                strays.append(f"{module.__name__}.{name}")
    assert not strays


def test_public_names_resolve_and_are_listed():
    for name in pytest_ckptcompat.__all__:
        assert getattr(pytest_ckptcompat, name) is not None, name
    assert set(dir(pytest_ckptcompat)) >= set(pytest_ckptcompat.__all__)
    with pytest.raises(AttributeError):
        pytest_ckptcompat.not_a_name  # noqa: B018
    from pytest_ckptcompat.noxmatrix import add_matrix_sessions

    assert add_matrix_sessions is pytest_ckptcompat.add_matrix_sessions


def test_report_and_gate_run_without_torch_or_numpy(tmp_path):
    """`matrix/` in use: merge, render and gate a real-shaped report with torch unimportable."""
    report = tmp_path / "cell.json"
    report.write_text(
        '{"schema": "ckptcompat.report/1", "reader": {"tag": "torch2.5.1-numpy1.25.2-py3.11",'
        ' "torch": "2.5.1", "numpy": "1.25.2", "python": "3.11.7", "platform": "linux"},'
        ' "records": [{"artifact": "a", "writer": "torch2.5.1-numpy1.25.2-py3.11",'
        ' "outcome": "blocked", "kind": "golden", "blocked": ["builtins.set"],'
        ' "globals": {"builtins.set": "blocked"}}]}'
    )
    # What `ckptcompat check-fix` writes in that reader once the report's snippet loaded
    # the golden: a baseline is written only from a matrix whose printed fix is proved.
    fixcheck = tmp_path / "fix.json"
    code = (
        "import json, sys\n"
        "sys.modules['torch'] = None; sys.modules['numpy'] = None\n"  # importing them fails
        "from pytest_ckptcompat.cli import main\n"
        f"assert main(['report', {str(report)!r}, '--out', {str(tmp_path / 'out')!r}]) == 0\n"
        f"m = {str(tmp_path / 'out' / 'matrix.json')!r}\n"
        "sha = json.load(open(m))['fix']['sha256']\n"
        "tag = 'torch2.5.1-numpy1.25.2-py3.11'\n"
        "check = dict(schema='ckptcompat.fixcheck/1', created='', reader=dict(tag=tag),\n"
        "    snippet_sha256=sha, results=[dict(artifact='a', writer=tag, loads=True, error='')])\n"
        f"open({str(fixcheck)!r}, 'w').write(json.dumps(check))\n"
        f"assert main(['report', {str(report)!r}, {str(fixcheck)!r}, '--out', "
        f"{str(tmp_path / 'out')!r}]) == 0\n"
        f"assert main(['gate', m, '--write-baseline', {str(tmp_path / 'b.json')!r}]) == 0\n"
        f"assert main(['gate', m, '--baseline', {str(tmp_path / 'b.json')!r}]) == 0\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
