"""ROS 2 Python message classes for the rclpy double, generated from the rosbags typestore.

They behave like rosidl-generated classes where our code can tell the difference: default
construction (`Image()`), keyword construction, nested messages created by default, unbounded numeric
sequences stored as `array.array` and fixed-size numeric arrays as numpy arrays, `byte` fields as
1-byte `bytes`, and setters that reject wrong types (a numpy array for a sequence field, an int for a
float field, a plain int for a `byte` field), as the generated setters' assertions do.
"""

from __future__ import annotations

import array
import sys
import types
from typing import Any, ClassVar

import numpy as np

TYPECODES = {"float64": "d", "float32": "f", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H",
             "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}
DTYPES = {"float64": np.float64, "float32": np.float32, "int8": np.int8, "uint8": np.uint8,
          "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
          "int64": np.int64, "uint64": np.uint64, "bool": np.bool_}
INTS = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}

_CLASSES: dict[str, type] = {}


def _default(kind: int, detail: Any) -> Any:
    if kind == 1:  # base type
        name = detail[0]
        if name in ("float32", "float64"):
            return 0.0
        if name == "bool":
            return False
        if name == "string":
            return ""
        if name == "byte":
            return b"\x00"
        if name == "char":
            return "\x00"
        return 0
    if kind == 2:  # nested message
        return message_class(detail)()
    (elem_kind, elem_detail), size = detail
    if kind == 3 and elem_kind == 1 and elem_detail[0] in DTYPES:  # fixed-size array
        return np.zeros(size, dtype=DTYPES[elem_detail[0]])
    if kind == 3:
        return [_default(elem_kind, elem_detail) for _ in range(size)]
    if elem_kind == 1 and elem_detail[0] in TYPECODES:
        return array.array(TYPECODES[elem_detail[0]])
    return []


def _check(cls_name: str, field: str, kind: int, detail: Any, value: Any) -> Any:
    where = f"The '{field}' field of {cls_name}"
    if kind == 1:
        name = detail[0]
        if name in ("float32", "float64"):
            assert isinstance(value, float), f"{where} must be of type 'float', got {type(value).__name__}"
        elif name == "bool":
            assert isinstance(value, bool), f"{where} must be of type 'bool'"
        elif name == "string":
            assert isinstance(value, str), f"{where} must be of type 'str'"
        elif name == "byte":
            assert isinstance(value, bytes) and len(value) == 1, f"{where} must be of type 'bytes' length 1"
        elif name == "char":
            assert isinstance(value, str) and len(value) == 1, f"{where} must be a str of length 1"
        else:
            assert isinstance(value, int) and not isinstance(value, bool), f"{where} must be of type 'int'"
        return value
    if kind == 2:
        want = message_class(detail)
        assert isinstance(value, want), f"{where} must be a sub message of type '{want.__name__}'"
        return value
    (elem_kind, elem_detail), size = detail
    elem = elem_detail[0] if elem_kind == 1 else None
    if kind == 3 and elem in DTYPES:
        if isinstance(value, np.ndarray):
            assert value.dtype == DTYPES[elem] and value.size == size, \
                f"{where} must be a numpy array of dtype {elem} and size {size}"
            return value
        assert len(value) == size, f"{where} must have exactly {size} elements"
        return np.array(value, dtype=DTYPES[elem])
    if kind == 4 and elem in TYPECODES:
        if isinstance(value, array.array):
            assert value.typecode == TYPECODES[elem], f"{where} array.array typecode must be '{TYPECODES[elem]}'"
            return value
        assert isinstance(value, (list, tuple, bytes)) and not isinstance(value, np.ndarray), \
            f"{where} must be a set or sequence (got {type(value).__name__})"
        if elem in INTS:
            assert all(isinstance(v, int) for v in value), f"{where} values must be of type 'int'"
        else:
            assert all(isinstance(v, float) for v in value), f"{where} values must be of type 'float'"
        return array.array(TYPECODES[elem], value)
    assert isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray), \
        f"{where} must be a set or sequence"
    if kind == 3:
        assert len(value) == size, f"{where} must have exactly {size} elements"
    return [_check(cls_name, field, elem_kind, elem_detail, v) for v in value]


class _Message:
    _fields_: ClassVar[dict[str, tuple[int, Any]]] = {}
    _msgtype_: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._fields_)
        assert not unknown, f"Invalid arguments passed to constructor: {', '.join(sorted(unknown))}"
        for name, (kind, detail) in self._fields_.items():
            if name in kwargs:
                setattr(self, name, kwargs[name])
            else:
                object.__setattr__(self, name, _default(kind, detail))

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._fields_:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        kind, detail = self._fields_[name]
        object.__setattr__(self, name, _check(type(self).__name__, name, kind, detail, value))

    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        return {name: str(detail) for name, (_, detail) in cls._fields_.items()}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        for name in self._fields_:
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    def __repr__(self) -> str:
        return f"{self._msgtype_}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._fields_)})"


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def _make_class(msgtype: str, fields: list[tuple[str, tuple[Any, Any]]], consts: list[tuple]) -> type:
    attrs: dict[str, Any] = {
        "_fields_": {name: (int(kind.value if hasattr(kind, "value") else kind), detail)
                     for name, (kind, detail) in fields},
        "_msgtype_": msgtype,
    }
    for cname, ctype, cvalue in consts:
        attrs[cname] = bytes([cvalue]) if ctype == "byte" else cvalue
    name = msgtype.rsplit("/", 1)[1]
    cls = type(name, (_Message,), attrs)
    cls.__module__ = msgtype.rsplit("/", 1)[0].replace("/", ".")
    return cls


def message_class(msgtype: str) -> type:
    """The double's class for `pkg/msg/Name`."""
    if msgtype not in _CLASSES:
        consts, fields = _typestore().fielddefs[msgtype]
        _CLASSES[msgtype] = _make_class(msgtype, fields, consts)
    return _CLASSES[msgtype]


def _service(name: str, request: list, response: list) -> type:
    req = _make_class(f"std_srvs/srv/{name}_Request", request, [])
    res = _make_class(f"std_srvs/srv/{name}_Response", response, [])
    srv = type(name, (), {"Request": req, "Response": res, "__doc__": f"std_srvs/srv/{name}"})
    srv.__module__ = "std_srvs.srv"
    return srv


def _module(name: str) -> types.ModuleType:
    if name not in sys.modules:
        sys.modules[name] = types.ModuleType(name)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(_module(parent), child, sys.modules[name])
    return sys.modules[name]


def install_message_packages() -> list[str]:
    """Register `<pkg>.msg` modules for every type in the typestore plus `std_srvs.srv`
    (Trigger, Empty, SetBool). Returns the module names added."""
    added = []
    for msgtype in _typestore().fielddefs:
        pkg, kind, name = msgtype.split("/")
        if kind != "msg":
            continue
        module = _module(f"{pkg}.msg")
        setattr(module, name, message_class(msgtype))
        added.append(f"{pkg}.msg")
    BASE = 1
    srv = _module("std_srvs.srv")
    srv.Trigger = _service("Trigger", [], [("success", (BASE, ("bool", 0))), ("message", (BASE, ("string", 0)))])
    srv.Empty = _service("Empty", [], [])
    srv.SetBool = _service("SetBool", [("data", (BASE, ("bool", 0)))],
                           [("success", (BASE, ("bool", 0))), ("message", (BASE, ("string", 0)))])
    added.append("std_srvs.srv")
    return sorted(set(added))
