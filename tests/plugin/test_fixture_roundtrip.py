"""`ckpt_compat.roundtrip` in real pytest runs (pytester, in this process: tests/inprocess.py)."""

from __future__ import annotations

import pytest
from inprocess import runpytest_inprocess

CLASSES = """
import argparse, pathlib
import numpy as np
import pytest
import torch


class Lossy:
    def __init__(self):
        self.a, self.b = 1, 2

    def __getstate__(self):
        return {"a": self.a}  # forgets b: loads, but differs
"""


def _torch_release():
    import torch

    return tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])


# torch < 2.4 has no allowlist API at all: nothing to allowlist, no fix code to show.
needs_allowlist = pytest.mark.skipif(
    _torch_release() < (2, 4), reason="torch < 2.4 has no add_safe_globals"
)


def run(pytester: pytest.Pytester, body: str, *args: str, ini: str = "") -> pytest.RunResult:
    pytester.makeini(f"[pytest]\naddopts = -p pytester --strict-markers\n{ini}")
    pytester.makepyfile(test_it=CLASSES + body)
    return runpytest_inprocess(pytester, *args)


def test_plain_checkpoint_roundtrips_and_is_returned(pytester):
    result = run(
        pytester,
        """
def test_it(ckpt_compat):
    model = torch.nn.Linear(2, 2)
    state = {"model": model.state_dict(), "epoch": 3, "lr": 0.1, "tags": ["a"]}
    loaded = ckpt_compat.roundtrip(state)
    assert loaded is not state
    assert torch.equal(loaded["model"]["weight"], model.weight)
""",
    )
    result.assert_outcomes(passed=1)


@needs_allowlist
def test_failure_lists_every_blocked_global_where_it_sits_and_the_fix(pytester, rules):
    result = run(
        pytester,
        """
def test_it(ckpt_compat):
    ckpt_compat.roundtrip({
        "hparams": argparse.Namespace(lr=0.1, data_dir=pathlib.Path("/data")),
        "best": np.float64(0.9),
    })
""",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "torch's error names only the first" in out
    result.stdout.fnmatch_lines(
        [
            "*argparse.Namespace*at hparams",
            "*pathlib.PosixPath*at hparams.data_dir",
            "*multiarray.scalar*at best",
            "*numpy.dtypes.Float64DType*at best*",
        ]
    )
    # torch itself names only the first one
    says = next(line for line in out.splitlines() if line.startswith("torch says:"))
    assert "argparse.Namespace" in says
    assert "pathlib" not in says
    # fixes: the better object, and allowlist code right on numpy 1 and 2
    assert "save `vars(namespace)`" in out
    assert "save `str(path)`" in out
    if rules.has_tuple_form:
        assert '(_np_core.multiarray.scalar, "numpy.core.multiarray.scalar")' in out
        assert '(_np_core.multiarray.scalar, "numpy._core.multiarray.scalar")' in out
    else:  # torch < 2.6 cannot register one object under two names: said so
        assert "_np_core.multiarray.scalar," in out
        assert "has no (obj, name) form" in out
    assert 'type(np.dtype("float64"))' in out


@needs_allowlist
def test_suggested_allowlist_makes_it_pass(pytester):
    result = run(
        pytester,
        """
def test_it(ckpt_compat):
    ckpt_compat.roundtrip({"best": np.float64(0.9), "p": pathlib.Path("/x")})
""",
        ini="ckpt_compat_safe_globals =\n    _codecs.encode\n"
        "    numpy.core.multiarray.scalar\n    numpy._core.multiarray.scalar\n"
        "    numpy.dtype\n    numpy.dtypes.Float64DType\n    pathlib.PosixPath",
    )
    result.assert_outcomes(passed=1)


@needs_allowlist
def test_marker_and_call_allowlists(pytester):
    result = run(
        pytester,
        """
@pytest.mark.ckpt_compat(safe_globals=["argparse.Namespace"])
def test_marker(ckpt_compat):
    ckpt_compat.roundtrip(argparse.Namespace(lr=0.1))

def test_call_with_object(ckpt_compat):
    ckpt_compat.roundtrip(argparse.Namespace(lr=0.1), safe_globals=[argparse.Namespace])

def test_call_with_name(ckpt_compat):
    ckpt_compat.roundtrip(argparse.Namespace(lr=0.1), safe_globals=["argparse.Namespace"])

def test_without(ckpt_compat):
    ckpt_compat.roundtrip(argparse.Namespace(lr=0.1))
""",
    )
    result.assert_outcomes(passed=3, failed=1)


def test_expect_blocked_is_strict(pytester):
    result = run(
        pytester,
        """
@pytest.mark.ckpt_compat(expect_blocked=["argparse.Namespace"])
def test_still_blocked(ckpt_compat):
    ckpt_compat.roundtrip(argparse.Namespace(lr=0.1))

@pytest.mark.ckpt_compat(expect_blocked=["argparse.Namespace"])
def test_now_loads(ckpt_compat):
    ckpt_compat.roundtrip({"lr": 0.1})

@pytest.mark.ckpt_compat(expect_blocked=["argparse.Namespace"])
def test_more_blocked_than_expected(ckpt_compat):
    ckpt_compat.roundtrip(argparse.Namespace(p=pathlib.Path("/x")))
""",
    )
    result.assert_outcomes(xfailed=1, failed=2)
    result.stdout.fnmatch_lines(["*expect_blocked lists argparse.Namespace, but it now loads*"])
    result.stdout.fnmatch_lines(["*pathlib.PosixPath*at p*"])


@needs_allowlist
def test_mismatch_names_the_path_and_both_values(pytester):
    result = run(
        pytester,
        """
def test_it(ckpt_compat):
    ckpt_compat.roundtrip({"obj": Lossy()}, safe_globals=[Lossy])
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*loads under weights_only=True, but differs*", "*obj.b*"])


def test_bad_marker_is_a_usage_error(pytester):
    result = run(
        pytester,
        """
@pytest.mark.ckpt_compat(safe_global=["argparse.Namespace"])
def test_it(ckpt_compat):
    pass
""",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument(s) safe_global*"])


def test_report_header_shows_the_environment_tag(pytester):
    result = run(pytester, "def test_it():\n    pass\n", "--ckpt-compat")
    result.stdout.fnmatch_lines(["ckpt-compat: torch*-numpy*-py3.*"])
    result.assert_outcomes(passed=1)
