"""Broken and mistaken inputs for `ckptcompat scan`, generated at test time.

`build_broken(folder)` writes each case and returns `(case, path)` pairs. For
every one the command must print exactly one line on stderr, naming the file
and the problem, and exit 2: no traceback, no MemoryError from a length
prefix of 2**63, no RecursionError from 100,000 nested MARKs, no hang on a
named pipe. `problem` is a fragment that line must contain.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _torch_save(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def truncated_zip(path: Path) -> None:
    raw = _torch_save({"w": list(range(1000))})
    path.write_bytes(raw[: len(raw) // 2])


def truncated_pickle(path: Path) -> None:
    raw = pickle.dumps({"w": list(range(1000)), "name": "x" * 100}, protocol=2)
    path.write_bytes(raw[: len(raw) // 2])


def truncated_data_pkl(path: Path) -> None:
    data = pickle.dumps({"w": list(range(1000))}, protocol=2)
    path.write_bytes(_zip([("archive/data.pkl", data[:-20]), ("archive/version", b"3\n")]))


def corrupt_deflate(path: Path) -> None:
    data = pickle.dumps({"w": list(range(1000))}, protocol=2)
    raw = bytearray(_zip([("archive/data.pkl", data)], zipfile.ZIP_DEFLATED))
    start = raw.index(b"archive/data.pkl") + len("archive/data.pkl")
    raw[start + 10 : start + 40] = b"\xff" * 30  # inside the deflate stream
    path.write_bytes(bytes(raw))


def lfs_pointer(path: Path) -> None:
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )


def safetensors(path: Path) -> None:
    # The format: u64 little-endian header size, a JSON header, then raw tensor bytes;
    # here the header declares 8 bytes of data and the file holds 4 (a cut download).
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": {}}
    ).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.0))


def onnx(path: Path) -> None:
    # A ModelProto laid out as torch.onnx writes it: ir_version (field 1),
    # producer_name (2) "pytorch", producer_version (3), graph (7), opset_import (8).
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    graph = field(2, b"main_graph")  # GraphProto.name
    opset = bytes([0x10, 17])  # OperatorSetIdProto.version = 17
    model = bytes([0x08, 8]) + field(2, b"pytorch") + field(3, b"2.13.0")
    path.write_bytes(model + field(7, graph) + field(8, opset))


def npz(path: Path) -> None:
    import numpy as np

    with open(path, "wb") as fh:
        np.savez(fh, a=np.ones(3), b=np.arange(4))


def npy(path: Path) -> None:
    import numpy as np

    with open(path, "wb") as fh:
        np.save(fh, np.ones(3))


def legacy_tar(path: Path) -> None:
    # torch < 0.4 wrote a tar of these four members; torch.load(weights_only=True)
    # refuses the format outright.
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "pickle": pickle.dumps({"w": 1}, protocol=2),
        "tensors": pickle.dumps(0, protocol=2),
        "storages": pickle.dumps(0, protocol=2),
    }
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def garbage(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def deep_marks_unterminated(path: Path) -> None:
    # 100,000 MARKs and a STOP with nothing to return.
    path.write_bytes(b"\x80\x02" + b"(" * 100_000 + b".")


def deep_lists_unterminated(path: Path) -> None:
    # 100,000 nested lists, never closed, in a torch zip's data.pkl.
    data = b"\x80\x02" + b"]" * 100_000 + b"a" * 50_000
    path.write_bytes(_zip([("archive/data.pkl", data), ("archive/version", b"3\n")]))


def huge_length(opcode: bytes, width: int, value: int, proto: int = 4) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        path.write_bytes(
            b"\x80" + bytes([proto]) + opcode + value.to_bytes(width, "little") + b"x."
        )

    return build


def huge_length_in_zip(path: Path) -> None:
    data = b"\x80\x04\x8e" + (2**63).to_bytes(8, "little") + b"x."
    path.write_bytes(_zip([("archive/data.pkl", data), ("archive/version", b"3\n")]))


def zip64_deflated(declared: int) -> Callable[[Path], None]:
    """A zip64 archive whose deflated data.pkl declares `declared` bytes uncompressed.

    What a zip bomb's header says; the data itself is a small pickle, so the
    test needs no gigabytes (both readers inflate at most the declared size).
    """

    def build(path: Path) -> None:
        data = pickle.dumps({"a": 1}, protocol=2)
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = deflate.compress(data) + deflate.flush()
        name, crc, out = b"archive/data.pkl", zlib.crc32(data), bytearray()
        local_extra = struct.pack("<HHQQ", 1, 16, declared, len(packed))
        out += struct.pack(
            "<4s2B4HL2L2H", b"PK\x03\x04", 45, 0, 0x800, 8, 0, 0x21, crc,
            0xFFFFFFFF, 0xFFFFFFFF, len(name), len(local_extra),
        )  # fmt: skip
        out += name + local_extra + packed
        cd_extra = struct.pack("<HHQQQ", 1, 24, declared, len(packed), 0)
        cd = struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 45, 3, 45, 0, 0x800, 8, 0, 0x21, crc,
            0xFFFFFFFF, 0xFFFFFFFF, len(name), len(cd_extra), 0, 0, 0, 0, 0xFFFFFFFF,
        ) + name + cd_extra  # fmt: skip
        cd_offset = len(out)
        out += cd
        record = len(out)
        out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(cd), cd_offset)
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, record, 1)
        out += struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
        )
        path.write_bytes(bytes(out))

    return build


def directory(path: Path) -> None:
    path.mkdir()


def missing(path: Path) -> None:
    pass


def fifo(path: Path) -> None:
    os.mkfifo(path)


@dataclass(frozen=True)
class Broken:
    """One broken input and a fragment of the one line the command must print."""

    id: str
    suffix: str
    build: Callable[[Path], None]
    problem: str


BROKEN: tuple[Broken, ...] = (
    Broken("empty", ".pt", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    Broken("truncated-zip", ".pt", truncated_zip, "corrupt or truncated zip archive"),
    Broken("truncated-pickle", ".pkl", truncated_pickle, "<pickle>: pickle data was truncated"),
    Broken(
        "truncated-data-pkl", ".pt", truncated_data_pkl,
        "archive/data.pkl: pickle data was truncated",
    ),
    Broken("corrupt-deflate", ".pt", corrupt_deflate, "archive/data.pkl"),
    Broken("lfs-pointer", ".pt", lfs_pointer, "a Git LFS pointer"),
    Broken("model", ".safetensors", safetensors, "invalid safetensors file: incomplete metadata"),
    Broken("model", ".onnx", onnx, "an ONNX model"),
    Broken("arrays", ".npz", npz, "an npz archive"),
    Broken("array", ".npy", npy, "a numpy .npy file"),
    Broken("legacy", ".tar", legacy_tar, "a legacy .tar checkpoint"),
    Broken("garbage", ".bin", garbage, "not a checkpoint"),
    Broken("deep-marks-unterminated", ".pkl", deep_marks_unterminated, "stack underflow"),
    Broken("deep-lists-unterminated", ".pt", deep_lists_unterminated, "truncated"),
    Broken("binunicode8-2e63", ".pkl", huge_length(b"\x8d", 8, 2**63), "truncated"),
    Broken("binbytes8-2e63", ".pkl", huge_length(b"\x8e", 8, 2**63), "truncated"),
    Broken("bytearray8-2e63", ".pkl", huge_length(b"\x96", 8, 2**63, 5), "truncated"),
    Broken("frame-2e63", ".pkl", huge_length(b"\x95", 8, 2**63), "a FRAME at byte 2 that"),
    Broken("binunicode-4gib", ".pkl", huge_length(b"X", 4, 2**32 - 1, 2), "truncated"),
    Broken("binbytes-4gib", ".pkl", huge_length(b"B", 4, 2**32 - 1, 3), "truncated"),
    Broken("long4-2gib", ".pkl", huge_length(b"\x8b", 4, 2**31 - 1, 2), "truncated"),
    Broken("binstring-negative", ".pkl", huge_length(b"T", 4, 2**32 - 1, 1), "negative"),
    Broken("binbytes8-in-zip", ".pt", huge_length_in_zip, "archive/data.pkl"),
    Broken(
        "zip64-size-2e64", ".pt", zip64_deflated(2**64 - 1),
        "declares 18,446,744,073,709,551,615 bytes",
    ),
    Broken("zip-bomb-header", ".pt", zip64_deflated(3 << 30), "refusing to inflate it"),
    Broken("directory", "", directory, "no checkpoint file in this directory (it is empty)"),
    Broken("missing", ".pt", missing, "no such file"),
    Broken("fifo", ".pt", fifo, "not a regular file (a named pipe)"),
)  # fmt: skip


def build_broken(folder: Path) -> list[tuple[Broken, Path]]:
    """Write every broken input into `folder` (the missing one is left missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for case in BROKEN:
        path = folder / f"{case.id}{case.suffix}"
        case.build(path)
        out.append((case, path))
    return out
