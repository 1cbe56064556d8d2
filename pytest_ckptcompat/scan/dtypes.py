"""torch's dtypes as a pickle names them: storage classes, `torch.<dtype>` globals, item sizes.

Shared by the walks that keep values (`structure`) and the record checks
(`storages`), and cheap to import: the scan loads it on every run.
"""

from __future__ import annotations

from typing import Final

#: torch's legacy storage classes (what `torch.save` names for the common dtypes).
STORAGE_DTYPES: Final[dict[str, str]] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "BFloat16Storage": "bfloat16", "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64", "QInt8Storage": "qint8", "QInt32Storage": "qint32",
    "QUInt8Storage": "quint8", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
    "UntypedStorage": "uint8",
}  # fmt: skip
ITEMSIZE: Final[dict[str, int]] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
    "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex128": 16, "complex64": 8,
    "complex32": 4, "qint8": 1, "qint32": 4, "quint8": 1, "quint4x2": 1, "quint2x4": 1,
    "uint16": 2, "uint32": 4, "uint64": 8, "float8_e5m2": 1, "float8_e4m3fn": 1,
    "float8_e5m2fnuz": 1, "float8_e4m3fnuz": 1, "float8_e8m0fnu": 1, "float4_e2m1fn_x2": 1,
    "bits8": 1, "bits16": 2, "bits1x8": 1, "bits2x4": 1, "bits4x2": 1,
}  # fmt: skip
# torch.dtype aliases as `torch.<name>` globals may spell them.
DTYPE_ALIASES: Final[dict[str, str]] = {
    "float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
    "short": "int16", "cfloat": "complex64", "cdouble": "complex128", "chalf": "complex32",
}  # fmt: skip


def storage_dtype(type_name: str) -> str | None:
    """`float32` for the storage class `torch.FloatStorage` (any module prefix); None if unknown."""
    return STORAGE_DTYPES.get(type_name.rpartition(".")[2])


def dtype_itemsize(dtype: str | None) -> int | None:
    """Bytes per element of a torch dtype's name, None when unknown."""
    return ITEMSIZE.get(dtype) if dtype else None


def torch_dtype_name(global_name: str) -> str | None:
    """`float32` for `torch.float32` or `torch.float` (a dtype global); None for anything else."""
    if not global_name.startswith("torch."):
        return None
    name = global_name[6:]
    name = DTYPE_ALIASES.get(name, name)
    return name if name in ITEMSIZE else None
