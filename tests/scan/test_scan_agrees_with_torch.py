"""The scanner's verdict must equal what the real torch.load(weights_only=True) does.

For every corpus object, saved with pickle protocol 2 and 4: the oracle
(`ckpt_corpus.torch_truth`) finds every blocking name by loading for real and
allowlisting one name at a time; the scanner must predict the same verdict,
the same blocked names, and (with exactly those names allowlisted) the same
outcome again. Runs against whatever torch is installed: the matrix runs it
on every torch it covers.
"""

from __future__ import annotations

import pytest
from ckpt_corpus import CASES, save_case, torch_truth

from pytest_ckptcompat.scan.allowlist import Allowlist
from pytest_ckptcompat.scan.scanner import scan_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    out = {}
    for case in CASES:
        for protocol in (2, 4):
            path = root / f"{case.id}-p{protocol}.pt"
            save_case(case.make(), path, protocol)
            out[(case.id, protocol)] = path
    return out


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_scan_agrees_with_torch(files, rules, case_id, protocol):
    path = files[(case_id, protocol)]
    truth = torch_truth(path)
    scan = scan_file(path, rules)
    assert scan.error is None
    assert scan.loadable == truth.loadable, (truth, scan.reasons())
    assert scan.verdict is not None
    scanned = {_py3(n) for n in scan.verdict.blocked}
    found = {_py3(n) for n in truth.blocked}
    if not rules.has_user_allowlist and truth.blocked:
        # torch < 2.4 has no allowlist: the oracle sees only the first name.
        assert found <= scanned, scan.reasons()
    elif truth.error is None:
        assert scanned == found, scan.reasons()
    else:
        # torch stopped at something no allowlist fixes; the scan names it too
        # and still lists every blocked name torch found before it.
        assert found <= scanned, scan.reasons()
        assert scan.verdict.obstacles, scan.reasons()
        if "Unsupported operand" in truth.error:
            operand = truth.error.split("Unsupported operand", 1)[1].split()[0]
            assert any(
                f"Unsupported operand {operand}" in o.message for o in scan.verdict.obstacles
            )

    # With exactly the names torch needed, both agree again.
    needed = list(truth.blocked)
    if needed and rules.has_user_allowlist:
        allowlist = Allowlist.build(needed)
        assert not allowlist.missing
        with_allow = scan_file(path, rules, allowlist)
        assert with_allow.loadable == (truth.error is None), with_allow.reasons()
        assert with_allow.loadable == torch_truth(path, needed).loadable


def _py3(name):
    # torch <= 2.3 reports protocol 2's python-2 spelling; the oracle normalises it.
    return name.replace("__builtin__.", "builtins.", 1)


def test_corpus_is_big_enough():
    assert len(CASES) >= 40
