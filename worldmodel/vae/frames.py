"""Frames of LeRobot recordings for VAE training: every camera's strided frames, resized, held in memory,
cut into short clips (1 + 4k frames, the causal VAE's rule) for training batches and held-out evaluation.

One "video" is one camera of one episode. Training clips are drawn uniformly over every valid clip start
of every video (a long episode gives more clips), optionally cropped to a random window (same window on
every frame of the clip): the VAE is fully convolutional, so training on crops at the full-frame scale
teaches the same filters at a fraction of the cost per step, and evaluation runs on full frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from worldmodel.data.clips import DataError
from worldmodel.data.dataset import resize_frames
from worldmodel.data.source import RecordingSource


@dataclass(frozen=True)
class FrameVideo:
    """One camera of one episode: strided frames (T, H, W, 3) uint8 at the training resolution."""

    dataset: str
    episode: int
    camera: str
    frames: NDArray[np.uint8]


def load_videos(sources: Sequence[RecordingSource], cameras: Sequence[str], resolution: tuple[int, int],
                frame_stride: int, episodes: Sequence[Sequence[int]] | None = None,
                progress: bool = False, desc: str = "frames") -> list[FrameVideo]:
    """Decode every `frame_stride`-th frame of each episode (all, or `episodes[i]` of source i) and camera."""
    from tqdm import tqdm

    jobs = [(s, ep) for i, s in enumerate(sources)
            for ep in (range(s.num_episodes) if episodes is None else episodes[i])]
    out: list[FrameVideo] = []
    for src, ep in tqdm(jobs, desc=desc, unit="ep", disable=not progress, dynamic_ncols=True):
        src.check_cameras(cameras)
        decoded = src.episode_frames(int(ep), list(cameras), frame_stride)
        for cam in cameras:
            out.append(FrameVideo(src.name, int(ep), cam, resize_frames(decoded[cam], resolution)))
    return out


class FrameClips:
    """Random and fixed clips of `clip_frames` consecutive (strided) frames from a set of videos."""

    def __init__(self, videos: Sequence[FrameVideo], clip_frames: int, where: str = "data") -> None:
        if clip_frames < 1 or (clip_frames - 1) % 4:
            raise DataError(f"{where}: clip_frames={clip_frames}, expected 1 + 4k (the causal VAE's frame rule)")
        self.clip_frames = clip_frames
        self.videos = [v for v in videos if v.frames.shape[0] >= clip_frames]
        if not self.videos:
            lengths = sorted({v.frames.shape[0] for v in videos})
            raise DataError(f"{where}: no video has {clip_frames} strided frames (lengths {lengths})")
        starts = np.array([v.frames.shape[0] - clip_frames + 1 for v in self.videos], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(starts)])

    @property
    def num_clips(self) -> int:
        """Distinct clip starts over all videos."""
        return int(self._offsets[-1])

    @property
    def cameras(self) -> list[str]:
        return sorted({v.camera for v in self.videos})

    def _clip(self, index: int) -> tuple[FrameVideo, NDArray[np.uint8]]:
        v = int(np.searchsorted(self._offsets, index, side="right")) - 1
        video = self.videos[v]
        start = index - int(self._offsets[v])
        return video, video.frames[start:start + self.clip_frames]

    def sample(self, batch: int, rng: np.random.Generator, crop: tuple[int, int] | None = None) -> NDArray[np.uint8]:
        """(batch, clip_frames, h, w, 3) uint8: clips drawn uniformly over all starts, randomly cropped."""
        clips = []
        for index in rng.integers(0, self.num_clips, size=batch):
            _, clip = self._clip(int(index))
            if crop is not None:
                ch, cw = crop
                h, w = clip.shape[1:3]
                if ch > h or cw > w:
                    raise DataError(f"crop {list(crop)} is larger than the frames ({h}x{w})")
                y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                clip = clip[:, y:y + ch, x:x + cw]
            clips.append(clip)
        return np.ascontiguousarray(np.stack(clips))

    def fixed(self, per_camera: int) -> dict[str, NDArray[np.uint8]]:
        """{camera: (n, clip_frames, H, W, 3)}: up to `per_camera` full-frame clips per camera, evenly
        spread over that camera's clip starts (the same clips on every call)."""
        out: dict[str, NDArray[np.uint8]] = {}
        for cam in self.cameras:
            indices = [i for i in range(self.num_clips) if self._clip(i)[0].camera == cam]
            take = np.linspace(0, len(indices) - 1, num=min(per_camera, len(indices))).round().astype(int)
            out[cam] = np.stack([self._clip(indices[int(t)])[1] for t in np.unique(take)])
        return out
