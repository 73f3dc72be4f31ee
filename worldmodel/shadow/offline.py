"""Offline shadow: replay a recorded episode through the world model, chunk by chunk, as a live run would.

Chunk starts are `every_s` apart from the episode start (a live policy re-plans about every second; the
default 2 s gives one prediction per stretch of the timeline). All real frames are known up front, so
every prediction is scored. `mirror_motion` makes a deliberately wrong action stream (the same motion in
the opposite direction) for checking that the divergence signal fires.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from rig.conventions import POSE_DIM
from worldmodel.shadow.divergence import DivergenceDetector
from worldmodel.shadow.engine import ShadowEngine, ShadowResult
from worldmodel.shadow.frames import RealFrameBuffer
from worldmodel.shadow.replay import RecordedEpisode, ReplayError
from worldmodel.shadow.work import ShadowWork

WorkTransform = Callable[[ShadowWork], ShadowWork]


def mirror_motion(work: ShadowWork) -> ShadowWork:
    """The chunk's position changes reflected through the current position (orientation and gripper kept)."""
    targets = work.targets.copy()
    targets[..., :3] = 2 * work.current[None, :, :3] - targets[..., :3]
    return ShadowWork(work.seq, work.t_obs, work.images, work.current, targets, work.t0, work.dt)


def chunk_starts(episode: RecordedEpisode, every_s: float, horizon_s: float) -> np.ndarray:
    last = episode.end - horizon_s
    if last < episode.start:
        raise ReplayError(f"{episode.source}: {episode.end - episode.start:.2f} s long, shorter than one "
                          f"{horizon_s:.1f} s prediction")
    return np.arange(episode.start, last + 1e-9, every_s)


def replay_episode(engine: ShadowEngine, episode: RecordedEpisode, every_s: float = 2.0,
                   transform: WorkTransform | None = None, detector: DivergenceDetector | None = None,
                   progress: bool = True) -> list[ShadowResult]:
    """Predict and score every chunk start of `episode`; divergence state goes into each result."""
    buffer = RealFrameBuffer(keep_s=1e9)
    for cam in episode.cameras:
        for t, frame in zip(episode.frame_times[cam], episode.frames[cam]):
            buffer.add(cam, float(t), frame)
    horizon_s = engine.config.horizon_frames / engine.fps
    starts = chunk_starts(episode, every_s, horizon_s)
    detector = detector or DivergenceDetector(engine.config.divergence)
    results = []
    for seq, t in enumerate(tqdm(starts, desc="shadow replay", unit="chunk", disable=not progress)):
        work = episode.work(seq, float(t))
        if transform is not None:
            work = transform(work)
        result = engine.score(engine.predict(work), buffer)
        fired = detector.update(*result.series_mean(engine.config.divergence.metric))
        result.divergence = {**detector.state(), "fired": [e.message() for e in fired]}
        results.append(result)
    return results


def episode_pose_span(episode: RecordedEpisode) -> float:
    """Largest tool displacement in the episode (m): tells whether a replay has motion to score."""
    pos = episode.states[..., :POSE_DIM][..., :3]
    return float(np.linalg.norm(pos - pos[:1], axis=-1).max())
