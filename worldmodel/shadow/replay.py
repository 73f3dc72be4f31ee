"""A recorded episode as the shadow predictor sees a live run: frames by capture time, states and the
executed commands, read from our LeRobot v3 dataset or a rosbag2 MCAP episode bag.

LeRobot rows carry `timestamp` (frame index / fps), `observation.state` and `action` (the command in
force at the frame). A bag carries the capture stamps of every image (header stamps), arm and gripper
states, and the recorded commands on `/recorded/command/*`. Frames are resized to the model resolution
while reading (cv2 INTER_AREA), so a long full-size episode fits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, POSE_DIM
from worldmodel.shadow.work import ShadowWork


class ReplayError(ValueError):
    """A recording that cannot be replayed; the message names the file, episode or topic."""


def _shrink(image: NDArray[np.uint8], size: tuple[int, int] | None) -> NDArray[np.uint8]:
    if size is None or image.shape[:2] == tuple(size):
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


@dataclass
class RecordedEpisode:
    """Per camera: capture times (N,) and frames (N, h, w, 3); states and commands (M, 2, 8) with times."""

    source: str
    frame_times: dict[str, NDArray[np.float64]]
    frames: dict[str, NDArray[np.uint8]]
    state_times: NDArray[np.float64]
    states: NDArray[np.float64]
    command_times: NDArray[np.float64]
    commands: NDArray[np.float64]

    @property
    def cameras(self) -> list[str]:
        return list(self.frames)

    @property
    def start(self) -> float:
        return float(min(t[0] for t in self.frame_times.values()))

    @property
    def end(self) -> float:
        return float(min(t[-1] for t in self.frame_times.values()))

    def work(self, seq: int, t: float, steps: int = 60, commands: NDArray[np.float64] | None = None) -> ShadowWork:
        """Shadow work at time `t`: the frames captured nearest to it, the state there, and the next
        `steps` recorded commands from `t` on (`commands` replaces them, e.g. a deliberately wrong stream)."""
        images = {c: self.frames[c][int(np.argmin(np.abs(self.frame_times[c] - t)))] for c in self.cameras}
        cam0 = self.cameras[0]
        t_obs = float(self.frame_times[cam0][int(np.argmin(np.abs(self.frame_times[cam0] - t)))])
        current = self.states[int(np.argmin(np.abs(self.state_times - t_obs)))]
        first = int(np.searchsorted(self.command_times, t_obs - 1e-6))
        cmds = self.commands if commands is None else commands
        if first >= len(cmds):
            raise ReplayError(f"{self.source}: no recorded command after t={t_obs:.3f} s")
        block = cmds[first:first + steps]
        times = self.command_times[first:first + steps]
        dt = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30.0
        return ShadowWork(seq, t_obs, images, current, block, float(times[0]), dt)


def _rows_to_commands(rows: NDArray, per_arm: int) -> NDArray[np.float64]:
    arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(ARM_NAMES), per_arm)
    return np.concatenate([arr[..., :POSE_DIM], arr[..., POSE_DIM:POSE_DIM + 1]], axis=-1)


def read_lerobot(root: str | Path, episode: int, cameras: Sequence[str] | None = None,
                 size: tuple[int, int] | None = None) -> RecordedEpisode:
    """Episode `episode` of a LeRobot v3 dataset (the dataset folder or a recorder root with lerobot/)."""
    from rig.dataformats.lerobot_v3 import DatasetError, LeRobotV3Dataset
    from worldmodel.data.clips import STATE_PER_ARM
    from worldmodel.data.source import resolve_dataset_root

    try:
        ds = LeRobotV3Dataset(resolve_dataset_root(root))
        cams = list(cameras or ds.cameras)
        missing = [c for c in cams if c not in ds.cameras]
        if missing:
            raise ReplayError(f"{root}: cameras {missing} not recorded (it has {ds.cameras})")
        a, b = ds.episode_index_range(episode)
        times = np.asarray(ds.data("timestamp")[a:b], dtype=np.float64)
        frames: dict[str, list[NDArray[np.uint8]]] = {c: [] for c in cams}
        for row in ds.episode_frames(episode, cams):
            for c in cams:
                frames[c].append(_shrink(row[f"observation.images.{c}"], size))
        states = _rows_to_commands(ds.data("observation.state")[a:b], STATE_PER_ARM)
        commands = _rows_to_commands(ds.data("action")[a:b], COMMAND_DIM)
    except DatasetError as exc:
        raise ReplayError(f"{root} episode {episode}: {exc}") from None
    return RecordedEpisode(f"{root} episode {episode}", {c: times for c in cams},
                           {c: np.stack(v) for c, v in frames.items()}, times, states, times, commands)


def read_bag_episode(path: str | Path, cameras: Sequence[str] | None = None,
                     size: tuple[int, int] | None = None) -> RecordedEpisode:
    """A rosbag2 MCAP episode bag written by our recorder (teleop/recorder.py topics)."""
    from rig import topics
    from rig.conventions import CAMERA_NAMES
    from rig.dataformats import ros_messages as rm
    from rig.dataformats.rosbag_mcap import BagError, read_bag
    from teleop.recorder import COMMAND_GRIPPERS_TOPIC, COMMAND_POSES_TOPIC

    cams = list(cameras or CAMERA_NAMES)
    image_topics = {topics.image(c): c for c in cams}
    pose_topics = {topics.tcp_pose(a): a for a in ARM_NAMES}
    grip_topics = {topics.gripper_state(a): a for a in ARM_NAMES}
    frames: dict[str, list[tuple[float, NDArray[np.uint8]]]] = {c: [] for c in cams}
    poses: dict[str, list[tuple[float, NDArray]]] = {a: [] for a in ARM_NAMES}
    grips: dict[str, list[tuple[float, float]]] = {a: [] for a in ARM_NAMES}
    cmd_poses: dict[int, object] = {}
    cmd_grips: dict[int, object] = {}
    wanted = [*image_topics, *pose_topics, *grip_topics, COMMAND_POSES_TOPIC, COMMAND_GRIPPERS_TOPIC]
    try:
        for m in read_bag(Path(path), wanted):
            stamp = getattr(getattr(m.msg, "header", None), "stamp", None)
            t = rm.stamp_ns(stamp) * 1e-9 if stamp is not None else m.log_ns * 1e-9
            if m.topic in image_topics:
                frames[image_topics[m.topic]].append((t, _shrink(np.ascontiguousarray(rm.image_array(m.msg)), size)))
            elif m.topic in pose_topics:
                poses[pose_topics[m.topic]].append((t, rm.pose_array(m.msg)))
            elif m.topic in grip_topics:
                grips[grip_topics[m.topic]].append((t, float(m.msg.position[0])))
            elif m.topic == COMMAND_POSES_TOPIC:
                cmd_poses[m.log_ns] = m.msg
            else:
                cmd_grips[m.log_ns] = m.msg
    except BagError as exc:
        raise ReplayError(str(exc)) from None
    empty = [c for c in cams if not frames[c]]
    if empty:
        raise ReplayError(f"{path}: no images of cameras {empty} (topics {[topics.image(c) for c in empty]})")
    if any(not poses[a] for a in ARM_NAMES) or not cmd_poses:
        raise ReplayError(f"{path}: needs tcp_pose of both arms and /recorded/command/* messages")
    state_times = np.array([t for t, _ in poses[ARM_NAMES[0]]])
    states = np.zeros((len(state_times), len(ARM_NAMES), COMMAND_DIM))
    for i, arm in enumerate(ARM_NAMES):
        p_times = np.array([t for t, _ in poses[arm]])
        p_vals = np.stack([p for _, p in poses[arm]])
        states[:, i, :POSE_DIM] = p_vals[np.clip(np.searchsorted(p_times, state_times), 0, len(p_times) - 1)]
        if grips[arm]:
            g_times = np.array([t for t, _ in grips[arm]])
            g_vals = np.array([g for _, g in grips[arm]])
            states[:, i, POSE_DIM] = g_vals[np.clip(np.searchsorted(g_times, state_times), 0, len(g_times) - 1)]
        else:
            states[:, i, POSE_DIM] = 1.0
    keys = sorted(k for k in cmd_poses if k in cmd_grips)
    commands, command_times = [], []
    for k in keys:
        targets, stamp, _ = rm.chunk_targets(cmd_poses[k], cmd_grips[k])
        commands.append(targets[0])
        command_times.append(stamp * 1e-9)
    return RecordedEpisode(str(path), {c: np.array([t for t, _ in v]) for c, v in frames.items()},
                           {c: np.stack([f for _, f in v]) for c, v in frames.items()}, state_times, states,
                           np.array(command_times), np.stack(commands))


def read_recording(recording: str | Path, episode: int = 0, cameras: Sequence[str] | None = None,
                   size: tuple[int, int] | None = None) -> RecordedEpisode:
    """A bag directory (metadata.yaml) or a LeRobot dataset / recorder root (then `episode` picks one).

    A recorder root holds both; `bags/episode_NNNNNN` style folders are found by their metadata.yaml."""
    path = Path(recording).expanduser()
    if (path / "metadata.yaml").is_file():
        return read_bag_episode(path, cameras, size)
    if (path / "meta" / "info.json").is_file() or (path / "lerobot" / "meta" / "info.json").is_file():
        return read_lerobot(path, episode, cameras, size)
    raise ReplayError(f"{path}: neither a rosbag2 bag (metadata.yaml) nor a LeRobot v3 dataset (meta/info.json)")
