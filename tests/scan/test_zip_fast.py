"""The zip reader's fast paths decide exactly what its per-entry loop decides.

`ZipArchive` reads a big central directory in whole-column passes
(`_Directory.read`: runs of same-length names, else a split at the entry
signatures) and answers name questions on all names at once (`_Names`); the
loop (`ZipArchive._entries`) and the per-entry code of `container` are the
reference. Every archive here is read four ways, which must agree on every
entry, refusal, error, located member, layout problem and pickle found:

- `runs`: the default; `split`: runs disabled; `loop`: the column passes
  disabled; `plain`: no name passes either (the code as it was before them).

The archives are the ones the fast paths could get wrong: names holding the
entry signature or a newline, extra fields and comments, zip64 values, a
disk number, masked headers, sizes that disagree, data past the end, letter
case and repeated names, and torch.save's own layout at 100,000 members.
"""

from __future__ import annotations

import io
import random
import struct
import warnings
import zipfile
from collections.abc import Callable
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ckptcompat.errors import UnreadableCheckpointError
from pytest_ckptcompat.scan import container, ziparchive
from pytest_ckptcompat.scan.container import checkpoint_from_bytes, zip_layout
from pytest_ckptcompat.scan.ziparchive import ZipArchive, ZipError

MODES = ("runs", "split", "loop", "plain")


@contextmanager
def mode(name: str):
    """Read archives as `name` says (see the module doc)."""
    saved = (ziparchive._Runs.find, ziparchive._Directory.read, ZipArchive.names)
    try:
        if name in ("split", "loop", "plain"):
            ziparchive._Runs.find = classmethod(lambda cls, cd, total: None)  # type: ignore[assignment]
        if name in ("loop", "plain"):
            ziparchive._Directory.read = classmethod(lambda cls, cd, total, size: None)  # type: ignore[assignment]
        if name == "plain":
            ZipArchive.names = lambda self: None  # type: ignore[method-assign]
        yield
    finally:
        ziparchive._Runs.find, ziparchive._Directory.read, ZipArchive.names = saved  # type: ignore[method-assign]


def read_all_ways(data: bytes) -> dict[str, object]:
    """What each mode makes of `data`: entries, refusals, lookups, layout, pickles (or an error)."""
    out = {}
    for name in MODES:
        with mode(name):
            out[name] = _reading(data)
    return out


def _reading(data: bytes) -> object:
    try:
        archive = ZipArchive(data)
    except ZipError as exc:
        return ("error", str(exc))
    entries = list(archive.entries)
    names = {e.raw for e in entries} | {e.raw.upper() for e in entries[:50]}
    located = {raw: archive.locate(raw) for raw in sorted(names)}
    try:
        ckpt = checkpoint_from_bytes(data, "x.pt")
        found = (
            ckpt.format,
            ckpt.problems,
            ckpt.errors,
            [(b.member, b.main, bytes(b.data), b.optional) for b in ckpt.pickles],
        )
    except UnreadableCheckpointError as exc:
        found = ("unreadable", str(exc))
    layout = zip_layout(archive) if entries else None
    return entries, archive.refusals, located, layout, found


def assert_same(data: bytes, *, fast: bool | None = None) -> dict[str, object]:
    seen = read_all_ways(data)
    for name in MODES[1:]:
        assert seen[name] == seen["runs"], f"{name} differs from runs"
    if fast is not None:
        archive = ZipArchive(data)
        assert isinstance(archive.entries, ziparchive._Directory) is fast
    return seen


# --- building archives --------------------------------------------------------------------


def _zip(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_STORED
) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as zf:
        warnings.simplefilter("ignore")  # duplicate names
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def torch_like(count: int, prefix: str = "archive", main: bytes = b"\x80\x02}q\x00.") -> list:
    return [
        (f"{prefix}/data.pkl", main),
        (f"{prefix}/byteorder", b"little"),
        *((f"{prefix}/data/{i}", struct.pack("<f", i)) for i in range(count)),
        (f"{prefix}/version", b"3\n"),
        (f"{prefix}/.data/serialization_id", b"1234567890"),
    ]


def _central(data: bytes) -> list[int]:
    """The offset of every central-directory header (walked as the loop walks them)."""
    eocd = data.rindex(b"PK\x05\x06")
    total, _, cd = struct.unpack_from("<HLL", data, eocd + 10)
    out, pos = [], cd
    for _ in range(total):
        out.append(pos)
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + n + m + k
    return out


def patch(data: bytes, entry: int, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one field of central-directory entry `entry` (`offset` in its 46-byte header)."""
    out = bytearray(data)
    struct.pack_into(fmt, out, _central(data)[entry] + offset, value)
    return bytes(out)


# --- the cases ------------------------------------------------------------------------------


def test_torch_layout_takes_the_runs_path():
    data = _zip(torch_like(300))
    seen = assert_same(data, fast=True)
    _, refusals, _, layout, found = seen["runs"]  # type: ignore[misc]
    assert not refusals
    assert layout.main.raw == b"archive/data.pkl"
    assert found[0] == "torch-zip"
    assert [p[:2] for p in found[3]] == [("archive/data.pkl", True)]


def test_100000_members_read_as_the_loop_reads_them():
    data = _zip(torch_like(100_000, main=b"\x80\x02]q\x00."))
    archive = ZipArchive(data)
    assert isinstance(archive.entries, ziparchive._Directory)
    with mode("loop"):
        loop = ZipArchive(data)
    assert list(archive.entries) == list(loop.entries)
    assert archive.locate(b"archive/version") == loop.locate(b"archive/version")
    assert archive.locate(b"ARCHIVE/data/99999").raw == b"archive/data/99999"
    pickles = container._zip_pickles(archive, "", 0, zip_layout(archive), [])
    assert [(b.member, b.main) for b in pickles] == [("archive/data.pkl", True)]


def _with(*extra: tuple[str | zipfile.ZipInfo, bytes], count: int = 80) -> bytes:
    return _zip([*torch_like(count), *extra])


UNUSUAL: dict[str, Callable[[], bytes]] = {
    "signature in a name": lambda: _with(("archive/xPK\x01\x02y", b"1")),
    "newline in a name": lambda: _with(("archive/a\nb.pkl", b"N.")),
    "comment": lambda: _zip(
        [*torch_like(80)[:-1], (_info("archive/version", comment=b"c"), b"3\n")]
    ),
    "extra field": lambda: _with((_info("archive/x.pkl", extra=b"\x99\x99\x01\x00z"), b"N.")),
    "deflated": lambda: _zip(torch_like(80), zipfile.ZIP_DEFLATED),
    "mixed name lengths": lambda: _zip(_shuffled(torch_like(200))),
    "many runs": lambda: _zip([(f"a/{'x' * (i % 70)}{i}", b"1") for i in range(300)]),
    "repeated data.pkl": lambda: _with(("archive/DATA.pkl", b"\x80\x02K\x01.")),
    "outside the folder": lambda: _with(("other/readme", b"hi")),
    "root members": lambda: _zip([(n.split("/", 1)[1], d) for n, d in torch_like(80)]),
    "torchscript": lambda: _with(("archive/constants.pkl", b"\x80\x02).")),
    "npz": lambda: _zip([(f"a{i}.npy", b"\x93NUMPY") for i in range(70)]),
    "kelvin sign": lambda: _with(("archive/x.p\u212al", b"N.")),
    "pickle under another name": lambda: _with(("archive/notes.txt", b"\x80\x02N.")),
    "folder entries": lambda: _zip([("archive/", b""), *torch_like(80), ("archive/data/", b"")]),
    "nested archive": lambda: _with(("archive/extra/inner.pt", _zip(torch_like(3, "inner")))),
    "record-like names elsewhere": lambda: _with(("x/data/7", b"\x80\x02N."), ("/version", b"N.")),
    # Inside a run of torch's numbered records (one name length, one stride), names the
    # column checks must not pass over: a letter among the digits, another folder of the
    # same length, a lowercase twin of data.pkl; and runs split by a longer name.
    "not a number in a numbered run": lambda: _zip(
        _replace(torch_like(300), "archive/data/150", ("archive/data/1x0", b"\x80\x02N."))
    ),
    "not a number last in a numbered run": lambda: _zip(
        _replace(torch_like(300), "archive/data/250", ("archive/data/25x", b"\x80\x02N."))
    ),
    "not a number first in a numbered run": lambda: _zip(
        _replace(torch_like(300), "archive/data/150", ("archive/data/x50", b"\x80\x02N."))
    ),
    "another folder inside a run": lambda: _zip(
        _replace(torch_like(300), "archive/data/151", ("archivz/data/151", b"\x80\x02N."))
    ),
    "another folder by its first letter": lambda: _zip(
        _replace(torch_like(300), "archive/data/152", ("xrchive/data/152", b"\x80\x02N."))
    ),
    "same-length twin of the main pickle": lambda: _zip(
        [*torch_like(300)[:100], ("ARCHIVE/DATA.PKL", b"\x80\x02K\x07."), *torch_like(300)[100:]]
    ),
    "runs split by long names": lambda: _zip(
        [
            *torch_like(120)[:60],
            ("archive/" + "y" * 40 + ".pkl", b"N."),
            *torch_like(120)[60:],
        ]
    ),
}


def _replace(entries: list, name: str, new: tuple[str, bytes]) -> list:
    return [new if n == name else (n, d) for n, d in entries]


@pytest.mark.parametrize("what", UNUSUAL)
def test_unusual_archives_agree(what):
    assert_same(UNUSUAL[what]())


@pytest.mark.parametrize(
    ("what", "offset", "fmt", "value"),
    [
        ("disk number 1", 34, "<H", 1),
        ("disk number 2", 34, "<H", 2),
        ("masked local header", 8, "<H", 0x2008),
        ("encrypted", 8, "<H", 0x0801),
        ("stored sizes disagree", 24, "<L", 9),
        ("compressed 0", 20, "<L", 0),
        ("zip64 sentinel, no extra", 20, "<L", 0xFFFFFFFF),
        ("offset past the end", 42, "<L", 10**8),
        ("size past the end", 20, "<L", 10**8),
        ("name length off by one", 28, "<H", 13),
        ("not a signature", 0, "<L", 0x02014B51),
        ("extra length without extra", 30, "<H", 4),
        ("comment length without comment", 32, "<H", 4),
    ],
)
@pytest.mark.parametrize("entry", [0, 5, -1])
def test_patched_headers_agree(what, offset, fmt, value, entry):
    data = _zip(torch_like(100))
    index = entry % len(_central(data))
    assert_same(patch(data, index, offset, fmt, value))


def test_bytes_after_the_last_entry_agree():
    data = bytearray(_zip(torch_like(100)))
    eocd = data.rindex(b"PK\x05\x06")
    size = struct.unpack_from("<L", data, eocd + 12)[0]
    struct.pack_into("<L", data, eocd + 12, size - 3)  # the last entry overruns
    assert_same(bytes(data))
    data2 = bytearray(_zip(torch_like(100)))
    data2[eocd:eocd] = b"XYZ"  # three stray bytes after the directory, counted in it
    struct.pack_into("<L", data2, eocd + 3 + 12, size + 3)
    assert_same(bytes(data2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(
        st.text(alphabet="abcD/._-0123456789PK\x01\x02\u212a\n", min_size=1, max_size=24),
        min_size=60,
        max_size=160,
    ),
    deflate=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_random_archives_agree(names, deflate, seed):
    rng = random.Random(seed)
    entries = [
        (n, rng.choice([b"", b"N.", b"\x80\x02K\x01.", b"x" * rng.randrange(50)])) for n in names
    ]
    if rng.random() < 0.5:
        entries = [*torch_like(rng.randrange(60, 120)), *entries]
        rng.shuffle(entries)
    assert_same(_zip(entries, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED))


# --- helpers ---------------------------------------------------------------------------------


def _info(name: str, *, comment: bytes = b"", extra: bytes = b"") -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.comment, info.extra = comment, extra
    return info


def _shuffled(entries: list, seed: int = 3) -> list:
    rng = random.Random(seed)
    head, rest = entries[:1], entries[1:]
    rng.shuffle(rest)
    return head + rest


def test_mode_switch_really_switches():
    data = _zip(torch_like(100))
    kinds: dict[str, bool] = {}
    for name in MODES:
        with mode(name):
            archive = ZipArchive(data)
            kinds[name] = isinstance(archive.entries, ziparchive._Directory)
    assert kinds == {"runs": True, "split": True, "loop": False, "plain": False}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=5).map(lambda b: b.replace(b"\n", b"")), max_size=40))
def test_a_names_position_is_the_count_of_frames_before_it(names):
    # Looked up once (a bisection), not counted from the start for every member: the
    # count was quadratic on archives of many differently named members.
    text = ziparchive._Names.of(names)
    for offset in range(len(text.text) + 1):
        assert text.position(offset) == text.text.count(b"\n\n", 0, offset)
