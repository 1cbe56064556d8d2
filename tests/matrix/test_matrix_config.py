"""The matrix file: the shipped ones load; every mistake is one line naming the file and key."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ckptcompat.errors import MatrixError
from pytest_ckptcompat.matrix.config import Cell, load_matrix

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
[matrix]
python = ["3.11"]
torch = ["2.2.2", "2.5.1"]
numpy = ["1.26.4", "2.1.3"]
exclude = [{torch = "<2.3", numpy = ">=2", reason = "torch < 2.3 needs numpy 1"}]
include = [{python = "3.12", torch = "2.5.1", numpy = "2.1.3"}]

[install]
packages = ["-e ."]
find-links = ["$CKPT_TEST_LINKS", "$CKPT_TEST_UNSET_VAR", "/srv/wheels"]

[run]
tests = ["tests/test_ckpt.py"]
"""


def test_default_matrix_covers_the_findings():
    matrix = load_matrix(ROOT / "matrix" / "matrix.toml")
    torches = {c.torch for c in matrix.cells}
    numpys = {c.numpy for c in matrix.cells}
    # builtins.set (2.5 vs 2.6+), _codecs.encode (2.4), numpy._core missing (< 1.26.1),
    # the newest torch on the index and the local CPU build.
    assert {"2.4.1", "2.5.1", "2.13.0", "2.15.0"} <= torches
    assert any(n.startswith("1.25") for n in numpys)
    assert any(n.startswith("2.") for n in numpys)
    assert "torch2.15.0-numpy2.2.6-py3.11" in matrix.tags
    assert matrix.tests == ("examples/trainer/tests",)


def test_ci_matrix_is_two_by_two_with_the_local_build():
    matrix = load_matrix(ROOT / "matrix" / "ci.toml")
    assert len({c.torch for c in matrix.cells}) == 2
    assert len({c.numpy for c in matrix.cells}) == 2
    assert "2.13.0" in {c.torch for c in matrix.cells}
    # its outputs never mix with the default matrix's
    default = load_matrix(ROOT / "matrix" / "matrix.toml")
    assert {matrix.goldens, matrix.cell_reports, matrix.report, matrix.baseline}.isdisjoint(
        {default.goldens, default.cell_reports, default.report, default.baseline}
    )


def test_product_minus_exclude_plus_include(tmp_path, monkeypatch):
    monkeypatch.setenv("CKPT_TEST_LINKS", "/opt/here")
    monkeypatch.delenv("CKPT_TEST_UNSET_VAR", raising=False)
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    matrix = load_matrix(path)
    assert matrix.cells == (
        Cell("3.11", "2.2.2", "1.26.4"),
        Cell("3.11", "2.5.1", "1.26.4"),
        Cell("3.11", "2.5.1", "2.1.3"),
        Cell("3.12", "2.5.1", "2.1.3"),
    )
    assert matrix.excluded == ((Cell("3.11", "2.2.2", "2.1.3"), "torch < 2.3 needs numpy 1"),)
    assert matrix.tags[0] == "torch2.2.2-numpy1.26.4-py3.11"
    # $VARS expand; an unset one is dropped, not passed to the installer literally
    assert matrix.index_args() == ["--find-links", "/opt/here", "--find-links", "/srv/wheels"]
    assert matrix.cell("torch2.5.1-numpy2.1.3-py3.12").python == "3.12"
    with pytest.raises(MatrixError, match="no cell 'torch9'"):
        matrix.cell("torch9")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[matrix]", "[matrx]\n[matrix]"), "matrx: unknown table"),
        (('numpy = ["1.26.4"', 'numpi = []\nnumpy = ["1.26.4"'), "matrix.numpi: unknown key"),
        (('torch = ["2.2.2", "2.5.1"]', 'torch = [">=2.2"]'), "'>=2.2' is not an exact version"),
        (('torch = ["2.2.2", "2.5.1"]', 'torch = ["2.5.1", "2.5.1"]'), "'2.5.1' is listed twice"),
        (('torch = ["2.2.2", "2.5.1"]', "torch = []"), "matrix.torch: is empty"),
        (('torch = ["2.2.2", "2.5.1"]', 'torch = "2.5.1"'), "matrix.torch: must be a list"),
        (('python = ["3.11"]\n', ""), "matrix.python: missing"),
        ((', reason = "torch < 2.3 needs numpy 1"', ""), r"matrix.exclude\[0\].reason: missing"),
        (('torch = "<2.3", numpy', 'torch = "<1.0", numpy'), r"exclude\[0\]: matches no cell"),
        (('torch = "<2.3"', 'torch = "<<2.3"'), "'<<2.3' is not a version or specifier"),
        (('reason = "torch', 'pytorch = "1", reason = "torch'), r"exclude\[0\].pytorch: unknown"),
        (('python = "3.12"', 'python = "3.11"'), "already in the product"),
        (('include = [{python = "3.12", torch = "2.5.1", numpy = "2.1.3"}]',
          'include = [{python = "3.11", torch = "2.2.2", numpy = "2.1.3"}]'), "is also excluded"),
        (("exclude = [", "exclude_ = ["), "matrix.exclude_: unknown key"),
        (('packages = ["-e ."]', 'packages = "-e ."'), "install.packages: must be a list"),
        (('tests = ["tests/test_ckpt.py"]', 'test = ["x"]'), "run.test: unknown key"),
        (("[run]", "[run]\ngoldens = ''"), "run.goldens: must be a non-empty string"),
        (("[matrix]", "[matrix"), "not valid TOML"),
    ],
)  # fmt: skip
def test_every_mistake_names_the_file_and_the_key(tmp_path, edit, message):
    old, new = edit
    assert old in GOOD
    path = tmp_path / "matrix.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(MatrixError, match=message) as info:
        load_matrix(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_impossible_cell_is_refused_unless_excluded(tmp_path):
    path = tmp_path / "matrix.toml"
    path.write_text('[matrix]\npython = ["3.11"]\ntorch = ["2.2.2"]\nnumpy = ["2.1.3"]\n')
    with pytest.raises(MatrixError, match=r"torch2.2.2-numpy2.1.3-py3.11 cannot work \(torch"):
        load_matrix(path)
    path.write_text('[matrix]\npython = ["3.12"]\ntorch = ["2.5.1"]\nnumpy = ["1.25.2"]\n')
    with pytest.raises(MatrixError, match=r"numpy < 1\.26 has no wheels for python >= 3\.12"):
        load_matrix(path)


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError, match="no such matrix file"):
        load_matrix(tmp_path / "nope.toml")


def _nox(*args: str, matrix: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CKPTCOMPAT_MATRIX"}
    if matrix is not None:
        env["CKPTCOMPAT_MATRIX"] = str(matrix)
    return subprocess.run(
        [sys.executable, "-m", "nox", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_noxfile_lists_one_session_per_cell():
    import json

    proc = _nox("-l", "--json", "-t", "cell")
    assert proc.returncode == 0, proc.stderr
    sessions = json.loads(proc.stdout)
    assert [s["name"] for s in sessions] == load_matrix(ROOT / "matrix" / "matrix.toml").tags
    proc = _nox("-l", matrix=ROOT / "matrix" / "ci.toml")
    assert "torch2.13.0-numpy2.2.6-py3.11" in proc.stdout
    assert "torch2.15.0" not in proc.stdout
    for driver in ("matrix", "report", "gate", "baseline"):
        assert f"{driver} [matrix-driver] -> " in proc.stdout


def test_noxfile_with_a_broken_matrix_says_so_in_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[matrix]\npython = ["3.11"]\ntorch = ["2.5"]\nnumpy = ["1.26.4"]\ncuda = 1\n')
    proc = _nox("-l", matrix=bad)
    assert proc.returncode != 0
    assert f"ckptcompat: error: {bad}: matrix.cuda: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cell_and_matrix_arguments():
    from pytest_ckptcompat.matrix.sessions import _cell_args, _matrix_args, _split

    matrix = load_matrix(ROOT / "matrix" / "matrix.toml")
    assert _cell_args([], matrix) == ("both", ["examples/trainer/tests"], [])
    assert _cell_args(["read", "--tests=mine", "-k", "state"], matrix) == (
        "read",
        ["mine"],
        ["-k", "state"],
    )
    with pytest.raises(SystemExit):
        _cell_args(["rite"], matrix)  # a typo is not silently a pytest argument
    opts = _matrix_args(["-j", "2", "--tests", "a", "--tests", "b", "-x"])
    assert (opts.jobs, opts.tests, opts.pytest_args) == ("2", ["a", "b"], ["-x"])
    assert _matrix_args([]).jobs == "auto"
    with pytest.raises(SystemExit):
        _matrix_args(["-j", "0"])
    assert _split(["-e .", "-e examples/trainer", "rich>=13"]) == [
        "-e", ".", "-e", "examples/trainer", "rich>=13",
    ]  # fmt: skip


def test_cells_get_the_plugin_without_listing_it(tmp_path, monkeypatch):
    from pytest_ckptcompat.matrix.sessions import missing_message, plugin_requirement

    mine = tmp_path / "matrix.toml"
    mine.write_text(
        '[matrix]\npython = ["3.11"]\ntorch = ["2.13.0"]\nnumpy = ["2.2.6"]\n'
        '[install]\npackages = ["-e ."]\n'
    )
    monkeypatch.chdir(tmp_path)  # "." is the user's project, not this checkout
    assert plugin_requirement(load_matrix(mine)) == ["-e", str(ROOT)]
    monkeypatch.chdir(ROOT)  # here "-e ." is this checkout: listed already
    assert plugin_requirement(load_matrix(mine)) == []
    mine.write_text(mine.read_text().replace('"-e ."', '"pytest-ckptcompat==0.1.0"'))
    assert plugin_requirement(load_matrix(mine)) == []
    assert missing_message(["pytest_ckptcompat"], load_matrix(mine)) == (
        'pytest_ckptcompat not importable in the cell\'s venv: add "pytest-ckptcompat" to '
        f'[install] packages in {mine} (from a checkout: "-e /path/to/pytest-ckptcompat")'
    )


def test_a_cold_run_says_what_it_will_download(tmp_path, monkeypatch):
    from pytest_ckptcompat.matrix.sessions import cold_estimate

    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv"))
    monkeypatch.delenv("UV_TORCH_BACKEND", raising=False)
    (tmp_path / "uv" / "archive-v0" / "abc" / "numpy-1.25.2.dist-info").mkdir(parents=True)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    mine = tmp_path / "matrix.toml"
    mine.write_text(
        '[matrix]\npython = ["3.11"]\ntorch = ["2.5.1", "2.13.0"]\nnumpy = ["1.25.2"]\n'
        f'[install]\nfind-links = ["{wheels}"]\n'
    )
    monkeypatch.chdir(tmp_path)
    matrix = load_matrix(mine)
    lines = cold_estimate(matrix)
    assert lines[0] == (
        "cold run: 2 of 2 cell(s) have no venv yet "
        "(torch2.5.1-numpy1.25.2-py3.11, torch2.13.0-numpy1.25.2-py3.11)"
    )
    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert "torch 2.5.1 (with CUDA libraries), torch 2.13.0 (CPU): about 9 GB" in lines[1]
    assert "numpy" not in lines[1]  # uv's cache holds it already
    (tmp_path / ".nox" / "torch2-5-1-numpy1-25-2-py3-11").mkdir(parents=True)
    (tmp_path / ".nox" / "torch2-13-0-numpy1-25-2-py3-11").mkdir(parents=True)
    assert cold_estimate(matrix) == []


def test_one_line_per_cell_and_phase(tmp_path, monkeypatch):
    import json

    from pytest_ckptcompat.matrix.sessions import log_path, progress_line, report_path

    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "matrix.toml"
    mine.write_text('[matrix]\npython = ["3.11"]\ntorch = ["2.13.0"]\nnumpy = ["2.2.6"]\n')
    matrix = load_matrix(mine)
    (cell,) = matrix.cells
    report = report_path(matrix, cell.tag, "read")
    report.parent.mkdir(parents=True)
    tests = [
        {"nodeid": "t.py::a", "outcome": "passed"},
        {"nodeid": "t.py::b", "outcome": "failed", "finding": True},
        {"nodeid": "t.py::c", "outcome": "failed", "message": "OSError: gone", "where": "x.py:3"},
    ]
    records = [{"kind": "golden", "outcome": "ok"}, {"kind": "golden", "outcome": "blocked"}]
    doc = {"tests": tests, "records": records, "run": {"exitstatus": 1}, "reader": {}}
    report.write_text(json.dumps(doc))
    assert progress_line(matrix, cell, "read", 0, 12.4) == (
        "failed: 1 passed, 1 finding, 1 failed; loads: 1 ok, 1 blocked (12 s)\n"
        "    | 1 test(s) of the project failed: t.py::c failed: OSError: gone (at x.py:3)"
    )
    log = log_path(matrix, cell.tag, "write")
    log.parent.mkdir()
    log.write_text("nox > uv pip install torch==2.13.0\nerror: no space left on device\n")
    assert progress_line(matrix, cell, "write", 1, 3.0) == (
        f"crashed: nox exited 1 and no report was kept (3 s; log: {log})\n"
        "    | nox > uv pip install torch==2.13.0\n"
        "    | error: no space left on device"
    )


def test_a_rebuilt_local_wheel_of_the_same_version_installs_again(tmp_path):
    from pytest_ckptcompat.matrix.sessions import install_key

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    mine = tmp_path / "matrix.toml"
    mine.write_text(
        '[matrix]\npython = ["3.11"]\ntorch = ["2.13.0"]\nnumpy = ["2.2.6"]\n'
        f'[install]\nfind-links = ["{wheels}"]\n'
    )
    matrix = load_matrix(mine)
    (cell,) = matrix.cells
    wheel = wheels / "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"first build")
    first = install_key(matrix, cell, [])
    assert install_key(matrix, cell, []) == first  # nothing changed: the stamp holds
    (wheels / "torch-2.14.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"another pin")
    assert install_key(matrix, cell, []) == first  # not this cell's torch
    wheel.write_bytes(b"the second build, same version")  # same name, new bytes
    assert install_key(matrix, cell, []) != first
