"""Episode recorder: observations and commands in, committed LeRobot v3.0 episodes and rosbag2 MCAP
bags out, without ever blocking the capture or control loop.

`add()` only validates cheaply and enqueues references (images are not copied) on a bounded queue. A
writer thread builds the bag messages and the parquet rows; one encoder thread per camera (PyAV
releases the GIL while encoding) writes the episode's mp4. When the queue is full the frame is dropped
and counted (`overflow: drop`, default) or `add()` waits at most `block_timeout_s` (`overflow: block`).

Crash safety: each episode is staged under `<root>/.staging/episode_NNNNNN/`; `end_episode` makes the
writer build every changed dataset file under a temporary name and commit them all with one journal
(`rig.dataformats.atomic`). After a crash or SIGKILL, the next recorder opening the same root finishes
or rolls back an interrupted commit and discards the unfinished episode with a warning
(`recovery_notes`). Free disk space is checked before each episode and every `disk_check_interval_s`;
below `min_free_bytes` the current episode is discarded and recording stops with `DiskSpaceError`.

Layout of `root`: `lerobot/` (the LeRobot dataset), `bags/episode_NNNNNN/` (one rosbag2 bag per
episode, same number as the LeRobot episode index), `recorder.json` (formats, fps, cameras).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import math
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig import topics
from rig.config import load_yaml, node_params
from rig.conventions import ARM_NAMES, CAMERA_FPS, CAMERA_NAMES, COMMAND_DIM
from rig.dataformats import atomic
from rig.dataformats import lerobot_v3 as lr
from rig.dataformats import ros_messages as rm
from rig.dataformats.rosbag_mcap import McapBagWriter
from rig.dataformats.video import VideoEncoder, VideoSettings
from rig.schema import CameraIntrinsics, Observation, SchemaError

LOG = logging.getLogger(__name__)
FORMATS = ("lerobot", "mcap")
STAGING = ".staging"
COMMAND_POSES_TOPIC = "/recorded/command/poses"
COMMAND_GRIPPERS_TOPIC = "/recorded/command/grippers"


def bag_topics(cameras: Sequence[str]) -> dict[str, tuple[str, str]]:
    """{topic: (message type, QoS kind)} of a recorded bag. Sensor topics are those of the live ROS graph
    (`rig.topics`), so `ros2 bag play` feeds the same subscribers. Commands go to `/recorded/command/*`,
    which no node subscribes to, so replaying a bag never moves the arms."""
    out: dict[str, tuple[str, str]] = {}
    for cam in cameras:
        out[topics.image(cam)] = (topics.IMAGE, "sensor")
        out[topics.camera_info(cam)] = (topics.CAMERA_INFO, "sensor")
    for topic, (msgtype, _) in topics.arm_state_topics().items():
        out[topic] = (msgtype, "sensor")
    out[COMMAND_POSES_TOPIC] = (rm.MULTI_DOF_TRAJECTORY, "reliable")
    out[COMMAND_GRIPPERS_TOPIC] = (rm.JOINT_TRAJECTORY, "reliable")
    return out


class RecorderError(RuntimeError):
    """The recorder cannot continue; the message says why and what to do."""


class DiskSpaceError(RecorderError):
    """Free disk space fell below `min_free_bytes`; recording stopped before the disk filled up."""


@dataclass(frozen=True)
class RecorderSettings:
    """Tunables of the recorder (`config/recording.yaml`, node `recorder`)."""

    queue_size: int = 120
    overflow: str = "drop"
    block_timeout_s: float = 0.010
    disk_check_interval_s: float = 1.0
    min_free_bytes: int = 2_000_000_000
    distro: str = "humble"
    bag_compression: str = "none"
    image_stats_every: int = 10
    data_file_size_mb: float = 100.0
    video_file_size_mb: float = 200.0
    video: VideoSettings = field(default_factory=VideoSettings)

    @classmethod
    def from_config(cls, name: str = "recording") -> RecorderSettings:
        params = dict(node_params(load_yaml(name), "recorder"))
        video = VideoSettings(**params.pop("video", {}))
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise RecorderError(f"config {name}: unknown recorder keys {sorted(unknown)}")
        settings = cls(video=video, **params)
        if settings.overflow not in ("drop", "block"):
            raise RecorderError(f"config {name}: recorder.overflow {settings.overflow!r}, expected drop or block")
        return settings


@dataclass
class RecorderStats:
    """Counters since the recorder was opened."""

    frames_added: int = 0
    frames_written: int = 0
    frames_dropped: int = 0
    episodes_committed: int = 0
    episodes_discarded: int = 0
    queue_high_water: int = 0
    blocked_s: float = 0.0
    last_commit_s: float = 0.0
    bytes_bag: int = 0


SAMPLE_CLOCKS = ("monotonic", "sim")
"""`monotonic`: observation times are host monotonic seconds (the real rig, the realtime twin); bag
stamps are wall-clock ROS time through the boot's ClockMap. `sim`: they are simulated seconds (the
lockstep twin); each episode's bag is stamped from the wall-clock time its recording started, plus
the simulated time since its first frame."""


@dataclass
class _Episode:
    index: int
    task: str
    staging: Path
    start_wall: str
    states: list[NDArray[np.float32]] = field(default_factory=list)
    actions: list[NDArray[np.float32]] = field(default_factory=list)
    encoders: dict[str, VideoEncoder] = field(default_factory=dict)
    pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict)
    pending: dict[str, deque[Future]] = field(default_factory=dict)
    image_stats: dict[str, lr.ImageStats] = field(default_factory=dict)
    bag: McapBagWriter | None = None
    writer: lr.LeRobotV3Writer | None = None
    dropped: int = 0
    first_t: float | None = None
    last_t: float | None = None
    max_dt: float = 0.0
    gaps: int = 0
    frames_before: int = 0
    shape: tuple[int, int] | None = None
    start_epoch: float = 0.0
    clock: rm.ClockMap | None = None
    """Sample time -> ROS time of this episode's bag (see `EpisodeRecorder.sample_clock`)."""


class EpisodeRecorder:
    """Records episodes of synchronized observations and (2, 8) absolute commands.

    Use as a context manager; one recorder per root directory at a time (a lock file enforces it).
    """

    def __init__(
        self,
        root: Path,
        fps: int = CAMERA_FPS,
        cameras: Sequence[str] = CAMERA_NAMES,
        formats: Sequence[str] = FORMATS,
        robot_type: str = "a2world_dual_rizon4s",
        min_free_bytes: int | None = None,
        settings: RecorderSettings | None = None,
        intrinsics: Mapping[str, CameraIntrinsics] | None = None,
        sample_clock: str = "monotonic",
    ):
        if sample_clock not in SAMPLE_CLOCKS:
            raise RecorderError(f"sample_clock: {sample_clock!r}, expected one of {list(SAMPLE_CLOCKS)}")
        self.sample_clock = sample_clock
        self.root = Path(root)
        self.fps, self.cameras, self.robot_type = int(fps), list(cameras), robot_type
        self.formats = tuple(formats)
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise RecorderError(f"formats: {list(self.formats)}, expected a non-empty subset of {list(FORMATS)}")
        bad_cams = [c for c in self.cameras if c not in CAMERA_NAMES]
        if bad_cams:
            raise RecorderError(f"cameras: {bad_cams} not in {list(CAMERA_NAMES)}")
        self.settings = settings or RecorderSettings.from_config()
        if min_free_bytes is not None:
            self.settings = replace(self.settings, min_free_bytes=int(min_free_bytes))
        self.intrinsics = dict(intrinsics or {})
        self.clock = rm.ClockMap.shared()  # the boot's one offset, as the ROS nodes use (docs/control.md)
        self._sim_stamp_end = -math.inf  # newest bag stamp (epoch s) written from simulated time
        self.stats = RecorderStats()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / ".lock", "w")  # noqa: SIM115 - held for the recorder's lifetime
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise RecorderError(f"{self.root}: another recorder is writing here (lock {self.root / '.lock'})") from None
        try:
            self._check_layout()
            self.recovery_notes = self._recover()
            self._check_disk("opening the recorder")
        except BaseException:
            self._lock_fh.close()
            raise
        self._queue: queue.Queue[tuple] = queue.Queue(maxsize=max(1, self.settings.queue_size))
        self._error: BaseException | None = None
        self._active: int | None = None
        self._next_index = self._committed_episodes()
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._ep_added = self._ep_dropped = 0
        self._thread = threading.Thread(target=self._run, name="episode-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ caller side (never blocks long)

    def start_episode(self, task: str) -> int:
        """Begin an episode with a task description; returns its episode index."""
        self._raise_if_failed()
        if self._active is not None:
            raise RecorderError(f"start_episode: episode {self._active} is still open; end or discard it first")
        if not task.strip():
            raise RecorderError("start_episode: task is empty, expected a task description")
        self._check_disk(f"starting episode {self._next_index}")
        index = self._next_index
        self._next_index += 1
        self._active = index
        self._ep_added = self._ep_dropped = 0
        self._put(("start", index, task), control=True)
        return index

    def add(self, observation: Observation, command: NDArray) -> bool:
        """Enqueue one observation and the (2, 8) absolute command issued with it.

        Returns False when the frame was dropped because the writer is behind. Arrays of the
        observation are referenced, not copied: do not modify them afterwards.
        """
        self._raise_if_failed()
        if self._active is None:
            raise RecorderError("add: no episode open; call start_episode(task) first")
        missing = [c for c in self.cameras if c not in observation.frames]
        if missing or any(a not in observation.arms or a not in observation.grippers for a in ARM_NAMES):
            raise SchemaError(f"observation: needs frames {self.cameras} (missing {missing}) and arm and gripper "
                              f"states for {list(ARM_NAMES)}")
        cmd = np.array(command, dtype=np.float64)
        if cmd.shape != (len(ARM_NAMES), COMMAND_DIM) or not np.all(np.isfinite(cmd)):
            raise SchemaError(f"command: shape {cmd.shape}, expected finite (2, 8) [x y z qx qy qz qw opening] per arm")
        self.stats.frames_added += 1
        self._ep_added += 1
        ok = self._put(("frame", observation, cmd), control=False)
        self._ep_dropped += not ok
        self.stats.queue_high_water = max(self.stats.queue_high_water, self._queue.qsize())
        return ok

    def end_episode(self, success: bool, extra: dict | None = None) -> None:
        """Close the episode; the writer commits it in the background (`wait` to block until done)."""
        if self._active is not None and self._ep_added == self._ep_dropped:
            self.discard_episode(f"no frames recorded ({self._ep_added} added, all dropped)")
            return
        index = self._take_active("end_episode")
        self._put(("end", index, bool(success), dict(extra or {}), self._ep_dropped), control=True)

    def discard_episode(self, reason: str) -> None:
        """Drop the open episode without writing anything to the dataset."""
        index = self._take_active("discard_episode")
        self._next_index -= 1  # nothing is committed under this index; the next episode reuses it
        self._put(("discard", index, reason), control=True)

    def wait(self, timeout: float | None = None) -> None:
        """Block until everything enqueued is written (or raise the writer's error)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._queue.unfinished_tasks == 0 and self._idle.is_set()):
            if not self._thread.is_alive():
                break
            if deadline is not None and time.monotonic() > deadline:
                raise RecorderError(f"wait: writer still busy after {timeout} s ({self._queue.qsize()} queued)")
            time.sleep(0.005)
        self._raise_if_failed()

    def close(self) -> None:
        """Finish pending work (an open episode is discarded) and release the root."""
        if self._closed:
            return
        self._closed = True
        if self._active is not None:
            self.discard_episode("recorder closed while the episode was open")
        self._queue.put(("stop",))  # the writer drains the queue even after an error, so this returns
        self._thread.join()
        self._lock_fh.close()
        if self._error is not None:
            LOG.error("recorder closed after an error: %s", self._error)

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def episode_open(self) -> bool:
        return self._active is not None

    @property
    def error(self) -> BaseException | None:
        return self._error

    # ------------------------------------------------------------------------------------ internals

    def _take_active(self, what: str) -> int:
        if self._active is None:
            raise RecorderError(f"{what}: no episode open")
        index, self._active = self._active, None
        return index

    def _put(self, item: tuple, control: bool) -> bool:
        if control:  # episode boundaries are never dropped
            self._queue.put(item)
            return True
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            pass
        if self.settings.overflow == "block":
            t0 = time.monotonic()
            try:
                self._queue.put(item, timeout=self.settings.block_timeout_s)
                return True
            except queue.Full:
                pass
            finally:
                self.stats.blocked_s += time.monotonic() - t0
        self.stats.frames_dropped += 1
        return False

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            if isinstance(self._error, RecorderError):
                raise self._error
            raise RecorderError(f"recording stopped: writer failed ({self._error!r})") from self._error

    def _free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def _check_disk(self, when: str) -> None:
        free = self._free_bytes()
        if free < self.settings.min_free_bytes:
            raise DiskSpaceError(
                f"{self.root}: {free / 1e9:.2f} GB free when {when}, below min_free_bytes "
                f"{self.settings.min_free_bytes / 1e9:.2f} GB; free space or record elsewhere")

    def _check_layout(self) -> None:
        meta = {"formats": list(self.formats), "fps": self.fps, "cameras": self.cameras,
                "robot_type": self.robot_type}
        path = self.root / "recorder.json"
        if path.is_file():
            have = json.loads(path.read_text())
            diff = {k: (have.get(k), v) for k, v in meta.items() if have.get(k) != v}
            if diff:
                raise RecorderError(f"{path}: this root was recorded with different settings "
                                    f"(stored, requested): {diff}; use another root")
        else:
            atomic.write_atomic(path, json.dumps(meta, indent=2).encode())

    def _recover(self) -> list[str]:
        notes = atomic.recover(self.root)
        staging = self.root / STAGING
        committed = self._committed_episodes()
        if staging.is_dir():
            for leftover in sorted(staging.iterdir()):
                info_file = leftover / "episode.json"
                desc = info_file.read_text().strip() if info_file.is_file() else "no episode.json"
                index = json.loads(desc).get("episode_index", committed) if info_file.is_file() else committed
                if index < committed:  # its commit completed (possibly just now); only the staging remained
                    shutil.rmtree(leftover)
                    continue
                note = f"discarded unfinished episode {leftover.name} from an interrupted session ({desc})"
                LOG.warning("%s: %s", self.root, note)
                notes.append(note)
                shutil.rmtree(leftover)
        return notes

    def _committed_episodes(self) -> int:
        counts = []
        if "lerobot" in self.formats:
            info = self.root / "lerobot" / "meta" / "info.json"
            counts.append(json.loads(info.read_text())["total_episodes"] if info.is_file() else 0)
        if "mcap" in self.formats:
            counts.append(len(list((self.root / "bags").glob("episode_*"))))
        if len(set(counts)) > 1:
            raise RecorderError(f"{self.root}: {counts[0]} LeRobot episodes but {counts[1]} bags; "
                                "the root is inconsistent")
        return counts[0]

    # -------------------------------------------------------------------------------- writer thread

    def _run(self) -> None:
        episode: _Episode | None = None
        last_disk = time.monotonic()
        while True:
            item = self._queue.get()
            self._idle.clear()
            try:
                kind = item[0]
                if kind == "stop":
                    if episode is not None:
                        self._abort(episode, "recorder stopped")
                    return
                if self._error is not None:
                    continue  # drain after a failure; everything is rejected at the caller side
                if time.monotonic() - last_disk > self.settings.disk_check_interval_s:
                    last_disk = time.monotonic()
                    self._check_disk("recording")
                if kind == "start":
                    episode = self._open_episode(item[1], item[2])
                elif kind == "frame" and episode is not None:
                    self._write_frame(episode, item[1], item[2])
                elif kind == "end" and episode is not None:
                    ep, episode = episode, None
                    ep.dropped = item[4]
                    try:
                        self._commit(ep, item[2], item[3])
                    except BaseException:
                        # once the journal exists the commit is decided: recovery needs the staged bag
                        if not (self.root / atomic.JOURNAL_NAME).exists():
                            self._abort(ep, "commit failed")
                        raise
                elif kind == "discard" and episode is not None:
                    ep, episode = episode, None
                    self._abort(ep, item[2])
            except BaseException as exc:  # the writer must survive to report; the caller sees it on add()
                LOG.error("episode writer: %s", exc)
                self._error = exc
                if episode is not None:
                    self._abort(episode, f"writer error: {exc}")
                    episode = None
            finally:
                self._queue.task_done()
                if self._queue.unfinished_tasks == 0:
                    self._idle.set()

    def _open_episode(self, index: int, task: str) -> _Episode:
        staging = self.root / STAGING / f"episode_{index:06d}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        start = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        (staging / "episode.json").write_text(json.dumps({"episode_index": index, "task": task, "started": start}))
        ep = _Episode(index=index, task=task, staging=staging, start_wall=start,
                      frames_before=self.stats.frames_written, start_epoch=time.time(),
                      clock=self.clock if self.sample_clock == "monotonic" else None)
        if "mcap" in self.formats:
            ep.bag = McapBagWriter(staging / f"episode_{index:06d}", self.settings.distro,
                                   chunk_compression=self.settings.bag_compression)
            self._declare_topics(ep.bag)
        return ep

    def _declare_topics(self, bag: McapBagWriter) -> None:
        for topic, (msgtype, qos) in bag_topics(self.cameras).items():
            bag.add_topic(topic, msgtype, qos)

    def _write_frame(self, ep: _Episode, obs: Observation, cmd: NDArray) -> None:
        if ep.clock is None:  # simulated time: the first frame is stamped with the real recording time,
            # never before the previous sim episode's last stamp (a lockstep twin records faster than real
            # time, so "start time + sim time" of the last episode can run past the next one's start)
            start = max(ep.start_epoch, self._sim_stamp_end + 1.0 / self.fps)
            ep.clock = rm.ClockMap(start - obs.t)
        if self.sample_clock != "monotonic":
            self._sim_stamp_end = max(self._sim_stamp_end, ep.clock.offset_s + obs.t)
        if "lerobot" in self.formats:
            if ep.shape is None:
                self._open_encoders(ep, obs)
            for cam in self.cameras:
                rgb = obs.frames[cam].color
                if rgb.shape[:2] != ep.shape:
                    raise RecorderError(f"{cam}: frame {rgb.shape[:2]} but the episode started at {ep.shape}")
                pending = ep.pending[cam]
                while len(pending) >= 8:  # bound the encoder backlog; back-pressure goes to the main queue
                    pending.popleft().result()
                pending.append(ep.pools[cam].submit(self._encode, ep, cam, rgb))
            ep.states.append(lr.observation_state(obs))
            ep.actions.append(lr.command_action(cmd))
        if ep.bag is not None:
            self._write_bag(ep.bag, obs, cmd, ep.clock)
        if ep.first_t is None:
            ep.first_t = obs.t
        if ep.last_t is not None:  # the dataset assumes one observation per 1/fps; count where it was not
            step = obs.t - ep.last_t
            ep.max_dt = max(ep.max_dt, step)
            ep.gaps += step > 1.5 / self.fps
        ep.last_t = obs.t
        self.stats.frames_written += 1

    @staticmethod
    def _encode(ep: _Episode, cam: str, rgb: NDArray[np.uint8]) -> None:
        ep.encoders[cam].encode(rgb)
        ep.image_stats[cam].add(rgb)

    def _open_encoders(self, ep: _Episode, obs: Observation) -> None:
        h, w = obs.frames[self.cameras[0]].color.shape[:2]
        ep.shape = (h, w)
        # validates against an existing dataset (fps, cameras, image size) before anything is encoded
        ep.writer = lr.LeRobotV3Writer(
            self.root / "lerobot", self.fps, self.cameras, h, w, self.robot_type, self.settings.video,
            lr.WriterLimits(self.settings.data_file_size_mb, self.settings.video_file_size_mb))
        for cam in self.cameras:
            ep.encoders[cam] = VideoEncoder(ep.staging / f"{cam}.mp4", w, h, self.fps, self.settings.video)
            ep.pools[cam] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"encode-{cam}")
            ep.pending[cam] = deque()
            ep.image_stats[cam] = lr.ImageStats(every=self.settings.image_stats_every)

    def _write_bag(self, bag: McapBagWriter, obs: Observation, cmd: NDArray, clock: rm.ClockMap) -> None:
        distro, to_ns = self.settings.distro, clock.to_ros_ns
        for cam in self.cameras:
            frame = obs.frames[cam]
            stamp = to_ns(frame.t)
            h, w = frame.color.shape[:2]
            bag.write(f"/cameras/{cam}/image_raw",
                      rm.image_msg(frame.color, stamp, rm.camera_frame(cam), "rgb8", distro), stamp)
            bag.write(f"/cameras/{cam}/camera_info",
                      rm.camera_info_msg(self.intrinsics.get(cam), stamp, rm.camera_frame(cam), w, h, distro), stamp)
        for arm in ARM_NAMES:
            state, grip = obs.arms[arm], obs.grippers[arm]
            stamp = to_ns(state.t)
            bag.write(f"/arms/{arm}/joint_states", rm.arm_joint_state_msg(state, stamp, distro), stamp)
            bag.write(f"/arms/{arm}/tcp_pose", rm.tcp_pose_msg(state.tcp_pose, stamp, rm.base_frame(arm), distro),
                      stamp)
            g_stamp = to_ns(grip.t)
            bag.write(f"/arms/{arm}/gripper_state", rm.gripper_state_msg(grip, g_stamp, distro), g_stamp)
        stamp = to_ns(obs.t)
        poses, grippers = rm.chunk_msgs(cmd, stamp, 1.0 / self.fps, distro)
        bag.write(COMMAND_POSES_TOPIC, poses, stamp)
        bag.write(COMMAND_GRIPPERS_TOPIC, grippers, stamp)
        self.stats.bytes_bag = bag.bytes

    def _finish_encoders(self, ep: _Episode) -> None:
        for cam, pool in ep.pools.items():
            for fut in ep.pending[cam]:
                fut.result()
            pool.shutdown(wait=True)
            ep.encoders[cam].close()

    def _abort(self, ep: _Episode, reason: str) -> None:
        with contextlib.suppress(Exception):
            for pool in ep.pools.values():
                pool.shutdown(wait=True, cancel_futures=True)
            for enc in ep.encoders.values():
                enc.close()
        with contextlib.suppress(Exception):
            if ep.bag is not None:
                ep.bag.close()
        shutil.rmtree(ep.staging, ignore_errors=True)
        self.stats.episodes_discarded += 1
        LOG.warning("episode %d discarded: %s", ep.index, reason)

    def _commit(self, ep: _Episode, success: bool, extra: dict[str, Any]) -> None:
        t0 = time.monotonic()
        frames = self.stats.frames_written - ep.frames_before
        committed = self._committed_episodes()
        if committed != ep.index:
            raise RecorderError(f"{self.root}: episode {ep.index} would be committed as number {committed}; "
                                "the root changed under the recorder")
        self._finish_encoders(ep)
        extra = {**extra, "dropped_frames": ep.dropped, "timing_gaps": ep.gaps, "max_frame_dt_s": round(ep.max_dt, 6),
                 "recorded_at": ep.start_wall,
                 "sample_clock": self.sample_clock,
                 "ros_time_offset_s": (ep.clock or self.clock).offset_s,
                 "first_frame_ros_ns": (ep.clock or self.clock).to_ros_ns(ep.first_t or 0.0)}
        if ep.dropped:
            LOG.warning("episode %d: %d frame(s) dropped because the writer fell behind", ep.index, ep.dropped)
        if ep.gaps:
            LOG.warning("episode %d: %d observation gap(s) longer than 1.5 frame periods (max %.3f s)", ep.index,
                        ep.gaps, ep.max_dt)
        renames: list[tuple[Path, Path]] = []
        if ep.bag is not None:
            for key, value in (("task", ep.task), ("success", str(bool(success)).lower()),
                               ("episode_index", str(ep.index)), ("extra", json.dumps(extra, default=str))):
                ep.bag.set_custom_data(f"a2world.{key}", value)
            ep.bag.close()
            renames.append((ep.bag.path, self.root / "bags" / ep.bag.path.name))
        if ep.writer is not None:
            data = lr.EpisodeData(
                task=ep.task, state=np.stack(ep.states), action=np.stack(ep.actions), success=success,
                videos={c: ep.staging / f"{c}.mp4" for c in self.cameras},
                image_stats={c: s.result() for c, s in ep.image_stats.items()}, extra=extra)
            renames += ep.writer.stage_episode(data, tag=f"ep{ep.index}")
        (self.root / "bags").mkdir(exist_ok=True)
        self._check_disk(f"committing episode {ep.index}")
        atomic.commit(self.root, renames)
        shutil.rmtree(ep.staging, ignore_errors=True)
        self.stats.episodes_committed += 1
        self.stats.last_commit_s = time.monotonic() - t0
        LOG.info("episode %d committed: %d frames, task %r, success %s (%.2f s)", ep.index, frames, ep.task,
                 success, self.stats.last_commit_s)
