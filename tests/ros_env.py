"""Shared setup for the ROS-layer tests: the rclpy / launch test doubles on sys.path for one test
module, removed again afterwards so no other test sees a fake `rclpy`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parent / "doubles"
_PREFIXES = ("rclpy", "tf2_ros", "launch", "launch_ros", "std_srvs", "a2world_ros.nodes")


def _is_fake(name: str) -> bool:
    return getattr(sys.modules.get(name), "__file__", None) is None


def _purge() -> None:
    """Drop every module the doubles added or that imported them (the nodes), real ones untouched."""
    fake_msg = {n for n in sys.modules if n.endswith((".msg", ".srv")) and _is_fake(n)}
    fake_pkgs = {n.split(".")[0] for n in fake_msg if _is_fake(n.split(".")[0])}
    for name in list(sys.modules):
        top = name.split(".")[0]
        if top in _PREFIXES or name.startswith("a2world_ros.nodes") or name in fake_msg or name in fake_pkgs:
            del sys.modules[name]


def ros_doubles() -> Iterator[None]:
    """Generator for a module-scoped fixture: install, init rclpy, yield, shut down, purge."""
    try:
        import rclpy
    except ImportError:
        pass
    else:
        if "doubles" not in str(getattr(sys.modules["rclpy"], "__file__", "")):
            pytest.skip("a real rclpy is installed: these tests use the rclpy double; on a ROS 2 machine "
                        "run tests/test_launch_ros2.py (docs/ros.md)")
    sys.path.insert(0, str(DOUBLES))
    try:
        import rclpy
        from rclpy.testing import install_ros_doubles

        install_ros_doubles()
        rclpy.init()
        yield
        rclpy.try_shutdown()
    finally:
        sys.path.remove(str(DOUBLES))
        _purge()
