"""Probe of the real `flexivrdk` module, run by tests/test_flexiv_sdk_conformance.py inside the side venv
that scripts/setup_flexiv_sdk_venv.sh makes (CPython 3.10/3.12, no torch). Prints one JSON object.

    python tests/flexiv_sdk_probe.py surface   # classes, enums, methods (pybind signatures), struct fields
    python tests/flexiv_sdk_probe.py connect   # FlexivArm.connect() from config/rig.yaml, no robot present
    python tests/flexiv_sdk_probe.py isolated  # the same through rig.realtime.arm_process (own process)
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def split_params(text: str) -> list[str]:
    """Top-level comma split of a pybind parameter list (brackets and quotes nest)."""
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_signatures(name: str, doc: str) -> list[list[dict[str, Any]]]:
    """Every overload `name(self: ..., a: T = d, ...) -> R` in a pybind docstring, as parameter lists."""
    sigs = []
    for line in doc.splitlines():
        line = re.sub(r"^\d+\.\s+", "", line.strip())
        if not line.startswith(f"{name}(") or "->" not in line:
            continue
        inner = line[len(name) + 1: line.rindex(") ->")]
        params = []
        for part in split_params(inner):
            pname, _, rest = part.partition(":")
            annotation, has_default, default = rest, False, None
            if " = " in rest:
                annotation, _, default = rest.partition(" = ")
                has_default = True
            size = re.search(r'FixedSize\((\d+)\)', annotation)
            params.append({"name": pname.strip(), "default": has_default, "default_text": default,
                           "fixed_size": int(size.group(1)) if size else None,
                           "bool_items": "Sequence[bool]" in annotation})
        sigs.append([p for p in params if p["name"] != "self"])
    return sigs


def surface() -> dict[str, Any]:
    import flexivrdk

    result: dict[str, Any] = {"version": flexivrdk.__version__, "classes": {}, "enums": {}}
    for name in dir(flexivrdk):
        obj = getattr(flexivrdk, name)
        if name.startswith("_") or not isinstance(obj, type):
            continue
        if hasattr(obj, "__members__"):
            result["enums"][name] = {k: int(v) for k, v in obj.__members__.items()}
            continue
        methods, fields = {}, {}
        for attr in dir(obj):
            if attr.startswith("_") and attr != "__init__":
                continue
            member = getattr(obj, attr)
            if isinstance(member, property):
                doc = (member.fset.__doc__ or "") if member.fset is not None else ""
                size = re.search(r'FixedSize\((\d+)\)', doc)
                fields[attr] = {"writable": member.fset is not None, "fixed_size": int(size.group(1)) if size
                                else None}
            elif callable(member):
                methods[attr] = parse_signatures(attr, member.__doc__ or "")
        try:
            instance = obj()
        except TypeError:
            instance = None
        if instance is not None:
            for key, info in fields.items():
                value = getattr(instance, key)
                info["default_len"] = len(value) if isinstance(value, (list, tuple)) else None
                info["default_type"] = type(value).__name__
        result["classes"][name] = {"methods": methods, "fields": fields}
    return result


class Ticker:
    """A thread that wakes every 1 ms and records its longest gap: how long the GIL was held."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.001):
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def connect(isolated: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from rig.drivers.base import DeviceError
    from rig.drivers.flexiv import FlexivArm, FlexivArmConfig

    cfg = FlexivArmConfig.from_rig_yaml("left")
    if isolated:
        from rig.realtime.arm_process import IsolatedArm, flexiv_arm_factory

        arm: Any = IsolatedArm("left", flexiv_arm_factory(cfg), state_hz=cfg.state_hz)
    else:
        arm = FlexivArm(cfg)
    ticker = Ticker()
    t0 = time.monotonic()
    try:
        with ticker:
            arm.connect()
    except DeviceError as exc:
        return {"serial": cfg.serial, "error": type(exc).__name__, "message": str(exc),
                "cause": type(exc.__cause__).__name__ if exc.__cause__ else None,
                "seconds": time.monotonic() - t0, "max_thread_gap_s": ticker.max_gap}
    except Exception as exc:  # reported, not raised: the test names what escaped
        return {"serial": cfg.serial, "error": type(exc).__name__, "message": str(exc),
                "seconds": time.monotonic() - t0}
    finally:
        with contextlib.suppress(Exception):  # nothing was connected
            arm.disconnect()
    return {"serial": cfg.serial, "error": None, "seconds": time.monotonic() - t0}


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "surface"
    if what == "surface":
        out = surface()
    elif what in ("connect", "isolated"):
        out = connect(isolated=what == "isolated")
    else:
        raise SystemExit(f"unknown probe {what!r}: expected surface, connect or isolated")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
