"""The advisories against pickle scanners: every file is DANGEROUS, NOT loadable, exit 1.

The corpus (tests/advisory_corpus.py) is generated here, at test time. The
scans run the real command, under this torch and under torch 2.5.1. Separate
tests prove the corpus is not vacuous: each payload, unpickled on purpose in
a child process inside a temporary folder, really creates its sentinel (or
connects to its local port); the TorchScript one really runs under torch
2.5.1's `torch.load(weights_only=True)`; the forged numpy dtype really
crashes numpy once the numpy names are allowlisted.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from advisory_corpus import CASES, Listener, build_corpus, forged_dtype_array, matches

from pytest_ckptcompat.scan.fixes import DANGEROUS_FILE

BY_ID = {case.id: case for case in CASES}


@pytest.fixture(scope="module")
def advisories(tmp_path_factory):
    root = tmp_path_factory.mktemp("advisories")
    sentinels = root / "sentinels"
    listener = Listener()
    files = build_corpus(root / "files", sentinels, listener)
    yield files, sentinels
    listener.close()
    time.sleep(0.3)
    assert sorted(p.name for p in sentinels.iterdir()) == [], "a hostile payload ran"


def _scan_json(python: Path | str, paths: list[Path]) -> tuple[int, dict]:
    proc = subprocess.run(
        [str(python), "-m", "pytest_ckptcompat", "scan", "--json", "--no-project-config"]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.stderr == "", proc.stderr
    return proc.returncode, {Path(r["path"]).name: r for r in json.loads(proc.stdout)["files"]}


def _check_flagged(files, records) -> None:
    wrong = []
    for case, path, _ in files:
        record = records[path.name]
        flagged = {g["name"] for g in record["globals"] if g["dangerous"]}
        missing = [name for name in case.dangerous if not matches(flagged, name)]
        if record["error"] or record["loadable"] or missing:
            wrong.append(f"{case.id}: error={record['error']} loadable={record['loadable']} "
                         f"not flagged: {missing} (flagged: {sorted(flagged)})")  # fmt: skip
        if any(g["status"] != "blocked" for g in record["globals"] if g["dangerous"]):
            wrong.append(f"{case.id}: a dangerous name is not blocked")
    assert not wrong, "\n".join(wrong)


def test_every_advisory_file_is_flagged_by_the_cli(advisories):
    files, _sentinels = advisories
    code, records = _scan_json(sys.executable, [p for _, p, _ in files])
    assert code == 1
    _check_flagged(files, records)


def test_show_calls_dangerous_every_file_the_scan_does(advisories):
    # One judgement for both commands: a BUILD on a class, a forged dtype, a SETITEM into
    # a tensor or TorchScript run at load is dangerous in `show` too, not only a name.
    files, _sentinels = advisories
    show = [sys.executable, "-m", "pytest_ckptcompat", "show", "--json"]
    proc = subprocess.run(
        show + [str(p) for _, p, _ in files], capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    records = {Path(r["path"]).name: r for r in json.loads(proc.stdout)["files"]}
    quiet = [
        case.id
        for case, path, _ in files
        if records[path.name]["error"] is None
        and not records[path.name]["threats"]
        and not any(g["dangerous"] for g in records[path.name]["globals"])
    ]
    assert quiet == []
    assert any(records[path.name]["threats"] for _, path, _ in files)


@pytest.mark.slow
def test_every_advisory_file_is_flagged_under_torch_2_5(advisories, old_python):
    """torch 2.5.1 hands TorchScript to torch.jit.load and writes into tensors: still flagged."""
    files, _sentinels = advisories
    code, records = _scan_json(old_python, [p for _, p, _ in files])
    assert code == 1
    _check_flagged(files, records)


def test_each_file_alone_says_dangerous_and_prints_no_allowlist(advisories):
    files, _sentinels = advisories
    from pytest_ckptcompat.cli import main

    for case, path, _ in files:
        out = io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sys, "stdout", out)
            code = main(["scan", "--no-project-config", str(path)])
        text = out.getvalue()
        assert code == 1, case.id
        assert text.splitlines()[0].endswith("DANGEROUS (can run code)"), (case.id, text)
        assert DANGEROUS_FILE in text, case.id
        assert "add_safe_globals" not in text, (case.id, text)
        assert "or allowlist it" not in text, (case.id, text)


# --- the corpus is not vacuous --------------------------------------------------------------

_UNPICKLE = """
import pickle, sys, warnings
warnings.simplefilter("ignore")
data = open(sys.argv[1], "rb").read()
(pickle._loads if sys.argv[2] == "pure" else pickle.loads)(data)
"""


def _available(need: str) -> bool:
    module, _, attr = need.partition(":")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lib2to3, distutils: deprecated on import
            spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return False
    if spec is None:
        return False
    if not attr:
        return True
    probe = f"import warnings; warnings.simplefilter('ignore'); import {module} as m; m.{attr}"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


PROVABLE = [c for c in CASES if c.proof in ("pickle", "pure-pickle")]


@pytest.mark.parametrize("case", PROVABLE, ids=lambda c: c.id)
def test_payload_really_runs_when_unpickled(tmp_path, case):
    """Unpickled on purpose (a child process, in a temporary folder): the sentinel appears."""
    missing = [need for need in case.needs if not _available(need)]
    if missing:
        pytest.skip(f"needs {missing} (another Python or torch)")
    sentinel = tmp_path / "sentinel"
    listener = Listener()
    try:
        port = listener.port(sentinel) if case.network else 0
        payload = tmp_path / "payload.pkl"
        payload.write_bytes(case.payload(sentinel, port))
        subprocess.run(
            [sys.executable, "-c", _UNPICKLE, str(payload),
             "pure" if case.proof == "pure-pickle" else "c"],
            cwd=tmp_path, capture_output=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
        )  # fmt: skip
        deadline = time.monotonic() + 5
        while not sentinel.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.close()
    assert sentinel.exists(), f"{case.id}: the payload did nothing when unpickled"


_TORCHSCRIPT_LOAD = """
import sys, warnings, torch
warnings.simplefilter("ignore")
try:
    torch.load(sys.argv[1], weights_only=True)
    print("loaded")
except Exception as exc:
    print("refused", type(exc).__name__)
"""


@pytest.mark.slow
def test_torch_2_5_runs_torchscript_setstate_under_weights_only(tmp_path, old_python):
    """CVE-2025-32434, for real: why the scan flags TorchScript __setstate__ on every torch."""
    sentinel = tmp_path / "sentinel"
    path = tmp_path / "model.pt"
    path.write_bytes(BY_ID["torchscript-setstate"].build(sentinel, 0))
    new = subprocess.run([sys.executable, "-c", _TORCHSCRIPT_LOAD, str(path)], capture_output=True,
                         text=True, check=True, cwd=tmp_path)  # fmt: skip
    assert new.stdout.startswith("refused")
    assert not sentinel.exists()
    old = subprocess.run([str(old_python), "-c", _TORCHSCRIPT_LOAD, str(path)], capture_output=True,
                         text=True, check=True, cwd=tmp_path)  # fmt: skip
    assert old.stdout.startswith("loaded")
    assert sentinel.exists(), "torch 2.5.1 no longer runs TorchScript under weights_only=True"
    scan = subprocess.run(
        [str(old_python), "-m", "pytest_ckptcompat", "scan", "--no-project-config", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert scan.returncode == 1
    assert scan.stdout.splitlines()[0].endswith("NOT loadable with torch 2.5.1+cu124, "
                                                "DANGEROUS (can run code)")  # fmt: skip


_NUMPY_ALLOWLIST_LOAD = """
import sys, torch, numpy as np
_np_core = np._core if int(np.__version__.split(".")[0]) >= 2 else np.core
torch.serialization.add_safe_globals([
    (_np_core.multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
    np.ndarray, np.dtype, type(np.dtype("float64")), type(np.dtype("object")),
])
array = torch.load(sys.argv[1], weights_only=True)["metric"]
print("loaded", flush=True)
print(array["a"][0], flush=True)  # reads the object pointer the file wrote
"""


def test_forged_dtype_crashes_numpy_once_its_names_are_allowlisted(tmp_path):
    """What the numpy plain-data advice used to let through: a pointer read from the file."""
    path = tmp_path / "forged.pt"
    path.write_bytes(forged_dtype_array())
    proc = subprocess.run([sys.executable, "-c", _NUMPY_ALLOWLIST_LOAD, str(path)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)  # fmt: skip
    assert proc.stdout.startswith("loaded")
    assert proc.returncode < 0, (proc.returncode, proc.stdout, proc.stderr[-500:])  # a signal
