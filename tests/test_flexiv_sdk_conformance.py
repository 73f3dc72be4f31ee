"""The flexivrdk test double and the driver against the real Flexiv RDK 1.9 wheel (no robot needed).

The real wheel exists for CPython 3.10 / 3.12 only, so it lives in a side venv made by
scripts/setup_flexiv_sdk_venv.sh (`.venv-flexivrdk`, or the interpreter in A2WORLD_FLEXIV_SDK_PYTHON);
tests/flexiv_sdk_probe.py runs inside it and reports the real module as JSON. Without the venv these
tests skip and say why. Every public class, enum and method of the double must exist in the real module
with the same parameter names and defaults (the driver's own tests run against the double, so a call
the driver makes that the real module lacks fails here), struct fields must match in name and default
length, and wrong-length vectors must raise TypeError in the double wherever pybind says FixedSize.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.test_flexiv_arm import SERIAL, install_double

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "flexiv_sdk_probe.py"
pytestmark = pytest.mark.sdk

TEST_HOOKS = {"SUPPORTED_MODELS", "Timing", "controller", "reset"}
"""Names of the double that are test hooks, not SDK API."""


def sdk_python() -> Path | None:
    env = os.environ.get("A2WORLD_FLEXIV_SDK_PYTHON")
    path = Path(env) if env else ROOT / ".venv-flexivrdk" / "bin" / "python"
    return path if path.exists() else None


def run_probe(what: str, timeout: float = 120.0) -> dict[str, Any]:
    python = sdk_python()
    if python is None:
        pytest.skip("no side venv with the real flexivrdk (CPython 3.10/3.12 only): run "
                    "`bash scripts/setup_flexiv_sdk_venv.sh` or set A2WORLD_FLEXIV_SDK_PYTHON")
    proc = subprocess.run([str(python), str(PROBE), what], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, f"probe {what} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    return run_probe("surface")


@pytest.fixture()
def double(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return install_double(monkeypatch)


def double_api(module: ModuleType) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, type) and not name.startswith("_") and name not in TEST_HOOKS
            and obj.__module__ == module.__name__}


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    out = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or isinstance(inspect.getattr_static(cls, name), property):
            continue
        if callable(member):
            out[name] = inspect.signature(member)
    return out


def field_names(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    return {name for name in dir(cls) if not name.startswith("_")
            and isinstance(inspect.getattr_static(cls, name), property)}


def test_module_level_names_exist_in_the_real_sdk(double: ModuleType, real: dict[str, Any]) -> None:
    public = {name for name, obj in vars(double).items() if not name.startswith("_") and name not in TEST_HOOKS
              and getattr(obj, "__module__", None) == double.__name__}
    missing = sorted(public - set(real["classes"]) - set(real["enums"]))
    assert not missing, f"the double defines names the real flexivrdk {real['version']} lacks: {missing}"


def test_enums_match(double: ModuleType, real: dict[str, Any]) -> None:
    for name, cls in double_api(double).items():
        if hasattr(cls, "__members__"):
            assert {k: int(v) for k, v in cls.__members__.items()} == real["enums"][name], name
    assert not any(m.startswith("RT_") for m in real["enums"]["Mode"])  # the Python API has no RT modes


def test_methods_match_the_pybind_signatures(double: ModuleType, real: dict[str, Any]) -> None:
    problems = []
    for cname, cls in double_api(double).items():
        if hasattr(cls, "__members__") or dataclasses.is_dataclass(cls) or cname == "ToolParams":
            continue
        rmethods = real["classes"][cname]["methods"]
        own = {"__init__": inspect.signature(cls.__init__), **public_methods(cls)}
        for mname, sig in own.items():
            if mname not in rmethods:
                problems.append(f"{cname}.{mname} is not in the real module")
                continue
            params = [p for p in sig.parameters.values() if p.name != "self"]
            mine = [(p.name, p.default is not inspect.Parameter.empty) for p in params]
            overloads = [[(p["name"], p["default"]) for p in o] for o in rmethods[mname]]
            if mine not in overloads and not (mname == "params" and cname == "Tool"):
                problems.append(f"{cname}.{mname}{mine} matches no real overload {overloads}")
    assert not problems, "\n".join(problems)


def test_struct_fields_and_default_lengths_match(double: ModuleType, real: dict[str, Any]) -> None:
    for cname in ("RobotStates", "GripperStates", "GripperParams", "ToolParams", "RobotInfo"):
        cls = getattr(double, cname)
        rfields = real["classes"][cname]["fields"]
        assert field_names(cls) == set(rfields), cname
        if cname == "RobotInfo":
            continue  # the real default RobotInfo is empty; the double's carries the Rizon 4s values
        instance = cls()
        for name, info in rfields.items():
            value = getattr(instance, name)
            length = len(value) if isinstance(value, list | tuple) else None
            assert length == info["default_len"], f"{cname}.{name}: default length {length}, real {info}"


def test_fixed_size_vectors_raise_type_error(double: ModuleType, real: dict[str, Any]) -> None:
    ctrl = double.controller(SERIAL)
    ctrl.timing.first_state_s = 0.0
    robot = double.Robot(SERIAL)
    checked = []
    for mname, overloads in real["classes"]["Robot"]["methods"].items():
        if not hasattr(double.Robot, mname) or len(overloads) != 1:
            continue
        params = overloads[0]
        fixed = [p for p in params if p["fixed_size"]]
        if not fixed or any(not p["default"] and not p["fixed_size"] for p in params):
            continue
        good = {p["name"]: [False] * p["fixed_size"] if p["bool_items"] else [0.1] * p["fixed_size"]
                for p in fixed}
        for p in fixed:
            bad = dict(good)
            bad[p["name"]] = good[p["name"]] + good[p["name"]][:1]
            with pytest.raises(TypeError, match="incompatible function arguments"):
                getattr(robot, mname)(**bad)
            checked.append(f"{mname}.{p['name']}")
    assert {"SendCartesianMotionForce.pose", "SetMaxContactWrench.max_wrench",
            "SetForceControlAxis.enabled_axes"} <= set(checked), checked
    tool = double.ToolParams()
    for name, info in real["classes"]["ToolParams"]["fields"].items():
        if info["fixed_size"]:
            with pytest.raises(TypeError):
                setattr(tool, name, [0.0] * (info["fixed_size"] + 1))


def test_driver_connect_against_the_real_sdk_without_a_robot() -> None:
    """The driver's connect path on the real SDK: a clear DeviceError naming the serial, in ~3 s, and the
    real constructor holds the GIL meanwhile (the probe's 1 ms ticker thread stalls)."""
    result = run_probe("connect")
    assert result["error"] == "DeviceError" and result["cause"] == "RuntimeError", result
    assert f"cannot connect to Flexiv robot '{result['serial']}'" in result["message"]
    assert "Failed to connect" in result["message"]
    assert 1.0 < result["seconds"] < 30.0, result
    assert result["max_thread_gap_s"] > 1.0, result  # the GIL was held: why each arm gets its own process
    print(f"real flexivrdk connect without robot: DeviceError after {result['seconds']:.2f} s, "
          f"other threads stalled {result['max_thread_gap_s']:.2f} s")


def test_driver_connect_in_its_own_process_against_the_real_sdk() -> None:
    """The same connect through rig.realtime.arm_process: the same DeviceError, and the caller's threads
    keep running while the real SDK blocks in the arm process."""
    result = run_probe("isolated")
    assert result["error"] == "DeviceError", result
    assert "Failed to connect" in result["message"] and result["serial"] in result["message"]
    assert result["max_thread_gap_s"] < 0.5, result
    print(f"real flexivrdk connect in an arm process: DeviceError after {result['seconds']:.2f} s, "
          f"caller's threads stalled at most {result['max_thread_gap_s'] * 1e3:.0f} ms")
