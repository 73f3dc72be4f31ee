"""`ProcessArmBridge`: the arms node's component with the chunk executor, the safety guard and the arm
streaming in their own process (`rig.realtime.executor_process.RealtimeExecutor`), so that the 100 Hz
tick never waits for the GIL of the ROS executor, the message conversions or a blocking SDK call here.

Same node-facing methods as `ArmBridge` (topics, services and timers are wired by `wire_arms`); what
crosses the process boundary:
- chunks (paired and checked here) and camera stamps go into the process's shared-memory rings;
- arm and gripper states come back in its tick records: `drain_states` and `poll_grippers` share one
  drain of the tick ring, each gripper reading is published once (the process reads the grippers at
  its `gripper_hz` and feeds the guard's rate limiter itself);
- e-stop, reset, clear, diagnostics and the committed target of the plan (`committed`, the real-time
  chunking prefix) are requests over the control pipe.
"""

from __future__ import annotations

import math
from typing import Any

from numpy.typing import NDArray

from rig import topics
from rig.conventions import POLICY_HZ
from rig.dataformats import ros_messages as rm
from rig.drivers.base import DeviceError
from rig.realtime.executor_process import RealtimeConfig, RealtimeExecutor, TickRecord
from rig.schema import GripperState
from rig.timing import Clock

from .bridges import ArmBridge, Outgoing


class ProcessArmBridge(ArmBridge):
    """`ArmBridge` whose executor and guard run in a `RealtimeExecutor` process; see the module doc.

    The process starts with `start_control()` (it builds and connects the devices from the config's
    factories) and ends with `stop_control()` (it e-stops and disconnects them).
    """

    def __init__(self, config: RealtimeConfig, clock_map: rm.ClockMap, clock: Clock | None = None,
                 distro: str = "humble", default_dt: float = 1.0 / POLICY_HZ) -> None:
        self._init_io(clock, clock_map, distro, default_dt, tuple(config.arms))
        self.config = config
        self.runtime = RealtimeExecutor(config)
        self._states: Outgoing = []
        self._grippers: dict[str, GripperState] = {}
        self._gripper_t = {name: -math.inf for name in config.grippers}
        self.last_tick: TickRecord | None = None

    @property
    def watched_sources(self) -> tuple[str, ...]:
        return tuple(self.config.guard.watch)

    # ------------------------------------------------------------------ control loop

    def start_control(self) -> None:
        if not self.runtime.running:
            self.runtime.start()

    def stop_control(self) -> None:
        self.runtime.stop()

    def tick(self, now: float) -> Any:
        raise RuntimeError("ProcessArmBridge: the executor process ticks on its own clock (no lockstep); "
                           "use ArmBridge for the twin")

    def _pump(self) -> None:
        for record in self.runtime.drain():
            self.last_tick = record
            self._states.extend(self.state_messages(record.states))
            for name, state in record.grippers.items():
                if state.t > self._gripper_t.get(name, -math.inf):
                    self._gripper_t[name] = state.t
                    self._grippers[name] = state

    # ------------------------------------------------------------------ outputs

    def drain_states(self) -> Outgoing:
        self._pump()
        out, self._states = self._states, []
        return out

    def poll_grippers(self) -> Outgoing:
        """Each gripper reading the process made since the last call (the newest per gripper)."""
        self._pump()
        fresh, self._grippers = self._grippers, {}
        return [(topics.gripper_state(name), rm.gripper_state_msg(state, self.clock_map.to_ros_ns(state.t),
                                                                  self.distro))
                for name, state in fresh.items()]

    def committed(self, name: str, t: float) -> NDArray[Any] | None:
        return self.runtime.committed(name, t)

    # ------------------------------------------------------------------ inputs

    def on_camera_stamp(self, camera: str, stamp_ns: int) -> None:
        self.runtime.feed(camera, self.clock_map.to_monotonic(stamp_ns))

    def on_camera_time(self, camera: str, t: float) -> None:
        self.runtime.feed(camera, t)

    def _on_command(self, kind: str, msg: Any) -> str:
        """As `ArmBridge._on_command`, but the process splices the chunk in at its next tick: the
        outcome is 'queued' (the process's counters say how it was taken)."""
        chunk = self._pair_command(kind, msg)
        if isinstance(chunk, str):
            return chunk
        try:
            self.runtime.submit(chunk)
        except ValueError as exc:
            self.rejected_chunks += 1
            return f"rejected: {exc}"
        return "queued"

    # ------------------------------------------------------------------ operator

    def _not_ready(self) -> str:
        g = self.runtime.diagnostics()["guard"]
        if g["estop"]:
            return f"e-stop ({g['estop']})"
        return f"faults {g['faults']}" if g["faults"] else ""

    def _clear(self) -> None:
        self.runtime.clear()

    def _reset_guard(self) -> None:
        self.runtime.reset()

    def _estop(self, reason: str) -> None:
        self.runtime.estop(reason)  # the process clears its plans with the latch

    # ------------------------------------------------------------------ diagnostics

    def diagnostics(self) -> list[rm.DiagnosticEntry]:
        now = self.clock.now()
        try:
            d = self.runtime.diagnostics()
        except DeviceError as exc:
            return [rm.diagnostic_entry("arms", "ERROR", f"executor process: {exc}",
                                        {"started": self.started, "pid": self.runtime.pid or 0})]
        return self.arm_diagnostics(now, d["guard"], d["executor"], d["jitter"],
                                    {"executor_pid": d["pid"], "scheduling": self.runtime.scheduling})

