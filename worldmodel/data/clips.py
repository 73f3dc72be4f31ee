"""Clip geometry and clip actions: which 30 Hz frames make a 1 + 20 frame clip at 10 fps, and the 20
model actions that go with it, computed with `worldmodel.actions` (the one pose<->action conversion).

A clip starting at source frame `s` covers frames s, s + stride, ..., s + (clip_frames - 1) * stride.
Action k (k = 0..19) moves from clip frame k to clip frame k + 1:
- `action_source: state` (the release's `actions_from_absolute_states`): the measured TCP poses and
  gripper openings (`observation.state`) at clip frames k and k + 1.
- `action_source: command`: the pose at clip frame 0 is measured; the pose "at" clip frame k + 1 is the
  absolute target commanded one 30 Hz step before it (`action` of source frame s + (k + 1) * stride - 1),
  i.e. what the controller was asked to reach at that frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, POSE_DIM
from worldmodel.actions import poses_to_actions

ACTION_SOURCES = ("state", "command")
STATE_PER_ARM = 15
"""`observation.state` per arm: tcp pose (7), gripper opening (1), joints (7) (rig/dataformats/lerobot_v3.py)."""


class DataError(ValueError):
    """Bad training data or data settings; the message names the dataset/file, field, value and expectation."""


@dataclass(frozen=True)
class ClipConfig:
    """How clips are cut: `clip_frames` strided frames, every `frame_stride`-th source frame, clip starts
    `clip_hop` strided frames apart, actions from `action_source` (state or command)."""

    clip_frames: int = 21
    frame_stride: int = 3
    clip_hop: int = 10
    action_source: str = "state"

    def __post_init__(self) -> None:
        if self.clip_frames < 2 or (self.clip_frames - 1) % 4:
            raise DataError(f"clip_frames={self.clip_frames}: expected 1 + 4k >= 5 (the causal VAE's frame rule)")
        for name in ("frame_stride", "clip_hop"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise DataError(f"{name}={value!r}: expected a positive integer")
        if self.action_source not in ACTION_SOURCES:
            raise DataError(f"action_source={self.action_source!r}: expected one of {ACTION_SOURCES}")

    @property
    def num_actions(self) -> int:
        return self.clip_frames - 1

    @property
    def span(self) -> int:
        """Source frames from a clip's first to its last frame, inclusive."""
        return (self.clip_frames - 1) * self.frame_stride + 1


@dataclass(frozen=True)
class ClipRef:
    """One clip: dataset index (in a mix), episode index and first source frame (30 Hz numbering)."""

    dataset: int
    episode: int
    start: int


def clip_starts(length: int, cfg: ClipConfig) -> list[int]:
    """First source frames of the full clips of an episode with `length` frames (a shorter tail is unused).

    Same starts as `worldmodel.vae.cache` with `clip_hop` in strided frames."""
    return list(range(0, length - cfg.span + 1, cfg.clip_hop * cfg.frame_stride)) if length >= cfg.span else []


def clip_frame_indices(start: int, cfg: ClipConfig) -> NDArray[np.int64]:
    """Source frame indices (within the episode) of the clip starting at `start`."""
    return start + np.arange(cfg.clip_frames, dtype=np.int64) * cfg.frame_stride


def _arm_poses(values: NDArray, per_arm: int) -> tuple[NDArray, NDArray]:
    """(N, arms * per_arm) rows -> poses (N, arms, 7) and gripper openings (N, arms)."""
    arr = values.reshape(values.shape[0], len(ARM_NAMES), per_arm)
    return arr[..., :POSE_DIM], arr[..., POSE_DIM]


def clip_actions(state: NDArray, command: NDArray | None, start: int, cfg: ClipConfig,
                 where: str = "episode") -> NDArray[np.float64]:
    """The clip's model actions (clip_frames - 1, 14) from an episode's `observation.state` (L, 30) and
    `action` (L, 16) columns. `where` names the episode in errors."""
    idx = clip_frame_indices(start, cfg)
    if start < 0 or idx[-1] >= state.shape[0]:
        raise DataError(f"{where}: clip at frame {start} needs frames up to {idx[-1]}, episode has {state.shape[0]}")
    return frame_actions(state, command, idx, cfg.action_source, where)


def frame_actions(state: NDArray, command: NDArray | None, idx: NDArray[np.int64], action_source: str,
                  where: str = "episode") -> NDArray[np.float64]:
    """Model actions (len(idx) - 1, 14) between the episode frames `idx` (increasing, inside the episode)."""
    if state.ndim != 2 or state.shape[1] != STATE_PER_ARM * len(ARM_NAMES):
        raise DataError(f"{where}: observation.state shape {state.shape}, "
                        f"expected (L, {STATE_PER_ARM * len(ARM_NAMES)})")
    poses, grippers = _arm_poses(state[idx], STATE_PER_ARM)
    if action_source == "command":
        if command is None or command.ndim != 2 or command.shape[1] != COMMAND_DIM * len(ARM_NAMES):
            shape = None if command is None else command.shape
            raise DataError(f"{where}: action column shape {shape}, expected (L, {COMMAND_DIM * len(ARM_NAMES)}) "
                            "for action_source=command")
        cmd_poses, cmd_grippers = _arm_poses(command[idx[1:] - 1], COMMAND_DIM)
        poses = np.concatenate([poses[:1], cmd_poses])
        grippers = np.concatenate([grippers[:1], cmd_grippers])
    return poses_to_actions(poses, grippers)
