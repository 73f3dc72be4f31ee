"""Replaying a recorded episode's commands on the rig, behind the safety guard, and measuring how well the
motion is reproduced.

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
from rig.executor import ChunkExecutor, ExecutorConfig
from rig.observe import twin_of
from rig.rotations import angle_between
from rig.safety import GuardConfig, SafetyGuard
from rig.schema import CommandChunk


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
                   guard_config: GuardConfig, seed: int | None = None) -> ReplayReport:
    """Play episode `ep` of `ds` on `rig` (the twin in lockstep) and report the errors."""
    twin = twin_of(rig)
    if twin is None or twin.clock != "lockstep":
        raise ValueError("replay: needs the twin in lockstep (on the real rig use the policy graph)")
    lo, hi = ds.episode_index_range(ep)
    actions = np.asarray(ds.data("action")[lo:hi], dtype=np.float64).reshape(-1, len(ARM_NAMES), COMMAND_DIM)
    states = np.asarray(ds.data("observation.state")[lo:hi], dtype=np.float64)
    actions[..., 3:7] /= np.linalg.norm(actions[..., 3:7], axis=-1, keepdims=True)
    actions[..., 7] = np.clip(actions[..., 7], 0.0, 1.0)
    extra = episode_extra(ds, ep)
    twin.reset_state(int(seed if seed is not None else extra.get("seed", 0)))
    guard = SafetyGuard(replace(guard_config, watch=()), rig.arms, rig.grippers)
    executor = ChunkExecutor(executor_config, guard)
    now = twin.now()
    guard.reset(now)
    for name, gripper in rig.grippers.items():
        guard.observe_gripper(name, gripper.read_state().opening)
    dt = 1.0 / ds.fps
    # Sent at the recorded frame times; the executor's latency compensation looks ahead as it would live.
    executor.submit(CommandChunk(actions, t0=now, dt=dt), now)
    tick = 1.0 / executor_config.command_hz
    measured = {arm: [] for arm in ARM_NAMES}
    before = dict(guard.counters)
    t_next_tick = now
    for k in range(len(actions)):
        t_frame = now + k * dt
        while t_next_tick <= t_frame + 1e-9:
            if t_next_tick > twin.now():
                twin.step(t_next_tick - twin.now())
            executor.tick(twin.now())
            t_next_tick += tick
        if t_frame > twin.now():
            twin.step(t_frame - twin.now())
        for arm in ARM_NAMES:
            measured[arm].append(twin.tcp_pose_base(arm))
    reproduction, tracking = {}, {}
    for i, arm in enumerate(ARM_NAMES):
        m = np.stack(measured[arm])
        reproduction[arm] = _errors(m, states[:, _pose_columns(arm)])
        tracking[arm] = _errors(m, actions[:, i, :7])
    interventions = {k: int(v - before.get(k, 0)) for k, v in guard.counters.items()
                     if v - before.get(k, 0) > 0 and k != "reset"}
    success = bool(twin.task_success()) if twin.task is not None else None
    return ReplayReport(ep, len(actions), reproduction, tracking, interventions, success)


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
