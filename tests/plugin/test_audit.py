"""The runtime audit of torch.load calls, run for real on torch 2.5.1 and on the suite's torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from inprocess import runpytest_inprocess

LIB = """
import argparse
import torch

def save(path):
    torch.save({"hparams": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, path)

def load(path):
    return torch.load(path)  # weights_only omitted: the Opacus pattern

def load_safe(path):
    return torch.load(path, weights_only=True)
"""
TESTS = """
from mylib.utils import load, load_safe, save

def test_load(tmp_path):
    save(tmp_path / "c.pt")
    assert load(tmp_path / "c.pt")["hparams"].lr == 0.1

def test_safe(tmp_path):
    import torch
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert load_safe(tmp_path / "w.pt")["w"].sum() == 2
"""


def project(tmp_path: Path, ini: str = "") -> Path:
    root = tmp_path / "proj"
    (root / "mylib").mkdir(parents=True)
    (root / "mylib" / "__init__.py").write_text("")
    (root / "mylib" / "utils.py").write_text(LIB)
    (root / "test_lib.py").write_text(TESTS)
    (root / "pytest.ini").write_text(f"[pytest]\n{ini}")
    return root


ARGS = ("-p", "no:cacheprovider", "-W", "ignore", "--ckpt-compat-audit")


def run_old(python, root, *args):
    """pytest in the torch 2.5.1 environment: another interpreter, so a real process."""
    report = root / "report.json"
    proc = subprocess.run(
        [str(python), "-m", "pytest", *ARGS, f"--ckpt-compat-report={report}", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout, json.loads(report.read_text())


def run_here(pytester, monkeypatch, root, *args):
    """pytest on this torch, in this process (tests/inprocess.py), from the project's folder."""
    report = root / "report.json"
    monkeypatch.chdir(root)
    result = runpytest_inprocess(pytester, *ARGS, f"--ckpt-compat-report={report}", *args)
    return result.ret, result.stdout.str(), json.loads(report.read_text())


@pytest.mark.slow
def test_audit_on_torch_2_5_test_passes_and_the_site_is_reported(tmp_path, old_python):
    root = project(tmp_path)
    returncode, stdout, report = run_old(old_python, root)
    assert returncode == 0, stdout
    (site,) = [s for s in report["load_sites"] if s["weights_only"] != "True"]
    assert site["site"] == "mylib/utils.py:9"
    assert site["weights_only"].startswith("omitted (default False")
    assert site["effective"] is False
    assert site["loadable"] is False
    assert site["blocked"] == ["argparse.Namespace"]
    assert "mylib/utils.py:9 torch.load(..., weights_only omitted" in stdout
    assert "on torch >= 2.6 this fails: argparse.Namespace" in stdout
    assert "argparse.Namespace: save `vars(namespace)`" in stdout


def test_audit_on_this_torch_test_fails_and_the_audit_points_at_the_site(
    tmp_path, pytester, monkeypatch
):
    root = project(tmp_path)
    returncode, stdout, report = run_here(pytester, monkeypatch, root)
    assert returncode == 1
    site = next(s for s in report["load_sites"] if s["site"] == "mylib/utils.py:9")
    assert site["weights_only"].startswith("omitted (default True")
    assert site["error"].startswith("UnpicklingError")
    assert "test_lib.py::test_load" in site["tests"]
    safe = next(s for s in report["load_sites"] if s["site"] == "mylib/utils.py:12")
    assert (safe["weights_only"], safe["loadable"]) == ("True", None)
    assert "1 torch.load call site(s) at risk" in stdout


def test_reviewed_sites_are_not_reported(tmp_path, pytester, monkeypatch):
    root = project(tmp_path, ini="ckpt_compat_audit_ignore =\n    mylib/utils.py:9\n")
    _, stdout, report = run_here(pytester, monkeypatch, root)
    assert [s["site"] for s in report["load_sites"]] == ["mylib/utils.py:12"]
    assert "at risk" not in stdout


def test_loads_inside_a_package_name_the_project_frame_too(tmp_path, pytester, monkeypatch):
    root = project(tmp_path)
    vendor = tmp_path / "vendor"  # outside the project: a third-party package
    (vendor / "thirdparty").mkdir(parents=True)
    (vendor / "thirdparty" / "__init__.py").write_text(
        "import torch\n\ndef restore(path):\n    return torch.load(path, weights_only=False)\n"
    )
    (root / "test_vendor.py").write_text(
        "import torch\nfrom thirdparty import restore\n\n"
        "def test_it(tmp_path):\n    torch.save([1], tmp_path / 'l.pt')\n"
        "    assert restore(tmp_path / 'l.pt') == [1]\n"
    )
    returncode, stdout, report = run_here(
        pytester,
        monkeypatch,
        root,
        "test_vendor.py",
        "--import-mode=importlib",
        f"--rootdir={root}",
        "-o",
        f"pythonpath={vendor}",
    )
    assert returncode == 0, stdout
    (site,) = report["load_sites"]
    assert site["site"].endswith("thirdparty/__init__.py:4")
    assert site["project_site"] == "test_vendor.py:6"
    assert (site["weights_only"], site["loadable"]) == ("False", True)


def test_lint_finds_the_same_site_statically(tmp_path):
    root = project(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "lint", "--json", str(root / "mylib")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    (finding,) = json.loads(proc.stdout)["findings"]
    assert (Path(finding["path"]).name, finding["line"], finding["code"]) == (
        "utils.py",
        9,
        "CKC001",
    )
