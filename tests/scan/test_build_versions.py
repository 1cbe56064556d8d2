"""Torch builds the rules table does not hold exactly are never judged by a release silently.

The table holds releases; a build variant of one (`+cpu`, `+cu124`,
`+rocm6.2`, `+xpu`) is that release. A development or pre-release build
(`2.7.0.dev20250101+cpu`, `2.6.0a0+gitabc`), a source or other local build
(`2.6.0+mybuild`) or a release newer than the table is not:

- installed here, its rules are read from it (and cached), and every scan
  says so (`TorchRules.provenance`, a note on each file, in text and JSON);
- named with `--torch`, the table release that stands for it judges the
  file, and every scan says which one and that it is an approximation.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
import torch
from run_cli import ckptcompat
from torch_envs import OTHER_TORCHES, nox_python, this_checkout_env

from pytest_ckptcompat import cli
from pytest_ckptcompat.scan import torch_reader, torch_table
from pytest_ckptcompat.scan.dists import Installed
from pytest_ckptcompat.scan.predict import predict_file
from pytest_ckptcompat.scan.rules import TorchRules

TORCH_DIR = str(Path(torch.__file__).parent)


@pytest.fixture(scope="module")
def set_file(tmp_path_factory) -> Path:
    """A file torch 2.5 refuses (`builtins.set`) and 2.6 loads: it tells their rules apart."""
    path = tmp_path_factory.mktemp("builds") / "set.pt"
    torch.save({"s": {1, 2}}, path)
    return path


@pytest.fixture
def installed_as(monkeypatch, tmp_path):
    """Make the scan believe the torch installed here has another version (same files)."""
    monkeypatch.setenv(torch_reader.CACHE_ENV, str(tmp_path / "cache"))
    reads: list[str] = []
    real = TorchRules.from_installed

    def counted() -> TorchRules:
        reads.append("read")
        return real()

    monkeypatch.setattr(TorchRules, "from_installed", staticmethod(counted))

    def install(version: str) -> list[str]:
        build = Installed(version, TORCH_DIR)
        monkeypatch.setattr(torch_reader, "installed", lambda package: build)
        return reads

    return install


# --- what the table holds -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.13.0+cpu", "2.5.1+cu124", "2.5.1+rocm6.2", "2.6.0+xpu"])
def test_a_build_variant_is_the_release(installed_as, version):
    reads = installed_as(version)
    rules = torch_reader.installed_rules()
    assert not reads, "a build variant of a release in the table is not imported"
    assert rules == dataclasses.replace(
        torch_table.rules_for(version.split("+")[0]), version=version
    )
    assert not rules.provenance


# Run in another real torch install: its own version string, as its wheel spells it.
_INSTALLED_THERE = """
import dataclasses, json, sys
from pytest_ckptcompat.scan import torch_reader, torch_table
rules = torch_reader.installed_rules()
release = torch_table.rules_for(rules.version.split("+")[0])
print(json.dumps({"version": rules.version, "provenance": rules.provenance,
                  "holds": torch_table.holds(rules.version), "imported": "torch" in sys.modules,
                  "same": rules == dataclasses.replace(release, version=rules.version)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("tag", OTHER_TORCHES)
def test_real_variant_wheels_are_their_release(tag, request):
    """2.4.1+cu121, 2.5.1+cu124, 2.15.0+cu132 as installed: the table's, torch never imported."""
    proc = subprocess.run(
        [str(nox_python(tag, request)), "-c", _INSTALLED_THERE],
        capture_output=True,
        text=True,
        env=this_checkout_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout)
    assert "+cu" in found["version"], found
    assert found == {**found, "provenance": "", "holds": True, "imported": False, "same": True}


@pytest.mark.parametrize(
    ("version", "release", "fragment"),
    [
        ("2.6.0+mybuild", "2.6.0", "a local build of 2.6.0 (+mybuild), not the 2.6.0 release"),
        ("2.6.0+git1234", "2.6.0", "a local build of 2.6.0 (+git1234)"),
        ("2.7.0.dev20250101+cpu", "2.6.0", "a development or pre-release build of 2.7.0"),
        ("2.6.0a0+gitabc", "2.5.1", "its own lie between 2.5.1's and 2.6.0's"),
        ("2.6.0rc1", "2.5.1", "a development or pre-release build of 2.6.0"),
        ("2.6.0.post1", "2.6.0", "a post-release of 2.6.0"),
        ("2.10.1", "2.10.0", "the newest release before it"),
        ("2.15.0+mybuild", "2.15.0", "a local build of 2.15.0"),
    ],
)
def test_other_versions_resolve_to_a_release_said_as_an_approximation(version, release, fragment):
    found = torch_table.resolve(version)
    assert (found.release, found.exact) == (release, False)
    assert found.approximation.startswith(f"torch {version} is ")
    assert f"judged by torch {release}'s rules" in found.approximation
    assert "an approximation" in found.approximation
    assert fragment in found.approximation
    rules = torch_table.rules_for(version)
    assert rules.version == version
    assert rules.provenance == found.approximation
    assert rules == dataclasses.replace(torch_table.rules_for(release), version=version)
    assert not torch_table.holds(version)


@pytest.mark.parametrize("version", ["2.16.0", "2.16.0.dev1", "1.12.1", "1.13.0a0", "nonsense"])
def test_nothing_in_the_table_bounds_them(version):
    with pytest.raises(torch_table.UnknownTorchVersionError, match=r"known: 1\.13\.0.*2\.15\.0"):
        torch_table.rules_for(version)


# --- installed here: read from it, and said ------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("2.6.0+mybuild", "a local build of 2.6.0 (+mybuild), not the 2.6.0 release"),
        ("2.6.0a0+git1234", "a development or pre-release build of 2.6.0"),
        ("2.7.0.dev20250101+cpu", "a development or pre-release build of 2.7.0"),
        ("2.16.0", "a release newer than the rules table (newest: 2.15.0)"),
    ],
)
def test_an_installed_build_the_table_lacks_is_read_from_it_and_said(
    installed_as, version, fragment
):
    reads = installed_as(version)
    rules = torch_reader.installed_rules()
    assert reads == ["read"], "its rules come from that torch itself"
    assert rules == TorchRules.from_installed()
    assert rules.provenance.startswith(f"torch {version} is {fragment}")
    assert "were read from it" in rules.provenance
    assert "assumed to be those of release" in rules.provenance  # the release constants
    assert torch_reader.installed_rules().provenance == rules.provenance  # from the cache too


def test_the_scan_says_where_an_installed_builds_rules_come_from(installed_as, set_file, capsys):
    installed_as("2.7.0.dev20250101+cpu")
    assert cli.main(["scan", "--no-project-config", str(set_file)]) == 0
    out = capsys.readouterr().out
    assert "note: torch 2.7.0.dev20250101+cpu is a development or pre-release build" in out
    assert cli.main(["scan", "--no-project-config", "--json", str(set_file)]) == 0
    (notes,) = [f["notes"] for f in json.loads(capsys.readouterr().out)["files"]]
    assert any("2.7.0.dev20250101+cpu" in n and "were read from it" in n for n in notes)


def test_a_release_build_gets_no_note(installed_as, set_file, capsys):
    installed_as("2.6.0+cu124")
    assert cli.main(["scan", "--no-project-config", "--json", str(set_file)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["torch"] == "2.6.0+cu124"
    assert doc["files"][0]["notes"] == []


# --- named with --torch: a table release stands for it, said ---------------------------------


@pytest.mark.parametrize(
    ("spec", "release", "loadable"),
    [
        ("2.7.0.dev20250101+cpu", "2.6.0", True),
        ("2.6.0+mybuild", "2.6.0", True),
        ("2.6.0a0+gitabc", "2.5.1", False),  # rules between 2.5.1 and 2.6.0: judged by 2.5.1's
    ],
)
def test_torch_option_approximates_and_says_so(set_file, spec, release, loadable):
    proc = ckptcompat("scan", "--no-project-config", "--torch", spec, "--json", set_file)
    assert proc.returncode == (0 if loadable else 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["torch"] == spec
    assert doc["predicted"] is True
    (result,) = doc["files"]
    assert result["loadable"] is loadable
    (note,) = result["notes"]
    assert note.startswith(f"torch {spec} is ")
    assert f"judged by torch {release}'s rules from the rules table, an approximation" in note
    text = ckptcompat("scan", "--no-project-config", "--torch", spec, set_file).stdout
    assert f"with torch {spec} (predicted" in text
    assert f"  note: {note}" in text.splitlines()


def test_torch_option_build_variant_is_the_release(set_file):
    proc = ckptcompat("scan", "--no-project-config", "--torch", "2.6.0+cu124", "--json", set_file)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["torch"] == "2.6.0"
    assert doc["files"][0]["notes"] == []


def test_an_approximated_version_in_a_list_is_refused_in_one_line(set_file):
    proc = ckptcompat("scan", "--no-project-config", "--torch", "2.5,2.6.0+mybuild", set_file)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        "ckptcompat: error: --torch '2.5,2.6.0+mybuild': 2.6.0+mybuild is not a release the "
        "rules table holds"
    )
    assert "give --torch 2.6.0+mybuild alone" in proc.stderr


def test_predict_file_says_it_too(set_file):
    prediction = predict_file(set_file, ["2.5.1", "2.6.0a0+gitabc", "2.6.0"])
    assert prediction.scans["2.5.1"].notes == []
    (note,) = prediction.scans["2.6.0a0+gitabc"].notes
    assert "judged by torch 2.5.1's rules" in note
    assert not prediction.scans["2.6.0a0+gitabc"].loadable  # as 2.5.1
    assert "torch 2.6.0a0+gitabc: not in the rules table, approximated" in prediction.summary()


def test_an_exact_release_gets_no_note(set_file):
    proc = ckptcompat("scan", "--no-project-config", "--torch", "2.6", set_file)
    assert proc.returncode == 0, proc.stderr
    assert "with torch 2.6.0 (predicted" in proc.stdout
    assert "note:" not in proc.stdout
