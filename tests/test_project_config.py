"""`ckptcompat scan` and pytest read the same configuration file, by pytest's own rules.

- `project_config.find_ini` against the installed pytest's `locate_config`, on
  every layout of the seven file names (with and without a pytest section, in
  a project and its parent folder), and the value each gives;
- real runs: the allowlist in each kind of file makes `pytest` pass and
  `ckptcompat scan` call the file loadable, and both fail without it;
- `--ckpt-compat-dir DIR` / `--ckpt-compat-report FILE` in the space form with
  a path outside the project: a usage error naming the `=` form, never a run
  without the project's ini; the `=` form keeps it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ckptcompat.errors import CkptCompatError
from pytest_ckptcompat.project_config import find_ini, ini_lines, loaders

KEY = "ckpt_compat_safe_globals"

# What each file holds when it configures pytest ("yes"), and when it does not ("no").
CONTENT = {
    "pytest.toml": ('[pytest]\nckpt_compat_safe_globals = ["a.from_pytest_toml"]\n', "# empty\n"),
    ".pytest.toml": ('[pytest]\nckpt_compat_safe_globals = ["a.from_dot_pytest_toml"]\n', ""),
    "pytest.ini": ("[pytest]\nckpt_compat_safe_globals =\n  a.from_pytest_ini\n", "[other]\n"),
    ".pytest.ini": ("[pytest]\nckpt_compat_safe_globals = a.from_dot_pytest_ini\n", "[x]\n"),
    "pyproject.toml": (
        '[tool.pytest.ini_options]\nckpt_compat_safe_globals = ["a.from_ini_options"]\n',
        '[project]\nname = "x"\n',
    ),
    "tox.ini": ("[pytest]\nckpt_compat_safe_globals =\n  a.from_tox\n  b.second\n", "[tox]\n"),
    "setup.cfg": ("[tool:pytest]\nckpt_compat_safe_globals = a.from_setup_cfg\n", "[metadata]\n"),
}


def pytest_locate(start: Path):
    """(inifile, {key: value}) as the installed pytest finds them from `start`."""
    from _pytest.config.findpaths import locate_config

    _, inipath, cfg, *_ = locate_config(start, [start])
    values = {k: getattr(v, "value", v) for k, v in cfg.items()}
    return inipath, values


def ours(start: Path):
    found = find_ini(start)
    if found is None:
        return None, {}
    path, section = found
    return path, dict(section)


def _layouts():
    names = list(CONTENT)
    # Every pair of files in one folder (each with or without a pytest section) ...
    for (a, b), (ha, hb) in itertools.product(
        itertools.combinations(names, 2), itertools.product((True, False), repeat=2)
    ):
        yield {"": {a: ha, b: hb}}
    # ... and a file in the project against one in its parent folder.
    for a, b in itertools.product(names, repeat=2):
        for ha, hb in itertools.product((True, False), repeat=2):
            yield {"project": {a: ha}, "": {b: hb}}


LAYOUTS = list(_layouts())


@pytest.mark.parametrize("layout", LAYOUTS, ids=[str(i) for i in range(len(LAYOUTS))])
def test_the_same_file_and_values_as_pytests_own_search(tmp_path, layout):
    start = tmp_path / "project"
    start.mkdir()
    for folder, files in layout.items():
        for name, has in files.items():
            (tmp_path / folder / name).write_text(CONTENT[name][0 if has else 1])
    expected_path, expected_values = pytest_locate(start)
    path, values = ours(start)
    assert path == expected_path, layout
    assert values == expected_values, layout


def test_every_file_name_pytest_knows_is_searched_in_its_order():
    from _pytest.config import findpaths

    order = getattr(findpaths, "CONFIG_LOADERS_BY_NAME", None)
    if order is None:  # pytest < 9
        pytest.skip("the installed pytest has no table of config file names")
    assert list(loaders()) == list(order)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("pyproject.toml", "[tool.pytest]\nx = 1\n[tool.pytest.ini_options]\ny = '2'\n", "both"),
        ("setup.cfg", "[pytest]\nckpt_compat_safe_globals = a.b\n", "[tool:pytest]"),
        ("pytest.toml", 'ckpt_compat_safe_globals = ["a.b"]\n', "[pytest] table"),
        ("pytest.toml", "[pytest\n", "cannot read"),
        ("tox.ini", "[pytest]\n  indented first line\n", "cannot read"),
    ],
)
def test_a_file_pytest_refuses_is_an_error_naming_it(tmp_path, name, text, problem):
    (tmp_path / name).write_text(text)
    pattern = rf"^{re.escape(str(tmp_path / name))}: .*{re.escape(problem)}"
    with pytest.raises(CkptCompatError, match=pattern):
        find_ini(tmp_path)


def test_values_are_typed_as_pytest_types_them(tmp_path):
    (tmp_path / "pytest.toml").write_text('[pytest]\nckpt_compat_safe_globals = "a.b"\n')
    _, section = find_ini(tmp_path)
    # A TOML file's own table holds native values: a string is not a linelist.
    with pytest.raises(CkptCompatError, match=r"pytest\.toml: config option .* expects a list"):
        ini_lines(section, KEY)
    (tmp_path / "pytest.toml").write_text("[pytest]\nckpt_compat_safe_globals = [1]\n")
    with pytest.raises(CkptCompatError, match="index 0 is int"):
        ini_lines(find_ini(tmp_path)[1], KEY)
    (tmp_path / "pytest.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest]\nckpt_compat_safe_globals = ['a.b', 'c.d']\n"
    )
    assert ini_lines(find_ini(tmp_path)[1], KEY) == ["a.b", "c.d"]
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nckpt_compat_safe_globals = "a.b\\n  c.d\\n"\n'
    )
    assert ini_lines(find_ini(tmp_path)[1], KEY) == ["a.b", "c.d"]


# ------------------------------------------------------------------ real runs

PROJECT_TEST = """\
import argparse


def test_namespace_round_trips(ckpt_compat):
    ckpt_compat.roundtrip({"args": argparse.Namespace(lr=0.1)})
"""

ALLOWLISTS = {
    "pytest.toml": '[pytest]\nckpt_compat_safe_globals = ["argparse.Namespace"]\n',
    ".pytest.toml": '[pytest]\nckpt_compat_safe_globals = ["argparse.Namespace"]\n',
    "pytest.ini": "[pytest]\nckpt_compat_safe_globals = argparse.Namespace\n",
    ".pytest.ini": "[pytest]\nckpt_compat_safe_globals = argparse.Namespace\n",
    "pyproject.toml[tool.pytest]": (
        '[tool.pytest]\nckpt_compat_safe_globals = ["argparse.Namespace"]\n'
    ),
    "pyproject.toml[ini_options]": (
        '[tool.pytest.ini_options]\nckpt_compat_safe_globals = ["argparse.Namespace"]\n'
    ),
    "tox.ini": "[pytest]\nckpt_compat_safe_globals =\n    argparse.Namespace\n",
    "setup.cfg": "[tool:pytest]\nckpt_compat_safe_globals = argparse.Namespace\n",
}


@pytest.fixture(scope="module")
def namespace_checkpoint(tmp_path_factory):
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("ckpt") / "ns.pt"
    torch.save({"args": argparse.Namespace(lr=0.1)}, path)
    return path


def scan(checkpoint: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "scan", "--json", str(checkpoint)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


@pytest.mark.parametrize("kind", list(ALLOWLISTS))
def test_pytest_and_scan_read_the_same_allowlist(pytester, namespace_checkpoint, kind):
    name = kind.split("[")[0]
    sub = pytester.path / "sub"  # both run from a subfolder: the search walks up
    sub.mkdir()
    (sub / "test_ns.py").write_text(PROJECT_TEST)
    # A file pytest ranks lower, in the same folder, saying the opposite: must be ignored.
    if name != "setup.cfg":
        (pytester.path / "setup.cfg").write_text("[tool:pytest]\nckpt_compat_safe_globals =\n")
    (pytester.path / name).write_text(ALLOWLISTS[kind])

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    proc = scan(namespace_checkpoint, sub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (file,) = json.loads(proc.stdout)["files"]
    assert file["loadable"] is True

    # Without the entry, both say it does not load.
    (pytester.path / name).write_text(ALLOWLISTS[kind].replace("argparse.Namespace", ""))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert scan(namespace_checkpoint, sub).returncode == 1


@pytest.fixture
def project(pytester):
    pytester.makefile(
        ".toml", pytest='[pytest]\nckpt_compat_safe_globals = ["argparse.Namespace"]\n'
    )
    pytester.makepyfile(test_ns=PROJECT_TEST)
    outside = pytester.path.parent / f"{pytester.path.name}-outside"
    outside.mkdir()
    (outside / "old-report.json").write_text("{}")
    return pytester, outside


@pytest.mark.parametrize(
    ("option", "value"),
    [("--ckpt-compat-dir", "goldens"), ("--ckpt-compat-report", "old-report.json")],
)
def test_the_equals_form_keeps_the_projects_ini(project, option, value):
    pytester, outside = project
    (outside / "goldens").mkdir(exist_ok=True)
    result = pytester.runpytest_subprocess(f"{option}={outside / value}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert f"configfile: {Path('pytest.toml')}" in result.stdout.str()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--ckpt-compat-dir", "goldens"), ("--ckpt-compat-report", "old-report.json")],
)
def test_the_space_form_outside_the_project_is_a_usage_error_not_a_lost_ini(project, option, value):
    pytester, outside = project
    (outside / "goldens").mkdir(exist_ok=True)
    path = outside / value
    result = pytester.runpytest_subprocess(option, str(path), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: {option} {path}: pytest takes a separate value for a test path before plugins "
        f"load, and so read no configuration file instead of {pytester.path / 'pytest.toml'}: "
        f"write {option}={path}"
    )
    assert "passed" not in result.stdout.str()


def test_the_space_form_that_changes_nothing_runs(project):
    pytester, outside = project
    # A report file that does not exist yet, and a folder inside the project: pytest's
    # search is the same with or without them.
    (pytester.path / "goldens").mkdir()
    result = pytester.runpytest_subprocess(
        "--ckpt-compat-report",
        str(outside / "new-report.json"),
        "--ckpt-compat-dir",
        "goldens",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    assert (outside / "new-report.json").is_file()
