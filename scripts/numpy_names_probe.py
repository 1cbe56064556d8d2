"""Probe one installed numpy: which of the names pickles use exist, and what it writes.

    python numpy_names_probe.py OUT.json

Run by `scripts/numpy_names.py` with the python of a throwaway venv holding
one numpy release (standard library + numpy only). Writes:

- `names`: for each candidate `module.qualname` a pickle may hold, whether
  unpickling would find it here (resolved as `pickle.Unpickler.find_class`
  does: import the module, then walk the qualname);
- `dtype_classes`: for each dtype, the `module.qualname` of its class, which is
  what torch's BUILD check needs allowlisted (`numpy.dtypes.Float64DType`
  from 1.25, `numpy.dtype[float64]` before);
- `dtypes_module`: every `numpy.dtypes.*DType` class;
- `written`: the globals a protocol-2 pickle of each common object names.

Nothing is unpickled; names are only imported and looked up.
"""

from __future__ import annotations

import importlib
import json
import pickle
import pickletools
import platform
import sys
import warnings
from typing import Any

CANDIDATES = [
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random.mtrand.RandomState",
    "numpy.random._generator.Generator",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "numpy.random.bit_generator.BitGenerator",
    "numpy.ma.core._mareconstruct",
    "numpy.ma.core.MaskedArray",
]
DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble",
    "object", "S1", "U1", "V8", "M8[s]", "m8[s]",
]  # fmt: skip


def find(name: str) -> bool:
    """Would unpickling find `module.name`? As `pickle.Unpickler.find_class` does it."""
    module, qualname = name.rsplit(".", 1)
    try:
        obj: Any = importlib.import_module(module)
        for attr in qualname.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError):
        return False
    return True


def written(obj: Any) -> list[str]:
    data = pickle.dumps(obj, protocol=2)
    out = set()
    for op, arg, _pos in pickletools.genops(data):
        if op.name == "GLOBAL":
            out.add(str(arg).replace(" ", "."))
    return sorted(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    warnings.simplefilter("ignore")
    import numpy as np

    result: dict[str, Any] = {"numpy_version": np.__version__, "python": platform.python_version()}
    result["names"] = {name: find(name) for name in CANDIDATES}
    classes = {}
    for spec in DTYPES:
        cls = type(np.dtype(spec))
        classes[spec] = f"{cls.__module__}.{cls.__qualname__}"
    result["dtype_classes"] = classes
    try:
        dtypes = importlib.import_module("numpy.dtypes")
        result["dtypes_module"] = sorted(
            f"numpy.dtypes.{n}" for n in dir(dtypes) if n.endswith("DType")
        )
    except ImportError:
        result["dtypes_module"] = []
    samples: dict[str, Any] = {
        "ndarray": np.arange(3.0),
        "scalar": np.float64(1.5),
        "dtype": np.dtype(np.float32),
        "random_state_tuple": np.random.RandomState(0).get_state(),
        "RandomState": np.random.RandomState(0),
        "Generator": np.random.default_rng(0),
    }
    result["written"] = {key: written(obj) for key, obj in samples.items()}
    with open(argv[0], "w") as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
