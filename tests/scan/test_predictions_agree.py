"""Predictions agree with the real torch: from each installed torch, predict the other one.

The suite installs two environments: this one (torch 2.13, numpy 2.4) and the
old one (`old_python`: torch 2.5.1, numpy 1.25.2). Each writes the agreement
corpus (`ckpt_corpus`, pickle protocols 2 and 4); the zip layouts and the
archives with repeated `data.pkl` of test_ziparchive.py are added. Then each
environment measures every file for real (`torch.load(weights_only=True)`,
and the oracle that allowlists each blocking name in turn) and predicts, from
the rules tables only, what the *other* environment's torch and numpy do.
Every prediction must match that environment's measurement: the verdict, the
names that block (blocked or missing), and the verdict again with exactly the
names torch needed allowlisted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from agreement import disagreements
from test_ziparchive import _duplicates, _layouts

AGREEMENT = Path(__file__).parents[1] / "agreement.py"
HERE = ("2.13.0", "2.4.6")
OLD = ("2.5.1", "1.25.2")


def _run(python: Path | str, *args: str) -> dict[str, dict[str, object]]:
    proc = subprocess.run(
        [str(python), str(AGREEMENT), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, dict[str, object]] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory, old_python) -> list[str]:
    root = tmp_path_factory.mktemp("agree")
    written = json.loads(
        subprocess.run(
            [sys.executable, str(AGREEMENT), "--write-corpus", str(root / "here")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    written += json.loads(
        subprocess.run(
            [str(old_python), str(AGREEMENT), "--write-corpus", str(root / "old")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    zips = {**_layouts(), **{n: d for n, (d, _) in _duplicates().items()}}
    for name, data in zips.items():
        path = root / "zips" / f"{name}.pt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        written.append(str(path))
    return written


@pytest.mark.slow
def test_predictions_agree_both_ways(files, old_python, tmp_path):
    # Each environment measures every file and predicts the other.
    old = _run(old_python, "--oracle", "--predict", HERE[0], "--numpy", HERE[1], *files)
    needed_old = {p: r["truth"]["blocked"] for p, r in old.items() if "truth_allowed" in r}
    (tmp_path / "old.json").write_text(json.dumps(needed_old))
    here = _run(
        sys.executable,
        "--oracle",
        "--predict",
        OLD[0],
        "--numpy",
        OLD[1],
        "--allow-from",
        str(tmp_path / "old.json"),
        *files,
    )
    needed_here = {p: r["truth"]["blocked"] for p, r in here.items() if "truth_allowed" in r}
    (tmp_path / "here.json").write_text(json.dumps(needed_here))
    old_allowed = _run(
        old_python,
        "--predict",
        HERE[0],
        "--numpy",
        HERE[1],
        "--allow-from",
        str(tmp_path / "here.json"),
        *needed_here,
    )
    for path, result in old_allowed.items():
        old[path]["predicted_allowed"] = result["predicted_allowed"]

    wrong = [f"2.13 predicting {OLD}: {w}" for w in disagreements(here, old, "+".join(OLD))]
    wrong += [f"2.5.1 predicting {HERE}: {w}" for w in disagreements(old, here, "+".join(HERE))]
    assert not wrong, "\n".join(wrong)

    # The two torches really differ on the corpus: what loads, or what blocks it.
    def seen(result: dict[str, object]) -> tuple[object, ...]:
        truth = result.get("truth")
        blocked = truth["blocked"] if isinstance(truth, dict) else None
        return result["loads"], blocked

    differ = [p for p in files if seen(here[p]) != seen(old[p])]
    assert len(differ) >= 15
    assert {Path(p).parent.name for p in differ} >= {"here", "old"}
    counts = {
        "files": len(files),
        "loads on 2.13": sum(bool(here[p]["loads"]) for p in files),
        "loads on 2.5.1": sum(bool(old[p]["loads"]) for p in files),
        "allowlisted rechecks": len(needed_old) + len(needed_here),
        "judged differently by the two torches": len(differ),
    }
    print(f"\nprediction agreement: {counts}")
