"""Goldens are never lost and never silently absent; what we write respects the umask.

Real pytest runs of a small project (in-process: nothing here is killed).
"""

from __future__ import annotations

import os
import stat

import pytest
import torch  # noqa: F401  # imported once here: pytester would re-import it per run otherwise

TESTS = """
import torch

def test_a(ckpt_compat):
    ckpt_compat.check("a", {"w": torch.ones(2)})

def test_b(ckpt_compat):
    ckpt_compat.check("b", {"w": torch.zeros(2)})
"""


@pytest.fixture
def project(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(test_ckpt=TESTS)
    pytester.runpytest_inprocess("--ckpt-compat-update").assert_outcomes(passed=2)
    return pytester


def _goldens(pytester) -> set[str]:
    root = pytester.path / "ckpt_goldens"
    return {p.parent.name for p in root.glob("*/*.pt")}


def test_prune_after_collect_only_deletes_nothing(project):
    result = project.runpytest_inprocess("--co", "--ckpt-compat-prune")
    assert _goldens(project) == {"a", "b"}
    result.stdout.fnmatch_lines(["*--ckpt-compat-prune deleted nothing*"])


def test_prune_after_last_failed_keeps_the_goldens_of_tests_it_did_not_run(pytester):
    pytester.makeini("[pytest]\n")  # the cache on: --lf needs it
    pytester.makepyfile(
        test_one="""
        import torch
        def test_a(ckpt_compat):
            ckpt_compat.check("a", {"w": torch.ones(2)})
        """,
        test_two="""
        import torch
        def test_b(ckpt_compat):
            ckpt_compat.check("b", {"w": torch.zeros(2)})
        def test_fails():
            assert False
        """,
    )
    pytester.runpytest_inprocess("--ckpt-compat-update").assert_outcomes(passed=2, failed=1)
    # --lf reruns test_two.py only (it skips test_one.py entirely, without a deselection).
    result = pytester.runpytest_inprocess("--lf", "--ckpt-compat", "--ckpt-compat-prune")
    result.assert_outcomes(failed=1)
    assert _goldens(pytester) == {"a", "b"}


def test_a_failing_test_does_not_make_its_golden_unused(project):
    project.makepyfile(
        test_ckpt=TESTS.replace('ckpt_compat.check("b"', 'assert False; ckpt_compat.check("b"')
    )
    result = project.runpytest_inprocess("--ckpt-compat", "--ckpt-compat-prune")
    result.assert_outcomes(passed=1, failed=1)
    assert _goldens(project) == {"a", "b"}


def test_a_golden_whose_test_no_longer_checks_it_is_pruned(project):
    project.makepyfile(test_ckpt=TESTS.replace('ckpt_compat.check("b", ', "print("))
    result = project.runpytest_inprocess("--ckpt-compat", "--ckpt-compat-prune")
    result.assert_outcomes(passed=2)
    assert _goldens(project) == {"a"}
    result.stdout.fnmatch_lines(["*pruned 1 golden(s)*"])


def test_a_removed_test_s_golden_is_pruned_but_other_files_are_left_alone(project):
    project.makepyfile(test_other="def test_x():\n    pass\n")
    project.makepyfile(test_ckpt=TESTS.split("def test_b")[0])
    # Only test_other.py is collected: test_ckpt.py's goldens are not judged.
    project.runpytest_inprocess("test_other.py", "--ckpt-compat-prune").assert_outcomes(passed=1)
    assert _goldens(project) == {"a", "b"}
    # The whole project: test_b is gone from a collected file, its golden is unused.
    project.runpytest_inprocess("--ckpt-compat", "--ckpt-compat-prune").assert_outcomes(passed=2)
    assert _goldens(project) == {"a"}


def test_a_missing_golden_fails_and_says_how_to_write_it(pytester):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(test_ckpt=TESTS)
    result = pytester.runpytest_inprocess("--ckpt-compat")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*ckpt_compat.check('a'): no golden of this artifact under *: write this environment's "
         "with `pytest --ckpt-compat-update` (and commit it)*"]
    )  # fmt: skip


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(pytester, umask, mode):
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(test_ckpt=TESTS)
    old = os.umask(umask)
    try:
        report = pytester.path / "report.json"
        pytester.runpytest_inprocess(
            "--ckpt-compat-update", "--ckpt-compat", f"--ckpt-compat-report={report}"
        ).assert_outcomes(passed=2)
    finally:
        os.umask(old)
    written = [report, *(pytester.path / "ckpt_goldens").glob("*/*")]
    assert len(written) == 5
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in written} == {
        p.name: mode for p in written
    }


def test_only_compatibility_findings_are_reported_as_findings(pytester):
    # The matrix keeps a cell ok through findings (the grids show them); a golden that
    # is not there, or a safetensors check of what safetensors cannot hold, is the
    # project's to fix and must not pass as one.
    pytester.makepyfile(
        test_kinds="""
import datetime

def test_blocked(ckpt_compat):
    ckpt_compat.roundtrip({"when": datetime.date(2024, 1, 2)})

def test_no_golden(ckpt_compat):
    ckpt_compat.check("never_written", [1])

def test_not_for_safetensors(ckpt_compat):
    ckpt_compat.check("nested", {"a": {"b": [1, 2]}}, format="safetensors")
"""
    )
    result = pytester.runpytest_inprocess("--ckpt-compat", "--ckpt-compat-report=r.json")
    import json

    tests = {
        t["nodeid"].split("::")[1]: t["finding"]
        for t in json.loads((pytester.path / "r.json").read_text())["tests"]
        if t["outcome"] == "failed"
    }
    assert tests == {
        "test_blocked": True,
        "test_no_golden": False,
        "test_not_for_safetensors": False,
    }, result.stdout.str()
