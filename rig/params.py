"""Typed reads of settings from a YAML mapping (drivers, guard, nodes), with errors that name the field
and the rule. The one place for such readers.

`where` is the dotted location used in messages, e.g. `config/rig.yaml arms.left`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rig.config import ConfigError

_MISSING: Any = object()


def _get(d: Mapping[str, Any], key: str, where: str, default: Any) -> Any:
    if key in d:
        return d[key]
    if default is _MISSING:
        raise ConfigError(f"{where}: missing key {key!r} (present: {sorted(d)})")
    return default


def get_float(
    d: Mapping[str, Any],
    key: str,
    where: str,
    default: Any = _MISSING,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
) -> float:
    """A finite float (bool refused: `true` is not a number), optionally within [low, high] or > 0."""
    raw = _get(d, key, where, default)
    if isinstance(raw, bool):
        raise ConfigError(f"{where}.{key}: {raw!r} is a boolean, expected a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: {value}, expected a finite number")
    if positive and value <= 0.0:
        hint = f" and <= {high}" if high is not None else ""
        raise ConfigError(f"{where}.{key}: {value}, expected a value > 0{hint}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{where}.{key}: {value}, expected a value in [{low}, {high}]")
    return value


def get_int(
    d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING, low: int | None = None,
    high: int | None = None,
) -> int:
    """An integer (bool refused), optionally within [low, high]."""
    raw = _get(d, key, where, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ConfigError(f"{where}.{key}: {raw!r} is not an integer")
    if (low is not None and raw < low) or (high is not None and raw > high):
        raise ConfigError(f"{where}.{key}: {raw}, expected an integer in [{low}, {high}]")
    return raw


def get_str(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> str:
    """A string (numbers are refused so a serial written without quotes is caught)."""
    raw = _get(d, key, where, default)
    if not isinstance(raw, str):
        raise ConfigError(f"{where}.{key}: {raw!r} is not a string (quote it in YAML)")
    return raw


def get_floats(d: Mapping[str, Any], key: str, where: str, size: int, default: Any = _MISSING) -> tuple[float, ...]:
    """A list of exactly `size` finite floats."""
    raw = _get(d, key, where, default)
    if not isinstance(raw, list | tuple) or len(raw) != size:
        raise ConfigError(f"{where}.{key}: {raw!r}, expected a list of {size} numbers")
    values = []
    for i, item in enumerate(raw):
        if isinstance(item, bool):
            raise ConfigError(f"{where}.{key}[{i}]: {item!r} is a boolean, expected a number")
        try:
            v = float(item)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.{key}[{i}]: {item!r} is not a number") from None
        if not math.isfinite(v):
            raise ConfigError(f"{where}.{key}[{i}]: {v}, expected a finite number")
        values.append(v)
    return tuple(values)


def get_mapping(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> Mapping[str, Any]:
    """A nested mapping."""
    raw = _get(d, key, where, default)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}.{key}: {raw!r}, expected a mapping")
    return raw


def reject_unknown(d: Mapping[str, Any], known: set[str], where: str) -> None:
    """Refuse keys the driver does not read (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")


def get_bool(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> bool:
    """A YAML boolean (true/false); numbers and strings are refused."""
    raw = _get(d, key, where, default)
    if not isinstance(raw, bool):
        raise ConfigError(f"{where}.{key}: {raw!r}, expected true or false")
    return raw
