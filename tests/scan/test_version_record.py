"""A torch zip's file format version record, judged as the real torch reads it.

torch's `PyTorchStreamReader` reads `<folder>/.data/version` when there is
one, else `<folder>/version`, parses it with `std::stoull` and refuses the
archive unless the number is 1 to 10. Each archive here is a real
`torch.save` file with that record rewritten; the scan's verdict must equal
what `torch.load(weights_only=True)` does, in this environment's torch and in
every other real torch install found (`.nox` cell environments: 2.4.1,
2.5.1, 2.15.0), whose verdict the rules table must also predict from here.
"""

from __future__ import annotations

import io
import json
import subprocess
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch_envs import OTHER_TORCHES, ROOT, nox_python, this_checkout_env

from pytest_ckptcompat.scan import container, torch_table
from pytest_ckptcompat.scan.scanner import scan_file
from pytest_ckptcompat.scan.torch_reader import installed_rules

AGREEMENT = ROOT / "tests" / "agreement.py"

# What the record holds -> whether torch reads it (measured on torch 2.4.1, 2.5.1,
# 2.13.0 and 2.15.0, identical on all four).
VALUES: dict[str, tuple[bytes, bool]] = {
    "0": (b"0", False),
    "1": (b"1", True),
    "2": (b"2", True),
    "3": (b"3", True),
    "9": (b"9", True),
    "10": (b"10", True),
    "11": (b"11", False),
    "99": (b"99", False),
    "abc": (b"abc", False),
    "empty": (b"", False),
    "space-3": (b" 3", True),
    "3-newline": (b"3\n", True),  # what torch.save writes
    "newline-3": (b"\n3", True),
    "tab-3": (b"\t3", True),
    "3-space": (b"3 ", True),
    "space-only": (b" ", False),
    "3abc": (b"3abc", True),
    "3.0": (b"3.0", True),
    "plus-3": (b"+3", True),
    "plus-plus-3": (b"++3", False),
    "minus-space-3": (b"- 3", False),
    "minus-0": (b"-0", False),
    "minus-1": (b"-1", False),
    "hex-3": (b"0x3", False),  # decimal only: 0
    "leading-zeros": (b"0" * 40 + b"7", True),
    "010": (b"010", True),
    "u64-max": (b"18446744073709551615", False),  # -1 as torch keeps it
    "int64-min": (b"9223372036854775808", False),
    "past-64-bits": (b"18446744073709551616", False),
    "5000-digits": (b"1" * 5000, False),
    "minus-wraps-to-1": (b"-18446744073709551615", True),
    "minus-wraps-to-10": (b"-18446744073709551606", True),
    "minus-wraps-to-11": (b"-18446744073709551605", False),
    "nul-first": (b"\x003", False),
    "nul-after": (b"3\x00", True),
    # Longer than the head the scan reads first: decided there, or read to the end.
    "3-then-100k-spaces": (b"3" + b" " * 100_000, True),
    "100k-spaces-then-99": (b" " * 100_000 + b"99", False),
    "70k-zeros-then-3": (b"0" * 70_000 + b"3", True),
    "no-break-space-3": ("\u00a03".encode(), False),
    "fullwidth-3": ("\uff13".encode(), False),
}


def _saved() -> list[tuple[str, bytes]]:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buf)
    with zipfile.ZipFile(buf) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def _zip(entries: list[tuple[str, bytes]], deflated: frozenset[str] = frozenset()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            method = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=method)
    return buf.getvalue()


def _archives() -> dict[str, tuple[bytes, bool]]:
    """Name -> (archive, whether torch loads it): torch.save output, version records rewritten."""
    ents = _saved()
    prefix = ents[0][0].split("/")[0]
    version, dotted = f"{prefix}/version", f"{prefix}/.data/version"

    def with_record(content: bytes, name: str = version) -> list[tuple[str, bytes]]:
        return [(name if n == version else n, content if n == version else d) for n, d in ents]

    out = {}
    for key, (content, loads) in VALUES.items():
        out[f"version-{key}"] = (_zip(with_record(content)), loads)
    for key in ("3", "10", "11", "99", "abc", "empty", "minus-1"):
        content, loads = VALUES[key]
        out[f"dot-data-version-{key}"] = (_zip(with_record(content, dotted)), loads)
    out["no-version-record"] = (_zip([(n, d) for n, d in ents if n != version]), False)
    # torch reads `.data/version` when both exist, and never looks at `version`.
    out["both-dot-data-99"] = (_zip([*ents, (dotted, b"99")]), False)
    out["both-version-99"] = (_zip([*with_record(b"99"), (dotted, b"3")]), True)
    # Found in any letter case, like every record.
    out["upper-case-99"] = (_zip(with_record(b"99", f"{prefix}/VERSION")), False)
    out["deflated-3"] = (_zip(with_record(b"3" + b" " * 64), frozenset({version})), True)
    out["deflated-99"] = (_zip(with_record(b"99" + b" " * 64), frozenset({version})), False)
    return out


ARCHIVES = _archives()


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("versions")
    paths = {}
    for name, (data, _) in ARCHIVES.items():
        paths[name] = root / f"{name}.pt"
        paths[name].write_bytes(data)
    return paths


def _torch_loads(path: Path) -> tuple[bool, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.load(path, weights_only=True)
        except Exception as exc:  # what torch raises is the point
            return False, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
    return True, ""


def test_scan_agrees_with_this_torch(archives):
    rules = installed_rules()
    wrong = []
    for name, path in archives.items():
        loads, error = _torch_loads(path)
        scan = scan_file(path, rules)
        if scan.error or scan.loadable != loads:
            wrong.append(f"{name}: scan {scan.error or scan.reasons()}; torch: {error or 'loads'}")
    assert not wrong, f"torch {torch.__version__}:\n" + "\n".join(wrong)


def test_the_measurements_hold_here(archives):
    """The table of values above is what this torch does (the other tests lean on it)."""
    measured = {name: _torch_loads(path)[0] for name, path in archives.items()}
    assert measured == {name: loads for name, (_, loads) in ARCHIVES.items()}


@pytest.mark.slow
@pytest.mark.parametrize("tag", OTHER_TORCHES)
def test_scan_and_prediction_agree_with_another_torch(archives, tag, request):
    """That torch's real load = its own scan there = the table's prediction from here."""
    proc = subprocess.run(
        [str(nox_python(tag, request)), str(AGREEMENT), *map(str, archives.values())],
        capture_output=True,
        text=True,
        env=this_checkout_env(),  # this checkout's code, whatever that venv has installed
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    version = str(next(iter(results.values()))["torch"])
    rules = torch_table.rules_for(torch_table.normalize(version))
    wrong = []
    for name, path in archives.items():
        real = results[str(path)]
        predicted = scan_file(path, rules)
        if real["loadable"] != real["loads"]:
            wrong.append(f"{name}: scan there says {real['reasons']}; torch: {real['error']}")
        if predicted.loadable != real["loads"]:
            wrong.append(f"{name}: predicted {predicted.reasons()}; torch: {real['error']}")
        if real["loads"] != ARCHIVES[name][1]:
            wrong.append(f"{name}: measured {real['error'] or 'loads'}, unlike torch 2.13")
    assert not wrong, f"torch {version}:\n" + "\n".join(wrong)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"11", "file format version 11, newer than torch reads (1 to 10)"),
    (b"99\n", "file format version 99, newer than torch reads (1 to 10)"),
    (b"0", "file format version 0, older than torch reads (1 to 10)"),
    (b"-1", "file format version -1, older"),
    (b"abc", "b'abc', not a number"),
    (b"", "b'', not a number"),
    (b"1" * 5000, "a number past 64 bits"),
    (b"x" * 30, "b'xxxxxxxxxxxxxxxxxxxxxxxx'..., not a number"),
])  # fmt: skip
def test_refusals_say_why(content, fragment):
    problem = container.version_problem("archive/version", content)
    assert problem is not None
    assert problem.startswith("archive/version holds ")
    assert fragment in problem
    assert problem.endswith(("torch refuses the archive", "(Couldn't parse the version)",
                             "(stoull)"))  # fmt: skip


def test_every_value_in_range_is_read():
    assert list(container.FILE_FORMAT_VERSIONS) == list(range(1, 11))
    for value in container.FILE_FORMAT_VERSIONS:
        assert container.version_problem("v", str(value).encode()) is None
        assert container.version_problem("v", f" \t{value}\r\n".encode()) is None


def test_a_corrupt_version_record_is_not_called_loadable():
    """torch parses the garbage a failed inflate leaves (it loaded 43 of 200 tries on 2.13)."""
    ents = _saved()
    prefix = ents[0][0].split("/")[0]
    data = bytearray(_zip(ents, frozenset({f"{prefix}/version"})))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(f"{prefix}/version")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra)] = 0xFF  # bad block type
    ckpt = container.checkpoint_from_bytes(bytes(data))
    (problem,) = [p for p in ckpt.problems if "version" in p]
    assert problem.startswith(f"{prefix}/version: corrupt compressed data")
    assert "at random" in problem
