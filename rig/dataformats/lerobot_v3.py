"""LeRobot dataset v3.0 on disk: feature layout, the episode writer (pyarrow + PyAV) and the reader
`LeRobotV3Dataset`. No torch, no lerobot import; the layout is the one lerobot 0.4 loads.

Layout under the dataset root:

    meta/info.json, meta/stats.json, meta/tasks.parquet
    meta/episodes/chunk-XXX/file-YYY.parquet        one row per episode
    data/chunk-XXX/file-YYY.parquet                 one row per frame, several episodes per file
    videos/observation.images.<camera>/chunk-XXX/file-YYY.mp4   several episodes per file

Features: `observation.images.<camera>` (video), `observation.state` (30 = per arm left then right:
tcp x y z qx qy qz qw, gripper opening, joint q1..q7), `action` (16 = per arm left then right: absolute
target x y z qx qy qz qw, gripper opening), `next.done`, `next.success` (true on an episode's last
frame, the latter only for a successful episode), then the LeRobot defaults `timestamp`, `frame_index`,
`episode_index`, `index`, `task_index`.

Writes are crash safe: `LeRobotV3Writer.stage_episode` writes every changed file under a temporary
name and returns the renames; `rig.dataformats.atomic.commit` applies them all-or-nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, JOINTS_PER_ARM
from rig.dataformats import video as vid
from rig.dataformats.atomic import JournalView, tmp_name

if TYPE_CHECKING:  # rig.schema pulls in scipy (rotations): keep `a2world data info` light
    from rig.schema import Observation

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
STATS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STATE_FIELDS = ("tcp_x", "tcp_y", "tcp_z", "tcp_qx", "tcp_qy", "tcp_qz", "tcp_qw", "gripper_opening",
                *(f"joint{i}" for i in range(1, JOINTS_PER_ARM + 1)))
ACTION_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "gripper_opening")
DEFAULT_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


class DatasetError(RuntimeError):
    """A dataset is missing, malformed or inconsistent; the message names the file and field."""


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def state_names() -> list[str]:
    """Names of the 30 `observation.state` entries, e.g. `left_tcp_x`, `right_joint7`."""
    return [f"{arm}_{f}" for arm in ARM_NAMES for f in STATE_FIELDS]


def action_names() -> list[str]:
    """Names of the 16 `action` entries, e.g. `left_x`, `right_gripper_opening`."""
    return [f"{arm}_{f}" for arm in ARM_NAMES for f in ACTION_FIELDS]


def observation_state(obs: Observation) -> NDArray[np.float32]:
    """The 30-D `observation.state` of an observation (order of `state_names`)."""
    parts = []
    for arm in ARM_NAMES:
        state, grip = obs.arms[arm], obs.grippers[arm]
        parts.extend([state.tcp_pose, [grip.opening], state.q])
    return np.concatenate(parts).astype(np.float32)


def command_action(command: NDArray) -> NDArray[np.float32]:
    """The 16-D `action` of a (2, 8) absolute command (order of `action_names`)."""
    arr = np.asarray(command, dtype=np.float64)
    if arr.shape != (len(ARM_NAMES), COMMAND_DIM):
        raise DatasetError(f"command: shape {arr.shape}, expected (2, 8) [x y z qx qy qz qw opening] per arm")
    return arr.reshape(-1).astype(np.float32)


def build_features(cameras: Sequence[str], height: int, width: int, fps: int,
                   settings: vid.VideoSettings) -> dict[str, dict[str, Any]]:
    """`info.json` features: user features first, then the five LeRobot defaults."""
    features: dict[str, dict[str, Any]] = {}
    for cam in cameras:
        features[image_key(cam)] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": settings.codec_name,
                "video.pix_fmt": settings.pix_fmt,
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    features["observation.state"] = {"dtype": "float32", "shape": [30], "names": state_names()}
    features["action"] = {"dtype": "float32", "shape": [16], "names": action_names()}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for key in DEFAULT_KEYS[1:]:
        features[key] = {"dtype": "int64", "shape": [1], "names": None}
    return features


# ---------------------------------------------------------------------------------------------- stats


def vector_stats(values: NDArray) -> dict[str, NDArray]:
    """LeRobot stats of (N, D) or (N,) values: min max mean std count and five quantiles per dim."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr.reshape(arr.shape[0], -1)
    out = {"min": arr.min(0), "max": arr.max(0), "mean": arr.mean(0), "std": arr.std(0),
           "count": np.array([arr.shape[0]])}
    for key, q in QUANTILES.items():
        out[key] = np.quantile(arr, q, axis=0)
    return out


class ImageStats:
    """Per-channel image stats on the [0, 1] scale from sampled, subsampled frames (exact quantiles
    from 256-bin histograms of the sampled pixels)."""

    def __init__(self, every: int = 10, subsample: int = 4):
        self.every, self.subsample = max(1, every), max(1, subsample)
        self.hist = np.zeros((3, 256), dtype=np.int64)
        self.frames_seen = 0
        self.frames = 0

    def add(self, rgb: NDArray[np.uint8]) -> None:
        if self.frames_seen % self.every == 0:
            small = rgb[:: self.subsample, :: self.subsample].reshape(-1, 3)
            for c in range(3):
                self.hist[c] += np.bincount(small[:, c], minlength=256)
            self.frames += 1
        self.frames_seen += 1

    def result(self) -> dict[str, NDArray]:
        levels = np.arange(256) / 255.0
        n = self.hist.sum(1, keepdims=True).clip(min=1)
        p = self.hist / n
        mean = (p * levels).sum(1)
        std = np.sqrt(np.maximum((p * levels**2).sum(1) - mean**2, 0.0))
        nonzero = self.hist > 0
        lo = np.array([levels[np.argmax(nz)] if nz.any() else 0.0 for nz in nonzero])
        hi = np.array([levels[255 - np.argmax(nz[::-1])] if nz.any() else 0.0 for nz in nonzero])
        cdf = np.cumsum(p, 1)
        out = {"min": lo, "max": hi, "mean": mean, "std": std}
        for key, q in QUANTILES.items():
            out[key] = np.array([levels[min(int(np.searchsorted(c, q)), 255)] for c in cdf])
        out = {k: v.reshape(3, 1, 1) for k, v in out.items()}
        out["count"] = np.array([self.frames])
        return out


def aggregate_stats(per_episode: Sequence[Mapping[str, Mapping[str, NDArray]]]) -> dict[str, dict[str, NDArray]]:
    """Combine episode stats like LeRobot: exact min/max/mean/std (pooled variance), count-weighted
    mean of the quantiles."""
    out: dict[str, dict[str, NDArray]] = {}
    keys = sorted({k for ep in per_episode for k in ep})
    for key in keys:
        items = [ep[key] for ep in per_episode if key in ep]
        counts = np.array([float(np.asarray(s["count"]).reshape(-1)[0]) for s in items])
        w = counts / max(counts.sum(), 1.0)
        shape = np.asarray(items[0]["mean"]).shape
        wb = w.reshape(-1, *([1] * len(shape)))
        means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in items])
        mean = (wb * means).sum(0)
        var = (wb * (np.stack([np.asarray(s["std"], dtype=np.float64) for s in items]) ** 2
                     + (means - mean) ** 2)).sum(0)
        agg = {
            "min": np.min(np.stack([np.asarray(s["min"]) for s in items]), 0),
            "max": np.max(np.stack([np.asarray(s["max"]) for s in items]), 0),
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([int(counts.sum())]),
        }
        for q in QUANTILES:
            agg[q] = (wb * np.stack([np.asarray(s[q], dtype=np.float64) for s in items])).sum(0)
        out[key] = agg
    return out


def _stats_json(stats: Mapping[str, Mapping[str, NDArray]]) -> dict[str, dict[str, Any]]:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


# --------------------------------------------------------------------------------------- parquet helpers


def _pa() -> Any:
    import pyarrow as pa

    return pa


def _write_parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _read_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read parquet ({exc})") from None


def _tasks_table(tasks: Sequence[str]) -> Any:
    """tasks.parquet as pandas writes a frame indexed by task string with a `task_index` column
    (lerobot reads it with pandas and looks tasks up by index)."""
    pa = _pa()
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "__index_level_0__": pa.array(list(tasks), pa.string())})
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _read_tasks(path: Path) -> list[str]:
    table = _read_parquet(path)
    names = table.column_names
    task_col = "__index_level_0__" if "__index_level_0__" in names else ("task" if "task" in names else None)
    if task_col is None or "task_index" not in names:
        raise DatasetError(f"{path}: expected columns task_index and the task index, got {names}")
    pairs = sorted(zip(table.column("task_index").to_pylist(), table.column(task_col).to_pylist()))
    return [t for _, t in pairs]


def _location(file_number: int) -> tuple[int, int]:
    """(chunk_index, file_index) of the n-th file of a kind."""
    return divmod(file_number, CHUNKS_SIZE)


# --------------------------------------------------------------------------------------------- writer


@dataclass
class EpisodeData:
    """One finished episode as the recorder hands it to the writer."""

    task: str
    state: NDArray[np.float32]  # (N, 30)
    action: NDArray[np.float32]  # (N, 16)
    success: bool
    videos: dict[str, Path]  # camera -> staged mp4 with exactly N frames
    image_stats: dict[str, dict[str, NDArray]]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriterLimits:
    """File roll-over sizes (LeRobot defaults 100 MB data, 200 MB video)."""

    data_file_size_mb: float = 100.0
    video_file_size_mb: float = 200.0


class LeRobotV3Writer:
    """Appends episodes to a LeRobot v3.0 dataset (creating it on first use)."""

    def __init__(self, root: Path, fps: int, cameras: Sequence[str], height: int, width: int,
                 robot_type: str, settings: vid.VideoSettings, limits: WriterLimits = WriterLimits()):
        self.root = Path(root)
        self.fps, self.cameras, self.height, self.width = int(fps), list(cameras), int(height), int(width)
        self.robot_type, self.settings, self.limits = robot_type, settings, limits
        info_file = self.root / "meta" / "info.json"
        self.features = build_features(self.cameras, self.height, self.width, self.fps, settings)
        if info_file.is_file():
            info = json.loads(info_file.read_text())
            if info.get("fps") != self.fps:
                raise DatasetError(f"{info_file}: fps {info.get('fps')}, recorder runs at {self.fps}")
            have = {k for k in info["features"] if k.startswith("observation.images.")}
            if have != {image_key(c) for c in self.cameras}:
                raise DatasetError(f"{info_file}: cameras {sorted(have)}, recorder has "
                                   f"{sorted(image_key(c) for c in self.cameras)}")
            shape = info["features"][image_key(self.cameras[0])]["shape"] if self.cameras else None
            if shape is not None and shape[:2] != [self.height, self.width]:
                raise DatasetError(f"{info_file}: image shape {shape}, frames are {self.height}x{self.width}")

    def _episodes(self) -> Any | None:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            return None
        pa = _pa()
        return pa.concat_tables([_read_parquet(f) for f in files], promote_options="default")

    def stage_episode(self, ep: EpisodeData, tag: str) -> list[tuple[Path, Path]]:
        """Write the files that change when `ep` is appended under temporary names (suffix `tag`);
        returns the (tmp, final) renames that commit it. Nothing under a final name is touched."""
        pa = _pa()
        n = int(ep.state.shape[0])
        if n == 0:
            raise DatasetError("episode: no frames")
        if ep.action.shape != (n, 16) or ep.state.shape != (n, 30):
            raise DatasetError(f"episode: state {ep.state.shape} / action {ep.action.shape}, "
                               f"expected ({n}, 30) / ({n}, 16)")
        episodes = self._episodes()
        rows = [] if episodes is None else episodes.to_pylist()
        ep_index = len(rows)
        start = 0 if not rows else int(rows[-1]["dataset_to_index"])
        tasks_file = self.root / "meta" / "tasks.parquet"
        tasks = _read_tasks(tasks_file) if tasks_file.is_file() else []
        if ep.task not in tasks:
            tasks.append(ep.task)
        task_index = tasks.index(ep.task)
        renames: list[tuple[Path, Path]] = []

        def stage(final: Path) -> Path:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_name(final, tag)
            renames.append((tmp, final))
            return tmp

        # frames -> data parquet (append to the last file unless it is full)
        frame_index = np.arange(n, dtype=np.int64)
        done = frame_index == n - 1
        timestamp = (frame_index / self.fps).astype(np.float32)
        table = pa.table({
            "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(ep.state.reshape(-1), pa.float32()), 30),
            "action": pa.FixedSizeListArray.from_arrays(pa.array(ep.action.reshape(-1), pa.float32()), 16),
            "next.done": pa.array(done),
            "next.success": pa.array(done & bool(ep.success)),
            "timestamp": pa.array(timestamp, pa.float32()),
            "frame_index": pa.array(frame_index),
            "episode_index": pa.array(np.full(n, ep_index, np.int64)),
            "index": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, task_index, np.int64)),
        })
        data_number = 0
        if rows:
            last = rows[-1]
            data_number = last["data/chunk_index"] * CHUNKS_SIZE + last["data/file_index"]
            data_file = self.root / DATA_PATH.format(**dict(zip(("chunk_index", "file_index"),
                                                                 _location(data_number))))
            if data_file.stat().st_size / 1e6 >= self.limits.data_file_size_mb:
                data_number += 1
            else:
                table = pa.concat_tables([_read_parquet(data_file), table])
        d_chunk, d_file = _location(data_number)
        _write_parquet(table, stage(self.root / DATA_PATH.format(chunk_index=d_chunk, file_index=d_file)))

        row: dict[str, Any] = {
            "episode_index": ep_index,
            "tasks": [ep.task],
            "length": n,
            "data/chunk_index": d_chunk,
            "data/file_index": d_file,
            "dataset_from_index": start,
            "dataset_to_index": start + n,
        }
        # videos -> append each camera's episode file to its current shared file
        for cam in self.cameras:
            key = image_key(cam)
            new = ep.videos[cam]
            number, offset = 0, 0.0
            if rows:
                last = rows[-1]
                number = last[f"videos/{key}/chunk_index"] * CHUNKS_SIZE + last[f"videos/{key}/file_index"]
                offset = float(last[f"videos/{key}/to_timestamp"])
                current = self.root / VIDEO_PATH.format(video_key=key, chunk_index=_location(number)[0],
                                                        file_index=_location(number)[1])
                if current.stat().st_size / 1e6 >= self.limits.video_file_size_mb or not vid.can_append(current, new):
                    number, offset = number + 1, 0.0
            v_chunk, v_file = _location(number)
            final = self.root / VIDEO_PATH.format(video_key=key, chunk_index=v_chunk, file_index=v_file)
            inputs = ([(final, 0.0)] if offset > 0 else []) + [(new, offset)]
            vid.concat(inputs, stage(final))
            row[f"videos/{key}/chunk_index"] = v_chunk
            row[f"videos/{key}/file_index"] = v_file
            row[f"videos/{key}/from_timestamp"] = offset
            row[f"videos/{key}/to_timestamp"] = offset + n / self.fps

        m_chunk, m_file = _location(ep_index // CHUNKS_SIZE)
        row["meta/episodes/chunk_index"] = m_chunk
        row["meta/episodes/file_index"] = m_file
        stats: dict[str, dict[str, NDArray]] = {
            "observation.state": vector_stats(ep.state),
            "action": vector_stats(ep.action),
            "timestamp": vector_stats(timestamp),
            "frame_index": vector_stats(frame_index),
            "episode_index": vector_stats(np.full(n, ep_index)),
            "index": vector_stats(np.arange(start, start + n)),
            "task_index": vector_stats(np.full(n, task_index)),
        }
        for cam in self.cameras:
            stats[image_key(cam)] = ep.image_stats[cam]
        for feat, feat_stats in stats.items():
            for name in STATS:
                row[f"stats/{feat}/{name}"] = np.asarray(feat_stats[name]).tolist()
        row["success"] = bool(ep.success)
        row["extra"] = json.dumps(ep.extra, sort_keys=True, default=str)

        same_file = [r for r in rows if (r["meta/episodes/chunk_index"], r["meta/episodes/file_index"])
                     == (m_chunk, m_file)]
        ep_table = pa.Table.from_pylist([*same_file, row])
        _write_parquet(ep_table, stage(self.root / EPISODES_PATH.format(chunk_index=m_chunk, file_index=m_file)))
        _write_parquet(_tasks_table(tasks), stage(tasks_file))

        all_stats = [_row_stats(r) for r in rows] + [stats]
        total_frames = start + n
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": ep_index + 1,
            "total_frames": total_frames,
            "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": self.limits.data_file_size_mb,
            "video_files_size_in_mb": self.limits.video_file_size_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{ep_index + 1}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.cameras else None,
            "features": self.features,
        }
        stage(self.root / "meta" / "info.json").write_bytes(json.dumps(info, indent=4).encode())
        stage(self.root / "meta" / "stats.json").write_bytes(
            json.dumps(_stats_json(aggregate_stats(all_stats)), indent=4).encode())
        return renames


def _row_stats(row: Mapping[str, Any]) -> dict[str, dict[str, NDArray]]:
    out: dict[str, dict[str, NDArray]] = {}
    for key, value in row.items():
        if key.startswith("stats/"):
            feat, name = key[len("stats/"):].rsplit("/", 1)
            out.setdefault(feat, {})[name] = np.asarray(value, dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------------- reader


class LeRobotV3Dataset:
    """Reads a LeRobot v3.0 dataset: frame data from parquet, images decoded from the shared mp4s."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        # A recorder may be mid-commit (or was killed there): read the decided commit through its journal.
        self._view = JournalView.find(self.root)
        info_file = self.root / "meta" / "info.json"
        if not self._view.path(info_file).is_file():
            raise DatasetError(f"{self.root}: no meta/info.json, not a LeRobot dataset")
        try:
            self.info: dict[str, Any] = json.loads(self._view.path(info_file).read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{info_file}: not valid JSON ({exc})") from None
        if not isinstance(self.info, dict):
            raise DatasetError(f"{info_file}: expected a JSON object, got {type(self.info).__name__}")
        if self.info.get("codebase_version") != CODEBASE_VERSION:
            raise DatasetError(f"{info_file}: codebase_version {self.info.get('codebase_version')!r}, "
                               f"expected {CODEBASE_VERSION!r}")
        missing = [k for k in ("fps", "features", "total_frames") if k not in self.info]
        if missing:
            raise DatasetError(f"{info_file}: missing keys {missing}")
        self.fps: int = int(self.info["fps"])
        self.features: dict[str, Any] = self.info["features"]
        self.cameras: list[str] = [k[len("observation.images."):] for k, f in self.features.items()
                                   if k.startswith("observation.images.") and f["dtype"] == "video"]
        tasks_file = self._view.path(self.root / "meta" / "tasks.parquet")
        self.tasks: list[str] = _read_tasks(tasks_file) if tasks_file.is_file() else []
        files = self._view.glob(self.root / "meta" / "episodes", "chunk-*/file-*.parquet")
        pa = _pa()
        rows = pa.concat_tables([_read_parquet(self._view.path(f)) for f in files],
                                promote_options="default").to_pylist() if files else []
        self._episodes = sorted(rows, key=lambda r: r["episode_index"])
        if [r["episode_index"] for r in self._episodes] != list(range(len(self._episodes))):
            raise DatasetError(f"{self.root}/meta/episodes: episode indices are not 0..{len(self._episodes) - 1}")
        self._data = self._load_data()
        stats_file = self._view.path(self.root / "meta" / "stats.json")
        self.stats: dict[str, dict[str, NDArray]] = {
            k: {s: np.asarray(v) for s, v in d.items()} for k, d in json.loads(stats_file.read_text()).items()
        } if stats_file.is_file() else {}
        if self.num_frames != int(self.info["total_frames"]):
            raise DatasetError(f"{info_file}: total_frames {self.info['total_frames']}, data has {self.num_frames}")

    def _load_data(self) -> dict[str, NDArray]:
        pa = _pa()
        files = self._view.glob(self.root / "data", "chunk-*/file-*.parquet")
        if not files:
            return {k: np.zeros((0,)) for k in ("index",)}
        table = pa.concat_tables([_read_parquet(self._view.path(f)) for f in files])
        out: dict[str, NDArray] = {}
        for name in table.column_names:
            col = table.column(name).combine_chunks()
            if pa.types.is_fixed_size_list(col.type):
                out[name] = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
            else:
                out[name] = col.to_numpy(zero_copy_only=False)
        order = np.argsort(out["index"], kind="stable")
        out = {k: v[order] for k, v in out.items()}
        if not np.array_equal(out["index"], np.arange(len(order))):
            raise DatasetError(f"{self.root}/data: frame indices are not 0..{len(order) - 1}")
        return out

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        return len(self._data["index"])

    def episode(self, ep: int) -> dict[str, Any]:
        """The episode's metadata row (lengths, file locations, task, success, stats)."""
        if not 0 <= ep < self.num_episodes:
            raise DatasetError(f"episode {ep}: out of range, dataset has {self.num_episodes} episodes")
        return self._episodes[ep]

    def episode_index_range(self, ep: int) -> tuple[int, int]:
        row = self.episode(ep)
        return int(row["dataset_from_index"]), int(row["dataset_to_index"])

    def episode_task(self, ep: int) -> str:
        return str(self.episode(ep)["tasks"][0])

    def episode_success(self, ep: int) -> bool:
        row = self.episode(ep)
        if "success" in row and row["success"] is not None:
            return bool(row["success"])
        start, stop = self.episode_index_range(ep)
        return bool(self._data.get("next.success", np.zeros(stop, bool))[start:stop].any())

    def episode_duration(self, ep: int) -> float:
        return int(self.episode(ep)["length"]) / self.fps

    def video_path(self, ep: int, camera: str) -> tuple[Path, float]:
        """(mp4 file, from_timestamp) holding the episode's frames of `camera`."""
        if camera not in self.cameras:
            raise DatasetError(f"camera {camera!r}: not in dataset (cameras: {self.cameras})")
        row, key = self.episode(ep), image_key(camera)
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"])
        path = self._view.path(path)
        if not path.is_file():
            raise DatasetError(f"{path}: missing, episode {ep} camera {camera!r} has no video (damaged dataset)")
        return path, float(row[f"videos/{key}/from_timestamp"])

    def missing_files(self) -> list[str]:
        """Files the metadata promises that are not there (relative to the root): the episodes
        parquet when data exists, and every episode's mp4 per camera. Empty for a healthy dataset."""
        missing: list[str] = []
        promised = int(self.info.get("total_episodes", len(self._episodes)))
        if len(self._episodes) < promised or (self.num_frames and not self._episodes):
            missing.append(f"meta/episodes/chunk-*/file-*.parquet (info.json lists {promised} episodes, "
                           f"found {len(self._episodes)})")
        seen: set[Path] = set()
        for ep in range(self.num_episodes):
            for camera in self.cameras:
                row, key = self.episode(ep), image_key(camera)
                final = self.root / self.info["video_path"].format(
                    video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                    file_index=row[f"videos/{key}/file_index"])
                if final not in seen and not self._view.path(final).is_file():
                    missing.append(str(final.relative_to(self.root)))
                seen.add(final)
        return missing

    def video_frames(self, ep: int, camera: str, indices: Sequence[int]) -> NDArray[np.uint8]:
        """Frames `indices` (frame_index within the episode) of one camera, (K, H, W, 3) uint8."""
        length = int(self.episode(ep)["length"])
        bad = [i for i in indices if not 0 <= int(i) < length]
        if bad:
            raise DatasetError(f"episode {ep}: frame indices {bad} outside 0..{length - 1}")
        path, start = self.video_path(ep, camera)
        frames = vid.decode_frames(path, start, self.fps, indices)
        h, w = self.features[image_key(camera)]["shape"][:2]
        return np.stack([frames[int(i)] for i in indices]) if len(indices) else np.zeros((0, h, w, 3), np.uint8)

    def _row(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_frames:
            raise DatasetError(f"frame {index}: out of range, dataset has {self.num_frames} frames")
        out: dict[str, Any] = {k: v[index] for k, v in self._data.items()}
        out["task"] = self.tasks[int(out["task_index"])] if self.tasks else ""
        return out

    def frame(self, index: int, cameras: Sequence[str] | None = None) -> dict[str, Any]:
        """One frame: every parquet column (arrays / scalars), `task`, and decoded images per camera."""
        out = self._row(int(index))
        ep, fi = int(out["episode_index"]), int(out["frame_index"])
        for cam in self.cameras if cameras is None else cameras:
            out[image_key(cam)] = self.video_frames(ep, cam, [fi])[0]
        return out

    def frame_at(self, ep: int, timestamp: float, cameras: Sequence[str] | None = None) -> dict[str, Any]:
        """The frame of episode `ep` nearest to `timestamp` (seconds from the episode start)."""
        start, stop = self.episode_index_range(ep)
        fi = round(float(timestamp) * self.fps)
        if not 0 <= fi < stop - start or abs(fi / self.fps - timestamp) > 0.5 / self.fps:
            raise DatasetError(f"episode {ep}: timestamp {timestamp} s outside 0..{(stop - start - 1) / self.fps} s")
        return self.frame(start + fi, cameras)

    def episode_frames(self, ep: int, cameras: Sequence[str] | None = None, stride: int = 1) -> Iterator[dict]:
        """Every `stride`-th frame of an episode with images, decoding each video sequentially once."""
        start, stop = self.episode_index_range(ep)
        cams = self.cameras if cameras is None else list(cameras)
        streams = {}
        for cam in cams:
            path, offset = self.video_path(ep, cam)
            streams[cam] = vid.iter_frames(path, offset, self.fps, stop - start)
        for fi in range(stop - start):
            images = {}
            for cam, it in streams.items():
                idx, img = next(it)
                if idx != fi:
                    raise DatasetError(f"episode {ep} camera {cam}: video frame {idx} where {fi} was expected")
                images[image_key(cam)] = img
            if fi % stride == 0:
                out = self._row(start + fi)
                out.update(images)
                yield out

    def data(self, key: str) -> NDArray:
        """A whole parquet column over all frames, e.g. `action` (N, 16)."""
        if key not in self._data:
            raise DatasetError(f"column {key!r}: not in data (columns: {sorted(self._data)})")
        return self._data[key]
