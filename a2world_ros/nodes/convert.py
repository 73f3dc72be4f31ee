"""Generic conversion between rosbags message objects (what `rig.dataformats.ros_messages` builds) and
rclpy message objects, by field name. No rclpy import: message classes are found by importing the
`<pkg>.msg` module named in the rosbags type (`sensor_msgs/msg/Image` -> `sensor_msgs.msg.Image`).

rosidl Python classes store unbounded numeric sequences as `array.array` and fixed arrays as numpy
arrays, type-check every assignment (an `int` is not accepted for a `float64` field, a numpy array is
not a sequence) and use 1-byte `bytes` for `byte` fields. `to_ros` therefore shapes each value after
the destination's default value; `from_ros` goes back through the typestore's field definitions.
"""

from __future__ import annotations

import array
import dataclasses
import importlib
from functools import cache
from typing import Any

import numpy as np

from rig.dataformats.ros_messages import typestore

_TYPECODES = {np.dtype(np.float64): "d", np.dtype(np.float32): "f", np.dtype(np.int8): "b",
              np.dtype(np.uint8): "B", np.dtype(np.int16): "h", np.dtype(np.uint16): "H",
              np.dtype(np.int32): "i", np.dtype(np.uint32): "I", np.dtype(np.int64): "q",
              np.dtype(np.uint64): "Q"}
_DTYPES = {"float64": np.float64, "float32": np.float32, "int8": np.int8, "uint8": np.uint8,
           "byte": np.uint8, "char": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
           "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "bool": np.bool_}


@cache
def ros_class(msgtype: str) -> type:
    """The rclpy message class of a rosbags type name like `sensor_msgs/msg/Image`."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _shape_value(current: Any, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if isinstance(current, np.ndarray):  # fixed-size array field
            return np.asarray(value, dtype=current.dtype).reshape(current.shape)
        if isinstance(current, array.array):  # unbounded numeric sequence
            arr = np.ascontiguousarray(value, dtype=np.dtype(current.typecode).newbyteorder("="))
            return array.array(current.typecode, arr.tobytes())
        return value.tolist()
    if isinstance(current, bytes) and isinstance(value, (int, np.integer)):
        return bytes([int(value)])
    if isinstance(current, bool):
        return bool(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, int):
        return int(value)
    if isinstance(current, str) and isinstance(value, (int, np.integer)):
        return chr(int(value))
    return value


@cache
def field_names(msgtype: str) -> tuple[str, ...]:
    """Field names of a message type in definition order (constants excluded)."""
    for distro in ("humble", "jazzy"):
        store = typestore(distro)
        if msgtype in store.fielddefs:
            return tuple(name for name, _ in store.fielddefs[msgtype][1])
    raise KeyError(f"{msgtype}: not a message type of the Humble or Jazzy typestore")


def fill(dst: Any, src: Any) -> Any:
    """Copy every field of rosbags message `src` into rclpy message `dst` (nested ones in place)."""
    for name in field_names(src.__msgtype__):
        value = getattr(src, name)
        if dataclasses.is_dataclass(value):
            fill(getattr(dst, name), value)
        elif isinstance(value, list):
            setattr(dst, name, [to_ros(v) if dataclasses.is_dataclass(v) else v for v in value])
        else:
            setattr(dst, name, _shape_value(getattr(dst, name), value))
    return dst


def to_ros(msg: Any) -> Any:
    """A new rclpy message equal to rosbags message `msg`."""
    return fill(ros_class(msg.__msgtype__)(), msg)


def _from_value(kind: int, detail: Any, value: Any, distro: str) -> Any:
    if kind == 2:
        return from_ros(value, detail, distro)
    if kind == 1:
        if isinstance(value, bytes):
            return value[0]
        if detail[0] == "char" and isinstance(value, str):
            return ord(value)
        return value
    (elem_kind, elem_detail), _ = detail
    if elem_kind == 2:
        return [from_ros(v, elem_detail, distro) for v in value]
    name = elem_detail[0]
    if name == "string":
        return list(value)
    if isinstance(value, array.array):
        return np.frombuffer(value, dtype=_DTYPES[name]).copy() if len(value) else np.zeros(0, _DTYPES[name])
    if name in ("byte", "char"):
        value = [v[0] if isinstance(v, bytes) else (ord(v) if isinstance(v, str) else v) for v in value]
    return np.asarray(value, dtype=_DTYPES[name])


def from_ros(obj: Any, msgtype: str, distro: str = "humble") -> Any:
    """The rosbags message (of `distro`'s typestore) equal to rclpy message `obj` of type `msgtype`."""
    store = typestore(distro)
    _, fields = store.fielddefs[msgtype]
    kwargs = {}
    for name, (kind, detail) in fields:
        kwargs[name] = _from_value(int(getattr(kind, "value", kind)), detail, getattr(obj, name), distro)
    return store.types[msgtype](**kwargs)
