"""The torch releases that changed what `weights_only=True` does: one table, one place.

Each constant is the first `(major, minor)` release with the behaviour; code
compares `release >= CONSTANT` and never spells a version itself. Facts come
from the torch sources and were checked against real wheels (see
../shared/research/torch-weights-only-history.md and tests/scan/).
"""

from __future__ import annotations

import re
from typing import Final, Literal

Release = tuple[int, int]

#: `torch.serialization.add_safe_globals` (the user allowlist) exists.
USER_ALLOWLIST: Final[Release] = (2, 4)
#: torch maps python-2 names (`__builtin__.set`) for protocol 2 pickles...
PY2_NAMES_PROTOCOL_2: Final[Release] = (2, 4)
#: ...and for every protocol.
PY2_NAMES_EVERY_PROTOCOL: Final[Release] = (2, 6)
#: `torch.serialization.safe_globals(...)`, the context manager, exists.
SAFE_GLOBALS_CONTEXT: Final[Release] = (2, 5)
#: `add_safe_globals([(obj, "module.name")])`: an entry keyed by the name given.
TUPLE_FORM: Final[Release] = (2, 6)
#: `torch.load(f)` without `weights_only` means `weights_only=True`.
WEIGHTS_ONLY_DEFAULT: Final[Release] = (2, 6)
#: BUILD and NEWOBJ accept default-allowed types (before: user-allowlisted ones only).
BUILD_DEFAULT_ALLOWED: Final[Release] = (2, 6)
#: `torch.load(weights_only=True)` refuses a TorchScript archive (before: torch.jit.load).
TORCHSCRIPT_REFUSED: Final[Release] = (2, 6)
#: An allowlisted object is keyed by `__module__.__qualname__` (before: `__name__`).
QUALNAME_KEYS: Final[Release] = (2, 7)
#: torch.load refuses an archive whose `byteorder` record is neither `little` nor `big`.
BYTEORDER_CHECKED: Final[Release] = (2, 1)
#: The only release whose unpickler appends to an allowlisted list subclass.
LIST_SUBCLASS_APPENDS: Final[Release] = (2, 14)
#: torch.load reads `.data/serialization_id` (C++ `PyTorchStreamReader::init`).
SERIALIZATION_ID_READ: Final[Release] = (2, 1)
#: torch.load reads `.format_version` and `.storage_alignment` (an int) when present.
STORAGE_LAYOUT_READ: Final[Release] = (2, 7)
#: A storage's `data/<key>` record must hold exactly its numel times its item size
#: (`get_storage_from_record`; before, a short record was read past its end).
RECORD_SIZE_CHECKED: Final[Release] = (2, 10)


def py2_names(release: Release) -> Literal["never", "protocol-2", "every"]:
    """Which pickles `release` maps python-2 names in."""
    if release >= PY2_NAMES_EVERY_PROTOCOL:
        return "every"
    return "protocol-2" if release >= PY2_NAMES_PROTOCOL_2 else "never"


def version_key(version: str) -> tuple[int, int, int]:
    """`(2, 5, 1)` for `2.5.1+cu124`, `(2, 6, 0)` for `2.6`: the order of releases, to sort by.

    The digits of the public version (before `+`), the first three, missing ones 0.
    """
    digits = [int(p) for p in re.findall(r"\d+", version.split("+", 1)[0])[:3]]
    major, minor, patch = [*digits, 0, 0, 0][:3]
    return major, minor, patch


def release_of(version: str) -> Release:
    """`(2, 5)` for `2.5.1+cu124`; `(0, 0)` for a version that does not parse."""
    parts = version.split("+")[0].split(".")[:2]
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)
    return major, minor
