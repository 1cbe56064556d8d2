"""`ckptcompat lint`: static detection of torch.load calls without weights_only=True.

Through the module API (`lint_source`, `lint_file`, `lint_paths`) for the
resolution rules, and through the real console entry for output and exit codes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
from run_cli import ckptcompat

from pytest_ckptcompat import schemas
from pytest_ckptcompat.lint import (
    LintFileError,
    lint_file,
    lint_paths,
    lint_source,
)


def codes(source):
    """(line, code) of every finding in `source` (dedented)."""
    return [(f.line, f.code) for f in lint_source(textwrap.dedent(source))]


# ------------------------------------------------------------ what is a torch.load


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(p)",
        "import torch as T\nT.load(p)",
        "from torch import load\nload(p)",
        "from torch import load as tload\ntload(p)",
        "from torch.serialization import load\nload(p)",
        "from torch.serialization import load as sload\nsload(p)",
        "import torch.serialization as ser\nser.load(p)",
        "import torch.serialization\ntorch.serialization.load(p)",
        "import torch\ntorch.serialization.load(p)",
        "from torch import serialization\nserialization.load(p)",
        "from torch import serialization as s\ns.load(p)",
        "from torch.serialization import *\nload(p)",
        "import torch\nT = torch\nT.load(p)",
        "import torch\nmyload = torch.load\nmyload(p)",
        "try:\n    import torch\nexcept ImportError:\n    torch = None\ntorch.load(p)",
        # torch never imported: a bare `torch` is still taken as the module
        "x = 1\ntorch.load(p)",
    ],
)
def test_every_alias_form_is_found(source):
    last = source.count("\n") + 1
    assert codes(source) == [(last, "CKC001")]


@pytest.mark.parametrize(
    "source",
    [
        "import json\njson.load(f)",
        "import pickle\npickle.load(f)",
        "import numpy as np\nnp.load(f)",
        "from pickle import load\nload(f)",
        "from json import load as torch_load\ntorch_load(f)",
        "import json as torch\ntorch.load(f)",
        "import torch\ntorch.hub.load(repo, model)",
        "import torch\ntorch.jit.load(f)",
        "import torch\nimport pickle\npickle.load(f)",
        "import torch\nclass M:\n    def load(self, p):\n        return self.load(p)",
        "import torch\ndef f(torch):\n    return torch.load(p)",
        "from torch import load\ndef f(load):\n    return load(p)",
        "from torch import load\ndef f():\n    load = json.load\n    return load(p)",
        "import torch\nprint([torch.load(p) for torch in models])",
        "from torch import load\ndef f(p):\n    for load in loaders:\n        load(p)",
        "import torch\ndef f(p):\n    with ctx() as torch:\n        torch.load(p)",
        "import torch\ndef f(p):\n    a, torch = pair\n    torch.load(p)",
        "from . import torch\ntorch.load(p)",
    ],
)
def test_lookalikes_are_not_flagged(source):
    assert codes(source) == []


def test_imports_are_tracked_per_function_scope():
    source = """\
        import json

        def outer():
            from torch import load

            def inner(p):
                return load(p)  # closure over outer's import

            return inner, load("a")

        def other(p):
            return load(p)  # outer's import is not visible here

        def shadowed():
            import json as torch
            return torch.load(f)
        """
    assert codes(source) == [(7, "CKC001"), (9, "CKC001")]


def test_comprehension_variables_do_not_leak():
    source = """\
        from torch import load

        def f(p):
            fns = [load for load in (json.load, pickle.load)]
            return load(p), fns
        """
    assert codes(source) == [(5, "CKC001")]


def test_class_bodies_do_not_shadow_for_methods_and_global_binds_module_level():
    source = """\
        import torch

        class C:
            torch = None  # a class attribute: methods still see the module

            def m(self, p):
                return torch.load(p)

        def setup():
            global ld
            from torch import load as ld

        def use(p):
            return ld(p)
        """
    assert codes(source) == [(7, "CKC001"), (14, "CKC001")]


# ---------------------------------------------------------------- what is wrong


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("p, weights_only=True", []),
        ("p, map_location='cpu', weights_only=True", []),
        ("p, weights_only=True, **kw", []),
        ("p", ["CKC001"]),
        ("p, map_location='cpu'", ["CKC001"]),
        ("p, weights_only=None", ["CKC001"]),
        ("p, weights_only=False", ["CKC002"]),
        ("p, weights_only=flag", ["CKC003"]),
        ("p, weights_only=not trusted", ["CKC003"]),
        ("p, weights_only=0", ["CKC003"]),  # not the literal False, but not True either
        ("p, **kw", ["CKC003"]),
        ("p, pickle_module=pickle", ["CKC004"]),
        ("p, pickle_module=None", ["CKC001"]),
        ("p, None, pickle", ["CKC004"]),  # third positional parameter is pickle_module
        ("p, None, None", ["CKC001"]),
        ("p, pickle_module=dill, weights_only=True", ["CKC004"]),
        ("p, pickle_module=dill, weights_only=False", ["CKC002", "CKC004"]),
    ],
)
def test_weights_only_and_pickle_module_verdicts(args, expected):
    assert [c for _, c in codes(f"import torch\ntorch.load({args})")] == expected


def test_finding_fields_reason_and_fix():
    source = "import torch as T\n\n\nstate = T.load(path)\nobj = T.load(path, weights_only=False)\n"
    omitted, false = lint_source(source, "m.py")
    assert (omitted.path, omitted.line, omitted.col, omitted.code) == ("m.py", 4, 9, "CKC001")
    assert omitted.call == "T.load(path)"
    assert omitted.title == "weights_only omitted"
    assert omitted.reason == (
        "torch < 2.6 loads with weights_only=False (arbitrary code), "
        "torch >= 2.6 with True (fails on non-allowlisted globals)"
    )
    # The fix is spelled with the alias the code uses.
    assert omitted.fix.startswith("T.load(..., weights_only=True)")
    assert "torch.serialization.add_safe_globals" in omitted.fix
    assert omitted.severity == "error"
    assert false.code == "CKC002"
    assert false.reason.startswith("executes any pickle")
    assert "only for files you trust" in false.fix
    assert "add_safe_globals" in false.fix


def test_non_literal_is_a_warning_naming_the_expression():
    (finding,) = lint_source("import torch\ntorch.load(p, weights_only=cfg.safe)\n")
    assert finding.severity == "warning"
    assert finding.title == "weights_only not a literal"
    assert "weights_only=cfg.safe" in finding.reason
    assert finding.reason.startswith("check it")


def test_call_text_is_one_shortened_line_and_col_counts_characters():
    source = (
        "import torch\ncafé = torch.load(\n    '" + "x" * 100 + "',\n    map_location='cpu',\n)\n"
    )
    (finding,) = lint_source(source)
    assert (finding.line, finding.col) == (2, 8)  # 'café = ' is 7 characters, 8 UTF-8 bytes
    assert "\n" not in finding.call
    assert len(finding.call) == 72
    assert finding.call.startswith("torch.load( 'xxx")
    assert finding.call.endswith("...")


def test_findings_come_in_source_order_with_nested_calls():
    source = """\
        import torch
        a = torch.load(torch.load(p, weights_only=False))
        b = [torch.load(q) for q in qs]
        """
    assert codes(source) == [(2, "CKC001"), (2, "CKC002"), (3, "CKC001")]


def test_invalid_escape_in_source_does_not_warn():
    # pytest turns warnings into errors here: a SyntaxWarning would fail this test.
    assert codes('import torch\nrx = "\\d+"\ntorch.load(p)\n') == [(3, "CKC001")]


def test_unparsable_sources(tmp_path):
    with pytest.raises(SyntaxError):
        lint_source("import torch\ndef f(:\n    torch.load(p)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\ndef f(:\n    torch.load(p)\n")
    with pytest.raises(LintFileError, match=r"bad\.py: cannot parse \(line 3: invalid syntax\)$"):
        lint_file(bad)
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"import torch\ntorch.load(p)\n# caf\xe9\n")
    with pytest.raises(LintFileError, match=r"latin\.py: cannot parse \(line 3: .*0xe9"):
        lint_file(latin)
    nul = tmp_path / "nul.py"
    nul.write_bytes(b"import torch\n\ntorch.load(p)\x00\n")
    with pytest.raises(LintFileError, match=r"nul\.py: cannot parse \(line 3: a null byte\)$"):
        lint_file(nul)
    deep = tmp_path / "deep.py"  # the parser gives up with MemoryError/RecursionError
    deep.write_text("import torch\ntorch.load(p)\nx = " + "-" * 100_000 + "1\n")
    with pytest.raises(LintFileError, match=r"deep\.py: cannot parse \(.+\)$"):
        lint_file(deep)


def test_coding_cookie_is_honoured(tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nimport torch\nx = '\xe9'; torch.load(p)\n")
    (finding,) = lint_file(latin)
    assert (finding.line, finding.col, finding.code) == (3, 10, "CKC001")


def test_files_without_load_or_torch_are_not_parsed(tmp_path):
    # The cheap pre-check: no finding is possible, so not even a syntax error is reported.
    (tmp_path / "broken.py").write_text("def f(:\n    json.load(x)\n")
    (tmp_path / "broken2.py").write_text("import torch\ndef f(:\n")
    result = lint_paths([tmp_path])
    assert result.files_checked == 2
    assert result.findings == []
    assert result.errors == []


def test_lint_paths_recurses_and_skips_environments(tmp_path):
    risky = "import torch\ntorch.load(p)\n"
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "m.py").write_text(risky)
    (tmp_path / "pkg" / "a.py").write_text(risky)
    (tmp_path / "pkg" / "notes.txt").write_text(risky)
    skipped = [
        ".venv/lib/python3.11/site-packages/x",
        "venv/lib",
        ".tox/py311",
        ".nox/tests",
        "node_modules/x",
        "__pycache__",
        "build/lib",
        "dist",
        ".git/hooks",
        "lib/site-packages/opacus",
        "myenv/lib",  # any name: a pyvenv.cfg makes it a virtualenv
    ]
    for rel in skipped:
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "vendored.py").write_text(risky)
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    result = lint_paths([tmp_path])
    found = [f.path for f in result.findings]
    assert found == [str(tmp_path / "pkg" / "a.py"), str(tmp_path / "pkg" / "sub" / "m.py")]
    assert result.files_checked == 2
    # The same file reached twice is reported once.
    again = lint_paths([tmp_path / "pkg", tmp_path / "pkg" / "a.py"])
    assert [f.path for f in again.findings] == found
    # A path given explicitly is linted even inside a skipped directory.
    explicit = tmp_path / ".venv/lib/python3.11/site-packages/x/vendored.py"
    assert [f.code for f in lint_paths([explicit]).findings] == ["CKC001"]


# ------------------------------------------------------------ the console entry


@pytest.fixture
def tree(tmp_path):
    good = tmp_path / "good.py"
    good.write_text("import torch\nsd = torch.load(p, weights_only=True)\n")
    risky = tmp_path / "risky.py"
    risky.write_text("import torch\nsd = torch.load(p)\n")
    return good, risky


def test_cli_clean_file_exits_0(tree):
    good, _ = tree
    proc = ckptcompat("lint", good)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ckptcompat lint: 0 finding(s) in 0 of 1 file(s) checked\n"
    assert proc.stderr == ""


def test_cli_text_output_and_exit_1(tree):
    good, risky = tree
    proc = ckptcompat("lint", good, risky)
    assert proc.returncode == 1
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        f"{risky}:2:6: CKC001 weights_only omitted in torch.load(p): torch < 2.6 loads with "
        "weights_only=False (arbitrary code), torch >= 2.6 with True (fails on non-allowlisted "
        "globals)"
    )
    assert lines[1].startswith("    fix: torch.load(..., weights_only=True); ")
    assert "add_safe_globals" in lines[1]
    assert lines[2] == "ckptcompat lint: 1 finding(s) in 1 of 2 file(s) checked"


def test_cli_json_schema(tree):
    good, risky = tree
    proc = ckptcompat("lint", "--json", good, risky)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["schema"] == schemas.LINT == "ckptcompat.lint/1"
    assert doc["errors"] == []
    assert doc["files_checked"] == 2
    (finding,) = doc["findings"]
    assert {"path", "line", "col", "code", "call", "reason", "fix"} <= set(finding)
    assert finding["path"] == str(risky)
    assert (finding["line"], finding["col"], finding["code"]) == (2, 6, "CKC001")
    assert finding["call"] == "torch.load(p)"
    assert finding["severity"] == "error"


def test_cli_unparsable_file_exits_2_and_still_reports_the_others(tree, tmp_path):
    _, risky = tree
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\ntorch.load(p\n")
    proc = ckptcompat("lint", bad, risky)
    assert proc.returncode == 2  # 2 wins over the 1 of risky.py
    stderr = proc.stderr.splitlines()
    assert len(stderr) == 1
    assert re.fullmatch(
        rf"ckptcompat: error: {re.escape(str(bad))}: cannot parse \(line 2: .+\)", stderr[0]
    )
    assert f"{risky}:2:6: CKC001" in proc.stdout

    proc = ckptcompat("lint", "--json", bad, risky)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert [f["path"] for f in doc["findings"]] == [str(risky)]
    (error,) = doc["errors"]
    assert error["path"] == str(bad)
    assert error["problem"].startswith("cannot parse (line 2: ")


def test_cli_missing_path_exits_2_with_one_line(tree, tmp_path):
    good, _ = tree
    missing = tmp_path / "nope"
    proc = ckptcompat("lint", missing, good)
    assert proc.returncode == 2
    assert proc.stderr == f"ckptcompat: error: {missing}: no such file or directory\n"
    assert "0 finding(s) in 0 of 1 file(s)" in proc.stdout


def test_cli_bad_usage_exits_2_with_one_line():
    proc = ckptcompat("lint")
    assert proc.returncode == 2
    assert proc.stderr.startswith("ckptcompat: error: ")
    assert proc.stderr.count("\n") == 1


def test_cli_recurses_directories_relative_to_cwd(tmp_path):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "io.py").write_text(
        "from torch import load as tload\n\n\n"
        "def read(p):\n    return tload(p, weights_only=False)\n"
    )
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "torch_stuff.py").write_text("import torch\ntorch.load(p)\n")
    proc = ckptcompat("lint", ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith(
        "src/pkg/io.py:5:12: CKC002 weights_only=False in tload(p, weights_only=False): "
        "executes any pickle"
    )
    assert ".venv" not in proc.stdout


def test_lint_never_imports_torch(tree):
    _, risky = tree
    code = (
        "import sys\n"
        "from pytest_ckptcompat.cli import main\n"
        f"rc = main(['lint', {str(risky)!r}])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "raise SystemExit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
