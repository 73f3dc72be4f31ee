"""Replaying a recorded episode's commands on the rig (the twin or the robot), behind the safety guard, and
measuring how well the motion is reproduced.

The episode's `action` rows (absolute (2, 8) commands at the dataset fps) become one `CommandChunk`;
the chunk executor streams it through the guard at the command rate, exactly as a policy's chunk.
On the twin (lockstep) the scene is reset with the episode's seed first (its `extra.seed`), so the
replay starts where the recording started. At every frame time the measured TCP poses are compared
with the recorded ones (`observation.state`: reproduction error) and with the command (tracking error).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.dataformats.lerobot_v3 import LeRobotV3Dataset, state_names
from rig.executor import ChunkExecutor, ExecutorConfig, ExecutorThread, blend_targets
from rig.observe import TwinClock, twin_of
from rig.rotations import angle_between
from rig.safety import GuardConfig, SafetyGuard
from rig.schema import CommandChunk
from rig.timing import MonotonicClock


@dataclass(frozen=True)
class ReplayReport:
    """Errors per arm over the episode: position (m) and rotation (rad), mean and max; guard counters."""

    episode: int
    frames: int
    reproduction: dict[str, dict[str, float]]
    tracking: dict[str, dict[str, float]]
    interventions: dict[str, int]
    success: bool | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def episode_extra(ds: LeRobotV3Dataset, ep: int) -> dict[str, Any]:
    raw = ds.episode(ep).get("extra")
    return json.loads(raw) if isinstance(raw, str) and raw else {}


def _pose_columns(arm: str) -> slice:
    start = state_names().index(f"{arm}_tcp_x")
    return slice(start, start + 7)


def _errors(measured: NDArray, reference: NDArray) -> dict[str, float]:
    pos = np.linalg.norm(measured[:, :3] - reference[:, :3], axis=1)
    rot = angle_between(measured[:, 3:7], reference[:, 3:7])
    return {"pos_mean_m": float(pos.mean()), "pos_max_m": float(pos.max()),
            "rot_mean_rad": float(rot.mean()), "rot_max_rad": float(rot.max())}


def replay_episode(ds: LeRobotV3Dataset, ep: int, rig: Any, executor_config: ExecutorConfig,
                   guard_config: GuardConfig, seed: int | None = None, approach_speed: float = 0.05,
                   ) -> ReplayReport:
    """Play episode `ep` of `ds` on `rig` and report the errors; see the module doc.

    The twin in lockstep is stepped here; any other rig (the robot, the twin in real time) runs with the
    executor thread on the wall clock. When an arm does not start at the episode's first command (the
    robot, which cannot be reset), the chunk begins with an approach to it at `approach_speed` m/s, not
    measured.
    """
    twin = twin_of(rig)
    lockstep = twin is not None and twin.clock == "lockstep"
    lo, hi = ds.episode_index_range(ep)
    actions = np.asarray(ds.data("action")[lo:hi], dtype=np.float64).reshape(-1, len(ARM_NAMES), COMMAND_DIM)
    states = np.asarray(ds.data("observation.state")[lo:hi], dtype=np.float64)
    actions[..., 3:7] /= np.linalg.norm(actions[..., 3:7], axis=-1, keepdims=True)
    actions[..., 7] = np.clip(actions[..., 7], 0.0, 1.0)
    if twin is not None:
        twin.reset_state(int(seed if seed is not None else episode_extra(ds, ep).get("seed", 0)))
    guard = SafetyGuard(replace(guard_config, watch=()), rig.arms, rig.grippers)
    executor = ChunkExecutor(executor_config, guard)
    clock: Any = TwinClock(twin) if lockstep else MonotonicClock()
    guard.reset(clock.now())
    start = np.zeros((len(ARM_NAMES), COMMAND_DIM))
    for i, arm in enumerate(ARM_NAMES):
        opening = rig.grippers[arm].read_state().opening if arm in rig.grippers else actions[0, i, 7]
        guard.observe_gripper(arm, opening)
        start[i] = np.concatenate([rig.arms[arm].read_state().tcp_pose, [opening]])
    dt = 1.0 / ds.fps
    approach = _approach(start, actions[0], dt, approach_speed)
    plan = np.concatenate([approach, actions]) if len(approach) else actions
    before = dict(guard.counters)
    thread = None if lockstep else ExecutorThread(executor, clock).start()
    measured: dict[str, list[NDArray]] = {arm: [] for arm in ARM_NAMES}
    try:
        t0 = clock.now()
        executor.submit(CommandChunk(plan, t0=t0, dt=dt), t0)
        next_tick = t0
        for k in range(len(approach), len(plan)):
            t_frame = t0 + k * dt
            if lockstep:
                while next_tick <= t_frame + 1e-9:
                    clock.sleep_until(next_tick)
                    executor.tick(clock.now())
                    next_tick += 1.0 / executor_config.command_hz
            clock.sleep_until(t_frame)
            for arm in ARM_NAMES:
                measured[arm].append(rig.arms[arm].read_state().tcp_pose)
    finally:
        if thread is not None:
            thread.stop()
    reproduction, tracking = {}, {}
    for i, arm in enumerate(ARM_NAMES):
        m = np.stack(measured[arm])
        reproduction[arm] = _errors(m, states[:, _pose_columns(arm)])
        tracking[arm] = _errors(m, actions[:, i, :7])
    interventions = {k: int(v - before.get(k, 0)) for k, v in guard.counters.items()
                     if v - before.get(k, 0) > 0 and k != "reset"}
    success = bool(twin.task_success()) if twin is not None and twin.task is not None else None
    return ReplayReport(ep, len(actions), reproduction, tracking, interventions, success)


def _approach(start: NDArray, first: NDArray, dt: float, speed: float) -> NDArray:
    """(K, 2, 8) steps from `start` to the first command at `speed` (plus 0.5 s to settle); none when
    every arm is already within 2 mm and 0.02 rad of it."""
    dist = max(float(np.linalg.norm(first[i, :3] - start[i, :3])) for i in range(len(ARM_NAMES)))
    turn = max(float(angle_between(first[i, 3:7], start[i, 3:7])) for i in range(len(ARM_NAMES)))
    if dist < 0.002 and turn < 0.02:
        return np.zeros((0, len(ARM_NAMES), COMMAND_DIM))
    steps = int(np.ceil((max(dist / speed, turn / (10 * speed)) + 0.5) / dt))
    out = np.zeros((steps, len(ARM_NAMES), COMMAND_DIM))
    for k in range(steps):
        w = min(1.0, (k + 1) / max(steps - round(0.5 / dt), 1))
        for i in range(len(ARM_NAMES)):
            out[k, i] = blend_targets(start[i].copy(), first[i], w)
    return out


def format_report(report: ReplayReport) -> str:
    lines = [f"episode {report.episode}: {report.frames} frames replayed"
             + ("" if report.success is None else f", task {'SUCCESS' if report.success else 'failure'}")]
    for label, errs in (("reproduction (vs recorded state)", report.reproduction),
                        ("tracking (vs command)", report.tracking)):
        for arm, e in errs.items():
            lines.append(f"  {label:34s} {arm:5s}: position mean {e['pos_mean_m'] * 1e3:.2f} mm, "
                         f"max {e['pos_max_m'] * 1e3:.2f} mm; rotation mean {math.degrees(e['rot_mean_rad']):.2f} deg, "
                         f"max {math.degrees(e['rot_max_rad']):.2f} deg")
    guard = ", ".join(f"{k} {v}" for k, v in sorted(report.interventions.items())) or "none"
    lines.append(f"  guard interventions: {guard}")
    return "\n".join(lines)


def task_for(ds: LeRobotV3Dataset, ep: int, tasks: Mapping[str, Any]) -> str | None:
    """The twin task of an episode: `extra.task`, else the task whose instruction matches."""
    extra = episode_extra(ds, ep)
    if isinstance(extra.get("task"), str):
        return extra["task"]
    instruction = ds.episode_task(ep)
    for name, entry in tasks.items():
        if isinstance(entry, Mapping) and entry.get("instruction") == instruction:
            return name
    return None

