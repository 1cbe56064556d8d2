"""Hostile files: `ckptcompat scan` flags every one dangerous and not loadable, and runs none.

The corpus (tests/hostile_corpus.py) is generated here, at test time. Each
file would create its own sentinel file if anything ever unpickled it; every
test ends by checking that the sentinel folder is still empty. The scans run
the real command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hostile_corpus import HOSTILE, build_corpus, reference_globals

CASES = {case.id: case for case in HOSTILE}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    sentinels = root / "sentinels"
    files = build_corpus(root / "files", sentinels)
    yield files, sentinels
    time.sleep(0.2)  # a spawned `touch` would have finished by now
    assert sorted(p.name for p in sentinels.iterdir()) == [], "a hostile payload ran"


def _no_sentinel(sentinels: Path) -> None:
    time.sleep(0.1)  # a payload that spawned a process: give it time to show
    assert sorted(p.name for p in sentinels.iterdir()) == [], "a hostile payload ran"


@pytest.mark.parametrize("case", [c for c in HOSTILE if c.suffix == ".pkl"], ids=lambda c: c.id)
def test_payload_is_a_real_pickle_reaching_its_global(tmp_path, case):
    """Checked with pickletools (parses, never runs): the payload names what it must."""
    data = case.build(tmp_path / "sentinel")
    assert set(case.dangerous) <= reference_globals(data)


def test_every_hostile_file_is_flagged_by_the_cli(corpus):
    files, sentinels = corpus
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "scan", "--json", "--no-project-config"]
        + [str(path) for _, path, _ in files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    records = {Path(r["path"]).name: r for r in json.loads(proc.stdout)["files"]}
    for case, path, _ in files:
        record = records[path.name]
        assert record["error"] is None, (case.id, record["error"])
        assert record["loadable"] is False, case.id
        flagged = {g["name"] for g in record["globals"] if g["dangerous"]}
        assert set(case.dangerous) <= flagged, (case.id, flagged)
        assert all(g["status"] != "allowed" for g in record["globals"] if g["dangerous"])
    # A pickle hidden after data.pkl's STOP is named by where it starts.
    (appended,) = [g for g in records["zip-appended.pt"]["globals"] if g["dangerous"]]
    assert appended["note"].startswith("in archive/data.pkl (appended at byte ")
    assert "torch.load does not read" in appended["note"]
    _no_sentinel(sentinels)


# One interpreter runs the command's `main()` once per file (torch is imported
# once, not 34 times), so each file gets its own exit code and output.
_PER_FILE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from pytest_ckptcompat.cli import main
    out = {}
    for path in sys.argv[1:]:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["scan", "--no-project-config", path])
        out[path] = [code, stdout.getvalue(), stderr.getvalue()]
    print(json.dumps(out))
    """
)


def test_each_hostile_file_alone_exits_1_and_says_dangerous(corpus):
    files, sentinels = corpus
    proc = subprocess.run(
        [sys.executable, "-c", _PER_FILE, *(str(path) for _, path, _ in files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for case, path, _ in files:
        code, stdout, stderr = results[str(path)]
        assert (code, stderr) == (1, ""), (case.id, code, stderr)
        first = stdout.splitlines()[0]
        assert first.startswith(f"{path}: ")
        assert "NOT loadable" in first
        assert first.endswith("DANGEROUS (can run code)"), (case.id, first)
        assert "never allowlist it" in stdout
    _no_sentinel(sentinels)


@pytest.mark.parametrize("case_id", ["zip-DATA.PKL", "zip-Data.pkl", "legacy-hostile"])
def test_torch_weights_only_refuses_what_it_would_read(corpus, case_id):
    """The files whose hostile pickle torch.load itself reads: its weights_only loader refuses."""
    files, sentinels = corpus
    (path,) = [p for case, p, _ in files if case.id == case_id]
    with pytest.raises(Exception, match=r"(?i)weights.only|unsupported global|legacy"):
        torch.load(path, weights_only=True)
    _no_sentinel(sentinels)


# --- the pytest side: hostile goldens -------------------------------------------------------

SENTINEL_MODULE = "ckpt_hostile_sentinel"


def _hostile_goldens(sentinel: Path) -> dict[str, bytes]:
    """Checkpoints an attacker could commit as goldens of other writers."""
    from hostile_corpus import binunicode, glob, proto, shell, torch_zip

    call = binunicode(shell(sentinel)) + b"\x85R."
    version = ("archive/version", b"3\n")
    return {
        # data.pkl calls os.system
        "torch9.9.1-numpy9.9.1-py3.11": torch_zip(
            [("archive/data.pkl", proto(2) + glob("os", "system") + call), version]
        ),
        # torch reads DATA.PKL as data.pkl: builtins.exec
        "torch9.9.2-numpy9.9.2-py3.11": torch_zip(
            [
                (
                    "archive/DATA.PKL",
                    proto(2)
                    + glob("builtins", "exec")
                    + binunicode(f"open({str(sentinel)!r}, 'w').close()")
                    + b"\x85R.",
                ),
                version,
            ]
        ),
        # names a module whose import alone creates the sentinel: nothing may import it
        "torch9.9.3-numpy9.9.3-py3.11": torch_zip(
            [("archive/data.pkl", proto(2) + glob(SENTINEL_MODULE, "trigger") + call), version]
        ),
    }


def test_hostile_goldens_are_refused_and_never_run(pytester):
    sentinel = pytester.path / "sentinels" / "ran"
    sentinel.parent.mkdir()
    pytester.makeini("[pytest]\naddopts = -p pytester\n")
    pytester.makepyfile(
        test_state="""
import torch

def test_state(ckpt_compat):
    ckpt_compat.check("state", {"w": torch.ones(2)})
""",
        **{
            SENTINEL_MODULE: f"open({str(sentinel)!r}, 'w').close()\n"
            "def trigger(*args):\n    pass\n"
        },
    )
    pytester.syspathinsert()  # the sentinel module is importable, as in the project itself
    pytester.runpytest_inprocess("--ckpt-compat-update").assert_outcomes(passed=1)
    folder = pytester.path / "ckpt_goldens" / "state"
    (meta_path,) = folder.glob("*.json")
    meta = json.loads(meta_path.read_text())
    import hashlib

    for tag, data in _hostile_goldens(sentinel).items():
        # The attacker controls both files, so the sha256 verifies.
        (folder / f"{tag}.pt").write_bytes(data)
        forged = {**meta, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        forged["writer"] = {**meta["writer"], "tag": tag}
        (folder / f"{tag}.json").write_text(json.dumps(forged))
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess("--ckpt-compat", f"--ckpt-compat-report={report}")
    result.assert_outcomes(failed=1)
    outcomes = {
        r["writer"]: r["outcome"]
        for r in json.loads(report.read_text())["records"]
        if r["kind"] == "golden"
    }
    assert outcomes == {
        meta["writer"]["tag"]: "ok",
        "torch9.9.1-numpy9.9.1-py3.11": "blocked",
        "torch9.9.2-numpy9.9.2-py3.11": "blocked",
        "torch9.9.3-numpy9.9.3-py3.11": "blocked",
    }
    result.stdout.fnmatch_lines(["*os.system can run code (*): never allowlist it*"])
    time.sleep(0.2)
    assert not sentinel.exists(), "a hostile golden ran (or its module was imported)"


def test_hostile_golden_data_never_reaches_pickle(monkeypatch):
    """Loading a golden's bytes goes through torch's weights_only unpickler only."""
    import pickle

    from pytest_ckptcompat.outcomes import load_outcome
    from pytest_ckptcompat.scan.allowlist import Allowlist
    from pytest_ckptcompat.scan.rules import TorchRules

    def refuse(*args, **kwargs):
        raise AssertionError("pickle.loads/load/Unpickler used on a golden")

    rules = TorchRules.from_installed()
    data = _hostile_goldens(Path("/nonexistent/sentinel"))["torch9.9.1-numpy9.9.1-py3.11"]
    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    result = load_outcome(data, {"w": None}, rules=rules, allowlist=Allowlist())
    assert result.outcome == "blocked"
    assert result.blocked == ["os.system"]
    assert "os.system" in result.message
