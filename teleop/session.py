"""`TeleopSession`: VR messages in, arm targets out through the chunk executor's streaming path.

Each admitted frame (see `teleop.stream`) updates both clutches (`teleop.retarget`) and, while any arm
is engaged, hands the executor a one-step `CommandChunk` of both arms' targets (the released arm's
frozen target) at the receive time; the executor streams it through the safety guard at the command
rate. Button presses (rising edges) map to actions by config; episode actions are queued for the
thread that records (`take_actions`), re-centring happens here. A lost stream (`poll`) disengages both
arms, which then hold their commanded pose; re-engaging needs the grip released and pressed again.

Thread-safe: `handle` may run on a receiver thread while `poll`, `note_tick` and `status` run elsewhere.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES
from rig.drivers.base import DeviceError
from rig.executor import ChunkExecutor, TickResult
from rig.schema import CommandChunk
from teleop.config import TeleopConfig
from teleop.protocol import VRCommand, VRFrame
from teleop.retarget import ArmClutch, VRToBase, headset_yaw
from teleop.stream import InputFilter


class TeleopSession:
    """See the module doc. `R_world_base` gives each arm's base orientation (calibration.yaml)."""

    def __init__(self, config: TeleopConfig, executor: ChunkExecutor,
                 R_world_base: Mapping[str, NDArray[np.float64]]) -> None:
        self.config = config
        self.executor = executor
        self.guard = executor.guard
        self.filter = InputFilter(config.stream)
        self.clutches = {arm: ArmClutch(VRToBase(R_world_base[arm], config.retarget)) for arm in ARM_NAMES}
        self.counters: Counter[str] = Counter()
        self.handle_latency_s: deque[float] = deque(maxlen=10000)
        """Per admitted frame: receive time to the target handed to the executor (seconds)."""
        self.last_reasons: dict[str, tuple[str, ...]] = {arm: () for arm in ARM_NAMES}
        self._actions: deque[str] = deque()
        self._pressed: set[str] = set()
        self._interval = 1.0 / 60.0
        self._last_frame_t = -1.0
        self._heading_set = False
        self._last_frame: VRFrame | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ input

    def handle(self, raw: bytes, now: float) -> bool:
        """Admit one raw message received at `now` (receiver clock); True when it was used."""
        t0 = time.perf_counter()
        msg = self.filter.accept(raw, now)
        if msg is None:
            return False
        with self._lock:
            if isinstance(msg, VRCommand):
                self._action(msg.command if msg.command != "instruction" else f"instruction:{msg.text}")
                return True
            self._frame(msg, now)
        self.handle_latency_s.append(time.perf_counter() - t0)
        return True

    def command(self, action: str) -> None:
        """An action from outside the stream (command line, page, ROS service)."""
        with self._lock:
            self._action(action)

    def poll(self, now: float) -> bool:
        """Check for stream loss; True when the arms were just disengaged because of it."""
        with self._lock:
            if not self.filter.check_loss(now):
                return False
            self.counters["disengaged_on_loss"] += 1
            self.release_all(now, needs_release=True)
            return True

    def release_all(self, now: float, needs_release: bool = True) -> None:
        """Disengage both arms; they hold their commanded pose (stream loss, episode reset, e-stop)."""
        with self._lock:
            for arm, clutch in self.clutches.items():
                clutch.release(hold=self._commanded(arm), needs_release=needs_release)
            self._submit(now)

    def forget_targets(self) -> None:
        """After the rig was reset (the twin re-homed): targets are re-read from the arms."""
        with self._lock:
            for clutch in self.clutches.values():
                clutch.release(needs_release=True)
                clutch.target = None

    def take_actions(self) -> list[str]:
        """Episode actions queued since the last call, oldest first."""
        out = []
        while self._actions:
            out.append(self._actions.popleft())
        return out

    def note_tick(self, result: TickResult) -> None:
        """Keep the guard's reasons of the latest executor tick per arm (the operator sees clamping)."""
        for arm, cmd in result.commands.items():
            self.last_reasons[arm] = cmd.reasons

    # ------------------------------------------------------------------ status

    def engaged(self) -> dict[str, bool]:
        return {arm: c.engaged for arm, c in self.clutches.items()}

    def status(self) -> dict[str, Any]:
        counters = self.guard.diagnostics(time.monotonic())["counters"]  # a copy taken under the guard's lock
        guard = {k: int(v) for k, v in counters.items() if not k.startswith("blocked_") and k != "reset"}
        return {
            "engaged": self.engaged(),
            "streaming": self.filter.streaming,
            "received": int(self.filter.counters["received"]),
            "accepted": int(self.filter.counters["accepted"]),
            "dropped": self.filter.dropped(),
            "losses": int(self.filter.counters["losses"]),
            "guard_interventions": sum(guard.values()),
            "guard": guard,
            "clamped": {arm: list(r) for arm, r in self.last_reasons.items()},
            "estop": self.guard.estopped,
        }

    # ------------------------------------------------------------------ internals

    def _action(self, action: str) -> None:
        self.counters[f"action_{action}"] += 1
        if action == "recenter":
            self._recenter()
        else:
            self._actions.append(action)

    def _frame(self, msg: VRFrame, now: float) -> None:
        self._last_frame = msg
        self._track_interval(now)
        if not self._heading_set:
            self._set_heading(msg.headset)
        pressed_now = {f"{arm}.{name}" for arm, ctrl in msg.controllers.items()
                       for name, pressed in ctrl.buttons.items() if pressed}
        for key in sorted(pressed_now - self._pressed):  # rising edges; a button left out is released
            if key in self.config.buttons:
                self._action(self.config.buttons[key])
        self._pressed = pressed_now
        threshold = self.config.retarget.grip_threshold
        for arm, ctrl in msg.controllers.items():
            clutch = self.clutches[arm]
            held = ctrl.grip >= threshold
            if not held:
                if clutch.engaged:
                    clutch.release(hold=self._commanded(arm))
                    self.counters[f"release_{arm}"] += 1
                clutch.needs_release = False
            elif not clutch.engaged and not clutch.needs_release:
                clutch.engage(ctrl.pose, self._anchor(arm))
                self.counters[f"engage_{arm}"] += 1
            elif clutch.engaged:
                clutch.update(ctrl.pose, ctrl.trigger)
        if any(c.engaged for c in self.clutches.values()):
            self._submit(now)

    def _recenter(self) -> None:
        """Re-anchor: the heading follows the headset, engaged clutches restart at their targets."""
        frame = self._last_frame
        if frame is None:
            return
        self._set_heading(frame.headset)
        for arm, clutch in self.clutches.items():
            if clutch.engaged and clutch.target is not None:
                clutch.engage(frame.controllers[arm].pose, clutch.target)

    def _set_heading(self, headset: NDArray[np.float64]) -> None:
        yaw = headset_yaw(headset)
        for clutch in self.clutches.values():
            clutch.mapping.set_heading(yaw)
        self._heading_set = True

    def _anchor(self, arm: str) -> NDArray[np.float64]:
        clutch = self.clutches[arm]
        if clutch.target is not None:  # engage where the arm was told to be: no jump
            return clutch.target
        return self._commanded(arm)

    def _commanded(self, arm: str) -> NDArray[np.float64]:
        """(8,) pose the guard last commanded (else the measured pose) and the gripper opening."""
        last = self.guard.last_command(arm)
        if last is not None:
            return last
        state = self.executor.arms[arm].read_state()
        opening = 1.0
        gripper = self.guard.grippers.get(arm)
        if gripper is not None:
            with contextlib.suppress(DeviceError):
                opening = float(gripper.read_state().opening)
        return np.concatenate([state.tcp_pose, [opening]])

    def _submit(self, now: float) -> None:
        """Hand the executor a two-step chunk: from the target it sends now to the new one, one message
        interval later, so the streamed target moves at the operator's speed instead of in steps."""
        targets = np.zeros((2, len(ARM_NAMES), 8))
        for i, arm in enumerate(ARM_NAMES):
            clutch = self.clutches[arm]
            target = clutch.target if clutch.target is not None else self._commanded(arm)
            target = np.array(target, dtype=np.float64)
            target[7] = min(max(target[7], 0.0), 1.0)
            target[3:7] /= np.linalg.norm(target[3:7])
            current = self.executor.committed(arm, now + self.executor.config.latency_s)
            targets[0, i] = current if current is not None else target
            targets[1, i] = target
        self.executor.submit(CommandChunk(targets, t0=now, dt=self._interval), now)
        self.counters["targets"] += 1

    def _track_interval(self, now: float) -> None:
        # Median-free estimate of the sender's message period, bounded to 5..50 ms (90 Hz to 20 Hz).
        if self._last_frame_t >= 0.0:
            gap = min(max(now - self._last_frame_t, 0.005), 0.05)
            self._interval += 0.1 * (gap - self._interval)
        self._last_frame_t = now
