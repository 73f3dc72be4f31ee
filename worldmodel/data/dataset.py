"""Torch datasets of world-model clips: one recorded dataset (`ClipDataset`, pixels or cached latents)
and several mixed (`MixedClipDataset`, indexed so a batch sampler can keep each batch in one dataset).

An item is a dict:
- `actions`: float32 (clip_frames - 1, 14), normalised with the dataset's `ActionStats`;
- `view_ids`: int64 (V,), the model view id of each camera (rig mapping wrist_left=0, wrist_right=1, front=2);
- `pixels`: uint8 (V, clip_frames, H, W, 3) at the model resolution, or `latents`: float32 (V, C, n, h, w);
- `dataset`: int, the dataset's index in the mix (0 for a single dataset).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from rig.conventions import VIEW_IDS
from worldmodel.actions import ActionStats
from worldmodel.data.clips import ClipConfig, ClipRef, DataError, clip_frame_indices
from worldmodel.data.source import RecordingSource


def resize_frames(frames: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """uint8 (T, H, W, 3) -> (T, h, w, 3) with cv2 INTER_AREA (as the A2World rollout resizes)."""
    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def view_id_list(cameras: Sequence[str], view_ids: Mapping[str, int]) -> list[int]:
    missing = [c for c in cameras if c not in view_ids]
    if missing:
        raise DataError(f"cameras {missing} have no view id (data.view_ids: {dict(view_ids)})")
    ids = [int(view_ids[c]) for c in cameras]
    if len(set(ids)) != len(ids):
        raise DataError(f"cameras {list(cameras)} map to repeated view ids {ids}; each view needs its own id")
    return ids


class ClipDataset(Dataset):
    """Clips of one recorded dataset; pixels decoded from its videos, or latents read from a VAE cache."""

    def __init__(self, source: RecordingSource, clip: ClipConfig, cameras: Sequence[str], stats: ActionStats,
                 resolution: tuple[int, int], view_ids: Mapping[str, int] | None = None,
                 latent_cache: str | os.PathLike[str] | None = None, preload: bool = True,
                 index: int = 0) -> None:
        source.check_cameras(cameras)
        self.source, self.clip, self.stats, self.index = source, clip, stats, index
        self.cameras = list(cameras)
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.view_ids = torch.tensor(view_id_list(self.cameras, view_ids or VIEW_IDS), dtype=torch.long)
        self.preload = preload
        self.cache = None
        if latent_cache is not None:
            from worldmodel.vae.cache import LatentCache

            self.cache = LatentCache(latent_cache)
            self._check_cache()
            refs = [(ep, s) for ep in self.cache.episodes()
                    for s in sorted(set.intersection(*(set(self.cache.clip_starts(ep, c)) for c in self.cameras)))]
        else:
            refs = source.clips(clip)
        if not refs:
            raise DataError(f"dataset {source.name!r} ({source.root}): no clip of {clip.clip_frames} frames at "
                            f"stride {clip.frame_stride} ({clip.span} source frames) in any episode")
        self.refs = [ClipRef(index, ep, s) for ep, s in refs]
        raw = np.stack([source.actions(r.episode, r.start, clip) for r in self.refs])
        self.raw_actions = raw
        self.actions = torch.from_numpy(stats.normalize(raw).astype(np.float32))
        self._frames: dict[int, dict[str, NDArray[np.uint8]]] = {}
        self._latents: dict[int, dict[str, dict[int, torch.Tensor]]] = {}

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def mode(self) -> str:
        return "latents" if self.cache is not None else "pixels"

    def _check_cache(self) -> None:
        assert self.cache is not None
        settings = self.cache.settings.get("cache", {})
        want = {"clip_frames": self.clip.clip_frames, "frame_stride": self.clip.frame_stride,
                "resize": list(self.resolution)}
        got = {k: settings.get(k) for k in want}
        if got != want:
            raise DataError(f"latent cache {self.cache.root}: built with {got}, training needs {want}")
        missing = [c for c in self.cameras if c not in self.cache.settings.get("cameras", [])]
        if missing:
            raise DataError(f"latent cache {self.cache.root}: cameras {missing} not cached "
                            f"(cached: {self.cache.settings.get('cameras')})")

    def __len__(self) -> int:
        return len(self.refs)

    def _pixels(self, ref: ClipRef) -> NDArray[np.uint8]:
        if not self.preload:
            idx = clip_frame_indices(ref.start, self.clip)
            return np.stack([resize_frames(self.source.frames(ref.episode, c, idx), self.resolution)
                             for c in self.cameras])
        if ref.episode not in self._frames:
            decoded = self.source.episode_frames(ref.episode, self.cameras, self.clip.frame_stride)
            self._frames[ref.episode] = {c: resize_frames(v, self.resolution) for c, v in decoded.items()}
        first = ref.start // self.clip.frame_stride
        return np.stack([self._frames[ref.episode][c][first:first + self.clip.clip_frames] for c in self.cameras])

    def _latent(self, ref: ClipRef) -> torch.Tensor:
        assert self.cache is not None
        if ref.episode not in self._latents:
            self._latents[ref.episode] = self.cache.load_episode(ref.episode)
        per_cam = self._latents[ref.episode]
        return torch.stack([per_cam[c][ref.start] for c in self.cameras]).float()

    def __getitem__(self, i: int) -> dict[str, Any]:
        ref = self.refs[i]
        item: dict[str, Any] = {"actions": self.actions[i], "view_ids": self.view_ids, "dataset": self.index}
        if self.cache is not None:
            item["latents"] = self._latent(ref)
        else:
            item["pixels"] = torch.from_numpy(np.ascontiguousarray(self._pixels(ref)))
        return item


class MixedClipDataset(Dataset):
    """Several `ClipDataset`s behind one index: dataset d owns global indices offsets[d]..offsets[d+1]-1."""

    def __init__(self, datasets: Sequence[ClipDataset]) -> None:
        if not datasets:
            raise DataError("no datasets to mix (data.roots is empty)")
        self.datasets = list(datasets)
        for d, ds in enumerate(self.datasets):
            ds.index = d
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets]).tolist()

    @property
    def sizes(self) -> list[int]:
        return [len(d) for d in self.datasets]

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"clip {i} outside 0..{len(self) - 1}")
        d = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return d, i - self.offsets[d]

    def __getitem__(self, i: int) -> dict[str, Any]:
        d, j = self.locate(int(i))
        item = self.datasets[d][j]
        item["dataset"] = d
        return item


def collate_clips(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack items of ONE dataset into a batch (dataset-consistent batching guarantees equal view sets)."""
    datasets = {int(it["dataset"]) for it in items}
    if len(datasets) != 1:
        raise DataError(f"batch mixes datasets {sorted(datasets)}; use DatasetConsistentBatchSampler")
    out: dict[str, Any] = {"dataset": datasets.pop()}
    for key in ("actions", "view_ids", "pixels", "latents"):
        if key in items[0]:
            out[key] = torch.stack([it[key] for it in items])
    return out


def latent_cache_dir(cache_root: str | os.PathLike[str], name: str) -> Path:
    """Where the latent cache of dataset `name` lives under `data.latent_cache`."""
    return Path(cache_root).expanduser() / name
