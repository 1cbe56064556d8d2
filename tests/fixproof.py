"""Prove the printed fixes in any environment (run with this or the old torch's python).

    python tests/fixproof.py save DIR            # this environment's checkpoints -> DIR
    python tests/fixproof.py load SNIPPET FILE...  # apply SNIPPET, then torch.load each file
    python tests/fixproof.py plain FILE...         # torch.load each file, no allowlist at all

`save` writes the same objects the way every environment's torch and numpy
write them: each a plain-data global the advice covers (numpy scalars,
arrays and RNG state, argparse.Namespace, pathlib paths, set, complex, ...),
plus `changed.pt`, the same content after the "change what you save" advice.
`load` and `plain` print one JSON object: file -> error ("" when it loaded).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import pathlib
import sys
import warnings
from pathlib import Path


def objects() -> dict[str, object]:
    import numpy as np

    # Not a RandomState object: numpy 2 pickles it with its BitGenerator class,
    # which numpy 1's unpickler rejects whatever torch allows (numpy's own limit;
    # the advice is to save the state as plain values, which `changed` proves).
    return {
        "np_scalar": {"best": np.float64(1.5), "count": np.int64(3)},
        "np_arrays": {"f32": np.arange(4, dtype=np.float32), "u32": np.arange(3, dtype=np.uint32)},
        "np_rng": {"legacy": np.random.get_state()},
        "hparams": argparse.Namespace(lr=0.1, arch="mlp"),
        "paths": {"data": pathlib.PosixPath("data/train"), "pure": pathlib.PurePosixPath("a/b")},
        "builtins": {"tags": {"a", "b"}, "frozen": frozenset({1}), "z": complex(1, 2)},
        "containers": {
            "counts": collections.Counter("abca"),
            "od": collections.OrderedDict(a=1),
        },
        "time": {"when": datetime.datetime(2026, 1, 2, 3, 4, 5), "dt": datetime.timedelta(1)},
    }


def changed() -> dict[str, object]:
    """The same content after the printed "change what you save" advice."""
    import numpy as np

    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "np_scalar": {"best": float(np.float64(1.5)), "count": int(np.int64(3))},
        "np_rng": {
            "legacy": [name, key.tolist(), pos, has_gauss, gauss],
            # A Generator's state, as the advice says: a dict of numbers for PCG64.
            "generator": np.random.default_rng(0).bit_generator.state,
        },
        "hparams": vars(argparse.Namespace(lr=0.1, arch="mlp")),
        "paths": {"data": str(pathlib.PosixPath("data/train"))},
        "builtins": {"tags": sorted({"a", "b"}), "z": (1.0, 2.0)},
    }


def save(folder: Path) -> None:
    import numpy as np
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tag = f"torch{torch.__version__.split('+')[0]}-numpy{np.__version__}"
    for name, obj in objects().items():
        torch.save(obj, folder / f"{name}.{tag}.pt")
    torch.save(changed(), folder / f"changed.{tag}.pt")


def save_rng(folder: Path) -> None:
    """A legacy RandomState object, which loads only under the numpy major that wrote it."""
    import numpy as np
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tag = f"torch{torch.__version__.split('+')[0]}-numpy{np.__version__}"
    torch.save({"rng": np.random.RandomState(0)}, folder / f"rng.{tag}.pt")


def load(files: list[str], snippet: str | None) -> dict[str, str]:
    import torch

    if snippet:
        code = Path(snippet).read_text(encoding="utf-8")
        exec(compile(code, snippet, "exec"), {"__name__": "fix"})  # our printed snippet
    out = {}
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.load(path, weights_only=True)
                out[path] = ""
            except Exception as exc:
                out[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return out


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "save":
        save(Path(rest[0]))
    elif command == "save-rng":
        save_rng(Path(rest[0]))
    elif command == "load":
        print(json.dumps(load(rest[1:], rest[0])))
    else:
        print(json.dumps(load(rest, None)))
