"""Wire encoding for the policy server: msgpack with numpy arrays as raw buffers (never pickle).

An array travels as a msgpack extension (code 1) holding a small header (dtype string, shape) and
the raw bytes; decoding wraps the received buffer with `np.frombuffer` (no copy). Only plain
numeric dtypes are accepted, so a request can never make the receiver build arbitrary objects.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

NDARRAY_EXT = 1
ALLOWED_KINDS = frozenset("biuf")  # bool, signed, unsigned, float


class WireError(ValueError):
    """A message cannot be decoded or violates the wire rules; the text says which part."""


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ALLOWED_KINDS:
            raise WireError(f"array dtype {obj.dtype} is not allowed on the wire (numeric only)")
        arr = np.ascontiguousarray(obj)
        header = msgpack.packb([arr.dtype.str, list(arr.shape)])
        return msgpack.ExtType(NDARRAY_EXT, header + arr.tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    raise WireError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code != NDARRAY_EXT:
        raise WireError(f"unknown msgpack extension {code}")
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(data))
    unpacker.feed(data)
    try:
        dtype_str, shape = next(unpacker)
    except (StopIteration, ValueError) as exc:
        raise WireError(f"array header is malformed ({exc})") from None
    offset = unpacker.tell()
    try:
        dtype = np.dtype(dtype_str)
    except TypeError:
        raise WireError(f"array dtype {dtype_str!r} is not a numpy dtype") from None
    if dtype.kind not in ALLOWED_KINDS:
        raise WireError(f"array dtype {dtype} is not allowed on the wire (numeric only)")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise WireError(f"array shape {shape!r} is not a list of non-negative ints")
    count = int(np.prod(shape, dtype=np.int64))
    if count * dtype.itemsize != len(data) - offset:
        raise WireError(f"array of dtype {dtype} and shape {tuple(shape)} needs {count * dtype.itemsize} bytes, "
                        f"got {len(data) - offset}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)


def encode(message: dict[str, Any]) -> bytes:
    """Serialise a message dict (str keys, numbers, strings, lists, dicts, numpy arrays)."""
    return msgpack.packb(message, default=_default, use_bin_type=True)


def decode(payload: bytes, max_bytes: int | None = None) -> dict[str, Any]:
    """Parse a message; WireError when it is oversized, malformed or not a dict."""
    if max_bytes is not None and len(payload) > max_bytes:
        raise WireError(f"message of {len(payload)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        message = msgpack.unpackb(payload, ext_hook=_ext_hook, raw=False, strict_map_key=True)
    except WireError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise WireError(f"not a valid msgpack message ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, dict):
        raise WireError(f"message is a {type(message).__name__}, expected a map")
    return message
