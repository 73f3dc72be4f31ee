"""`sim` node: the MuJoCo twin standing in for the cameras and arms nodes (`rig:=sim`). Same topics,
services and behaviour; the twin runs in real time (`sim.clock: realtime`): physics on one thread,
rendering on another (rig/sim/devices.py), the executor on a third.

With `expert_endpoint` set (`policy:=expert` in the launch file) the node also serves the task's
scripted expert on that local endpoint (a2world_ros/runtime/expert_service.py); the policy node
connects to it like to any policy server. With a task loaded, /diagnostics carries a `sim/task` entry
(success and progress from the simulator state).
"""

from __future__ import annotations

from typing import Any

from rig.config import ConfigError
from rig.dataformats import ros_messages as rm
from rig.factory import Rig, build_rig
from rig.params import get_float, get_mapping, get_str

from .arms_node import make_arm_bridge, wire_arms
from .bridges import CameraBridge
from .cameras_node import wire_cameras
from .common import A2WorldNode, run


def check_watchdog_period(stale_timeout_s: float, fps: float, where: str) -> None:
    """The watchdog must tolerate the twin's own frame period: a camera source is at most one period
    plus one render old when the next frame lands, so the timeout must cover two periods."""
    if stale_timeout_s < 2.0 / fps:
        raise ConfigError(
            f"{where}: guard.stale_timeout_s = {stale_timeout_s} s is shorter than two frame periods of the "
            f"twin (sim.cameras.fps = {fps:g} -> {2.0 / fps:.3f} s): the guard would hold on every frame; "
            "raise guard.stale_timeout_s in the sim section or the frame rate")


class SimNode(A2WorldNode):
    """Cameras + arms of a `Rig` in one node; `rig` may be injected (tests), else the twin is built."""

    def __init__(self, rig: Rig | None = None, parameter_overrides: list[Any] | None = None,
                 start_control: bool = True) -> None:
        super().__init__("sim", parameter_overrides)
        if rig is None:
            overrides = dict(self.param("sim", {}))
            overrides.setdefault("clock", "realtime")
            rig = build_rig(rig="sim", sim_overrides=overrides)
            rig.connect()
            self.on_close(rig.disconnect)
        self.rig = rig
        self.twin = getattr(next(iter(rig.arms.values()), None), "twin", None)  # None: injected non-sim devices
        if self.twin is not None:
            guard = get_mapping(self.params, "guard", "sim")
            check_watchdog_period(get_float(guard, "stale_timeout_s", "sim.guard", 0.1, positive=True),
                                  float(self.twin.camera_fps), "sim")
        self.cameras = CameraBridge(rig.cameras, self.clock_map, self.distro)
        self.arms = make_arm_bridge(self, rig.arms, rig.grippers)
        wire_cameras(self, self.cameras, after_poll=self._feed_watchdog)
        wire_arms(self, self.arms, camera_topics=False)
        if start_control:
            self.arms.start_control()
        self.on_close(self.arms.stop_control)
        self._serve_expert()
        self.add_diagnostics(lambda: self.cameras.diagnostics() + self.arms.diagnostics() + self.task_diagnostics(),
                             get_float(self.params, "diagnostics_hz", "sim", default=1.0, positive=True))

    def _serve_expert(self) -> None:
        endpoint = get_str(self.params, "expert_endpoint", "sim", "")
        if not endpoint:
            return
        if self.twin is None or self.twin.task is None:
            raise ConfigError(f"sim.expert_endpoint: {endpoint!r} needs a twin with a task (set sim.task, "
                              "launch argument task:=NAME)")
        from a2world_ros.runtime.expert_service import ExpertService

        service = ExpertService(self.twin, endpoint,
                                get_float(self.params, "expert_restart_gap_s", "sim", 2.0, positive=True),
                                seed=int(self.twin.seed or 0))
        self.on_close(service.close)
        self.get_logger().info(f"scripted expert of task {self.twin.task.name!r} served on {service.address}")

    def task_diagnostics(self) -> list[rm.DiagnosticEntry]:
        if self.twin is None or self.twin.task is None:
            return []
        success = self.twin.task_success()
        return [rm.diagnostic_entry("sim/task", "OK", "success" if success else "in progress", {
            "task": self.twin.task.name, "success": str(success), "progress": self.twin.task_progress(),
            "sim_time_s": self.twin.sim_time,
        })]

    def _feed_watchdog(self) -> None:
        for cam, t in self.cameras.newest().items():
            self.arms.on_camera_time(cam, t)


def main(args: list[str] | None = None) -> int:
    return run(SimNode, args)
