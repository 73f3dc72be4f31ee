"""Wire encoding for the policy server: a msgpack header frame plus one raw frame per numpy array
(never pickle).

`encode(message)` returns the frames of one ZeroMQ multipart message: frame 0 is the msgpack header,
in which every array is a small extension (code 2: dtype string, shape, frame number); frames 1..n
are the arrays' own buffers, handed to ZeroMQ without a copy (`send_multipart(copy=False)`).
`decode(frames)` rebuilds the arrays with `np.frombuffer` on the received frames (no copy). Only
plain numeric dtypes are accepted, so a request can never make the receiver build arbitrary objects,
and every msgpack container is bounded (`WireLimits`), so a hostile header (a map with a million
keys) is refused at its first byte instead of blocking the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

ARRAY_REF_EXT = 2
ALLOWED_KINDS = frozenset("biuf")  # bool, signed, unsigned, float


class WireError(ValueError):
    """A message cannot be decoded or violates the wire rules; the text says which part."""


@dataclass(frozen=True)
class WireLimits:
    """Bounds on one message: total bytes, arrays, and the header's msgpack containers."""

    max_bytes: int = 64 * 1024 * 1024
    max_arrays: int = 64
    max_map_len: int = 256
    max_array_len: int = 4096
    max_str_len: int = 64 * 1024
    max_header_bytes: int = 1024 * 1024


DEFAULT_LIMITS = WireLimits()


def _buffer(frame: Any) -> memoryview:
    # zmq.Frame (recv_multipart(copy=False)) exposes .buffer; bytes and memoryviews are used as they are.
    buf = getattr(frame, "buffer", frame)
    return memoryview(buf)


def encode(message: dict[str, Any]) -> list[Any]:
    """Frames of a message dict (str keys, numbers, strings, lists, dicts, numpy arrays)."""
    arrays: list[np.ndarray] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in ALLOWED_KINDS:
                raise WireError(f"array dtype {obj.dtype} is not allowed on the wire (numeric only)")
            arr = np.ascontiguousarray(obj)  # a copy only when the array is not contiguous already
            arrays.append(arr)
            return msgpack.ExtType(ARRAY_REF_EXT, msgpack.packb([arr.dtype.str, list(arr.shape), len(arrays)]))
        if isinstance(obj, np.generic):
            return obj.item()
        raise WireError(f"cannot encode {type(obj).__name__}")

    header = msgpack.packb(message, default=default, use_bin_type=True)
    return [header, *(a.reshape(-1).view(np.uint8) if a.size else b"" for a in arrays)]


def decode(frames: Sequence[Any], limits: WireLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parse the frames of one message; WireError when it is oversized, malformed or not a dict."""
    if not frames:
        raise WireError("empty message, expected a msgpack header frame")
    buffers = [_buffer(f) for f in frames]
    total = sum(b.nbytes for b in buffers)
    if total > limits.max_bytes:
        raise WireError(f"message of {total} bytes exceeds the limit of {limits.max_bytes} bytes")
    if len(buffers) - 1 > limits.max_arrays:
        raise WireError(f"message has {len(buffers) - 1} array frames, more than the limit of {limits.max_arrays}")
    header = buffers[0]
    if header.nbytes > limits.max_header_bytes:
        raise WireError(f"header of {header.nbytes} bytes exceeds the limit of {limits.max_header_bytes} bytes")
    used: set[int] = set()

    def ext_hook(code: int, data: bytes) -> Any:
        if code != ARRAY_REF_EXT:
            raise WireError(f"unknown msgpack extension {code}")
        try:
            dtype_str, shape, index = msgpack.unpackb(data, raw=False, max_array_len=64, max_str_len=16)
            dtype = np.dtype(dtype_str)
        except (ValueError, TypeError, msgpack.ExtraData) as exc:
            raise WireError(f"array reference is malformed ({exc})") from None
        if dtype.kind not in ALLOWED_KINDS:
            raise WireError(f"array dtype {dtype} is not allowed on the wire (numeric only)")
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise WireError(f"array shape {shape!r} is not a list of non-negative ints")
        if not isinstance(index, int) or not 1 <= index < len(buffers) or index in used:
            raise WireError(f"array frame {index!r} is missing or referenced twice ({len(buffers) - 1} frames)")
        used.add(index)
        count = int(np.prod(shape, dtype=np.int64))
        buf = buffers[index]
        if count * dtype.itemsize != buf.nbytes:
            raise WireError(f"array of dtype {dtype} and shape {tuple(shape)} needs {count * dtype.itemsize} "
                            f"bytes, frame {index} has {buf.nbytes}")
        return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)

    try:
        message = msgpack.unpackb(
            header, ext_hook=ext_hook, raw=False, strict_map_key=True, max_map_len=limits.max_map_len,
            max_array_len=limits.max_array_len, max_str_len=limits.max_str_len, max_bin_len=limits.max_str_len,
            max_ext_len=256)
    except WireError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for bad input (incl. the limits)
        raise WireError(f"not a valid msgpack message ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, dict):
        raise WireError(f"message is a {type(message).__name__}, expected a map")
    if len(used) != len(buffers) - 1:
        raise WireError(f"{len(buffers) - 1 - len(used)} array frame(s) not referenced by the header")
    return message
