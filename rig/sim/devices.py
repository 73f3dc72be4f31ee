"""Simulated devices: `SimCamera`, `SimArm`, `SimGripper` on one shared `Twin` (one physics world).

They implement `rig.drivers.base.Camera/Arm/Gripper`, so the executor, guard, recorder and policy loop
run unchanged on the twin. `make_sim_rig(config)` builds the whole rig (`--rig sim` in rig/factory.py).

Clocks (see `Twin`): in lockstep the caller advances time through `device.twin.step(dt)`; cameras render
lazily when asked and a new frame exists once per camera period (1/fps of simulated time); every `t` is
simulated time. In realtime two background threads start with the first `connect()`: one steps the
physics at the control period, paced to `time.monotonic()`; the other renders the three views once per
camera period (1/fps of host time) from a snapshot of the state, so a slow render (OSMesa on a small
CPU) delays frames, never the physics, the arm states or the executor. The render thread owns the only
GL context of the process and frees it when it ends; every `t` is host monotonic time. Arm and gripper states are
fresh at every 2 ms physics step (the real controller streams 1 kHz).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from rig.config import ConfigError
from rig.conventions import ARM_NAMES, CAMERA_NAMES, POSE_DIM
from rig.drivers.base import Arm, Camera, DeviceError, DeviceStats, Gripper
from rig.schema import ArmState, CameraFrame, CameraIntrinsics, GripperState
from rig.sim.twin import Twin

log = logging.getLogger(__name__)


class SimRig:
    """The shared world behind the sim devices: the twin, the camera frame cache, the realtime thread."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.fps = twin.camera_fps
        self._frames: dict[str, CameraFrame] = {}
        self._frame_tick = -1
        self._render_data = mujoco.MjData(twin.model)  # snapshot rendered outside the twin's lock
        self._cond = threading.Condition(twin.lock)
        self._users = 0
        self._thread: threading.Thread | None = None
        self._render_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    # -------------------------------------------------------------- lifecycle (reference counted)

    def acquire(self) -> None:
        with self._cond:
            self._users += 1
            if self.twin.clock == "realtime" and self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="sim-physics", daemon=True)
                self._render_thread = threading.Thread(target=self._render_loop, name="sim-render", daemon=True)
                self._thread.start()
                self._render_thread.start()

    def release(self) -> None:
        with self._cond:
            self._users = max(0, self._users - 1)
            threads = [t for t in (self._thread, self._render_thread) if t is not None] if self._users == 0 else []
        if threads:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=5.0)
            self._thread = self._render_thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.twin.sync_wall_clock()
            while not self._stop.is_set():
                self.twin.step(self.twin.control_dt)
        except BaseException as exc:  # surfaced to callers through DeviceError
            log.exception("sim physics thread stopped")
            self.error = exc

    def _render_loop(self) -> None:
        """Realtime: render at `fps` of host time; a late render skips the periods it missed (no burst)."""
        period = 1.0 / self.fps
        try:
            with self._cond:
                mujoco.mj_copyData(self._render_data, self.twin.model, self.twin.data)
            self.twin.renderer.render(self._render_data)  # warm-up: GL context and scene set-up
            due = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now < due:
                    self._stop.wait(due - now)
                    continue
                due = max(due + period, now)
                self._render_snapshot(self._frame_tick + 1)
        except BaseException as exc:
            log.exception("sim render thread stopped")
            self.error = exc
        finally:
            self.twin.close()  # this thread's GL context, released once, on the thread that made it

    def _render_snapshot(self, tick: int) -> None:
        """Copy the state under the twin's lock and render outside it (state reads and commands from
        other threads do not wait for the render); frame `tick` unless it was rendered already."""
        with self._cond:
            if tick <= self._frame_tick:
                return
            self._frame_tick = tick
            t = self.twin.now()
            sim_t = self.twin.sim_time
            mujoco.mj_copyData(self._render_data, self.twin.model, self.twin.data)
        images = self.twin.renderer.render(self._render_data)
        with self._cond:
            self._frames = {
                cam: CameraFrame(camera=cam, t=t, color=img, frame_number=tick, device_t=sim_t)
                for cam, img in images.items()
            }
            self._cond.notify_all()

    # -------------------------------------------------------------- frames

    def poll_frames(self) -> None:
        """Lockstep: render all views if a new camera period of simulated time has started since the
        last render. The state is copied under the twin's lock and rendered outside it."""
        self._render_snapshot(int(np.floor(self.twin.sim_time * self.fps + 1e-9)))

    def reset_frames(self) -> None:
        with self._cond:
            self._frames = {}
            self._frame_tick = -1

    def latest(self, camera: str) -> CameraFrame | None:
        if self.twin.clock == "lockstep":
            self.poll_frames()
        with self._cond:
            return self._frames.get(camera)

    def wait_frame(self, camera: str, newer_than: float, timeout: float) -> CameraFrame:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.twin.clock == "lockstep":
                    self.poll_frames()
                frame = self._frames.get(camera)
                if frame is not None and frame.t > newer_than:
                    return frame
                if self.error is not None:
                    raise DeviceError(f"sim camera {camera}: simulation thread failed ({self.error!r})")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    hint = " (lockstep: step the twin to produce frames)" if self.twin.clock == "lockstep" else ""
                    raise DeviceError(f"sim camera {camera}: no frame newer than t={newer_than:.4f} "
                                      f"within {timeout:.3f} s{hint}")
                self._cond.wait(timeout=min(remaining, 0.05))


class _SimDevice:
    """Connection bookkeeping and counters shared by the sim devices."""

    def __init__(self, rig: SimRig, name: str) -> None:
        self.rig = rig
        self.name = name
        self._connected = False
        self._samples = 0
        self._first_t: float | None = None
        self._last_t: float | None = None

    @property
    def twin(self) -> Twin:
        return self.rig.twin

    def connect(self) -> None:
        if not self._connected:
            self.rig.acquire()
            self._connected = True

    def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self.rig.release()

    @property
    def is_connected(self) -> bool:
        return self._connected

    def _require(self) -> None:
        if not self._connected:
            raise DeviceError(f"sim device {self.name}: not connected (call connect())")
        if self.rig.error is not None:
            raise DeviceError(f"sim device {self.name}: simulation thread failed ({self.rig.error!r})")

    def _count(self, t: float) -> None:
        self._samples += 1
        self._first_t = t if self._first_t is None else self._first_t
        self._last_t = t

    def stats(self) -> DeviceStats:
        rate = 0.0
        if self._first_t is not None and self._last_t is not None and self._last_t > self._first_t:
            rate = (self._samples - 1) / (self._last_t - self._first_t)
        return DeviceStats(samples=self._samples, rate_hz=rate)


class SimCamera(_SimDevice, Camera):
    """One rig camera rendered by the twin (colour only; intrinsics at the twin's render size)."""

    def __init__(self, rig: SimRig, name: str) -> None:
        if name not in CAMERA_NAMES:
            raise ValueError(f"sim camera {name!r}: expected one of {list(CAMERA_NAMES)}")
        super().__init__(rig, name)
        self._last_number = -1

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.twin.intrinsics(self.name)

    def _deliver(self, frame: CameraFrame | None) -> CameraFrame | None:
        if frame is not None and frame.frame_number != self._last_number:
            self._last_number = frame.frame_number
            self._count(frame.t)
        return frame

    def latest(self) -> CameraFrame | None:
        self._require()
        return self._deliver(self.rig.latest(self.name))

    def wait_frame(self, newer_than: float, timeout: float) -> CameraFrame:
        self._require()
        frame = self.rig.wait_frame(self.name, newer_than, timeout)
        self._deliver(frame)
        return frame


class SimArm(_SimDevice, Arm):
    """A twin arm streamed with Cartesian targets in its base frame (like Flexiv NRT Cartesian mode)."""

    max_command_hz = 100.0

    def __init__(self, rig: SimRig, name: str) -> None:
        if name not in ARM_NAMES:
            raise ValueError(f"sim arm {name!r}: expected one of {list(ARM_NAMES)}")
        super().__init__(rig, name)
        self._fault = False
        self.fault_reason = ""

    def read_state(self) -> ArmState:
        self._require()
        state = self.twin.arm_state(self.name)
        if self._fault:
            state = ArmState(arm=state.arm, t=state.t, q=state.q, dq=state.dq, tau=state.tau,
                             tcp_pose=state.tcp_pose, tcp_vel=state.tcp_vel, fault=True)
        self._count(state.t)
        return state

    def send_pose(self, pose: NDArray[np.float64]) -> None:
        self._require()
        if self._fault:
            raise DeviceError(f"sim arm {self.name}: in fault ({self.fault_reason}); call recover() first")
        arr = np.asarray(pose, dtype=np.float64)
        if arr.shape != (POSE_DIM,):
            raise DeviceError(f"sim arm {self.name}: pose shape {arr.shape}, expected (7,) [x, y, z, qx, qy, qz, qw]")
        try:
            self.twin.set_arm_target(self.name, arr)
        except ValueError as exc:
            raise DeviceError(f"sim arm {self.name}: {exc}") from None

    def in_fault(self) -> bool:
        return self._fault

    def inject_fault(self, reason: str = "injected") -> None:
        """Simulate a controller fault (for tests of the guard and executor): the arm stops and holds."""
        self._fault = True
        self.fault_reason = reason
        self.stop()

    def recover(self) -> None:
        self._require()
        self._fault = False
        self.fault_reason = ""

    def stop(self) -> None:
        """Hold the measured TCP pose (the motion generator brakes within its acceleration limits)."""
        self.twin.set_arm_target(self.name, self.twin.tcp_pose_base(self.name))


class SimGripper(_SimDevice, Gripper):
    """A twin gripper commanded by opening in [0, 1] (1 = 85 mm apart)."""

    def read_state(self) -> GripperState:
        self._require()
        state = self.twin.gripper_state(self.name)
        self._count(state.t)
        return state

    def command(self, opening: float, speed: float | None = None, force: float | None = None) -> None:
        self._require()
        try:
            self.twin.set_gripper(self.name, opening, speed=speed, force=force)
        except ValueError as exc:
            raise DeviceError(f"sim gripper {self.name}: {exc}") from None


def make_sim_rig(
    config: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Camera], dict[str, Arm], dict[str, Gripper]]:
    """Cameras, arms and grippers of the twin, sharing one `Twin` built from `config` over sim.yaml.

    Optional keys beyond `config/sim.yaml`: `task` (a name for `rig.sim.tasks.get_task`) and `seed`.
    The twin is reachable as `device.twin` (lockstep callers step it: `arms["left"].twin.step(dt)`).
    """
    cfg = dict(config or {})
    task_name = cfg.pop("task", None) or None
    seed = int(cfg.pop("seed", 0))
    task = None
    if task_name is not None:
        try:
            from rig.sim.tasks import get_task
        except ImportError as exc:
            raise ConfigError(
                f"sim config: task {task_name!r} given but rig.sim.tasks is unavailable ({exc})"
            ) from None
        task = get_task(str(task_name))
    twin = Twin(cfg, task=task)
    twin.reset_state(seed)
    rig = SimRig(twin)
    cameras: dict[str, Camera] = {name: SimCamera(rig, name) for name in CAMERA_NAMES}
    arms: dict[str, Arm] = {name: SimArm(rig, name) for name in ARM_NAMES}
    grippers: dict[str, Gripper] = {name: SimGripper(rig, name) for name in ARM_NAMES}
    return cameras, arms, grippers
