"""One unit of shadow work: the observation at a chunk start and the chunk the executor runs, and its
conversion to the world model's 10 fps actions (with the one conversion, `worldmodel.actions`).

Downsampling: model frame k (k = 1..H) is at t_obs + k / fps. Its pose is the chunk's 30 Hz target due
`command_offset_steps` steps before that time (the `action_source: command` convention of the training
data, worldmodel/data/clips.py), taken by capture time, not by index: the step nearest to
t_obs + k / fps - offset * dt. Past the end of the chunk the executor holds the last target, so does this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, POSE_DIM
from rig.schema import CommandChunk, Observation
from worldmodel.actions import command_chunk_to_actions


class ShadowWorkError(ValueError):
    """Shadow work that cannot be predicted; the message names the field, the value and what was expected."""


@dataclass
class ShadowWork:
    """Conditioning images per camera at capture time `t_obs`, the state there, and the executed chunk."""

    seq: int
    t_obs: float
    images: dict[str, NDArray[np.uint8]]
    current: NDArray[np.float64]
    """(2, 8): measured pose (7) and gripper opening (1) per arm at t_obs."""
    targets: NDArray[np.float64]
    """(N, 2, 8): absolute targets, step i due at t0 + i * dt."""
    t0: float
    dt: float

    def __post_init__(self) -> None:
        self.current = np.asarray(self.current, dtype=np.float64)
        self.targets = np.asarray(self.targets, dtype=np.float64)
        if self.current.shape != (len(ARM_NAMES), COMMAND_DIM):
            raise ShadowWorkError(f"work {self.seq}: current shape {self.current.shape}, expected (2, 8)")
        if self.targets.ndim != 3 or self.targets.shape[1:] != (len(ARM_NAMES), COMMAND_DIM) or not len(self.targets):
            raise ShadowWorkError(f"work {self.seq}: targets shape {self.targets.shape}, expected (N>=1, 2, 8)")
        if not self.dt > 0:
            raise ShadowWorkError(f"work {self.seq}: dt {self.dt}, expected a positive step period")
        if not self.images:
            raise ShadowWorkError(f"work {self.seq}: no images")
        for cam, img in self.images.items():
            if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
                raise ShadowWorkError(f"work {self.seq}: images[{cam!r}] is not a uint8 (H, W, 3) RGB image")

    @classmethod
    def from_observation(cls, seq: int, obs: Observation, chunk: CommandChunk,
                         cameras: tuple[str, ...] | None = None) -> ShadowWork:
        """From the synchronized observation a chunk was planned on and the chunk handed to the executor."""
        cams = [c for c in (cameras or tuple(obs.frames)) if c in obs.frames]
        current = np.zeros((len(ARM_NAMES), COMMAND_DIM))
        for i, arm in enumerate(ARM_NAMES):
            current[i, :POSE_DIM] = obs.arms[arm].tcp_pose
            current[i, POSE_DIM] = obs.grippers[arm].opening if arm in obs.grippers else 1.0
        return cls(seq, float(obs.t), {c: obs.frames[c].color for c in cams}, current,
                   np.asarray(chunk.targets, dtype=np.float64), float(chunk.t0), float(chunk.dt))

    def frame_times(self, fps: float, horizon: int) -> NDArray[np.float64]:
        """Capture times of the predicted frames 0..horizon (frame 0 is the conditioning observation)."""
        return self.t_obs + np.arange(horizon + 1, dtype=np.float64) / fps

    def model_targets(self, fps: float, horizon: int, offset_steps: int) -> NDArray[np.float64]:
        """(horizon, 2, 8): the absolute target for each predicted frame 1..horizon (see the module doc)."""
        wanted = self.frame_times(fps, horizon)[1:] - offset_steps * self.dt
        index = np.rint((wanted - self.t0) / self.dt).astype(np.int64)
        if index[0] < 0:
            raise ShadowWorkError(
                f"work {self.seq}: chunk starts at t0={self.t0:.4f} s, after the first predicted frame's target time "
                f"{wanted[0]:.4f} s (observation at {self.t_obs:.4f} s); the chunk must start at its observation")
        return self.targets[np.minimum(index, len(self.targets) - 1)]

    def model_actions(self, fps: float, horizon: int, offset_steps: int) -> NDArray[np.float64]:
        """(horizon, 14) model actions from the state at t_obs through the downsampled targets."""
        return command_chunk_to_actions(self.current, self.model_targets(fps, horizon, offset_steps))

    # ------------------------------------------------------------------------------ wire (policy/wire.py)
    def to_wire(self) -> dict[str, Any]:
        return {"seq": self.seq, "t_obs": self.t_obs, "images": dict(self.images), "current": self.current,
                "targets": self.targets, "t0": self.t0, "dt": self.dt}

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> ShadowWork:
        try:
            images = body["images"]
            if not isinstance(images, Mapping):
                raise ShadowWorkError(f"work: field 'images' is a {type(images).__name__}, expected a map")
            return cls(int(body["seq"]), float(body["t_obs"]), {str(k): v for k, v in images.items()},
                       np.asarray(body["current"]), np.asarray(body["targets"]), float(body["t0"]), float(body["dt"]))
        except KeyError as exc:
            raise ShadowWorkError(f"work: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ShadowWorkError):
                raise
            raise ShadowWorkError(f"work: {exc}") from None
