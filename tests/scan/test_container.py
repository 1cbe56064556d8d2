"""`container.open_checkpoint`: containers, member names, and what torch reads of them.

Every archive below is checked against two oracles (`_agree`): zipfile's
bytes for each pickle member it can read, and the real
`torch.load(weights_only=True)`, which must succeed exactly when the scan says
loadable (tests/scan/test_ziparchive.py covers the reader's own edge cases).
"""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_ckptcompat.errors import UnreadableCheckpointError
from pytest_ckptcompat.scan.container import open_checkpoint
from pytest_ckptcompat.scan.rules import TorchRules
from pytest_ckptcompat.scan.scanner import scan_file


def _torch_loads(path: Path) -> bool:
    try:
        torch.load(path, weights_only=True)
    except Exception:
        return False
    return True


def _agree(path: Path) -> None:
    """Pickle bytes as zipfile reads them; loadable exactly when torch loads the file."""
    ckpt = open_checkpoint(path)
    with zipfile.ZipFile(path) as zf:
        for blob in ckpt.pickles:
            if "!/" not in blob.member:
                assert bytes(blob.data) == zf.read(blob.member), blob.member
    scan = scan_file(path, TorchRules.from_installed())
    assert scan.loadable == _torch_loads(path), scan.reasons()


def _members(path: Path) -> list[tuple[str, bool]]:
    return [(b.member, b.main) for b in open_checkpoint(path).pickles]


def _repack(
    src: Path,
    dst: Path,
    *,
    compression: int = zipfile.ZIP_STORED,
    rename=lambda name: name,
    extra: tuple[tuple[str, bytes], ...] = (),
    first: tuple[tuple[str, bytes], ...] = (),
) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for name, data in first:
            zout.writestr(name, data)
        for info in zin.infolist():
            zout.writestr(rename(info.filename), zin.read(info))
        for name, data in extra:
            zout.writestr(name, data)
    return dst


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.arange(4.0), "step": 3}, path)
    return path


# --- torch.save output ---------------------------------------------------------------


@pytest.mark.parametrize("stem", ["model", "my.model.v2", "checkpoint-epoch=3"])
def test_torch_save_prefix_is_the_file_stem(tmp_path: Path, stem: str) -> None:
    path = tmp_path / f"{stem}.pt"
    torch.save({"w": torch.ones(2)}, path)
    ckpt = open_checkpoint(path)
    assert ckpt.format == "torch-zip"
    assert _members(path) == [(f"{stem}/data.pkl", True)]
    assert ckpt.problems == []
    _agree(path)


def test_torch_save_to_a_buffer_uses_archive_prefix(tmp_path: Path) -> None:
    buf = io.BytesIO()
    torch.save([torch.zeros(3)], buf)
    path = tmp_path / "from_buffer.bin"
    path.write_bytes(buf.getvalue())
    assert _members(path) == [("archive/data.pkl", True)]
    _agree(path)


def test_main_pickle_bytes_are_the_member_bytes(saved: Path) -> None:
    (blob,) = open_checkpoint(saved).pickles
    with zipfile.ZipFile(saved) as zf:
        assert bytes(blob.data) == zf.read("model/data.pkl")
    assert blob.start == 0
    assert blob.facts is None


def test_many_members_and_zip64_end_record(tmp_path: Path) -> None:
    # torch always writes a zip64 end-of-central-directory record and locator.
    path = tmp_path / "many.pt"
    torch.save({f"t{i}": torch.full((2,), float(i)) for i in range(500)}, path)
    raw = path.read_bytes()
    assert b"PK\x06\x06" in raw[-200:]
    assert b"PK\x06\x07" in raw[-200:]
    assert _members(path) == [("many/data.pkl", True)]
    _agree(path)


def test_torch_save_without_crc32_is_readable(tmp_path: Path) -> None:
    # torch never checks CRCs on load; zipfile does. The fast reader follows torch.
    set_crc = getattr(torch.serialization, "set_crc32_options", None)
    if set_crc is None:
        pytest.skip("torch < 2.5 always writes CRC32")
    path = tmp_path / "nocrc.pt"
    set_crc(False)
    try:
        torch.save({"w": torch.ones(2)}, path)
    finally:
        set_crc(True)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("nocrc/data.pkl").CRC == 0
        with pytest.raises(zipfile.BadZipFile, match="CRC"):
            zf.read("nocrc/data.pkl")
    assert torch.load(path, weights_only=True)["w"].tolist() == [1.0, 1.0]
    ckpt = open_checkpoint(path)
    assert [(b.member, b.main) for b in ckpt.pickles] == [("nocrc/data.pkl", True)]
    assert ckpt.problems == []
    assert scan_file(path, TorchRules.from_installed()).loadable


# --- member names ----------------------------------------------------------------------


def test_upper_case_data_pkl_is_the_main_pickle(tmp_path: Path) -> None:
    # torch finds records case-insensitively; of two spellings, miniz's sorted
    # search decides which one it unpickles (the first here; test_ziparchive.py
    # checks the search against torch on many orders).
    path = tmp_path / "upper.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/DATA.PKL", pickle.dumps({"a": 1}, protocol=2))
        zf.writestr("archive/Data.pkl", pickle.dumps({"b": 2}, protocol=2))
        zf.writestr("archive/version", b"3\n")
    ckpt = open_checkpoint(path)
    assert ckpt.format == "torch-zip"
    assert _members(path) == [("archive/DATA.PKL", True), ("archive/Data.pkl", False)]
    assert ckpt.problems == []
    assert torch.load(path, weights_only=True) == {"a": 1}
    _agree(path)


def test_upper_case_data_pkl_prediction_matches_torch(tmp_path: Path) -> None:
    path = tmp_path / "upper.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/DATA.PKL", pickle.dumps({"a": 1}, protocol=2))
        zf.writestr("archive/version", b"3\n")
    assert open_checkpoint(path).problems == []
    _agree(path)


def test_non_ascii_member_names(tmp_path: Path) -> None:
    path = tmp_path / "utf8.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("données/data.pkl", pickle.dumps([1], protocol=2))
        zf.writestr("données/réglages.pkl", pickle.dumps([2], protocol=2))
    assert _members(path) == [("données/data.pkl", True), ("données/réglages.pkl", False)]
    _agree(path)


def test_prefix_comes_from_the_first_member(tmp_path: Path, saved: Path) -> None:
    # torch takes the archive folder from the first central-directory record.
    path = _repack(saved, tmp_path / "reordered.pt", first=(("other/version", b"3\n"),))
    ckpt = open_checkpoint(path)
    assert _members(path) == [("model/data.pkl", False)]
    assert ckpt.problems[0].startswith(
        "members outside the archive's folder other/: model/data.pkl, model/"
    )
    assert ckpt.problems[1] == (
        "no other/data.pkl in the archive (torch reads only that name, in any letter "
        "case; found model/data.pkl)"
    )
    _agree(path)
    with pytest.raises(RuntimeError, match="not in a subdirectory other/"):
        torch.load(path, weights_only=True)


def test_top_level_data_pkl_is_collected_but_torch_reads_no_root_member(tmp_path: Path) -> None:
    path = tmp_path / "flat.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.pkl", pickle.dumps([1, 2], protocol=2))
    assert _members(path) == [("data.pkl", False)]
    assert (
        open_checkpoint(path)
        .problems[0]
        .startswith("file in archive is not in a subdirectory: data.pkl")
    )
    _agree(path)


def test_two_pickles(tmp_path: Path, saved: Path) -> None:
    extra = pickle.dumps({"note": "x"}, protocol=2)
    path = _repack(saved, tmp_path / "two.pt", extra=(("model/extra.pkl", extra),))
    ckpt = open_checkpoint(path)
    assert ckpt.format == "torch-zip"
    assert _members(path) == [("model/data.pkl", True), ("model/extra.pkl", False)]
    assert bytes(ckpt.pickles[1].data) == extra
    assert ckpt.problems == []
    _agree(path)


def test_pkl_in_any_case_and_kelvin_sign(tmp_path: Path, saved: Path) -> None:
    # zipfile's rule is `name.lower().endswith(".pkl")`; "\u212a" (KELVIN SIGN) lowers to "k".
    blob = pickle.dumps(1, protocol=2)
    names = ("model/a.PKL", "model/b.Pkl", "model/c.p\u212al", "model/d.pkl.bak", "model/e_pkl")
    path = _repack(saved, tmp_path / "cases.pt", extra=tuple((n, blob) for n in names))
    # The last two are found by their first byte, like any pickle under another name.
    assert _members(path) == [
        ("model/data.pkl", True),
        ("model/a.PKL", False),
        ("model/b.Pkl", False),
        ("model/c.p\u212al", False),
        ("model/d.pkl.bak", False),
        ("model/e_pkl", False),
    ]
    _agree(path)


def test_pkl_in_an_entry_comment_is_not_a_member(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "comment.pt")
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("model/notes.txt")
        info.comment = b"see data.pkl and x.pkl"
        zf.writestr(info, b"hello")
    assert _members(path) == [("model/data.pkl", True)]
    _agree(path)


def test_archive_comment(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "archive_comment.pt")
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = b"written by a test"
    _agree(path)


# --- compression and zip64 ---------------------------------------------------------------


def test_deflated_members(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "deflated.pt", compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model/data.pkl")
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.compress_size < info.file_size
    ckpt = open_checkpoint(path)
    assert ckpt.format == "torch-zip"
    assert _members(path) == [("model/data.pkl", True)]
    with zipfile.ZipFile(saved) as zf:
        assert bytes(ckpt.pickles[0].data) == zf.read("model/data.pkl")
    _agree(path)


def test_force_zip64_local_headers(tmp_path: Path, saved: Path) -> None:
    path = tmp_path / "zip64_local.pt"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            with zout.open(info.filename, "w", force_zip64=True) as out:
                out.write(zin.read(info))
    assert _members(path) == [("model/data.pkl", True)]
    _agree(path)


def _zip64_archive(members: list[tuple[str, bytes]]) -> bytes:
    """A stored zip whose every size and offset lives in zip64 extra fields."""
    out, cd = bytearray(), bytearray()
    for name, data in members:
        offset, raw, crc = len(out), name.encode(), zlib.crc32(data)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack(
            "<4s2B4HL2L2H", b"PK\x03\x04", 45, 0, 0x800, 0, 0, 0x21, crc,
            0xFFFFFFFF, 0xFFFFFFFF, len(raw), len(local_extra),
        )  # fmt: skip
        out += raw + local_extra + data
        cd_extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        cd += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 45, 3, 45, 0, 0x800, 0, 0, 0x21, crc,
            0xFFFFFFFF, 0xFFFFFFFF, len(raw), len(cd_extra), 0, 0, 0, 0, 0xFFFFFFFF,
        )  # fmt: skip
        cd += raw + cd_extra
    cd_offset = len(out)
    out += cd
    record = len(out)
    n = len(members)
    out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(cd), cd_offset)
    out += struct.pack("<4sLQL", b"PK\x06\x07", 0, record, 1)
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def test_zip64_central_directory(tmp_path: Path) -> None:
    main = pickle.dumps({"a": [1, 2, 3]}, protocol=2)
    path = tmp_path / "zip64.pt"
    path.write_bytes(
        _zip64_archive(
            [("ckpt/version", b"3\n"), ("ckpt/data.pkl", main), ("ckpt/other.pkl", b"N.")]
        )
    )
    with zipfile.ZipFile(path) as zf:  # the oracle reads it
        assert zf.read("ckpt/data.pkl") == main
    assert _members(path) == [("ckpt/data.pkl", True), ("ckpt/other.pkl", False)]
    assert bytes(open_checkpoint(path).pickles[0].data) == main
    _agree(path)


# --- archives zipfile and torch read differently -------------------------------------


def test_signature_inside_a_name(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "sig.pt", extra=(("model/PK\x01\x02.bin", b"x"),))
    assert _members(path) == [("model/data.pkl", True)]
    _agree(path)


def test_end_record_signature_in_comment(tmp_path: Path, saved: Path) -> None:
    # Both miniz and zipfile take the last end-record signature for the record.
    path = _repack(saved, tmp_path / "eocd_in_comment.pt")
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = b"PK\x05\x06 looks like an end record"
    assert _error(path).startswith("corrupt or truncated zip archive (")
    assert not _torch_loads(path)


def test_bzip2_members_are_scanned_but_torch_refuses_them(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "bz2.pt", compression=zipfile.ZIP_BZIP2)
    ckpt = open_checkpoint(path)
    with zipfile.ZipFile(saved) as zf:
        assert bytes(ckpt.pickles[0].data) == zf.read("model/data.pkl")
    assert any("compression method 12" in p for p in ckpt.problems)
    _agree(path)


def _set_flag_bits(path: Path, member: str, bits: int) -> None:
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        cd_start = zf.start_dir
    struct.pack_into("<H", raw, info.header_offset + 6, info.flag_bits | bits)
    at = cd_start
    while True:  # find the central-directory entry of `member`
        n, m, k = struct.unpack_from("<HHH", raw, at + 28)
        if raw[at + 46 : at + 46 + n] == member.encode():
            break
        at += 46 + n + m + k
    struct.pack_into("<H", raw, at + 8, info.flag_bits | bits)
    path.write_bytes(bytes(raw))


def test_encrypted_member_is_unreadable(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "encrypted.pt")
    _set_flag_bits(path, "model/data.pkl", 0x1)
    scan = scan_file(path, TorchRules.from_installed())
    assert scan.error is not None
    assert scan.error.startswith(f"{path}: cannot read zip member model/data.pkl: encrypted")
    assert not _torch_loads(path)


def test_local_header_name_is_ignored_as_torch_ignores_it(tmp_path: Path, saved: Path) -> None:
    path = _repack(saved, tmp_path / "mismatch.pt")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x03\x04")  # the first local header is data.pkl's
    assert raw[at + 30 : at + 44] == b"model/data.pkl"
    raw[at + 30 : at + 44] = b"model/DATA.xyz"
    path.write_bytes(bytes(raw))
    with pytest.raises(zipfile.BadZipFile, match="differ"):  # zipfile refuses it...
        zipfile.ZipFile(path).read("model/data.pkl")
    assert torch.load(path, weights_only=True)["step"] == 3  # ...torch does not
    assert _members(path) == [("model/data.pkl", True)]
    assert scan_file(path, TorchRules.from_installed()).loadable


# --- other containers ----------------------------------------------------------------------


def test_torchscript(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    ckpt = open_checkpoint(path)
    assert ckpt.format == "torchscript"
    # The TorchScript source (`code/...linear.py`, "class Linear(Module): ...") starts
    # like a protocol 0 pickle but names nothing importable: not judged.
    assert scan_file(path, TorchRules.from_installed()).pickles == [
        "scripted/data.pkl",
        "scripted/code/__torch__/torch/nn/modules/linear.py.debug_pkl",
        "scripted/constants.pkl",
    ]
    assert ckpt.problems == []
    _agree(path)


def test_legacy_format(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    ckpt = open_checkpoint(path)
    assert ckpt.format == "torch-legacy"
    assert [(b.member, b.main) for b in ckpt.pickles] == [
        ("magic number", False),
        ("protocol version", False),
        ("sys info", False),
        ("data", True),
        ("storage keys", False),
    ]
    assert all(b.facts is not None for b in ckpt.pickles)
    starts = [b.start for b in ckpt.pickles]
    assert starts[0] == 0
    assert starts == sorted(starts)
    assert ckpt.problems == []


def test_plain_pickle(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    ckpt = open_checkpoint(path)
    assert ckpt.format == "pickle"
    assert _members(path) == [("<pickle>", True)]
    assert ckpt.problems == [
        "a plain pickle, not a torch.save file: torch.load fails with 'Invalid magic number'"
    ]


# --- unreadable files ------------------------------------------------------------------------


def _error(path: Path) -> str:
    with pytest.raises(UnreadableCheckpointError) as info:
        open_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message.split(": ", 1)[1]


def test_truncated_zip(tmp_path: Path, saved: Path) -> None:
    path = tmp_path / "truncated.pt"
    raw = saved.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert _error(path).startswith("corrupt or truncated zip archive (")


def test_truncated_central_directory(tmp_path: Path, saved: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes(saved.read_bytes()[:-30])
    assert _error(path).startswith("corrupt or truncated zip archive (")


def test_npz(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.ones(2), b=np.zeros(3))
    assert _error(path) == "an npz archive without any pickle, not a torch checkpoint"


def test_zip_without_pickles(tmp_path: Path) -> None:
    path = tmp_path / "docs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("docs/readme.txt", "hi")
    assert _error(path) == "a zip archive without any pickle, not a torch checkpoint"


def test_empty_zip(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    zipfile.ZipFile(path, "w").close()
    assert _error(path) == "an empty zip archive"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    assert _error(path) == "empty file (0 bytes)"


def test_directory(tmp_path: Path) -> None:
    assert _error(tmp_path) == "is a directory, not a checkpoint file"


def test_missing_path(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.pt") == "no such file"


# --- the small records torch reads besides the pickle --------------------------------

_SMALL_RECORDS = {
    "byteorder bzip2": ("/byteorder", None, zipfile.ZIP_BZIP2),
    "serialization_id bzip2": ("/.data/serialization_id", None, zipfile.ZIP_BZIP2),
    "format_version lzma": ("/.format_version", None, zipfile.ZIP_LZMA),
    "storage_alignment bzip2": ("/.storage_alignment", None, zipfile.ZIP_BZIP2),
    "storage_alignment not a number": ("/.storage_alignment", b"sixty-four", zipfile.ZIP_STORED),
    "storage_alignment padded": ("/.storage_alignment", b" 64\n", zipfile.ZIP_STORED),
    "an unread member bzip2": ("/extra.txt", b"hello", zipfile.ZIP_BZIP2),
}


def _small_record_file(path: Path, suffix: str, content: bytes | None, method: int) -> Path:
    """A torch 2.13 archive (it writes all four records) with one record changed or added."""
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        names = src.namelist()
        folder = names[0].split("/")[0]
        for name in names:
            item = zipfile.ZipInfo(name)
            data = src.read(name)
            if name.endswith(suffix):
                item.compress_type = method
                data = data if content is None else content
            dst.writestr(item, data)
        if not any(n.endswith(suffix) for n in names):
            item = zipfile.ZipInfo(folder + suffix)
            item.compress_type = method
            dst.writestr(item, content or b"")
    return path


@pytest.mark.parametrize("case", list(_SMALL_RECORDS))
def test_small_records_torch_reads_are_judged_as_torch_does(tmp_path, rules, case):
    if rules.release < (2, 7):
        pytest.skip("the matrix's older torch reads neither .format_version nor its alignment")
    path = _small_record_file(tmp_path / "small.pt", *_SMALL_RECORDS[case])
    scan = scan_file(path, rules)
    assert scan.loadable == _torch_loads(path), scan.reasons()
    assert scan.loadable == (case in ("storage_alignment padded", "an unread member bzip2"))


@pytest.mark.slow
def test_small_records_under_torch_2_5(tmp_path, old_python):
    """torch 2.5.1 reads byteorder and serialization_id, not the 2.7 layout records."""
    from torch_envs import real_loads

    from pytest_ckptcompat.scan.predict import predict_file

    paths = [
        str(_small_record_file(tmp_path / f"{i}.pt", *spec))
        for i, spec in enumerate(_SMALL_RECORDS.values())
    ]
    real = real_loads(old_python, paths)
    assert list(real.values()) == [False, False, True, True, True, True, True]
    predicted = {p: predict_file(p, ["2.5.1"]).scans["2.5.1"].loadable for p in paths}
    assert predicted == real
