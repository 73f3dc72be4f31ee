"""Training clips for the policy from LeRobot v3.0 datasets (`rig.dataformats.lerobot_v3`).

A clip starting at frame s of an episode holds: the observation images of every configured camera at s
and the future frames s + k * (fps / video_fps) (k < pixel_frames; 10 fps video), the TCP/gripper state
at s (2, 8), the next `action_horizon` absolute commands `action[s:s+60]` (30 Hz) converted to the
policy's representation (relative to the state at s), and the episode's instruction. Past an episode's
end the last frame and the last command repeat (the robot holds). Clips start every `sample_stride`
frames, a multiple of the video stride, so only 10 fps frames are decoded and kept (resized) in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from policy.action_repr import chunk_to_relative
from policy.config import PolicyConfig
from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.dataformats.lerobot_v3 import STATE_FIELDS, DatasetError, LeRobotV3Dataset, image_key

STATE_PER_ARM = len(STATE_FIELDS)


def resize(image: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 -> (size[0], size[1], 3), area interpolation."""
    import cv2

    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def state_from_observation(row: NDArray) -> NDArray[np.float64]:
    """`observation.state` (30,) -> (2, 8) TCP pose + gripper opening per arm."""
    s = np.asarray(row, dtype=np.float64).reshape(len(ARM_NAMES), STATE_PER_ARM)
    return s[:, :COMMAND_DIM].copy()


@dataclass
class Episode:
    """One episode in memory: 10 fps frames per camera (n10, H, W, 3), states and commands at 30 Hz."""

    frames: dict[str, NDArray[np.uint8]]
    states: NDArray[np.float64]
    commands: NDArray[np.float64]
    instruction: str


@dataclass
class Clip:
    """One training sample (numpy)."""

    images: NDArray[np.uint8]
    state: NDArray[np.float64]
    actions: NDArray[np.float64]
    instruction: str


class PolicyClipDataset:
    """Clips of LeRobot v3.0 datasets for one policy config; `episodes` selects (root, episode) pairs."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]], config: PolicyConfig,
                 episodes: Sequence[tuple[int, int]] | None = None, sample_stride: int | None = None) -> None:
        p = config.policy
        self.config = config
        self.datasets = open_datasets(roots, config)
        self.video_stride = p.action_hz // p.video_fps
        stride = sample_stride or config.train.sample_stride
        if stride % self.video_stride:
            raise DatasetError(f"train.sample_stride {stride} is not a multiple of the video stride "
                               f"{self.video_stride}")
        if episodes is None:
            episodes = [(d, e) for d, ds in enumerate(self.datasets) for e in range(ds.num_episodes)]
        from tqdm import tqdm

        self.episodes: list[Episode] = [self._load(d, e) for d, e in tqdm(
            episodes, desc="decode episodes", unit="ep", dynamic_ncols=True, leave=False, mininterval=1.0)]
        self.samples = [(k, s) for k, ep in enumerate(self.episodes) for s in range(0, len(ep.states), stride)]
        if not self.samples:
            raise DatasetError(f"{[str(d.root) for d in self.datasets]}: no clips in the selected episodes")

    def _load(self, d: int, ep: int) -> Episode:
        ds = self.datasets[d]
        start, stop = ds.episode_index_range(ep)
        states = np.stack([state_from_observation(r) for r in ds.data("observation.state")[start:stop]])
        commands = np.asarray(ds.data("action")[start:stop], dtype=np.float64).reshape(-1, len(ARM_NAMES),
                                                                                      COMMAND_DIM)
        cams = list(self.config.policy.cameras)
        frames: dict[str, list[NDArray[np.uint8]]] = {c: [] for c in cams}
        for row in ds.episode_frames(ep, cams, stride=self.video_stride):
            for c in cams:
                frames[c].append(resize(row[image_key(c)], tuple(self.config.policy.image_size)))
        return Episode({c: np.stack(v) for c, v in frames.items()}, states, commands, ds.episode_task(ep))

    def __len__(self) -> int:
        return len(self.samples)

    def clip(self, index: int) -> Clip:
        k, s = self.samples[index]
        ep = self.episodes[k]
        p = self.config.policy
        fi = np.minimum(s // self.video_stride + np.arange(p.pixel_frames), len(ep.frames[p.cameras[0]]) - 1)
        images = np.stack([ep.frames[c][fi] for c in p.cameras])  # (V, F, H, W, 3)
        state, actions, instruction = self.targets(index)
        return Clip(images, state, actions, instruction)

    def start_seconds(self) -> NDArray[np.float64]:
        """(N,) each clip's start, seconds into its episode."""
        return np.array([s for _, s in self.samples], dtype=np.float64) / self.config.policy.action_hz

    def targets(self, index: int) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
        """A clip's (state (2, 8), relative actions (Ha, 14), instruction), without copying its images."""
        k, s = self.samples[index]
        ep = self.episodes[k]
        ai = np.minimum(s + np.arange(self.config.policy.action_horizon), len(ep.states) - 1)
        return ep.states[s], chunk_to_relative(ep.states[s], ep.commands[ai]), ep.instruction

    def all_relative_actions(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(relative action rows (N*60, 14), states (N, 2, 8)) over every clip (to fit the normaliser)."""
        rows = [self.targets(i) for i in range(len(self))]
        return np.concatenate([a for _, a, _ in rows]), np.stack([st for st, _, _ in rows])


def open_datasets(roots: Sequence[str | os.PathLike[str]], config: PolicyConfig) -> list[LeRobotV3Dataset]:
    """The LeRobot v3.0 datasets at `roots`, checked against the policy config (rate, cameras, episodes)
    without decoding any video; DatasetError names the root and what is wrong."""
    if not roots:
        raise DatasetError("no datasets given (pass --data DIR, a LeRobot v3.0 root)")
    p = config.policy
    out = []
    for root in roots:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetError(f"{path}: not a directory (expected a LeRobot v3.0 dataset root, "
                               "e.g. the DIR/lerobot of `a2world collect --out DIR`)")
        if not (path / "meta" / "info.json").is_file() and (path / "lerobot" / "meta" / "info.json").is_file():
            raise DatasetError(f"{path}: a recorder root; pass its LeRobot dataset {path / 'lerobot'}")
        try:
            ds = LeRobotV3Dataset(path)
        except DatasetError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: unreadable LeRobot v3.0 dataset ({type(exc).__name__}: {exc})") from None
        if ds.num_episodes == 0 or ds.num_frames == 0:
            raise DatasetError(f"{path}: no episodes recorded ({ds.num_episodes} episodes, {ds.num_frames} frames)")
        if ds.fps != p.action_hz:
            raise DatasetError(f"{path}: fps {ds.fps}, the policy expects {p.action_hz} Hz data")
        missing = [c for c in p.cameras if c not in ds.cameras]
        if missing:
            raise DatasetError(f"{path}: cameras {missing} missing (dataset has {ds.cameras}); "
                               f"set policy.cameras=[{','.join(ds.cameras)}] or record them")
        out.append(ds)
    return out


def split_episodes(roots: Sequence[str | os.PathLike[str]], val_episodes: int
                   ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train, held-out) (dataset, episode) pairs: the last `val_episodes` episodes of the last dataset
    are held out (none when that would leave no training episode)."""
    pairs = [(d, e) for d, r in enumerate(roots) for e in range(LeRobotV3Dataset(r).num_episodes)]
    if val_episodes <= 0 or val_episodes >= len(pairs):
        return pairs, []
    return pairs[:-val_episodes], pairs[-val_episodes:]


def check_training_inputs(config_name: str | os.PathLike[str], overrides: Sequence[str],
                          roots: Sequence[str | os.PathLike[str]]) -> PolicyConfig:
    """The training config (with its overrides) and the datasets, checked before anything heavy loads
    (no torch, no video decoding); raises ConfigError / DatasetError naming the value or the file."""
    from policy.config import load_policy_config

    config = load_policy_config(config_name, overrides)
    open_datasets(roots, config)
    return config
