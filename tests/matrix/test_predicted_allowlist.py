"""Predicted columns judge a golden with the allowlist its test applies on every torch.

A test that allowlists a name for itself (a marker's `safe_globals`, or
`check(..., safe_globals=...)`) loads its goldens with that name allowed on
every reader: the cells report it as `allowed-user`. The predicted columns
(torch 2.6 to 2.12 between the real 2.5.1 and 2.13) must apply it too, or a
golden that loads everywhere shows as blocked on every release in between (and
an upgrade gated on a predicted release fails for nothing).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import torch

from pytest_ckptcompat.golden import GoldenStore
from pytest_ckptcompat.matrix.merge import merge_reports

A, B = "torch2.5.1-numpy1.25.2-py3.11", "torch2.13.0-numpy2.2.6-py3.11"
VERSIONS = {A: ("2.5.1", "1.25.2"), B: ("2.13.0", "2.2.6")}
NAME = "argparse.Namespace"  # allowed by default on no torch


def _reports(folder: Path, status: str) -> list[Path]:
    store = GoldenStore(folder / "goldens")
    for writer in VERSIONS:
        buf = io.BytesIO()
        torch.save({"w": torch.zeros(2), "args": argparse.Namespace(lr=0.1)}, buf)
        store.write("x", buf.getvalue(), {"writer": {"tag": writer}})
    paths = []
    for tag, (torch_version, numpy_version) in VERSIONS.items():
        loaded = status == "allowed-user"
        doc = {
            "schema": "ckptcompat.report/1",
            "reader": {"tag": tag, "torch": torch_version, "numpy": numpy_version},
            "records": [
                {
                    "kind": "golden", "artifact": "x", "writer": writer,
                    "outcome": "ok" if loaded else "blocked",
                    "blocked": [] if loaded else [NAME],
                    "globals": {NAME: status}, "test": "t.py::test_x",
                }
                for writer in VERSIONS
            ],
            "tests": [{"nodeid": "t.py::test_x", "site": "t.py:3",
                       "outcome": "passed" if loaded else "failed", "finding": not loaded}],
            "run": {"update": False, "compat": True, "exitstatus": 0 if loaded else 1,
                    "duration": 1.0, "partial": False},
        }  # fmt: skip
        paths.append(folder / f"{tag}.json")
        paths[-1].write_text(json.dumps(doc))
    return paths


def _predicted(folder: Path, status: str) -> set[str]:
    doc = merge_reports(_reports(folder, status), goldens=folder / "goldens")
    assert doc["predicted"]["agreement"]["disagreements"] == []
    assert len(doc["predicted"]["outcomes"]) == 2 * 7 * 2  # writers x 2.6-2.12 x numpys
    return {o["outcome"] for o in doc["predicted"]["outcomes"]}


def test_a_tests_own_allowlist_applies_to_the_predicted_releases(tmp_path):
    assert _predicted(tmp_path / "marker", "allowed-user") == {"ok"}


def test_without_it_the_predicted_releases_block_the_name(tmp_path):
    assert _predicted(tmp_path / "none", "blocked") == {"blocked"}
