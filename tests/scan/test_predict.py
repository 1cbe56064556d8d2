"""`scan --torch SPEC [--numpy V]`: releases chosen, judged from the tables, and said plainly.

What a prediction says must equal what a scan under that torch says (the
`FileScan` of `scanner.scan_file` with the table's rules); whether that is what
the real torch does is test_predictions_agree.py's job.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from ckpt_corpus import CASES, save_case
from run_cli import ckptcompat

from pytest_ckptcompat.scan import torch_table
from pytest_ckptcompat.scan.allowlist import Allowlist
from pytest_ckptcompat.scan.fastpath import FAST_MIN_BYTES
from pytest_ckptcompat.scan.machine import TypeResolver
from pytest_ckptcompat.scan.predict import (
    TorchSpecError,
    predict_bytes,
    predict_file,
    reader_numpy,
    select_torch,
)
from pytest_ckptcompat.scan.scanner import scan_file

KNOWN = torch_table.known_versions()


# --- SPEC -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "versions", "single"),
    [
        ("2.6", ("2.6.0",), True),
        ("2.5", ("2.5.1",), True),  # a minor: its newest release
        ("2.5.0", ("2.5.0",), True),
        ("2.13.0+cpu", ("2.13.0",), True),
        ("2.6,2.4", ("2.4.1", "2.6.0"), False),
        ("2.4.0, 2.4.1", ("2.4.0", "2.4.1"), False),
        (">=2.14", ("2.14.0", "2.14.1", "2.15.0"), False),
        (">=2.4,<2.5", ("2.4.0", "2.4.1"), False),
        ("==2.9.*", ("2.9.0", "2.9.1"), False),
        ("<2.0", ("1.13.0", "1.13.1"), False),
        ("~=2.14.0", ("2.14.0", "2.14.1"), False),
        ("~=2.14", ("2.14.0", "2.14.1", "2.15.0"), False),
    ],
)
def test_spec_selects_releases(spec, versions, single):
    selection = select_torch(spec)
    assert selection.versions == versions
    assert selection.single is single


def test_all_is_every_release_of_the_table():
    assert select_torch("all").versions == KNOWN
    assert select_torch("ALL").single is False
    assert (KNOWN[0], KNOWN[-1]) == ("1.13.0", "2.15.0")


@pytest.mark.parametrize("spec", ["2.16", "3", "2.4,2.99", "1.12.1"])
def test_unknown_release_names_the_known_ones(spec):
    with pytest.raises(torch_table.UnknownTorchVersionError, match=r"known: 1\.13\.0, .*2\.15\.0"):
        select_torch(spec)


@pytest.mark.parametrize("spec", ["", "2.4,", "latest", ">=2.4,2.6", ">=3.0", "~=2", ">2.4.*"])
def test_bad_spec_is_one_clear_error(spec):
    with pytest.raises(TorchSpecError, match=r"--torch|wildcard|compatible"):
        select_torch(spec)


# --- a prediction is a scan under that torch ------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    paths = []
    for case in CASES:
        for protocol in (2, 4):
            path = root / f"{case.id}-p{protocol}.pt"
            save_case(case.make(), path, protocol)
            paths.append(path)
    return paths


@pytest.mark.parametrize("numpy_version", ["2.4.6", "1.25.2", "1.23.5", "none"])
def test_prediction_equals_a_scan_under_each_release(corpus, numpy_version):
    numpy = reader_numpy(numpy_version)
    types = TypeResolver(numpy)
    allowlist = Allowlist.for_reader(["argparse.Namespace", "numpy.dtype"], numpy)
    for path in corpus:
        prediction = predict_file(path, KNOWN, numpy=numpy, allowlist=allowlist)
        for version in KNOWN:
            alone = scan_file(path, torch_table.rules_for(version), allowlist, types=types)
            assert prediction.scans[version].to_json() == alone.to_json(), (path.name, version)


def test_big_pickle_with_floats_is_walked_once_for_every_release(tmp_path):
    """The fast path records BINFLOAT, which torch 1.13 lacks, instead of giving up."""
    path = tmp_path / "floats.pt"
    torch.save({f"k{i}": [0.5 * i, torch.zeros(1)] for i in range(20_000)}, path)
    from pytest_ckptcompat.scan.container import open_checkpoint

    main = next(b for b in open_checkpoint(path).pickles if b.main)
    assert len(main.data) > FAST_MIN_BYTES
    prediction = predict_file(path, KNOWN)
    for version in KNOWN:
        alone = scan_file(path, torch_table.rules_for(version))
        assert prediction.scans[version].to_json() == alone.to_json(), version
    assert "refused on 1.13 (unsupported-opcode)" in prediction.summary()
    assert "loads with weights_only on torch 2.0-2.15" in prediction.summary()


def test_numpy_2_names_are_missing_under_numpy_1_25():
    data = _saved({"m": np.float64(1.0)})
    old = predict_bytes(data, ["2.5.1"], numpy=reader_numpy("1.25.2")).verdict("2.5.1")
    assert old["outcome"] == "missing"
    assert old["missing"] == ["numpy._core.multiarray.scalar"]
    assert "numpy.dtypes.Float64DType" in old["blocked"]
    new = predict_bytes(data, ["2.5.1"], numpy=reader_numpy("1.26.1")).verdict("2.5.1")
    assert (new["outcome"], new["missing"]) == ("blocked", [])
    # numpy < 1.25 names the dtype class otherwise; no numpy at all: every numpy name is missing.
    older = predict_bytes(data, ["2.6.0"], numpy=reader_numpy("1.24.4")).verdict("2.6.0")
    assert "numpy.dtype[float64]" in older["blocked"]
    none = predict_bytes(data, ["2.6.0"], numpy=reader_numpy("none")).verdict("2.6.0")
    assert set(none["missing"]) == {"numpy._core.multiarray.scalar", "numpy.dtype"}


def test_allowlisted_numpy_2_name_is_fine_under_numpy_1_25():
    """The printed snippet allowlists both spellings: numpy 1.25 resolves either (an alias)."""
    data = _saved({"m": np.float64(1.0)})
    entries = ["numpy._core.multiarray.scalar", "numpy.dtype", "numpy.dtypes.Float64DType"]
    for numpy_version in ("1.25.2", "2.4.6"):
        numpy = reader_numpy(numpy_version)
        prediction = predict_bytes(data, ["2.6.0"], numpy=numpy, allowlist=entries)
        assert prediction.scans["2.6.0"].loadable, (numpy_version, prediction.summary())
    # numpy 1.24 has no numpy.dtypes, but the entry names the same class there.
    numpy = reader_numpy("1.24.4")
    allowlist = Allowlist.for_reader(entries, numpy)
    assert "numpy.dtype[float64]" in allowlist.types
    assert not allowlist.missing


def test_allowlist_for_reader_equals_build_here():
    names = [
        "argparse.Namespace",
        "numpy.dtype",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray._reconstruct",
        "numpy.dtypes.Float64DType",
        "numpy.dtype[float32]",
        "numpy.random._pickle.__randomstate_ctor",
        "collections.defaultdict",
        "nosuchmodule.Thing",
    ]
    built = Allowlist.build(names)
    here = Allowlist.for_reader(names, reader_numpy(None))
    assert here.keys == built.keys
    assert here.types == built.types
    assert here.missing.keys() == built.missing.keys()


def _saved(obj: object) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


# --- the command ----------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    ok = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(2)}, ok)
    sets = tmp_path / "set.pt"
    torch.save({"s": {1, 2}, "w": torch.ones(2)}, sets)
    ns = tmp_path / "ns.pt"
    torch.save({"hparams": argparse.Namespace(lr=0.1), "m": np.float64(1.0)}, ns)
    return ok, sets, ns


def test_single_release_is_a_scan_as_if_installed(files):
    _, sets, ns = files
    here = json.loads(ckptcompat("scan", "--json", "--no-project-config", sets, ns).stdout)
    proc = ckptcompat("scan", "--json", "--no-project-config", "--torch", "2.13", sets, ns)
    assert proc.returncode == 1
    predicted = json.loads(proc.stdout)
    assert predicted.pop("predicted") is True
    assert predicted.pop("torch") == "2.13.0"
    assert here.pop("torch").startswith("2.13.0")
    assert predicted == here
    old = json.loads(
        ckptcompat(
            "scan", "--json", "--no-project-config", "--torch", "2.5", "--numpy", "1.25.2", sets
        ).stdout
    )
    assert (old["torch"], old["numpy"], old["predicted"]) == ("2.5.1", "1.25.2", True)
    statuses = {g["name"]: g["status"] for g in old["files"][0]["globals"]}
    assert statuses["__builtin__.set"] == "blocked"
    text = ckptcompat("scan", "--no-project-config", "--torch", "2.5", sets).stdout
    assert f"{sets}: torch-zip, NOT loadable with torch 2.5.1 (predicted, numpy " in text


def test_several_releases_one_line_per_file(files):
    ok, sets, ns = files
    proc = ckptcompat("scan", "--no-project-config", "--torch", "all", ok, sets, ns)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{ok}: loads with weights_only on torch 1.13-2.15")
    assert lines[1].startswith(
        f"{sets}: loads with weights_only on torch 2.6-2.15; blocked on 1.13-2.5 by builtins.set"
    )
    assert lines[2].startswith(f"{ns}: blocked on 1.13 by argparse.Namespace")
    assert ", refused (unsupported-opcode); blocked on 2.0-2.4 by argparse.Namespace" in lines[2]
    assert len(lines) == 3
    only_new = ckptcompat("scan", "--no-project-config", "--torch", ">=2.6", ok, sets)
    assert only_new.returncode == 0
    assert only_new.stdout.splitlines()[1].startswith(
        f"{sets}: loads with weights_only on torch 2.6-2.15 (predicted, numpy"
    )


def test_several_releases_json(files, tmp_path):
    _, sets, _ = files
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really")
    proc = ckptcompat(
        "scan", "--json", "--no-project-config", "--torch", "2.4,2.6", "--numpy", "1.25.2",
        sets, broken,
    )  # fmt: skip
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "ckptcompat.predict/1"
    assert (doc["predicted"], doc["torch"], doc["numpy"]) == (True, ["2.4.1", "2.6.0"], "1.25.2")
    record, bad = doc["files"]
    assert record["by_torch"] == {
        "2.4.1": {
            "loadable": False,
            "outcome": "blocked",
            "blocked": ["builtins.set"],
            "missing": [],
            "obstacles": [],
            "dangerous": False,
        },
        "2.6.0": {
            "loadable": True,
            "outcome": "ok",
            "blocked": [],
            "missing": [],
            "obstacles": [],
            "dangerous": False,
        },
    }
    assert bad["error"]
    assert bad["by_torch"] == {}
    assert proc.stderr.startswith(f"ckptcompat: error: {broken}: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--torch", "2.16"], "torch 2.16 is not in the rules table (known: 1.13.0,"),
        (["--torch", "2.6", "--numpy", "1.19"], "numpy 1.19 is not in the names table (known:"),
        (["--torch", ">=9"], "--torch '>=9' selects no release (known: 1.13.0,"),
    ],
)
def test_unknown_versions_are_one_line_exit_2(files, args, message):
    proc = ckptcompat("scan", "--no-project-config", *args, files[0])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"ckptcompat: error: {message}")
    assert "2.15.0" in proc.stderr or "2.4" in proc.stderr


def test_dangerous_file_is_said_for_every_release(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # never run: only scanned
    proc = ckptcompat("scan", "--no-project-config", "--torch", "all", evil)
    assert proc.returncode == 1
    assert "os.system" in proc.stdout
    assert "DANGEROUS (can run code)" in proc.stdout


def test_allowlist_without_imports_takes_names_as_spelled():
    names = ["myproject.Config", "argparse.Namespace", "numpy._core.multiarray.scalar"]
    allowlist = Allowlist.for_reader(names, reader_numpy("1.25.2"), imports=False)
    # As `build` keys them in that reader: each entry as spelled, and a numpy object by the
    # name numpy 1.25 writes it under too.
    assert allowlist.keys == frozenset([*names, "numpy.core.multiarray.scalar"])
    assert not allowlist.missing
    assert "myproject.Config" in allowlist.types
