"""A fix is proved, not printed: apply what the scan prints, for real, on torch 2.13 and 2.5.1.

The same plain-data checkpoints are written by this environment (torch 2.13,
numpy 2.4) and the old one (torch 2.5.1, numpy 1.25.2). The scan's printed
advice is taken as a user takes it (the snippet cut out of the text), then
each reader executes it and loads every file of both writers with plain
`torch.load(weights_only=True)`: all must load. The "change what you save"
advice is proved the same way: the changed checkpoint loads with no
allowlist at all, in both readers.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_ckptcompat.scan.fixes import advise, fix_for_name, render
from pytest_ckptcompat.scan.rules import TorchRules
from pytest_ckptcompat.scan.scanner import scan_file
from pytest_ckptcompat.scan.snippet import named

PROOF = Path(__file__).parents[1] / "fixproof.py"
MARK = "and where your code calls torch.load (torch >= 2.4, numpy 1 and 2):"


def _run(python: Path | str, *args: str) -> str:
    proc = subprocess.run(
        [str(python), str(PROOF), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def printed_snippet(text: str) -> str:
    """The code block of printed advice, as a user copies it."""
    assert MARK in text, text
    return textwrap.dedent(text.split(MARK, 1)[1].strip("\n"))


@pytest.fixture(scope="module")
def written(tmp_path_factory, old_python) -> list[Path]:
    folder = tmp_path_factory.mktemp("written")
    _run(sys.executable, "save", str(folder))
    _run(old_python, "save", str(folder))
    files = sorted(folder.glob("*.pt"))
    assert len({f.name.split(".", 1)[1] for f in files}) == 2  # two writers
    return files


def _blocked_in(python: Path | str, files: list[Path]) -> list[str]:
    """Every name `ckptcompat scan` says that reader's torch refuses in these files."""
    proc = subprocess.run(
        [str(python), "-m", "pytest_ckptcompat", "scan", "--json", "--no-project-config",
         *map(str, files)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    return [
        g.get("key", g["name"])
        for f in doc["files"]
        for g in f["globals"]
        if g["status"] in ("blocked", "missing")
    ]


def _advice_for(files: list[Path], readers: list[Path | str]) -> str:
    """The advice for what any reader refuses, all names at once (as the matrix prints it)."""
    names = dict.fromkeys(n for python in readers for n in _blocked_in(python, files))
    return render([fix_for_name(n) for n in names])


@pytest.mark.slow
def test_printed_snippet_loads_every_writer_in_every_reader(written, old_python, tmp_path):
    data = [f for f in written if not f.name.startswith("changed.")]
    text = _advice_for(data, [sys.executable, old_python])
    snippet = tmp_path / "safe_globals.py"
    snippet.write_text(printed_snippet(text))
    for python in (sys.executable, old_python):
        errors = json.loads(_run(python, "load", str(snippet), *map(str, data)))
        assert not {f: e for f, e in errors.items() if e}, (python, errors)
    # And without it, they do not: the snippet is what made the difference.
    errors = json.loads(_run(old_python, "plain", *map(str, data)))
    assert sum(bool(e) for e in errors.values()) >= len(data) - 2


@pytest.mark.slow
def test_the_random_state_snippet_loads_it_under_the_numpy_major_that_wrote_it(
    old_python, tmp_path
):
    """The numpy.random submodule entries (`import numpy.random.mtrand`, ...), applied for
    real: each reader loads the RandomState its own numpy major wrote (numpy 2 here,
    numpy 1.25.2 in the torch 2.5.1 environment), as the printed header says."""
    readers = [sys.executable, old_python]
    for python in readers:
        _run(python, "save-rng", str(tmp_path))
    files = sorted(tmp_path.glob("rng.*.pt"))
    assert len(files) == 2
    text = _advice_for(files, readers)
    assert "numpy.random" in printed_snippet(text)
    snippet = tmp_path / "safe_globals.py"
    snippet.write_text(printed_snippet(text))
    for python in readers:
        major = "-numpy2." if python == sys.executable else "-numpy1."
        own = [str(f) for f in files if major in f.name]
        assert len(own) == 1
        assert json.loads(_run(python, "plain", *own))[own[0]]  # refused without it
        errors = json.loads(_run(python, "load", str(snippet), *own))
        assert not any(errors.values()), (python, errors)


@pytest.mark.slow
def test_changing_what_you_save_needs_no_allowlist_anywhere(written, old_python):
    changed = [f for f in written if f.name.startswith("changed.")]
    assert len(changed) == 2
    for python in (sys.executable, old_python):
        errors = json.loads(_run(python, "plain", *map(str, changed)))
        assert not any(errors.values()), (python, errors)


def test_uint32_arrays_are_not_advised_to_become_tensors_blindly():
    # torch 2.5 cannot torch.save a uint32 tensor ("dtype torch.uint32 is not recognized").
    change = fix_for_name("numpy._core.multiarray._reconstruct").change or ""
    assert "astype(np.int64)" in change


def test_named_keeps_objects_spelled_as_here_and_aliases_the_rest():
    import argparse

    import numpy as np

    assert named(argparse.Namespace, "argparse.Namespace") is argparse.Namespace
    scalar = np._core.multiarray.scalar
    other = named(scalar, "numpy.core.multiarray.scalar")
    assert other is not scalar
    assert (other.__module__, other.__name__, other.__qualname__) == (
        "numpy.core.multiarray",
        "scalar",
        "scalar",
    )
    assert other(np.dtype("float64"), np.float64(2.5).tobytes()) == 2.5


def test_review_and_dangerous_names_get_no_code():
    text = render([fix_for_name("mylib.helpers.load_config"), fix_for_name("os.system")])
    assert MARK not in text
    assert "review before allowlisting" in text
    assert "os.system can run code" in text


def test_advise_includes_the_project_allowlist_in_the_snippet(tmp_path):
    import torch

    path = tmp_path / "set.pt"
    torch.save({"tags": {1, 2}}, path)
    here = TorchRules.from_installed()
    # This torch's rules, but refusing `set` as torch 2.5 does.
    rules = dataclasses.replace(here, default_allowed=here.default_allowed - {"builtins.set"})
    scan = scan_file(path, rules)
    assert scan.verdict is not None
    text = advise(scan.verdict, also=["argparse.Namespace"])
    code = printed_snippet(text)
    assert '_named(set, "builtins.set")' in code
    assert '_named(argparse.Namespace, "argparse.Namespace")' in code


def test_printed_fix_says_what_it_leaves_undone():
    # An allowlist for some names and not others is part of the fix: the text says so.
    fixes = [fix_for_name("argparse.Namespace"), fix_for_name("builtins.eval", dangerous=True)]
    text = render(fixes)
    assert (
        "(the allowlist below alone does not make it load: builtins.eval still need the "
        "advice above)"
    ) in text
    assert text.index("alone does not") < text.index("or allowlist it")
    assert "alone does not" not in render([fix_for_name("argparse.Namespace")])


def test_numpy_rng_advice_is_said_once_and_names_its_limit():
    names = [
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
    ]
    text = render([fix_for_name(n) for n in names])
    # One line of advice for the three names, and the numpy-major limit of the allowlist
    # (numpy 1 cannot rebuild numpy 2's generators: measured, see tests/fixproof.py).
    assert text.count("save the RNG's state as plain values") == 1
    assert f"    {', '.join(names)}: save the RNG's state" in text
    assert "load only under the numpy major that wrote them" in text


def test_a_snippet_imports_numpy_only_when_its_entries_need_it():
    from pytest_ckptcompat.scan.snippet import render_snippet

    mine = render_snippet(['_named(mynp.Config, "mynp.Config")'], ["import mynp"])
    assert "import numpy" not in mine
    assert "_np_core" not in mine
    compile(mine, "snippet", "exec")
    numpy = render_snippet(['_named(np.dtype, "numpy.dtype")'], ["import numpy as np"])
    assert "import numpy as np" in numpy
