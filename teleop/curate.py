"""Curation of recorded LeRobot v3.0 datasets: trim idle frames at the start and end of each episode, flag
long idle gaps inside it, and copy the episodes that pass the filters (success, length, no flagged gap)
into a new dataset.

A frame is idle when the command barely changes from the previous frame on both arms: position speed
below `idle_speed` (m/s), rotation speed below `idle_angular_speed` (rad/s) and gripper rate below
`idle_gripper_rate` (/s). Trimming keeps `margin_s` of idle frames on each side so the start and end
poses stay in the data. Kept episodes are re-encoded (their frames decoded from the source videos and
written with the recorder's video settings) and committed one by one with the dataset journal, so an
interrupted curation leaves a valid, shorter dataset.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.dataformats import atomic
from rig.dataformats import lerobot_v3 as lr
from rig.dataformats.video import VideoEncoder, VideoSettings
from rig.rotations import angle_between


@dataclass(frozen=True)
class CurateSettings:
    """Thresholds and filters (the `a2world data curate` flags)."""

    idle_speed: float = 0.005
    idle_angular_speed: float = 0.02
    idle_gripper_rate: float = 0.05
    margin_s: float = 0.2
    max_idle_gap_s: float = 2.0
    only_success: bool = True
    min_seconds: float = 0.5
    max_seconds: float = float("inf")
    drop_flagged: bool = False


@dataclass
class EpisodeVerdict:
    """What curation found and decided for one source episode."""

    episode: int
    frames: int
    start: int
    stop: int
    success: bool
    idle_gaps_s: list[float] = field(default_factory=list)
    flagged: bool = False
    kept: bool = False
    reason: str = ""
    new_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def idle_mask(actions: NDArray, fps: float, settings: CurateSettings) -> NDArray[np.bool_]:
    """(N,) True where the (N, 16) command rows did not move since the previous row (row 0: idle)."""
    cmd = np.asarray(actions, dtype=np.float64).reshape(len(actions), len(ARM_NAMES), COMMAND_DIM)
    idle = np.ones(len(cmd), dtype=bool)
    if len(cmd) < 2:
        return idle
    speed = np.linalg.norm(np.diff(cmd[:, :, :3], axis=0), axis=-1) * fps
    turn = angle_between(cmd[:-1, :, 3:7].reshape(-1, 4), cmd[1:, :, 3:7].reshape(-1, 4)).reshape(-1, len(ARM_NAMES))
    grip = np.abs(np.diff(cmd[:, :, 7], axis=0)) * fps
    moving = (speed >= settings.idle_speed) | (turn * fps >= settings.idle_angular_speed) | \
        (grip >= settings.idle_gripper_rate)
    idle[1:] = ~moving.any(axis=1)
    return idle


def judge_episode(index: int, actions: NDArray, success: bool, fps: float, settings: CurateSettings) -> EpisodeVerdict:
    """Trim range, idle gaps and the keep decision of one episode."""
    idle = idle_mask(actions, fps, settings)
    n = len(idle)
    active = np.flatnonzero(~idle)
    margin = round(settings.margin_s * fps)
    verdict = EpisodeVerdict(index, n, 0, 0, success)
    if active.size == 0:
        verdict.reason = "no motion"
        return verdict
    verdict.start = max(int(active[0]) - 1 - margin, 0)  # keep the frame the first motion starts from
    verdict.stop = min(int(active[-1]) + 1 + margin, n)
    run = 0
    for is_idle in idle[verdict.start:verdict.stop]:
        if is_idle:
            run += 1
            continue
        if run / fps > settings.max_idle_gap_s:
            verdict.idle_gaps_s.append(round(run / fps, 3))
        run = 0
    verdict.flagged = bool(verdict.idle_gaps_s)
    seconds = (verdict.stop - verdict.start) / fps
    if settings.only_success and not success:
        verdict.reason = "not successful"
    elif seconds < settings.min_seconds:
        verdict.reason = f"too short ({seconds:.2f} s < {settings.min_seconds} s)"
    elif seconds > settings.max_seconds:
        verdict.reason = f"too long ({seconds:.2f} s > {settings.max_seconds} s)"
    elif settings.drop_flagged and verdict.flagged:
        verdict.reason = f"idle gaps {verdict.idle_gaps_s} s longer than {settings.max_idle_gap_s} s"
    else:
        verdict.kept = True
    return verdict


def curate(source: Path, out: Path, settings: CurateSettings, video: VideoSettings | None = None,
           progress: Callable[[EpisodeVerdict], None] | None = None) -> list[EpisodeVerdict]:
    """Judge every episode of the LeRobot dataset at `source` and copy the kept ones, trimmed, to `out`."""
    ds = lr.LeRobotV3Dataset(source)
    if Path(out).resolve() == Path(source).resolve():
        raise lr.DatasetError(f"{out}: the curated dataset must go to a new directory, not the source")
    if (Path(out) / "meta" / "info.json").is_file():
        raise lr.DatasetError(f"{out}: already holds a dataset; curate into a new directory")
    video = video or VideoSettings()
    actions_all = np.asarray(ds.data("action"))
    states_all = np.asarray(ds.data("observation.state"))
    verdicts = []
    writer: lr.LeRobotV3Writer | None = None
    new_index = 0
    for e in range(ds.num_episodes):
        lo, hi = ds.episode_index_range(e)
        verdict = judge_episode(e, actions_all[lo:hi], ds.episode_success(e), ds.fps, settings)
        verdicts.append(verdict)
        if verdict.kept:
            if writer is None:
                shape = ds.features[lr.image_key(ds.cameras[0])]["shape"] if ds.cameras else [0, 0]
                writer = lr.LeRobotV3Writer(Path(out), ds.fps, ds.cameras, shape[0], shape[1],
                                            ds.info.get("robot_type") or "a2world_dual_rizon4s", video)
            _copy_episode(ds, e, verdict, writer, Path(out), states_all[lo:hi], actions_all[lo:hi], video, source)
            verdict.new_index = new_index
            new_index += 1
        if progress is not None:
            progress(verdict)
    return verdicts


def _copy_episode(ds: lr.LeRobotV3Dataset, e: int, verdict: EpisodeVerdict, writer: lr.LeRobotV3Writer,
                  out: Path, states: NDArray, actions: NDArray, video: VideoSettings, source: Path) -> None:
    staging = out / ".staging" / f"curate_{e:06d}"
    staging.mkdir(parents=True, exist_ok=True)
    indices = list(range(verdict.start, verdict.stop))
    videos, stats = {}, {}
    for cam in ds.cameras:
        frames = ds.video_frames(e, cam, indices)
        h, w = frames.shape[1:3]
        encoder = VideoEncoder(staging / f"{cam}.mp4", w, h, ds.fps, video)
        image_stats = lr.ImageStats()
        for rgb in frames:
            encoder.encode(rgb)
            image_stats.add(rgb)
        encoder.close()
        videos[cam], stats[cam] = staging / f"{cam}.mp4", image_stats.result()
    row = ds.episode(e)
    extra = json.loads(row["extra"]) if isinstance(row.get("extra"), str) else {}
    extra.update({"curated_from": str(source), "source_episode": e, "trim": [verdict.start, verdict.stop],
                  "idle_gaps_s": verdict.idle_gaps_s})
    data = lr.EpisodeData(task=ds.episode_task(e), state=states[verdict.start:verdict.stop].astype(np.float32),
                          action=actions[verdict.start:verdict.stop].astype(np.float32),
                          success=verdict.success, videos=videos, image_stats=stats, extra=extra)
    atomic.commit(out, writer.stage_episode(data, tag=f"cur{e}"))
    shutil.rmtree(staging, ignore_errors=True)


def resolve_lerobot_root(path: Path) -> Path:
    """A LeRobot dataset root given it or a recorder root holding `lerobot/`."""
    path = Path(path)
    if (path / "meta" / "info.json").is_file():
        return path
    if (path / "lerobot" / "meta" / "info.json").is_file():
        return path / "lerobot"
    raise lr.DatasetError(f"{path}: no LeRobot dataset (meta/info.json or lerobot/meta/info.json)")
