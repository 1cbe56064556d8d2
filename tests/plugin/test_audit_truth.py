"""The audit tells the whole truth and changes nothing: real pytest runs, torch 2.13 and 2.5.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LIB = """
import argparse
import torch

def save(path):
    torch.save({"hparams": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, path)

def load_checked(path):
    # The library's own weights_only=True load, without the allowlist it needs.
    return torch.load(path, weights_only=True)

def load_none(path):
    return torch.load(path, weights_only=None)

def load_omitted(path):
    return torch.load(path)
"""
TESTS = """
import pytest
import torch
from mylib.utils import load_checked, load_none, load_omitted, save

def test_checked_load_fails(tmp_path):
    save(tmp_path / "c.pt")
    with pytest.raises(Exception):
        load_checked(tmp_path / "c.pt")

def test_none(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert load_none(tmp_path / "w.pt")["w"].sum() == 2

def test_omitted(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert load_omitted(tmp_path / "w.pt")["w"].sum() == 2

def test_plugin_loads_are_not_sites(ckpt_compat):
    ckpt_compat.roundtrip({"w": torch.ones(2)})
"""


def _project(tmp_path: Path, ini: str = "") -> Path:
    root = tmp_path / "proj"
    (root / "mylib").mkdir(parents=True)
    (root / "mylib" / "__init__.py").write_text("")
    (root / "mylib" / "utils.py").write_text(LIB)
    (root / "test_lib.py").write_text(TESTS)
    (root / "pytest.ini").write_text(f"[pytest]\n{ini}")
    return root


def _run(
    python: Path | str, root: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = root / "report.json"
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "--ckpt-compat-audit",
         f"--ckpt-compat-report={report}", *args],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc, json.loads(report.read_text())


def _sites(report: dict) -> dict[str, dict]:
    return {s["site"]: s for s in report["load_sites"]}


def test_a_failing_weights_only_load_names_what_blocked_it(tmp_path):
    root = _project(tmp_path)
    proc, report = _run(sys.executable, root, "-W", "ignore")
    assert proc.returncode == 0, proc.stdout[-3000:]
    sites = _sites(report)
    checked = sites["mylib/utils.py:10"]
    assert checked["weights_only"] == "True"
    assert checked["loadable"] is False
    assert checked["blocked"] == ["argparse.Namespace"]
    assert '_named(argparse.Namespace, "argparse.Namespace")' in checked["fix"]
    assert checked["error"].startswith("UnpicklingError: ")
    assert "\x1b" not in json.dumps(report)  # torch's bold text, stripped
    # weights_only=None written out is not "omitted"
    assert sites["mylib/utils.py:13"]["weights_only"].startswith("None, passed explicitly:")
    assert sites["mylib/utils.py:16"]["weights_only"].startswith("omitted (default True")
    # the plugin's own loads (the roundtrip) are not the project's load sites
    assert not [s for s in sites if "pytest_ckptcompat" in s]
    assert set(sites) == {"mylib/utils.py:10", "mylib/utils.py:13", "mylib/utils.py:16"}


@pytest.mark.slow
def test_torch_warnings_keep_the_callers_attribution(tmp_path, old_python):
    """torch 2.5 warns (FutureWarning) on an omitted weights_only; a filter for the caller's
    module must still match with the audit on, under `filterwarnings = error`."""
    ini = (
        "filterwarnings =\n    error\n"
        "    ignore::FutureWarning:mylib.utils\n"
        "    ignore:.*weights_only.*:FutureWarning:_pytest\n"  # pytester-free: only mylib loads
    )
    root = _project(tmp_path, ini)
    (root / "test_lib.py").write_text(TESTS.split("def test_plugin_loads")[0])
    plain = subprocess.run(
        [str(old_python), "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stdout[-3000:]  # the project's filter works without us
    proc, _ = _run(old_python, root, "-q")
    assert proc.returncode == 0, proc.stdout[-3000:]  # and with the audit on


def test_a_site_is_judged_on_every_file_it_loads_until_one_would_fail(tmp_path):
    # A weights_only=False site that first loads a plain file, then one holding a
    # Namespace: judged on the first file only, it was told "pass weights_only=True".
    root = tmp_path / "proj"
    (root / "lib2").mkdir(parents=True)
    (root / "lib2" / "__init__.py").write_text("")
    (root / "lib2" / "io.py").write_text(
        "import torch\n\n\ndef load_trusting(path):\n"
        "    return torch.load(path, weights_only=False)\n"
    )
    (root / "test_two.py").write_text(
        "import argparse\nimport torch\nfrom lib2.io import load_trusting\n\n\n"
        "def test_loads(tmp_path):\n"
        "    torch.save({'w': torch.ones(2)}, tmp_path / 'plain.pt')\n"
        "    torch.save({'args': argparse.Namespace(lr=0.1)}, tmp_path / 'args.pt')\n"
        "    load_trusting(tmp_path / 'plain.pt')\n"
        "    load_trusting(tmp_path / 'args.pt')\n"
    )
    (root / "pytest.ini").write_text("[pytest]\n")
    proc, report = _run(sys.executable, root, "-W", "ignore")
    assert proc.returncode == 0, proc.stdout[-3000:]
    (site,) = report["load_sites"]
    assert site["calls"] == 2
    assert site["loadable"] is False
    assert site["blocked"] == ["argparse.Namespace"]


def test_workers_judgements_of_one_site_merge_to_the_worse():
    from pytest_ckptcompat.runstate import RunState

    def site(loadable, blocked):
        return {
            "site": "lib/io.py:3", "project_site": "", "weights_only": "False, passed explicitly",
            "calls": 1, "tests": ["t.py::a"], "loadable": loadable, "blocked": blocked,
            "fix": "allowlist it" if blocked else "", "error": "",
        }  # fmt: skip

    for order in ([site(True, []), site(False, ["argparse.Namespace"])],
                  [site(False, ["argparse.Namespace"]), site(True, [])]):  # fmt: skip
        state = RunState(run_id="x")
        for one in order:
            state.add_load_sites([one])
        (merged,) = state.load_sites.values()
        assert (merged["loadable"], merged["blocked"], merged["calls"]) == (
            False, ["argparse.Namespace"], 2,
        )  # fmt: skip
