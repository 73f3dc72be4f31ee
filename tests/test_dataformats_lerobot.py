"""LeRobot v3.0 datasets written by the recorder: layout and schema as lerobot 0.4 loads them, parquet
data frame-exact, video within the codec tolerance, random access equal to sequential decoding."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from recording_data import command, observation

from rig.dataformats import lerobot_v3 as lr
from rig.dataformats.video import psnr
from teleop.recorder import EpisodeRecorder, RecorderSettings

# Codec tolerance (libx264 crf 23, yuv420p) on the smooth synthetic test images; see docs/recording.md.
MIN_PSNR_DB = 33.0
MAX_MEAN_ABS = 4.5  # mean |error| per pixel and channel, of 255

LENGTHS = (20, 13, 9)
TASKS = ("pick the cube", "open the drawer", "pick the cube")
SUCCESS = (True, False, True)


def record(root, lengths=LENGTHS, height=64, width=80, **settings):
    cfg = RecorderSettings(min_free_bytes=1, **settings)
    with EpisodeRecorder(root, formats=("lerobot",), settings=cfg) as rec:
        for ep, n in enumerate(lengths):
            rec.start_episode(TASKS[ep % 3])
            for i in range(n):
                rec.add(observation(i, height=height, width=width), command(i))
            rec.end_episode(success=SUCCESS[ep % 3], extra={"ep": ep})
        rec.wait()
    return root / "lerobot"


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    return record(tmp_path_factory.mktemp("lerobot"))


def test_info_json_matches_lerobot_v30(dataset_root):
    info = json.loads((dataset_root / "meta" / "info.json").read_text())
    assert set(info) == {"codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks",
                         "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits",
                         "data_path", "video_path", "features"}
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 2)
    assert info["splits"] == {"train": "0:3"}
    keys = list(info["features"])
    assert keys[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert keys[:3] == [f"observation.images.{c}" for c in ("front", "wrist_left", "wrist_right")]
    front = info["features"]["observation.images.front"]
    assert front["shape"] == [64, 80, 3] and front["info"]["video.codec"] == "h264"
    assert front["info"]["video.pix_fmt"] == "yuv420p" and front["info"]["video.fps"] == 30
    assert info["features"]["observation.state"]["names"] == lr.state_names()
    assert lr.state_names()[:8] == ["left_tcp_x", "left_tcp_y", "left_tcp_z", "left_tcp_qx", "left_tcp_qy",
                                    "left_tcp_qz", "left_tcp_qw", "left_gripper_opening"]
    assert lr.state_names()[15] == "right_tcp_x" and lr.state_names()[-1] == "right_joint7"
    assert lr.action_names()[8:] == ["right_x", "right_y", "right_z", "right_qx", "right_qy", "right_qz",
                                     "right_qw", "right_gripper_opening"]


def test_parquet_schemas(dataset_root):
    data = pq.read_table(dataset_root / "data" / "chunk-000" / "file-000.parquet")
    assert data.schema.field("observation.state").type == pa.list_(pa.float32(), 30)
    assert data.schema.field("action").type == pa.list_(pa.float32(), 16)
    assert data.schema.field("timestamp").type == pa.float32()
    for key in ("frame_index", "episode_index", "index", "task_index"):
        assert data.schema.field(key).type == pa.int64()
    eps = pq.read_table(dataset_root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    for col in ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                "dataset_to_index", "videos/observation.images.front/from_timestamp",
                "videos/observation.images.front/to_timestamp", "meta/episodes/chunk_index",
                "meta/episodes/file_index", "stats/observation.state/mean", "stats/observation.images.front/q50"):
        assert col in eps.column_names, col
    rows = eps.to_pylist()
    assert [r["length"] for r in rows] == list(LENGTHS)
    # all episodes share one mp4 per camera, back to back
    assert [r["videos/observation.images.front/from_timestamp"] for r in rows] == pytest.approx(
        [0.0, 20 / 30, 33 / 30])
    assert [r["videos/observation.images.front/file_index"] for r in rows] == [0, 0, 0]
    tasks = pq.read_table(dataset_root / "meta" / "tasks.parquet")
    pandas_meta = json.loads(tasks.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["__index_level_0__"]
    assert tasks.column("__index_level_0__").to_pylist() == ["pick the cube", "open the drawer"]


def test_parquet_data_is_frame_exact(dataset_root):
    ds = lr.LeRobotV3Dataset(dataset_root)
    assert (ds.num_episodes, ds.num_frames, ds.fps) == (3, sum(LENGTHS), 30)
    assert ds.cameras == ["front", "wrist_left", "wrist_right"]
    assert ds.tasks == ["pick the cube", "open the drawer"]
    start = 0
    for ep, n in enumerate(LENGTHS):
        assert ds.episode_index_range(ep) == (start, start + n)
        assert ds.episode_task(ep) == TASKS[ep]
        assert ds.episode_success(ep) is SUCCESS[ep]
        want_state = np.stack([lr.observation_state(observation(i)) for i in range(n)])
        want_action = np.stack([command(i).reshape(-1).astype(np.float32) for i in range(n)])
        np.testing.assert_array_equal(ds.data("observation.state")[start:start + n], want_state)
        np.testing.assert_array_equal(ds.data("action")[start:start + n], want_action)
        np.testing.assert_array_equal(ds.data("timestamp")[start:start + n], (np.arange(n) / 30).astype(np.float32))
        np.testing.assert_array_equal(ds.data("frame_index")[start:start + n], np.arange(n))
        assert ds.data("next.success")[start:start + n].tolist() == [False] * (n - 1) + [SUCCESS[ep]]
        assert ds.data("next.done")[start + n - 1]
        start += n
    assert json.loads(ds.episode(0)["extra"])["ep"] == 0


def test_video_within_codec_tolerance(dataset_root):
    ds = lr.LeRobotV3Dataset(dataset_root)
    worst_psnr, worst_abs = np.inf, 0.0
    for ep, n in enumerate(LENGTHS):
        frames = list(ds.episode_frames(ep))
        assert len(frames) == n
        for i, frame in enumerate(frames):
            for cam in ds.cameras:
                got, src = frame[f"observation.images.{cam}"], observation(i).frames[cam].color
                assert got.shape == (64, 80, 3) and got.dtype == np.uint8
                worst_psnr = min(worst_psnr, psnr(got, src))
                worst_abs = max(worst_abs, float(np.abs(got.astype(int) - src).mean()))
                if 0 < i < n - 1:  # the right frame, not a neighbour: indexing is exact
                    for j in (i - 1, i + 1):
                        assert psnr(got, src) > psnr(got, observation(j).frames[cam].color) + 3.0
    assert worst_psnr >= MIN_PSNR_DB, worst_psnr
    assert worst_abs <= MAX_MEAN_ABS, worst_abs


def test_random_access_equals_sequential_decode(dataset_root):
    ds = lr.LeRobotV3Dataset(dataset_root)
    seq = [f["observation.images.wrist_left"] for f in ds.episode_frames(1, cameras=["wrist_left"])]
    some = ds.video_frames(1, "wrist_left", [12, 0, 7, 7, 3])
    for k, i in enumerate([12, 0, 7, 7, 3]):
        np.testing.assert_array_equal(some[k], seq[i])
    strided = list(ds.episode_frames(1, cameras=["wrist_left"], stride=3))
    assert [int(f["frame_index"]) for f in strided] == [0, 3, 6, 9, 12]
    f = ds.frame(20 + 5)  # episode 1, frame 5
    assert (int(f["episode_index"]), int(f["frame_index"]), f["task"]) == (1, 5, "open the drawer")
    np.testing.assert_array_equal(f["observation.images.wrist_left"], seq[5])
    g = ds.frame_at(1, 5 / 30 + 0.004)
    np.testing.assert_array_equal(g["observation.state"], f["observation.state"])
    with pytest.raises(lr.DatasetError, match="outside"):
        ds.frame_at(1, 1.0)
    with pytest.raises(lr.DatasetError, match="outside"):
        ds.video_frames(1, "front", [13])


def test_stats_json(dataset_root):
    ds = lr.LeRobotV3Dataset(dataset_root)
    state = ds.data("observation.state").astype(np.float64)
    s = ds.stats["observation.state"]
    np.testing.assert_allclose(s["mean"], state.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s["std"], state.std(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(s["min"], state.min(0))
    np.testing.assert_array_equal(s["max"], state.max(0))
    assert int(s["count"][0]) == sum(LENGTHS)
    img = ds.stats["observation.images.front"]
    assert np.asarray(img["mean"]).shape == (3, 1, 1)
    assert np.all((img["min"] >= 0) & (img["max"] <= 1) & (img["q01"] <= img["q50"]) & (img["q50"] <= img["q99"]))


def test_video_file_rollover(tmp_path):
    root = record(tmp_path, lengths=(6, 5, 4), video_file_size_mb=1e-6, data_file_size_mb=1e-6)
    ds = lr.LeRobotV3Dataset(root)
    files = sorted((root / "videos" / "observation.images.front").rglob("*.mp4"))
    assert [f.name for f in files] == ["file-000.mp4", "file-001.mp4", "file-002.mp4"]
    assert len(list((root / "data").rglob("*.parquet"))) == 3
    for ep in range(3):
        assert ds.video_path(ep, "front")[1] == 0.0
        frames = list(ds.episode_frames(ep, cameras=["front"]))
        assert psnr(frames[-1]["observation.images.front"], observation(len(frames) - 1).frames["front"].color) \
            >= MIN_PSNR_DB


def test_full_resolution_480x640(tmp_path):
    root = record(tmp_path, lengths=(5,), height=480, width=640)
    ds = lr.LeRobotV3Dataset(root)
    img = ds.video_frames(0, "front", [4])[0]
    assert img.shape == (480, 640, 3)
    assert psnr(img, observation(4, height=480, width=640).frames["front"].color) >= MIN_PSNR_DB


def test_reader_errors(tmp_path):
    with pytest.raises(lr.DatasetError, match="info.json"):
        lr.LeRobotV3Dataset(tmp_path)
    with pytest.raises(lr.DatasetError, match="shape"):
        lr.command_action(np.zeros(16))
