"""The reader's torch and numpy, known without importing them; and the commands that never do.

- `dists.installed` reads a version from the package metadata; it must equal
  `importlib.metadata`'s.
- `torch_reader.installed_rules` takes the table's rules for a known torch, and
  reads an unknown build once, then from its cache.
- `numpy_reader.ReaderNumpy` answers from the numpy table exactly what numpy
  itself answers: checked here (numpy 2.4) and in the old environment (1.25).
- `ckptcompat scan`, `lint` and `report` import neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_ckptcompat.scan import torch_reader, torch_table
from pytest_ckptcompat.scan.dists import Installed, installed
from pytest_ckptcompat.scan.numpy_reader import table_dtype_key
from pytest_ckptcompat.scan.rules import TorchRules

ROOT = Path(__file__).parents[2]
CODES = [
    "f2", "f4", "f8", "f16", "c8", "c16", "c32", "i1", "i2", "i4", "i8", "u1", "u2", "u4",
    "u8", "b1", "O8", "O", "U5", "U0", "U", "S3", "S", "V8", "V", "M8", "m8", "M8[ns]", "<f8",
    ">i4", "|b1", "=f8", "d", "q", "l", "?", "e", "g", "a5", "f3", "x9", "M8[zz]", "M8[10s]",
    "M8[2generic]", "m8[W]", "M8[generic]",
]  # fmt: skip
RANDOM = ["RandomState", "Generator", "MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"]

# Prints what numpy itself and the table say for CODES and RANDOM (run in any venv).
COMPARE = """
import json, sys, warnings
import numpy as np
from pytest_ckptcompat.scan.numpy_reader import ReaderNumpy, _live_dtype_class, _live_random_names
table = ReaderNumpy.here()
live = ReaderNumpy(np.__version__, live=True, local=True)
codes, names = json.loads(sys.argv[1])
print(json.dumps({
    "numpy": np.__version__,
    "table": [table.dtype_class(c) for c in codes] + [table.random_class(n) for n in names],
    "live": [_live_dtype_class(c) for c in codes] + [live.random_class(n) for n in names],
    "missing": [table.missing("numpy._core.multiarray.scalar"), live.missing("numpy._core.x")],
}))
"""


def test_installed_versions_are_the_metadata():
    for package in ("torch", "numpy", "pytest"):
        found = installed(package)
        assert found is not None
        assert found.version == metadata.version(package)
    assert installed("torch").location == str(Path(torch.__file__).parent)  # type: ignore[union-attr]
    assert installed("no_such_package_here") is None


def test_installed_rules_come_from_the_table():
    rules = torch_reader.installed_rules()
    assert rules.version == torch.__version__
    table = torch_table.rules_for(torch.__version__)
    assert dataclasses.replace(rules, version=table.version) == table


def test_unknown_build_is_read_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(torch_reader.CACHE_ENV, str(tmp_path / "cache"))
    build = Installed("2.99.0a0+git1234", str(Path(torch.__file__).parent))
    monkeypatch.setattr(torch_reader, "installed", lambda package: build)
    rules = torch_reader.installed_rules()
    assert rules == TorchRules.from_installed()
    (cached,) = (tmp_path / "cache").iterdir()
    assert cached.name.startswith("torch-2.99.0a0+git1234-")
    assert json.loads(cached.read_text())["key"]["version"] == build.version

    def never() -> TorchRules:
        raise AssertionError("read torch again instead of the cache")

    monkeypatch.setattr(TorchRules, "from_installed", staticmethod(never))
    assert torch_reader.installed_rules() == rules
    # Another install folder is another build: not answered by that cache.
    other = Installed(build.version, str(tmp_path / "elsewhere" / "torch"))
    assert torch_reader.cache_path(other) != cached


def test_rules_survive_their_json():
    for version in ("1.13.1", "2.5.1", "2.14.1"):
        rules = torch_table.rules_for(version)
        assert TorchRules.from_json(rules.to_json()) == rules


def test_cache_folder_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(torch_reader.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert torch_reader.rules_cache_dir() == tmp_path / "pytest-ckptcompat" / "torch-rules"


def test_no_torch_here_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch_reader, "installed", lambda package: None)
    with pytest.raises(torch_reader.TorchNotInstalledError, match=r"--torch 2\.15\.0"):
        torch_reader.installed_rules()


def test_table_dtype_keys():
    assert table_dtype_key("<f8") == "float64"
    assert table_dtype_key("U20") == "U1"
    assert table_dtype_key("M8") == "M8[s]"
    assert table_dtype_key("q") is None  # a type character numpy never writes: ask numpy
    assert table_dtype_key("f3") is None


def _compare(python: str | Path) -> dict[str, object]:
    proc = subprocess.run(
        [str(python), "-c", COMPARE, json.dumps([CODES, RANDOM])],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_numpy_table_answers_what_numpy_does_here():
    result = _compare(sys.executable)
    assert result["numpy"] == np.__version__
    assert result["table"] == result["live"]
    assert result["missing"] == [None, None]


@pytest.mark.slow
def test_numpy_table_answers_what_numpy_1_25_does(old_python):
    result = _compare(old_python)
    assert result["numpy"] == "1.25.2"
    assert result["table"] == result["live"]
    assert result["missing"][0].startswith("numpy 1.25.2 has no numpy._core")  # type: ignore[index]
    assert result["missing"][1]  # type: ignore[index]


# --- commands that never import torch or numpy ------------------------------------------

NEVER_IMPORTS = """
import sys
from pytest_ckptcompat.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "numpy") if m in sys.modules)
print(code, ",".join(heavy))
"""


def _imports(*args: object, cwd: Path | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", NEVER_IMPORTS, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    code, _, heavy = proc.stdout.strip().splitlines()[-1].partition(" ")
    return int(code), heavy


@pytest.fixture
def numpy_file(tmp_path):
    path = tmp_path / "metrics.pt"
    torch.save({"loss": np.float64(0.5), "w": torch.ones(2), "rng": np.arange(3)}, path)
    return path


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--json"],
        ["--torch", "2.6"],
        ["--torch", "all", "--json"],
        ["--torch", ">=2.4", "--numpy", "1.25.2"],
        ["--safe-global", "numpy.dtype", "--safe-global", "torch.torch_version.TorchVersion"],
    ],
)
def test_scan_imports_neither_torch_nor_numpy(numpy_file, args):
    code, heavy = _imports("scan", "--no-project-config", *args, numpy_file)
    assert code == 1
    assert heavy == ""


def test_lint_and_report_import_neither(tmp_path):
    source = tmp_path / "load.py"
    source.write_text("import torch\nmodel = torch.load('m.pt')\n")
    assert _imports("lint", source) == (1, "")
    report = tmp_path / "cell.json"
    report.write_text(
        '{"schema": "ckptcompat.report/1", "reader": {"tag": "torch2.5.1-numpy1.25.2-py3.11",'
        ' "torch": "2.5.1", "numpy": "1.25.2", "python": "3.11.7", "platform": "linux"},'
        ' "records": []}'
    )
    assert _imports("report", report, "--out", tmp_path / "out") == (0, "")
