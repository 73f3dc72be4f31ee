"""One recorded dataset as a source of training clips: its episodes, clip actions, action statistics and
decoded frames, on top of `rig.dataformats.lerobot_v3.LeRobotV3Dataset` (our recorder's output)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rig.dataformats.lerobot_v3 import DatasetError, LeRobotV3Dataset
from worldmodel.actions import NORMALIZATION_KINDS, ActionStats
from worldmodel.data.clips import ClipConfig, DataError, clip_actions, clip_starts, frame_actions


def resolve_dataset_root(root: str | os.PathLike[str]) -> Path:
    """A LeRobot v3 dataset directory: `root` itself or `root/lerobot` (an `a2world collect` / recorder root)."""
    path = Path(root).expanduser()
    for candidate in (path, path / "lerobot"):
        if (candidate / "meta" / "info.json").is_file():
            return candidate
    raise DataError(f"data root {str(root)!r}: no meta/info.json in it or in its lerobot/ folder "
                    "(expected a LeRobot v3.0 dataset, e.g. the --out of `a2world collect`)")


def _default_name(dataset_root: Path) -> str:
    return dataset_root.parent.name if dataset_root.name == "lerobot" else dataset_root.name


class RecordingSource:
    """Clips, actions and frames of one LeRobot v3 dataset (read once; frames decoded on request)."""

    def __init__(self, root: str | os.PathLike[str], name: str | None = None) -> None:
        self.root = resolve_dataset_root(root)
        self.name = name or _default_name(self.root)
        try:
            self.dataset = LeRobotV3Dataset(self.root)
            self._state = np.asarray(self.dataset.data("observation.state"), dtype=np.float64)
            self._command = np.asarray(self.dataset.data("action"), dtype=np.float64)
        except DatasetError as exc:
            raise DataError(f"dataset {self.name!r} ({self.root}): {exc}") from None

    @property
    def cameras(self) -> list[str]:
        return list(self.dataset.cameras)

    @property
    def fps(self) -> int:
        return self.dataset.fps

    @property
    def num_episodes(self) -> int:
        return self.dataset.num_episodes

    @property
    def tasks(self) -> list[str]:
        """The distinct task instructions of the recorded episodes, in first-seen order."""
        return list(dict.fromkeys(self.episode_task(ep) for ep in range(self.num_episodes)))

    def episode_task(self, ep: int) -> str:
        return self.dataset.episode_task(ep)

    def episode_length(self, ep: int) -> int:
        start, stop = self.dataset.episode_index_range(ep)
        return stop - start

    def check_cameras(self, cameras: Sequence[str]) -> None:
        missing = [c for c in cameras if c not in self.cameras]
        if missing:
            raise DataError(f"dataset {self.name!r} ({self.root}): cameras {missing} not recorded "
                            f"(it has {self.cameras}); set data.cameras accordingly")

    def clips(self, cfg: ClipConfig) -> list[tuple[int, int]]:
        """(episode, first source frame) of every full clip in the dataset."""
        return [(ep, s) for ep in range(self.num_episodes) for s in clip_starts(self.episode_length(ep), cfg)]

    def actions(self, ep: int, start: int, cfg: ClipConfig) -> NDArray[np.float64]:
        """Model actions (clip_frames - 1, 14) of the clip of episode `ep` starting at source frame `start`."""
        a, b = self.dataset.episode_index_range(ep)
        return clip_actions(self._state[a:b], self._command[a:b], start, cfg,
                            where=f"dataset {self.name!r} episode {ep}")

    def episode_actions(self, ep: int, frame_stride: int, action_source: str = "state") -> NDArray[np.float64]:
        """Model actions between consecutive strided frames (0, s, 2s, ...) of a whole episode: (n - 1, 14)."""
        a, b = self.dataset.episode_index_range(ep)
        idx = np.arange(0, b - a, frame_stride, dtype=np.int64)
        if idx.size < 2:
            return np.zeros((0, 14))
        return frame_actions(self._state[a:b], self._command[a:b], idx, action_source,
                             where=f"dataset {self.name!r} episode {ep}")

    def fit_stats(self, cfg: ClipConfig, kind: str) -> ActionStats:
        """Normalisation statistics of this dataset's clip actions (`identity` or `meanstd`)."""
        if kind not in NORMALIZATION_KINDS:
            raise DataError(f"data.normalization={kind!r}: expected one of {NORMALIZATION_KINDS}")
        if kind == "identity":
            return ActionStats.identity(self.name)
        clips = self.clips(cfg)
        if not clips:
            raise DataError(f"dataset {self.name!r}: no episode has a full clip of {cfg.span} frames")
        return ActionStats.fit(self.name, np.concatenate([self.actions(ep, s, cfg) for ep, s in clips]))

    def frames(self, ep: int, camera: str, indices: Sequence[int]) -> NDArray[np.uint8]:
        """Decoded RGB frames (K, H, W, 3) of one camera at episode frame `indices`."""
        return self.dataset.video_frames(ep, camera, [int(i) for i in indices])

    def episode_frames(self, ep: int, cameras: Sequence[str], stride: int) -> Mapping[str, np.ndarray]:
        """Every `stride`-th frame of an episode per camera, uint8 (T, H, W, 3); the reader interface of
        `worldmodel.vae.cache.encode_dataset_to_cache`."""
        keys = {cam: f"observation.images.{cam}" for cam in cameras}
        out: dict[str, list[np.ndarray]] = {cam: [] for cam in cameras}
        for row in self.dataset.episode_frames(ep, list(cameras), stride):
            for cam, key in keys.items():
                out[cam].append(row[key])
        return {cam: np.stack(frames) for cam, frames in out.items()}
