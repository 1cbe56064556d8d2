"""Following any printed fix never runs a payload, and the scan's `loadable` is torch's.

Every file of the corpus, hostile (tests/hostile_corpus.py,
tests/advisory_corpus.py) and benign (advisory_corpus.BENIGN, written by this
environment's torch and numpy and by torch 2.5.1 / numpy 1.25), goes through
tests/fix_driver.py in this environment (torch 2.13) and in the old one
(`old_python`): the scan's printed fix is applied for real (the printed
`add_safe_globals` code is exec'd, then `torch.load(weights_only=True)`, then
every returned value is read), and so is the fix the per-name advice would
print if the danger list had missed the file. The sentinel folder (files the
payloads create, connections to local ports) must stay empty.

For benign files the scan must agree with torch twice: without any allowlist,
and with the entries it printed (`--safe-global`) against torch with the code
it printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from advisory_corpus import CASES, Listener, write_benign
from advisory_corpus import build_corpus as build_advisories
from hostile_corpus import build_corpus as build_hostile

from pytest_ckptcompat.scan.fixes import DANGEROUS_FILE

TESTS = Path(__file__).resolve().parents[1]
DRIVER = TESTS / "fix_driver.py"
ADVISORY = TESTS / "advisory_corpus.py"
PROJECT = "ckpt_corpus_project"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, request):
    """Hostile files of both corpora, benign files of this environment; the sentinel folder."""
    root = tmp_path_factory.mktemp("fixes")
    sentinels = root / "sentinels"
    listener = Listener()
    hostile = {path: case.id for case, path, _ in build_hostile(root / "hostile", sentinels)}
    advisory = build_advisories(root / "advisory", sentinels, listener)
    hostile.update({path: case.id for case, path, _ in advisory})
    benign = write_benign(root / "benign", prefix="new-")
    yield root, sentinels, hostile, benign
    listener.close()
    time.sleep(0.3)
    assert sorted(p.name for p in sentinels.iterdir()) == [], "a payload ran"


# Their danger is a value (a forged numpy dtype state), not a name: had the
# detector missed it, the numpy plain-data advice would load it and crash.
VALUE_DANGERS = {case.id for case in CASES if case.effect == "crash"}


def _drive(
    python: Path | str, paths: list[Path], root: Path, no_load: list[Path], no_per_name: list[Path]
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root / "benign")}
    proc = subprocess.run(
        [str(python), str(DRIVER), "--first-party", PROJECT]
        + [f"--no-load={p}" for p in no_load]
        + [f"--no-per-name={p}" for p in no_per_name]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        stdin=subprocess.DEVNULL,
        timeout=900,
        check=False,
    )
    last = proc.stderr.strip().splitlines()[-1:] if proc.stderr else []
    assert proc.returncode == 0, f"driver died ({proc.returncode}) at {last}: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def _torch_runs(python: Path | str) -> set[str]:
    """The cases torch itself runs under weights_only on this python's torch (never loaded)."""
    version = subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__.split('+')[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    release = tuple(int(x) for x in version.split(".")[:2])
    out = set()
    for case in CASES:
        if case.torch_runs:
            bound = tuple(int(x) for x in case.torch_runs.lstrip("<").split("."))
            if release < bound:
                out.add(case.id)
    return out


def _check(results: dict, hostile: dict[Path, str], benign: dict[str, Path], sentinels: Path):
    time.sleep(0.3)
    ran = sorted(p.name for p in sentinels.iterdir())
    assert ran == [], f"following a printed fix ran a payload: {ran}"
    wrong = []
    for path, case_id in hostile.items():
        r = results[str(path)]
        # Every hostile file: DANGEROUS, exit 1, and no allowlist code at all.
        if r["exit"] != 1 or not r["first_line"].endswith("DANGEROUS (can run code)"):
            wrong.append(f"{case_id}: exit {r['exit']}: {r['first_line']} {r['stderr']}")
        if r["entries"] or r["code"]:
            wrong.append(f"{case_id}: printed an allowlist for a dangerous file: {r['entries']}")
        if r["loadable_with_entries"]:
            wrong.append(f"{case_id}: loadable with its printed entries")
        # torch may load a hostile file only through a pickle the scan says it does not
        # read (an extra member, bytes after the STOP, a nested archive, the other copy).
        unread = all("which torch.load does not read" in d for d in r["dangers"])
        for mode in ("printed", "per-name"):
            if r.get(mode, {}).get("loads") and not unread:
                wrong.append(f"{case_id}: torch loads it with the {mode} fix: {r['dangers']}")
    for name, path in benign.items():
        r = results[str(path)]
        if (r["exit"] == 0) != r["none"]["loads"]:
            wrong.append(f"{name}: scan exit {r['exit']}, torch: {r['none']['error'] or 'loads'}")
        if r["loadable_with_entries"] != r["printed"]["loads"]:
            wrong.append(
                f"{name}: with the printed fix the scan says loadable="
                f"{r['loadable_with_entries']}, torch: {r['printed']['error'] or 'loads'}"
            )
    torch_version = next(iter(results.values()))["torch"]
    assert not wrong, f"torch {torch_version}:\n" + "\n".join(wrong)


def test_printed_fixes_on_this_torch(corpus):
    root, sentinels, hostile, benign = corpus
    paths = [*hostile, *benign.values()]
    skip = _torch_runs(sys.executable)
    no_load = [p for p, case_id in hostile.items() if case_id in skip]
    no_per_name = [p for p, case_id in hostile.items() if case_id in VALUE_DANGERS]
    results = _drive(sys.executable, paths, root, no_load, no_per_name)
    _check(results, hostile, benign, sentinels)
    # The corpus really exercises the fixes: benign files whose printed fix
    # makes them load, on this torch, and files no allowlist helps.
    fixed = [n for n, p in benign.items() if results[str(p)]["printed"]["loads"]]
    assert len(fixed) >= 15, fixed
    assert all(DANGEROUS_FILE not in results[str(p)]["first_line"] for p in benign.values())


@pytest.mark.slow
def test_printed_fixes_on_torch_2_5(corpus, old_python):
    root, sentinels, hostile, benign = corpus
    # Files the old environment writes (numpy 1 spellings, torch 2.5's own output).
    old = subprocess.run(
        [str(old_python), str(ADVISORY), "benign", str(root / "benign"), "old-"],
        capture_output=True,
        text=True,
        check=True,
    )
    benign = {**benign, **{k: Path(v) for k, v in json.loads(old.stdout).items()}}
    skip = _torch_runs(old_python)
    assert {"torchscript-setstate", "tensor-setitem"} <= skip
    no_load = [p for p, case_id in hostile.items() if case_id in skip]
    no_per_name = [p for p, case_id in hostile.items() if case_id in VALUE_DANGERS]
    results = _drive(old_python, [*hostile, *benign.values()], root, no_load, no_per_name)
    _check(results, hostile, benign, sentinels)
    # The numpy-1 files get the fix that serves both numpy majors and load with it.
    for name in ("old-numpy-scalars", "old-numpy-array"):
        r = results[str(benign[name])]
        assert r["printed"]["loads"], (name, r["printed"])
        assert "numpy.core.multiarray._reconstruct" in r["entries"] or any(
            e.startswith("numpy.core.multiarray.") for e in r["entries"]
        )
