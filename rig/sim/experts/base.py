"""The scripted-expert engine: a task script yields motion segments, the engine turns them into 30 Hz
absolute commands (per arm: pose in that arm's base frame, gripper opening) with configurable noise.

A script is a generator: it reads privileged simulator state (object poses) when the previous segment
has finished, so each segment is planned from where things actually are, like a closed-loop operator.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.config import ConfigError
from rig.conventions import ARM_NAMES, COMMAND_DIM, POLICY_HZ
from rig.rotations import angle_between
from rig.sim.experts.motion import RigEnv, blend, min_jerk, world_to_base, yaw_about_z
from rig.sim.tasks.base import cfg_float


@dataclass
class Segment:
    """One motion of one or both arms: new world TCP targets and/or gripper openings, over `duration`.

    An arm absent from `poses` holds its last commanded pose exactly (no new noise); absent from
    `openings` keeps its opening. `duration` None means: from the longest move at the expert's speed.
    `noise` False commands the pose exactly as given (for moves relative to a held object).
    """

    poses: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    openings: dict[str, float] = field(default_factory=dict)
    duration: float | None = None
    noise: bool = True


@dataclass(frozen=True)
class ExpertNoise:
    """Noise the expert adds: per-segment constant offsets (position, yaw) and per-step jitter."""

    pos: float
    yaw_deg: float
    jitter: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any], where: str) -> ExpertNoise:
        noise = cls(cfg_float(cfg, "pos_noise", where), cfg_float(cfg, "yaw_noise_deg", where),
                    cfg_float(cfg, "jitter", where))
        if min(noise.pos, noise.yaw_deg, noise.jitter) < 0:
            raise ConfigError(f"{where}: noise values must be >= 0, got {noise}")
        return noise


class ScriptedExpert(abc.ABC):
    """Base of the per-task experts: runs `script` and emits a `(2, 8)` command at every `act` call."""

    min_duration = 0.25
    """Shortest segment (s), so even tiny moves are smooth."""

    def __init__(self, task: Any, cfg: dict[str, Any], noise: ExpertNoise | None = None) -> None:
        self.task = task
        self.cfg = cfg
        self.where = f"tasks.yaml:{task.name}.expert"
        self.noise = noise if noise is not None else ExpertNoise.from_config(cfg, self.where)
        self.speed = cfg_float(cfg, "speed", self.where)
        self.angular_speed = cfg_float(cfg, "angular_speed", self.where)
        if self.speed <= 0 or self.angular_speed <= 0:
            raise ConfigError(f"{self.where}: speed and angular_speed must be > 0, got "
                              f"{self.speed}, {self.angular_speed}")
        self.dt = 1.0 / POLICY_HZ
        self._rng = np.random.default_rng(0)
        self._script: Iterator[Segment] | None = None
        self._done = False

    @abc.abstractmethod
    def script(self, env: RigEnv) -> Iterator[Segment]:
        """Yield the task's segments; runs lazily, so it may read the state between segments."""

    def param(self, key: str) -> float:
        """A number from this expert's config section."""
        return cfg_float(self.cfg, key, self.where)

    def reset(self, env: RigEnv, rng: np.random.Generator) -> None:
        """Start a new episode from the rig's current state."""
        self._rng = rng
        self._cmd = {arm: env.tcp_pose_world(arm).astype(np.float64) for arm in ARM_NAMES}
        self._open = {arm: 1.0 for arm in ARM_NAMES}
        self._script = self.script(env)
        self._done = False
        self._steps: list[tuple[dict[str, NDArray], dict[str, float]]] = []

    @property
    def done(self) -> bool:
        """True once the script has no more segments and the last generated step has been sent."""
        return self._done and not self._steps

    def commanded_pose(self, arm: str) -> NDArray[np.float64]:
        """The last world-frame TCP target sent to `arm` (without per-step jitter)."""
        return self._cmd[arm].copy()

    def _noisy(self, pose: NDArray[np.float64]) -> NDArray[np.float64]:
        out = pose.copy()
        out[:3] += self._rng.normal(0.0, self.noise.pos, 3) if self.noise.pos > 0 else 0.0
        if self.noise.yaw_deg > 0:
            out = yaw_about_z(out, np.deg2rad(self._rng.normal(0.0, self.noise.yaw_deg)))
        return out

    def _expand(self, seg: Segment) -> None:
        start = {arm: self._cmd[arm].copy() for arm in ARM_NAMES}
        goal = dict(start)
        for arm, pose in seg.poses.items():
            goal[arm] = self._noisy(np.asarray(pose, float)) if seg.noise else np.asarray(pose, float)
        duration = seg.duration
        if duration is None:
            dist = max(float(np.linalg.norm(goal[a][:3] - start[a][:3])) for a in ARM_NAMES)
            turn = max(float(angle_between(goal[a][3:], start[a][3:])) for a in ARM_NAMES)
            duration = max(dist / self.speed, turn / self.angular_speed)
        n = max(1, int(np.ceil(max(duration, self.min_duration) / self.dt)))
        open0 = dict(self._open)
        open1 = {**open0, **{a: float(np.clip(v, 0.0, 1.0)) for a, v in seg.openings.items()}}
        for k in range(1, n + 1):
            s = min_jerk(k / n)
            poses = {a: blend(start[a], goal[a], s) for a in ARM_NAMES}
            openings = {a: (1.0 - s) * open0[a] + s * open1[a] for a in ARM_NAMES}
            self._steps.append((poses, openings))
        self._cmd, self._open = goal, open1

    def act(self, env: RigEnv) -> NDArray[np.float64]:
        """The next `(2, 8)` command: per arm [pose in its base frame (7), gripper opening]."""
        if self._script is None:
            raise RuntimeError("ScriptedExpert.act called before reset")
        while not self._steps and not self._done:
            try:
                self._expand(next(self._script))
            except StopIteration:
                self._done = True
        if self._steps:
            poses, openings = self._steps.pop(0)
        else:
            poses, openings = self._cmd, self._open
        out = np.zeros((len(ARM_NAMES), COMMAND_DIM))
        for i, arm in enumerate(ARM_NAMES):
            pose = poses[arm].copy()
            if self.noise.jitter > 0:
                pose[:3] += self._rng.normal(0.0, self.noise.jitter, 3)
            out[i, :7] = world_to_base(env, arm, pose)
            out[i, 7] = openings[arm]
        return out

    def wait(self, seconds: float) -> Segment:
        """A segment that holds everything for `seconds`."""
        return Segment(duration=seconds)
