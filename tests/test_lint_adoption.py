"""`ckptcompat lint` next to ruff and bandit: noqa, [tool.ckptcompat.lint], output formats,
pre-commit, and the loads it must see (partial, getattr, map) or must not misjudge
(an in-memory round trip of the project's own object).

Real `ckptcompat` runs (subprocesses) and real pre-commit runs; SARIF is validated
in tests/test_sarif.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from run_cli import ckptcompat

from pytest_ckptcompat.lint import lint_source

ROOT = Path(__file__).resolve().parent.parent


def codes(source):
    return [(f.line, f.code) for f in lint_source(textwrap.dedent(source))]


# ------------------------------------------------------------ loads it must see


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import functools, torch\nf = functools.partial(torch.load)\n", [(2, "CKC001")]),
        (
            "from functools import partial\nimport torch\n"
            "f = partial(torch.load, map_location='cpu')\n",
            [(3, "CKC001")],
        ),
        (
            "import functools as ft\nfrom torch import load\n"
            "f = ft.partial(load, weights_only=False)\n",
            [(3, "CKC002")],
        ),
        ("import functools, torch\nf = functools.partial(torch.load, weights_only=True)\n", []),
        ("import torch\nx = getattr(torch, 'load')(p)\n", [(2, "CKC001")]),
        ("import torch\nx = getattr(torch.serialization, 'load')(p, weights_only=True)\n", []),
        (
            "import torch\nld = getattr(torch, 'load')\nx = ld(p, weights_only=False)\n",
            [(3, "CKC002")],
        ),
        ("import torch\nx = getattr(torch, name)(p)\n", []),  # a computed name: no guess
        ("import torch\nxs = list(map(torch.load, paths))\n", [(2, "CKC001")]),
        ("import torch\nxs = pool.map(torch.load, paths)\n", [(2, "CKC001")]),
        ("import torch\nxs = executor.map(getattr(torch, 'load'), paths)\n", [(2, "CKC001")]),
        (
            "import torch, functools\n"
            "xs = map(functools.partial(torch.load, weights_only=True), ps)\n",
            [],
        ),
        # the file binds its own getattr / map: not the builtins
        ("import torch\ndef getattr(a, b):\n    return b\ngetattr(torch, 'load')(p)\n", []),
        ("import torch\nfrom mylib import map\nmap(torch.load, ps)\n", []),
    ],
)
def test_loads_through_partial_getattr_and_map(source, expected):
    assert codes(source) == expected


def test_how_the_load_is_reached_is_said():
    (partial,) = lint_source("import functools, torch\nf = functools.partial(torch.load)\n")
    assert partial.call == "functools.partial(torch.load)"
    assert partial.reason.startswith("through functools.partial, which does not pass weights_only")
    assert partial.fix.startswith("partial(torch.load, ..., weights_only=True)")
    (mapped,) = lint_source("import torch\nxs = pool.map(torch.load, paths)\n")
    assert mapped.reason.startswith(
        "torch.load called by pool.map() with positional arguments only (weights_only is "
        "keyword-only): "
    )
    assert mapped.fix.startswith("partial(torch.load, weights_only=True) as the function")


# ------------------------------------------------ the in-memory round trip (opacus)

# opacus/utils/module_utils.py, clone_module (the body as opacus has it).
CLONE_MODULE = """\
import io

import torch
from torch import nn


def clone_module(module: nn.Module) -> nn.Module:
    with io.BytesIO() as bytesio:
        torch.save(module, bytesio)
        bytesio.seek(0)
        module_copy = torch.load(bytesio)
    next_param = next(module.parameters(), None)
    return module_copy.to(next_param.device) if next_param is not None else module_copy
"""


def test_an_in_memory_round_trip_is_recognised_and_not_told_to_use_weights_only_true():
    (finding,) = lint_source(CLONE_MODULE)
    assert (finding.line, finding.code, finding.severity) == (11, "CKC005", "warning")
    assert finding.title == "in-memory round trip, weights_only omitted"
    assert "weights_only=True would break this call" in finding.reason
    assert finding.fix.startswith("torch.load(..., weights_only=False) (safe here")
    assert "weights_only=True" not in finding.fix


def test_the_round_trip_advice_is_what_torch_does(tmp_path):
    """What CKC005 says, on the real torch: True breaks clone_module, False is right."""
    torch = pytest.importorskip("torch")
    namespace: dict[str, object] = {}
    exec(compile(CLONE_MODULE, "clone.py", "exec"), namespace)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    if tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 6):
        with pytest.raises(Exception, match="Weights only load failed"):
            namespace["clone_module"](model)  # the default is weights_only=True
    fixed = CLONE_MODULE.replace("torch.load(bytesio)", "torch.load(bytesio, weights_only=False)")
    assert lint_source(fixed) == []  # the fix it gives is clean
    namespace = {}
    exec(compile(fixed, "clone.py", "exec"), namespace)
    copy = namespace["clone_module"](model)
    assert torch.equal(copy[0].weight, model[0].weight)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # an assigned buffer, torch.load(f=...)
        (
            "import io, torch\ndef c(m):\n    b = io.BytesIO()\n    torch.save(m, b)\n"
            "    b.seek(0)\n    return torch.load(f=b)\n",
            [(6, "CKC005")],
        ),
        # a file path, not memory: the ordinary finding
        (
            "import torch\ndef c(m, path):\n    torch.save(m, path)\n    return torch.load(path)\n",
            [(4, "CKC001")],
        ),
        # loads before it saves: not a round trip
        (
            "import io, torch\ndef c(m):\n    b = io.BytesIO()\n    x = torch.load(b)\n"
            "    torch.save(m, b)\n    return x\n",
            [(4, "CKC001")],
        ),
        # another buffer saved
        (
            "import io, torch\ndef c(m):\n    a, b = io.BytesIO(), io.BytesIO()\n"
            "    torch.save(m, a)\n    return torch.load(b)\n",
            [(5, "CKC001")],
        ),
        # a buffer that came in as an argument: bytes from anywhere
        (
            "import torch\ndef c(m, b):\n    torch.save(m, b)\n    return torch.load(b)\n",
            [(4, "CKC001")],
        ),
        # pickle_module in the round trip: its own bytes, not a risk
        (
            "import io, torch, dill\ndef c(m):\n    b = io.BytesIO()\n"
            "    torch.save(m, b, pickle_module=dill)\n    b.seek(0)\n"
            "    return torch.load(b, pickle_module=dill, weights_only=False)\n",
            [],
        ),
    ],
)
def test_round_trip_variants(source, expected):
    assert codes(source) == expected


# ------------------------------------------------------------------------- noqa


def test_noqa_per_line_as_ruff_reads_it():
    source = """\
        import torch
        a = torch.load(p)  # noqa: CKC001
        b = torch.load(p)  # noqa
        c = torch.load(p)  # noqa: CKC002
        d = torch.load(p, weights_only=False)  # NOQA:CKC001,CKC002
        e = torch.load(p, pickle_module=dill, weights_only=False)  # noqa: CKC002
        f = torch.load("# noqa")
        g = torch.load(p)  # noqa: S614 (bandit's code, not ours)
        """
    assert codes(source) == [(4, "CKC001"), (6, "CKC004"), (7, "CKC001"), (8, "CKC001")]
    # Only the line the finding is reported on counts.
    assert codes("import torch\nx = torch.load(\n    p,  # noqa\n)\n") == [(2, "CKC001")]


# ---------------------------------------------------- [tool.ckptcompat.lint]

RISKY = {
    "src/pkg/io.py": "import torch\nx = torch.load(p)\ny = torch.load(p, weights_only=flag)\n",
    "src/pkg/legacy.py": "import torch\nx = torch.load(p, weights_only=False)\n",
    "tests/test_io.py": "import torch\nx = torch.load(p)\n",
    "vendored/lib.py": "import torch\nx = torch.load(p)\n",
}


@pytest.fixture
def project(tmp_path):
    for rel, text in RISKY.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def found(proc):
    return sorted((f["path"], f["line"], f["code"]) for f in json.loads(proc.stdout)["findings"])


def test_without_configuration_every_code_everywhere(project):
    proc = ckptcompat("lint", "--json", ".", cwd=project)
    assert proc.returncode == 1
    assert found(proc) == [
        ("src/pkg/io.py", 2, "CKC001"),
        ("src/pkg/io.py", 3, "CKC003"),
        ("src/pkg/legacy.py", 2, "CKC002"),
        ("tests/test_io.py", 2, "CKC001"),
        ("vendored/lib.py", 2, "CKC001"),
    ]


def test_the_pyproject_table_selects_ignores_excludes_per_file(project):
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "demo"

            [tool.ckptcompat.lint]
            select = ["CKC"]
            ignore = ["CKC003"]
            exclude = ["vendored"]

            [tool.ckptcompat.lint.per-file-ignores]
            "tests/**" = ["CKC001"]
            "src/pkg/legacy.py" = ["CKC002"]
            """
        )
    )
    sub = project / "src"  # found from a subfolder too, patterns stay relative to the file
    proc = ckptcompat("lint", "--json", "..", cwd=sub)
    assert proc.returncode == 1, proc.stderr
    assert found(proc) == [("../src/pkg/io.py", 2, "CKC001")]
    # exclude holds for files given by name (pre-commit passes names), like --force-exclude.
    proc = ckptcompat("lint", "vendored/lib.py", "src/pkg/legacy.py", cwd=project)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.endswith("0 finding(s) in 0 of 1 file(s) checked\n")
    # The command line's --select / --ignore win; --no-config drops the file.
    proc = ckptcompat("lint", "--json", "--select", "CKC003", ".", cwd=project)
    assert found(proc) == [("src/pkg/io.py", 3, "CKC003")]
    proc = ckptcompat("lint", "--json", "--ignore", "CKC001,CKC002", ".", cwd=project)
    assert found(proc) == []
    proc = ckptcompat("lint", "--json", "--no-config", ".", cwd=project)
    assert len(found(proc)) == 5
    other = project / "other.toml"
    other.write_text('[tool.ckptcompat.lint]\nselect = ["CKC002"]\n')
    proc = ckptcompat("lint", "--json", "--config", other, ".", cwd=project)
    assert found(proc) == [("src/pkg/legacy.py", 2, "CKC002")]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('select = ["CKC9"]', "select: 'CKC9' selects no code; the codes are CKC001, "),
        ('ignore = "CKC001"', "ignore: expected a list of strings, got 'CKC001'"),
        ("colour = 1", "unknown key(s) colour; the keys are select, ignore, exclude, "),
        ('per-file-ignores = ["x"]', "per-file-ignores: expected a table"),
    ],
)
def test_a_bad_table_is_one_line_and_exit_2(project, table, message):
    (project / "pyproject.toml").write_text(f"[tool.ckptcompat.lint]\n{table}\n")
    proc = ckptcompat("lint", ".", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        f"ckptcompat: error: {project.resolve() / 'pyproject.toml'} [tool.ckptcompat.lint]"
    )
    assert message in proc.stderr


# ----------------------------------------------------------------- the formats


def test_github_annotations(project):
    proc = ckptcompat("lint", "--format", "github", "--no-config", "src", cwd=project)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        "::error file=src/pkg/io.py,line=2,col=5,endLine=2,title=CKC001 weights_only omitted"
        "::torch.load(p): torch < 2.6 loads with weights_only=False (arbitrary code), torch >= "
        "2.6 with True (fails on non-allowlisted globals). Fix: torch.load(..., "
        "weights_only=True); if that fails on a global, allowlist it with "
        "torch.serialization.add_safe_globals([...]) or save plain state (state_dict, tensors, "
        "containers, primitives)"
    )
    assert lines[1].startswith(
        "::warning file=src/pkg/io.py,line=3,col=5,endLine=3,title=CKC003 weights_only not a "
        "literal::"
    )
    assert len(lines) == 3
    # Nothing found: nothing printed (no summary line becomes an annotation).
    proc = ckptcompat("lint", "--format", "github", "--select", "CKC005", "src", cwd=project)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_github_escapes_what_would_break_the_command(tmp_path):
    weird = tmp_path / "a,b:c%.py"
    weird.write_text("import torch\nx = torch.load('50%,\\nok')\n")
    proc = ckptcompat("lint", "--format", "github", weird.name, cwd=tmp_path)
    (line,) = proc.stdout.splitlines()
    assert line.startswith("::error file=a%2Cb%3Ac%25.py,line=2,")
    assert "torch.load('50%25,\\nok')" in line


def test_exit_zero_and_json_alias(project):
    proc = ckptcompat("lint", "--json", "--exit-zero", "src", cwd=project)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["schema"] == "ckptcompat.lint/1"


# --------------------------------------------------------------------- pre-commit


def _pre_commit() -> str:
    exe = shutil.which("pre-commit") or str(Path(sys.executable).with_name("pre-commit"))
    if not Path(exe).exists():
        pytest.fail(
            "pre-commit is a test dependency (pip install pre-commit; scripts/test installs it)",
            pytrace=False,
        )
    return exe


def test_the_hook_manifest_is_valid():
    proc = subprocess.run(
        [_pre_commit(), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "- id: ckptcompat-lint" in text
    assert "- id: ckptcompat-scan" in text


@pytest.fixture(scope="module")
def git_project(tmp_path_factory):
    torch = pytest.importorskip("torch")
    import argparse

    repo = tmp_path_factory.mktemp("repo")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text(
        "import torch\nstate = torch.load(path)\nok = torch.load(path)  # noqa: CKC001\n"
    )
    (repo / "clean.py").write_text("x = 1\n")
    torch.save({"args": argparse.Namespace(lr=0.1)}, repo / "ckpt.pt")
    torch.save({"w": torch.zeros(2)}, repo / "weights.pt")
    (repo / "notes.bin").write_bytes(b"not a checkpoint")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    return repo


def try_repo(repo: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        # The scan hook runs where you commit from: this environment (torch, the plugin).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [_pre_commit(), "try-repo", str(ROOT), hook, "--all-files", "--color", "never"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_pre_commit_runs_both_hooks(git_project, tmp_path_factory):
    home = tmp_path_factory.mktemp("pre-commit-home")
    lint = try_repo(git_project, "ckptcompat-lint", home)
    assert lint.returncode == 1, lint.stdout + lint.stderr
    assert "train.py:2:9: CKC001 weights_only omitted in torch.load(path)" in lint.stdout
    assert "train.py:3" not in lint.stdout  # the noqa comment on it is honoured
    assert "1 finding(s) in 1 of 2 file(s) checked" in lint.stdout  # python files only

    scan = try_repo(git_project, "ckptcompat-scan", home)
    assert scan.returncode == 1, scan.stdout + scan.stderr
    assert "ckpt.pt: torch-zip, NOT loadable" in scan.stdout
    assert "argparse.Namespace" in scan.stdout
    assert "weights.pt: torch-zip, loadable" in scan.stdout
    assert "notes.bin" not in scan.stdout  # checkpoint extensions only


def test_readme_shows_both_hooks_as_this_manifest_names_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".pre-commit-config.yaml" in readme
    for hook in ("ckptcompat-lint", "ckptcompat-scan"):
        assert f"- id: {hook}" in readme
