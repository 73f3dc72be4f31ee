"""The teleop graph without ROS: rig (twin or real) + VR input + session + chunk executor + safety guard +
episode control over the one recorder. `a2world teleop` and `teleop_node` are thin layers over it.

Real time (the real rig, or the twin with `clock: realtime`): a receiver thread (ZeroMQ or the WebXR
WebSocket) hands each message to the session as it arrives; the executor thread streams the targets
through the guard at the command rate and checks for stream loss every tick; the calling thread
observes at `observation_hz`, carries out the queued episode actions and records. On the twin, each
saved or discarded episode resets the scene with the next seed (episode k of a session uses
`seed + k`), so a scripted sender that plans from the same seeds meets the same scene.

Lockstep (the twin stepped by this thread, for tests): `run_lockstep(source)` does the same on simulated
time for one scripted episode, pulling the messages due at each tick from `source`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from rig.conventions import ARM_NAMES
from rig.drivers.base import DeviceError
from rig.executor import ChunkExecutor, ExecutorThread
from rig.observe import command_in_force, read_observation, twin_of
from rig.safety import SafetyGuard
from rig.timing import MonotonicClock, RateKeeper
from teleop.config import TeleopConfig
from teleop.episodes import EpisodeControl
from teleop.recorder import EpisodeRecorder
from teleop.session import TeleopSession

log = logging.getLogger(__name__)


class TeleopRunner:
    """See the module doc. `rig` is a `rig.factory.Rig` (connected by the caller)."""

    def __init__(self, rig: Any, config: TeleopConfig, instruction: str, recorder: EpisodeRecorder | None = None,
                 operator: str = "", seed: int = 0, input_label: str = "",
                 on_action: Callable[[str], None] | None = None) -> None:
        missing = [a for a in ARM_NAMES if a not in rig.arms]
        if missing:
            raise ValueError(f"rig: arms {missing} missing; teleop drives both of {list(ARM_NAMES)}")
        self.rig = rig
        self.config = config
        self.twin = twin_of(rig)
        self.seed = int(seed)
        self.resets = 0
        self.on_action = on_action
        watch = tuple(w for w in config.guard.watch if w in rig.cameras or w.startswith("arm:"))
        self.guard = SafetyGuard(replace(config.guard, watch=watch), rig.arms, rig.grippers)
        self.executor = ChunkExecutor(config.executor, self.guard)
        self.session = TeleopSession(config, self.executor, _base_rotations())
        judge = self.twin.task_success if self.twin is not None and self.twin.task is not None else None
        self.episodes = EpisodeControl(recorder, instruction, operator or config.operator, judge=judge,
                                       extra={"input": input_label, "rig": "sim" if self.twin else "real"},
                                       on_end=self._episode_ended)
        self.messages: list[str] = []
        self._scene_extra()
        self._stop = threading.Event()
        self._pending_reset = False
        self._reset_between_episodes = True

    # ------------------------------------------------------------------ shared steps

    def observe_and_record(self, now: float) -> None:
        """One observation tick: queued episode actions, recording, a pending scene reset."""
        obs = read_observation(self.rig, self.guard, self.episodes.instruction)
        for action in self.session.take_actions():
            self.apply(action)
        if obs is not None and self.episodes.recording:
            self.episodes.add(obs, command_in_force(self.guard, obs))
        if self._pending_reset:
            self._pending_reset = False
            self._reset_scene(now)

    def apply(self, action: str) -> str:
        """Carry out one episode action now (recording thread only)."""
        text = self.episodes.apply(action, self.stats())
        self.messages.append(text)
        log.info("teleop: %s", text)
        if self.on_action is not None:
            self.on_action(text)
        return text

    def stats(self) -> dict[str, Any]:
        status = self.session.status()
        return {"accepted": status["accepted"], "dropped": status["dropped"], "losses": status["losses"],
                "guard": status["guard"]}

    def status(self) -> dict[str, Any]:
        """For the page and the ROS status topic: engaged arms, recording, episode count, guard."""
        return {**self.session.status(), "recording": self.episodes.recording,
                "episode": self.episodes.index, "instruction": self.episodes.instruction,
                "episodes_saved": len(self.episodes.log.saved), "episodes_discarded": self.episodes.log.discarded,
                "last_message": self.messages[-1] if self.messages else ""}

    def stop(self) -> None:
        self._stop.set()

    def _scene_extra(self) -> None:
        """Twin: the scene's task and seed go with the next episode (`a2world data replay` resets to them)."""
        if self.twin is not None:
            self.episodes.extra["seed"] = self.seed + self.resets
            if self.twin.task is not None:
                self.episodes.extra["task"] = self.twin.task.name

    def _episode_ended(self, saved: bool) -> None:
        if self.twin is not None and self._reset_between_episodes:
            self._pending_reset = True

    def _reset_scene(self, now: float) -> None:
        """Twin only: re-home and re-randomise with the next seed; nothing moves until re-engaged."""
        assert self.twin is not None
        self.resets += 1
        self.session.release_all(now)
        self.executor.clear()
        self._reset_twin(self.seed + self.resets)
        self._scene_extra()
        self.session.forget_targets()
        self.guard.reset(self.twin.now())

    def _reset_twin(self, seed: int) -> None:
        assert self.twin is not None
        self.twin.reset_state(seed)
        for cam in self.rig.cameras.values():  # simulated time restarts: the frame cache must too
            sim_rig = getattr(cam, "rig", None)
            if sim_rig is not None and hasattr(sim_rig, "reset_frames"):
                sim_rig.reset_frames()
                break

    def _on_tick(self, result: Any) -> None:
        # Runs on the executor thread at the command rate, so a lost stream is caught within one tick.
        self.session.note_tick(result)
        self.session.poll(result.now)

    # ------------------------------------------------------------------ real time

    def run_realtime(self, max_seconds: float | None = None, until: Callable[[], bool] | None = None) -> None:
        """Observe/record at `observation_hz` until `stop()`, `until()` or `max_seconds`; the input
        thread (started by the caller) feeds `self.session.handle`."""
        clock = MonotonicClock()
        if self.twin is not None:
            self._reset_twin(self.seed)
        self.guard.reset(clock.now())
        thread = ExecutorThread(self.executor, clock, on_tick=self._on_tick).start()
        rate = RateKeeper(self.config.observation_hz, clock)
        start = clock.now()
        try:
            while not self._stop.is_set():
                rate.wait()
                now = clock.now()
                if max_seconds is not None and now - start > max_seconds:
                    break
                try:
                    self.observe_and_record(now)
                except DeviceError as exc:
                    log.warning("teleop: observation failed: %s", exc)
                if thread.error is not None:
                    raise RuntimeError(f"executor thread failed: {thread.error!r}")
                if until is not None and until():
                    break
        except KeyboardInterrupt:
            self.guard.estop("operator interrupt (Ctrl-C)", clock.now())
        finally:
            thread.stop()
            self.episodes.close()

    # ------------------------------------------------------------------ lockstep (twin, tests)

    def run_lockstep(self, source: Iterator[tuple[float, bytes]], max_seconds: float,
                     stop_when_idle: bool = True) -> None:
        """Run the twin on simulated time, delivering each (t, bytes) of `source` at its tick; ends
        `settle` after the source is exhausted and no episode is open, or after `max_seconds`."""
        twin = self.twin
        if twin is None or twin.clock != "lockstep":
            raise ValueError("run_lockstep: needs the twin with clock: lockstep")
        self._reset_twin(self.seed)
        self._reset_between_episodes = False  # simulated time restarts on a reset: one episode per run
        timestep = float(twin.timestep)
        tick_every = max(1, round(1.0 / (self.config.executor.command_hz * timestep)))
        obs_period = 1.0 / self.config.observation_hz
        total = math.ceil(max_seconds / timestep - 1e-9)
        self.guard.reset(twin.now())
        pending = next(source, None)
        step = obs_k = 0
        t_base = twin.now()
        while step < total:
            now = twin.now()
            if step % tick_every == 0:
                while pending is not None and t_base + pending[0] <= now + 1e-9:
                    self.session.handle(pending[1], now)
                    pending = next(source, None)
                self._on_tick(self.executor.tick(now))
            if step >= math.ceil(obs_k * obs_period / timestep - 1e-9):
                obs_k += 1
                self.observe_and_record(now)
                if pending is None and stop_when_idle and not self.episodes.recording:
                    break
            next_obs = math.ceil(obs_k * obs_period / timestep - 1e-9)
            target = min(next_obs, (step // tick_every + 1) * tick_every, total)
            twin.step((target - step) * timestep)
            step = target
        self.episodes.close()


def _base_rotations() -> dict[str, np.ndarray]:
    """Each arm's base orientation in the world: calibration.yaml (the twin's mount is identical)."""
    from calibration.transforms import load_calibration

    calib = load_calibration()
    return {arm: calib.T_world_base(arm)[:3, :3] for arm in ARM_NAMES}

