"""Zip quirks that differ between torch releases, predicted for each and checked on real ones.

Measured by hand on real wheels (torch 1.13.1, 2.0.1, 2.1.0, 2.1.2, 2.5.1, 2.13):

- miniz reads a member's method as 32 bits, its modification time with it, so
  a stored member whose two sizes disagree is refused only when its time is 0;
  otherwise the archive opens and the member is read at its uncompressed size;
- torch >= 2.1 reads the `byteorder` record before anything else and refuses
  an archive where it is neither `little` nor `big` ("Unknown endianness type").

The files below are judged here for every release of the table, and loaded for
real by this torch and the old one (`old_python`): the scan must say what
each did.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_ckptcompat.scan import torch_table
from pytest_ckptcompat.scan.predict import predict_file

AGREEMENT = Path(__file__).parents[1] / "agreement.py"


def _saved() -> list[tuple[str, bytes]]:
    buf = io.BytesIO()
    torch.save({"which": 0, "w": torch.arange(3.0)}, buf)
    with zipfile.ZipFile(buf) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 6, 7, 8, 10))
            zf.writestr(info, data)
    return buf.getvalue()


def _central(data: bytes, suffix: bytes) -> int:
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + n].endswith(suffix):
            return at
        at += 4
    raise LookupError(suffix)


def _patched(data: bytes, suffix: bytes, *, size: int, time: int | None = None) -> bytes:
    out = bytearray(data)
    at = _central(data, suffix)
    struct.pack_into("<L", out, at + 24, size)  # the uncompressed size
    if time is not None:
        struct.pack_into("<H", out, at + 12, time)
    return bytes(out)


def _files() -> dict[str, bytes]:
    plain = _zip(_saved())
    byteorder_len = len(dict(_saved())[next(n for n, _ in _saved() if n.endswith("byteorder"))])
    main_len = len(next(d for n, d in _saved() if n.endswith("data.pkl")))
    return {
        "as-saved": plain,
        "byteorder-middle": _zip(
            [(n, b"middle" if n.endswith("byteorder") else d) for n, d in _saved()]
        ),
        "byteorder-sizes-disagree": _patched(plain, b"/byteorder", size=byteorder_len + 1),
        "byteorder-sizes-disagree-time-0": _patched(
            plain, b"/byteorder", size=byteorder_len + 1, time=0
        ),
        "main-read-longer": _patched(plain, b"/data.pkl", size=main_len + 8),
        "main-read-shorter": _patched(plain, b"/data.pkl", size=main_len - 1),
    }


# What the real torch releases did with each file (1.13.1, 2.0.1, 2.1.0, 2.1.2: by hand).
MEASURED = {
    "as-saved": {"1.13.1": True, "2.0.1": True, "2.1.0": True},
    "byteorder-middle": {"1.13.1": True, "2.0.1": True, "2.1.0": False, "2.1.2": False},
    "byteorder-sizes-disagree": {"1.13.1": True, "2.0.1": True, "2.1.0": False, "2.1.2": False},
    "byteorder-sizes-disagree-time-0": {"1.13.1": False, "2.0.1": False, "2.1.2": False},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quirks")
    out = {}
    for name, data in _files().items():
        out[name] = root / f"{name}.pt"
        out[name].write_bytes(data)
    return out


@pytest.mark.parametrize("name", list(MEASURED))
def test_predictions_equal_the_measured_releases(files, name):
    prediction = predict_file(files[name], list(MEASURED[name]))
    said = {v: s.loadable for v, s in prediction.scans.items()}
    assert said == MEASURED[name]


def test_byteorder_is_a_problem_from_2_1_only(files):
    prediction = predict_file(files["byteorder-middle"], torch_table.known_versions())
    assert "refused on 2.1-2.15 (format)" in prediction.summary()
    assert "loads with weights_only on torch 1.13-2.0" in prediction.summary()


def _judged(python: str | Path, paths: list[Path]) -> dict[str, dict[str, object]]:
    proc = subprocess.run(
        [str(python), str(AGREEMENT), *map(str, paths)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, dict[str, object]] = json.loads(proc.stdout)
    return result


def _check(results: dict[str, dict[str, object]]) -> None:
    wrong = [
        f"{Path(p).name}: scan says {r['loadable']}, torch {r['torch']}: {r['error'] or 'loads'}"
        for p, r in results.items()
        if r["loadable"] != r["loads"]
    ]
    assert not wrong, "\n".join(wrong)


def test_scan_agrees_with_this_torch(files):
    results = _judged(sys.executable, list(files.values()))
    _check(results)
    assert results[str(files["main-read-longer"])]["loads"]


@pytest.mark.slow
def test_scan_agrees_with_torch_2_5(files, old_python):
    _check(_judged(old_python, list(files.values())))
