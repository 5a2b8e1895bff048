"""Triton datatypes and their numpy / TensorFlow names."""

from __future__ import annotations

#: Triton short name -> (numpy name, TensorFlow name)
DATATYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("bool", "bool"),
    "UINT8": ("uint8", "uint8"),
    "UINT16": ("uint16", "uint16"),
    "UINT32": ("uint32", "uint32"),
    "UINT64": ("uint64", "uint64"),
    "INT8": ("int8", "int8"),
    "INT16": ("int16", "int16"),
    "INT32": ("int32", "int32"),
    "INT64": ("int64", "int64"),
    "FP16": ("float16", "float16"),
    "FP32": ("float32", "float32"),
    "FP64": ("float64", "float64"),
    "BF16": ("bfloat16", "bfloat16"),
    "STRING": ("object", "string"),
}

_ALIASES: dict[str, str] = {}
for _short, (_np, _tf) in DATATYPES.items():
    _ALIASES[_short.lower()] = _short
    _ALIASES[f"type_{_short.lower()}"] = _short
    _ALIASES[_np] = _short
    _ALIASES[_tf] = _short
_ALIASES.update({"bytes": "STRING", "str": "STRING", "half": "FP16", "float": "FP32", "double": "FP64"})


def normalize(name: str) -> str:
    """Return Triton's short datatype name (FP32) for any accepted spelling; ValueError otherwise."""
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(
        f"unknown datatype {name!r}; expected a Triton name (TYPE_FP32 or FP32) or a numpy name (float32): "
        + ", ".join(DATATYPES)
    )


def to_numpy(short: str) -> str:
    return DATATYPES[short][0]


def to_tensorflow(short: str) -> str:
    return DATATYPES[short][1]


def from_numpy(dtype: object) -> str:
    import numpy as np

    dt = np.dtype(dtype)  # type: ignore[call-overload]
    if dt.kind in ("O", "S", "U"):
        return "STRING"
    return normalize(dt.name)
