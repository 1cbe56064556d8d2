"""The one zip reader reads what torch reads, checked against the real torch.

Every archive here is judged twice, by this environment's torch (2.13) and by
the old one (torch 2.5.1, `old_python`): the scan's verdict must equal what
`torch.load(weights_only=True)` did, and where the archive holds several
`data.pkl` copies, the copy the scanner judges must be the copy torch unpickled.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from pytest_ckptcompat.scan.container import checkpoint_from_bytes, open_checkpoint
from pytest_ckptcompat.scan.ziparchive import ZipArchive, ZipError

AGREEMENT = Path(__file__).parents[1] / "agreement.py"


def _saved() -> list[tuple[str, bytes]]:
    buf = io.BytesIO()
    torch.save({"which": 0, "w": torch.arange(3.0)}, buf)
    with zipfile.ZipFile(buf) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def _zip(
    entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED, comment: bytes = b""
) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point of some archives
        for name, data in entries:
            zf.writestr(name, data)
        zf.comment = comment
    return buf.getvalue()


def _marker(n: int) -> bytes:
    return pickle.dumps({"which": n}, protocol=2)


def _layouts() -> dict[str, bytes]:
    """Re-zipped and edited copies of one torch.save file, the ways people make them."""
    ents = _saved()
    main = next(n for n, _ in ents if n.endswith("/data.pkl"))
    prefix = main.split("/")[0]
    out = {
        "as-saved": _zip(ents),
        "deflated": _zip(ents, zipfile.ZIP_DEFLATED),
        "bzip2": _zip(ents, zipfile.ZIP_BZIP2),
        "archive-comment": _zip(ents, comment=b"re-zipped"),
        "end-record-in-comment": _zip(ents, comment=b"PK\x05\x06 looks like an end record"),
        "readme-after": _zip([*ents, ("README", b"hi")]),
        "readme-first": _zip([("README", b"hi"), *ents]),
        "other-folder": _zip([*ents, ("other/x", b"1")]),
        "root-members": _zip([(n.split("/", 1)[1], d) for n, d in ents]),
        "no-version": _zip([(n, d) for n, d in ents if not n.endswith("/version")]),
        "dot-data-version-only": _zip(
            [(n.replace(f"{prefix}/version", f"{prefix}/.data/version"), d) for n, d in ents]
        ),
        "upper-case-main": _zip([(n.replace("data.pkl", "DATA.PKL"), d) for n, d in ents]),
        "folder-entry": _zip([(f"{prefix}/", b""), *ents]),
    }
    # What `set_crc32_options(False)` writes: every CRC field 0.
    nocrc = bytearray(out["as-saved"])
    at = 0
    while (at := nocrc.find(b"PK\x03\x04", at)) >= 0:
        struct.pack_into("<L", nocrc, at + 14, 0)
        at += 4
    at = 0
    while (at := nocrc.find(b"PK\x01\x02", at)) >= 0:
        struct.pack_into("<L", nocrc, at + 16, 0)
        at += 4
    out["crc-zero"] = bytes(nocrc)
    # A local header whose name differs from the central directory's.
    renamed = bytearray(out["as-saved"])
    at = renamed.index(main.encode())
    renamed[at : at + len(main)] = main.replace("data.pkl", "xxxx.pkl").encode()
    out["local-name-differs"] = bytes(renamed)
    # A stored member whose two sizes disagree in the central directory.
    sizes = bytearray(out["as-saved"])
    with zipfile.ZipFile(io.BytesIO(bytes(sizes))) as zf:
        info, at = zf.getinfo(f"{prefix}/byteorder"), zf.start_dir
    while sizes[at + 46 : at + 46 + len(info.filename)] != info.filename.encode():
        n, m, k = struct.unpack_from("<HHH", sizes, at + 28)
        at += 46 + n + m + k
    struct.pack_into("<L", sizes, at + 24, info.file_size + 1)
    out["sizes-disagree"] = bytes(sizes)
    return out


def _duplicates(count: int = 24, seed: int = 1) -> dict[str, tuple[bytes, list[bytes]]]:
    """Archives holding 2-6 copies of data.pkl (any letter case) among other members.

    Returns name -> (archive, the pickle of each marker value): which copy
    torch unpickles depends on miniz's heap sort of the whole directory.
    """
    rng = random.Random(seed)
    base = [(n, d) for n, d in _saved() if not n.endswith("/data.pkl")]
    prefix = base[0][0].split("/")[0]
    out = {}
    for i in range(count):
        entries = list(base) + [
            (f"{prefix}/data/{k + 10}", b"x" * 4) for k in range(rng.randrange(30))
        ]
        rng.shuffle(entries)
        entries.insert(0, (f"{prefix}/.format_version", b"1"))  # keeps the folder first
        copies = rng.randrange(2, 7)
        markers = [_marker(n) for n in range(1, copies + 1)]
        for marker in markers:
            spelling = "".join(c.upper() if rng.random() < 0.3 else c for c in "data.pkl")
            entries.insert(rng.randrange(len(entries) + 1), (f"{prefix}/{spelling}", marker))
        out[f"dup-{i}-x{copies}"] = (_zip(entries), markers)
    return out


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zips")
    paths = {}
    for name, data in _layouts().items():
        paths[name] = root / f"{name}.pt"
        paths[name].write_bytes(data)
    for name, (data, _) in _duplicates().items():
        paths[name] = root / f"{name}.pt"
        paths[name].write_bytes(data)
    return paths


def _judge(python: Path | str, paths: list[Path]) -> dict[str, dict[str, object]]:
    proc = subprocess.run(
        [str(python), str(AGREEMENT), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _check_agreement(results: dict[str, dict[str, object]], archives: dict[str, Path]) -> None:
    markers = {name: m for name, (_, m) in _duplicates().items()}
    wrong = []
    for name, path in archives.items():
        r = results[str(path)]
        if r["loadable"] != r["loads"]:
            wrong.append(
                f"{name}: scan says loadable={r['loadable']}, torch: {r['error'] or 'loads'}"
            )
        if name in markers and r["loads"]:
            chosen = bytes.fromhex(str(r["main_bytes"]))
            judged = markers[name].index(chosen) + 1
            if judged != r["which"]:
                wrong.append(f"{name}: scan judged copy {judged}, torch unpickled {r['which']}")
    assert not wrong, f"torch {next(iter(results.values()))['torch']}:\n" + "\n".join(wrong)


def test_reader_agrees_with_this_torch(archives):
    results = _judge(sys.executable, list(archives.values()))
    _check_agreement(results, archives)
    # The variants really differ: some load and some do not, for the reasons named.
    loads = {name for name, p in archives.items() if results[str(p)]["loads"]}
    assert {"as-saved", "deflated", "crc-zero", "local-name-differs", "upper-case-main"} <= loads
    assert not {"readme-after", "readme-first", "root-members", "no-version"} & loads


@pytest.mark.slow
def test_reader_agrees_with_torch_2_5(archives, old_python):
    _check_agreement(_judge(old_python, list(archives.values())), archives)


def test_crc_less_checkpoint_scans_roundtrips_and_checks(pytester, tmp_path):
    """`set_crc32_options(False)` files load in torch; every path of ours reads them too."""
    path = tmp_path / "nocrc.pt"
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({"w": torch.ones(2)}, path)
    finally:
        torch.serialization.set_crc32_options(True)
    with pytest.raises(zipfile.BadZipFile, match="CRC"), zipfile.ZipFile(path) as zf:
        zf.read("nocrc/data.pkl")
    from pytest_ckptcompat.cli import main

    assert main(["scan", "--no-project-config", str(path)]) == 0
    pytester.makepyfile(
        """
        import torch

        def test_roundtrip(ckpt_compat):
            torch.serialization.set_crc32_options(False)
            try:
                ckpt_compat.roundtrip({"w": torch.ones(2)})
                ckpt_compat.check("nocrc", {"w": torch.ones(2)})
            finally:
                torch.serialization.set_crc32_options(True)
        """
    )
    pytester.runpytest_inprocess("--ckpt-compat-update").assert_outcomes(passed=1)
    pytester.runpytest_inprocess("--ckpt-compat").assert_outcomes(passed=1)


def test_member_limit_is_checked_on_the_header():
    data = _zip([("a/data.pkl", b"N." * 1000), ("a/version", b"3\n")], zipfile.ZIP_DEFLATED)
    archive = ZipArchive(data)
    entry = archive.locate(b"a/data.pkl")
    assert entry is not None
    with pytest.raises(ZipError, match="declares 2,000 bytes"):
        archive.read(entry, limit=1000)
    assert archive.read(entry) == b"N." * 1000


def test_a_stored_archive_inside_another_is_read_in_place():
    inner = _zip([("inner/data.pkl", _marker(7)), ("inner/version", b"3\n")])
    outer = _zip([*_saved(), ("archive/extra/inner.pt", inner)])
    ckpt = checkpoint_from_bytes(outer)
    nested = [b for b in ckpt.pickles if "!/" in b.member]
    assert [b.member for b in nested] == ["archive/extra/inner.pt!/inner/data.pkl"]
    assert bytes(nested[0].data) == _marker(7)


def test_unreadable_central_directory_is_one_clear_line(tmp_path):
    path = tmp_path / "cut.pt"
    path.write_bytes(_zip(_saved())[:-30])
    with pytest.raises(Exception, match=r"cut\.pt: corrupt or truncated zip archive \("):
        open_checkpoint(path)


def test_a_member_name_with_control_characters_stays_on_one_line(tmp_path):
    # The fuzzer's find: a central directory naming a member "x\nos\nsystem" whose data lies
    # past the end; the name comes from the file, the error must still be one line.
    data = bytearray(_zip([("a/data.pkl", _marker(1)), ("a/ev\nil\x1b[2J", b"x" * 64)]))
    header = data.rindex(b"PK\x01\x02")  # the named member's central directory entry
    struct.pack_into("<II", data, header + 20, 1 << 20, 1 << 20)  # sizes past the file's end
    path = tmp_path / "named.pt"
    path.write_bytes(bytes(data))
    from pytest_ckptcompat.scan.rules import TorchRules
    from pytest_ckptcompat.scan.scanner import scan_file

    result = scan_file(path, TorchRules.from_installed())
    assert result.error is not None
    assert "\n" not in result.error
    assert "\x1b" not in result.error
    assert "ev\\nil\\x1b[2J" in result.error
