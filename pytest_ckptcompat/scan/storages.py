"""The records torch reads for a checkpoint's tensors: present, readable, the size declared.

`torch.load` of a zip checkpoint reads each storage named by a persistent id,
`('storage', type, key, location, numel)`, from the record `<folder>/data/<key>`,
then rebuilds each tensor on it with `set_(storage, offset, shape, stride)`. What
the pickle declares and what the archive holds must agree, or the load fails:

- the record must exist (miniz looks it up as `ziparchive.ZipArchive.locate` does);
- it must be stored or deflated (miniz reads no other compression method);
- since torch 2.10 it must hold exactly `numel` times the item size of the
  storage's dtype; before, a shorter record was read past its end (the tensor
  holds memory the file never gave it), a longer one was cut;
- a tensor must lie inside its storage (`set_` refuses to grow a storage that
  is not resizable: "Trying to resize storage that is not resizable").

Checked against the real `torch.load` of torch 2.4.1, 2.5.1, 2.13 and 2.15
(tests/scan/test_storage_records.py). This is the one place these rules live:
`scan` judges with them, `show` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter, le, mul
from typing import Final, cast

from . import releases
from .dtypes import dtype_itemsize, storage_dtype, torch_dtype_name
from .releases import Release
from .ziparchive import ENCRYPTED, TORCH_METHODS, TORCH_READABLE, ZipArchive, torch_refusal

#: How many problems of one kind are spelled out; the rest are counted.
SHOWN: Final = 3


@dataclass(frozen=True)
class RecordProblem:
    """Why torch fails to read a checkpoint's tensors, from release `since` on.

    `before` says what the releases before `since` do instead (they load it).
    """

    message: str
    since: Release = (0, 0)
    before: str | None = None


def storage_itemsize(type_name: str) -> int | None:
    """Bytes per element of a storage class (`torch.FloatStorage`: 4); None when unknown."""
    return dtype_itemsize(storage_dtype(type_name))


def tensor_extent(
    shape: tuple[int, ...], stride: tuple[int, ...], offset: int, itemsize: int = 1
) -> int | None:
    """How much of its storage a tensor reaches: `offset + its last element + 1`, x `itemsize`.

    None for a geometry `set_` refuses on its own (a negative size or stride,
    shape and stride of different lengths); 0 for an empty tensor.
    """
    if len(shape) != len(stride) or offset < 0 or any(d < 0 for d in shape):
        return None
    if any(d == 0 for d in shape):
        return 0
    if any(s < 0 for s in stride):
        return None
    last = offset + sum((d - 1) * s for d, s in zip(shape, stride, strict=True))
    return (last + 1) * itemsize


def record_problems(
    archive: ZipArchive, prefix: bytes, storages: Mapping[str, tuple[str, int]]
) -> list[RecordProblem]:
    """What is wrong with the `data/<key>` records of `storages` (key -> (type, numel))."""
    if not storages or _all_records_fine(archive, prefix + b"/data/", storages):
        return []
    index = archive.name_index()
    shown = prefix.decode("utf-8", "replace") + "/data/"
    missing: list[str] = []
    unreadable: list[str] = []
    short: list[str] = []
    long: list[str] = []
    for key, (type_name, numel) in storages.items():
        name = prefix + b"/data/" + key.encode("utf-8", "surrogatepass")
        at = index.get(name.lower())  # miniz ignores the case of ASCII letters, as bytes.lower
        entry = None if at is None else archive.entries[at]
        if entry is None:
            missing.append(key)
            continue
        if why := torch_refusal(entry):
            unreadable.append(f"{shown}{key} ({why})")
            continue
        itemsize = storage_itemsize(type_name)
        if itemsize is None or numel < 0:
            continue  # a storage class torch does not know fails as a global, not here
        want = numel * itemsize
        if entry.size < want:
            short.append(f"{shown}{key} holds {entry.size:,} bytes, its storage {want:,}")
        elif entry.size > want:
            long.append(f"{shown}{key} holds {entry.size:,} bytes, its storage {want:,}")
    out = []
    if missing:
        out.append(
            RecordProblem(
                f"storage {missing[0]}: no {shown}{missing[0]} record in the archive "
                "(torch.load fails)"
                if len(missing) == 1
                else f"storages {_listed(missing)}: no {shown}<key> record in the archive "
                "(torch.load fails)"
            )
        )
    if unreadable:
        out.append(RecordProblem(f"{_listed(unreadable)}: {TORCH_READABLE} (torch.load fails)"))
    if short:
        out.append(
            RecordProblem(
                f"{_listed(short)}: shorter than the pickle declares (torch.load fails "
                "since torch 2.10)",
                releases.RECORD_SIZE_CHECKED,
                f"{_listed(short)}: shorter than the pickle declares; this torch loads it "
                "anyway, and the tensor reads memory past the record's end (torch >= 2.10 "
                "refuses the file)",
            )
        )
    if long:
        out.append(
            RecordProblem(
                f"{_listed(long)}: longer than the pickle declares (torch.load fails since "
                "torch 2.10)",
                releases.RECORD_SIZE_CHECKED,
                None,  # older releases ignore the extra bytes
            )
        )
    return out


def extent_problems(
    storages: Mapping[str, tuple[str, int]],
    tensors: Sequence[tuple[str, int, tuple[int, ...], tuple[int, ...], str | None]],
) -> list[RecordProblem]:
    """Tensors that reach past the end of their storage, or that `set_` refuses outright.

    Each tensor is `(key, offset, shape, stride, dtype)`; `dtype` (a
    `torch.<dtype>` global) is given for a `_rebuild_tensor_v3`, whose storage
    is counted in bytes.
    """
    if _all_tensors_fit(storages, tensors):
        return []
    bad: list[str] = []
    for key, offset, shape, stride, dtype in tensors:
        storage = storages.get(key)
        if storage is None:
            continue  # no storage read for it: reported as such, not here
        type_name, numel = storage
        itemsize = 1
        if dtype is not None:
            found = dtype_itemsize(torch_dtype_name(dtype) or dtype)
            if found is None:
                continue
            itemsize = found
        elif storage_itemsize(type_name) is None:
            continue
        need = tensor_extent(shape, stride, offset, itemsize)
        if need is None:
            bad.append(
                f"a tensor of shape {list(shape)}, stride {list(stride)} and offset {offset} "
                f"on storage {key}"
            )
        elif need > numel:
            unit = "bytes" if dtype is not None else "elements"
            bad.append(
                f"a tensor of shape {list(shape)} at offset {offset} needs {need:,} {unit} of "
                f"storage {key}, which holds {numel:,}"
            )
    if not bad:
        return []
    return [RecordProblem(f"{_listed(bad)} (torch.load fails: set_ cannot rebuild it)")]


#: The only locations torch restores on a machine with nothing but a CPU (exact
#: tags: `cpu:0` and `CPU` fail). Measured on torch 2.13.0+cpu: `cuda`, `xpu`,
#: `hpu`, `mtia` fail for want of the device, `mps` and `privateuse1` and any other
#: tag for want of a backend that restores it.
CPU_LOCATIONS: Final = frozenset({"cpu", "meta"})


def location_problem(locations: Iterable[str], cpu_only: bool) -> tuple[str, str]:
    """What the storages' locations mean for torch.load: (obstacle, note), either empty.

    torch puts each storage on the device its id names (without `map_location`).
    A CPU build of torch (`+cpu`) restores only `CPU_LOCATIONS`: anything else is
    an obstacle. Any other build restores a device where the machine has it: a note.
    """
    others = sorted(set(locations) - CPU_LOCATIONS)
    if not others:
        return "", ""
    shown = ", ".join(others[:SHOWN]) + (
        f" and {len(others) - SHOWN} more" if len(others) > SHOWN else ""
    )
    if cpu_only:
        return (
            f"storages saved on {shown}: a CPU build of torch restores only cpu and meta "
            'storages (torch.load fails; map_location="cpu" loads them)',
            "",
        )
    return (
        "",
        f"storages saved on {shown}: torch.load puts them there, and fails on a machine "
        'without that device or its backend; map_location="cpu" loads them anywhere',
    )


def _all_tensors_fit(
    storages: Mapping[str, tuple[str, int]],
    tensors: Sequence[tuple[str, int, tuple[int, ...], tuple[int, ...], str | None]],
) -> bool:
    """True when every tensor of a v2 record lies inside its storage (C maps, as above).

    A checkpoint of 100,000 tensors has a handful of distinct geometries:
    each is measured once. Anything else (a v3 tensor, an unknown storage
    class or key, a geometry `set_` refuses) sends the caller to its loop.
    """
    keys = list(map(itemgetter(0), tensors))
    if not storages.keys() >= set(keys):
        return False
    geometries = list(map(itemgetter(1, 2, 3, 4), tensors))
    need: dict[tuple[object, ...], int] = {}
    for offset, shape, stride, dtype in set(geometries):
        extent = None if dtype is not None else tensor_extent(shape, stride, offset)
        if extent is None:
            return False
        need[offset, shape, stride, dtype] = extent
    held = map(storages.__getitem__, keys)
    if None in {storage_itemsize(t) for t in set(map(itemgetter(0), storages.values()))}:
        return False
    return all(map(le, map(need.__getitem__, geometries), map(itemgetter(1), held)))


def _all_records_fine(
    archive: ZipArchive, folder: bytes, storages: Mapping[str, tuple[str, int]]
) -> bool:
    """True when every storage's record exists, is readable and is exactly its size.

    The answer for a checkpoint of 100,000 storages in a few milliseconds: each
    step maps a C function over all of them (no Python per storage). False
    sends the caller to the loop that says what is wrong.
    """
    index = archive.name_index()
    types = set(map(itemgetter(0), storages.values()))
    sizes_of = {t: storage_itemsize(t) for t in types}
    if None in sizes_of.values():
        return False
    try:  # a key that is no UTF-8 (a lone surrogate) is left to the loop
        names = list(map(folder.lower().__add__, map(bytes.lower, map(str.encode, storages))))
    except UnicodeEncodeError:
        return False
    found = list(map(index.get, names))
    if None in found:
        return False
    positions = cast(list[int], found)
    if not set(map(archive.column("method").__getitem__, positions)) <= TORCH_METHODS:
        return False
    if any(f & ENCRYPTED for f in set(map(archive.column("flags").__getitem__, positions))):
        return False
    values = storages.values()
    want = map(
        mul, map(itemgetter(1), values), map(sizes_of.__getitem__, map(itemgetter(0), values))
    )
    return list(want) == list(map(archive.column("size").__getitem__, positions))


def _listed(items: list[str]) -> str:
    head = ", ".join(items[:SHOWN])
    return head if len(items) <= SHOWN else f"{head} and {len(items) - SHOWN:,} more"
