"""EpisodeRecorder: episode lifecycle, non-blocking add with counted drops, crash safety (a real
SIGKILL mid-episode, interrupted commits), low disk space, and root locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from recording_data import command, observation

from rig.dataformats import atomic
from rig.dataformats.lerobot_v3 import LeRobotV3Dataset
from rig.dataformats.rosbag_mcap import bag_summary, read_bag
from rig.schema import SchemaError
from teleop.recorder import DiskSpaceError, EpisodeRecorder, RecorderError, RecorderSettings

ROOT = Path(__file__).resolve().parent.parent
FAST = RecorderSettings(min_free_bytes=1)


def record_episode(rec, task, n, success=True, start=0):
    index = rec.start_episode(task)
    for i in range(start, start + n):
        rec.add(observation(i), command(i))
    rec.end_episode(success=success)
    return index


def check_dataset(root, lengths):
    ds = LeRobotV3Dataset(root / "lerobot")
    assert ds.num_episodes == len(lengths)
    assert [ds.episode_index_range(e)[1] - ds.episode_index_range(e)[0] for e in range(len(lengths))] == lengths
    bags = sorted((root / "bags").iterdir())
    assert [b.name for b in bags] == [f"episode_{i:06d}" for i in range(len(lengths))]
    for bag, n in zip(bags, lengths):
        assert bag_summary(bag)["topics"]["/recorded/command/poses"][1] == n
    for ep, n in enumerate(lengths):  # every committed episode decodes completely
        assert len(list(ds.episode_frames(ep, cameras=["front"]))) == n
    return ds


def test_episode_lifecycle_discard_and_reopen(tmp_path):
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        assert record_episode(rec, "a", 5) == 0
        assert rec.start_episode("b") == 1
        rec.add(observation(0), command(0))
        rec.discard_episode("operator aborted")
        assert record_episode(rec, "c", 4, success=False) == 1  # the discarded index is reused
        rec.start_episode("d")
        rec.end_episode(success=True)  # no frames: discarded, not committed
        rec.wait()
        assert (rec.stats.episodes_committed, rec.stats.episodes_discarded) == (2, 2)
        with pytest.raises(RecorderError, match="no episode open"):
            rec.add(observation(0), command(0))
        with pytest.raises(RecorderError, match="no episode open"):
            rec.end_episode(True)
    ds = check_dataset(tmp_path, [5, 4])
    assert [ds.episode_task(e) for e in range(2)] == ["a", "c"]
    assert [ds.episode_success(e) for e in range(2)] == [True, False]
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        assert rec.recovery_notes == []
        assert record_episode(rec, "e", 3) == 2
        rec.wait()
    check_dataset(tmp_path, [5, 4, 3])


def test_add_validates_in_the_callers_thread(tmp_path):
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        rec.start_episode("x")
        with pytest.raises(SchemaError, match="command"):
            rec.add(observation(0), np.zeros((2, 7)))
        with pytest.raises(SchemaError, match="missing"):
            rec.add(observation(0, cameras=("front",)), command(0))
        with pytest.raises(RecorderError, match="still open"):
            rec.start_episode("y")
        rec.discard_episode("test")
        with pytest.raises(RecorderError, match="task is empty"):
            rec.start_episode(" ")


def test_full_queue_drops_and_counts_without_blocking(tmp_path, monkeypatch):
    settings = RecorderSettings(min_free_bytes=1, queue_size=2)
    with EpisodeRecorder(tmp_path, formats=("lerobot",), settings=settings) as rec:
        slow = rec._write_frame

        def slow_write(*args):
            time.sleep(0.03)
            slow(*args)

        monkeypatch.setattr(rec, "_write_frame", slow_write)
        rec.start_episode("burst")
        accepted, in_add = [], 0.0
        for i in range(30):  # 100 Hz offered, the writer manages ~33 Hz: drops interleave with writes
            t0 = time.perf_counter()
            accepted.append(rec.add(observation(i), command(i)))
            in_add += time.perf_counter() - t0
            time.sleep(0.01)
        rec.end_episode(success=True)
        rec.wait()
        assert in_add < 0.25  # add() never waited for the writer (30 writes take 0.9 s)
        assert not all(accepted) and any(accepted)
        assert rec.stats.frames_dropped == accepted.count(False)
        assert rec.stats.frames_written == accepted.count(True)
    ds = LeRobotV3Dataset(tmp_path / "lerobot")
    assert ds.num_frames == accepted.count(True)
    extra = json.loads(ds.episode(0)["extra"])
    assert extra["dropped_frames"] == accepted.count(False)
    assert extra["timing_gaps"] >= 1  # the dropped observations show up as gaps in observation time


def test_block_policy_measures_backpressure(tmp_path, monkeypatch):
    settings = RecorderSettings(min_free_bytes=1, queue_size=1, overflow="block", block_timeout_s=0.2)
    with EpisodeRecorder(tmp_path, formats=("mcap",), settings=settings) as rec:
        slow = rec._write_frame
        monkeypatch.setattr(rec, "_write_frame", lambda *a: (time.sleep(0.02), slow(*a)))
        record_episode(rec, "b", 10)
        rec.wait()
        assert rec.stats.frames_dropped == 0 and rec.stats.blocked_s > 0.05


def test_sigkill_mid_episode_keeps_earlier_episodes(tmp_path):
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
        from recording_data import command, observation
        from teleop.recorder import EpisodeRecorder, RecorderSettings
        rec = EpisodeRecorder(sys.argv[1], settings=RecorderSettings(min_free_bytes=1))
        for ep, n in enumerate((6, 4)):
            rec.start_episode(f"task {{ep}}")
            for i in range(n):
                rec.add(observation(i), command(i))
            rec.end_episode(success=True)
        rec.wait()
        rec.start_episode("doomed")
        for i in range(8):
            rec.add(observation(i), command(i))
        rec.wait()
        print("MID-EPISODE", flush=True)
        time.sleep(60)
    """))
    root = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "MID-EPISODE"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (root / ".staging" / "episode_000002").is_dir()  # the unfinished episode is on disk
    check_dataset(root, [6, 4])  # readable before any recovery: the commits are complete
    with EpisodeRecorder(root, settings=FAST) as rec:
        assert len(rec.recovery_notes) == 1
        assert "discarded unfinished episode episode_000002" in rec.recovery_notes[0]
        assert "doomed" in rec.recovery_notes[0]
        assert not any((root / ".staging").iterdir())
        assert record_episode(rec, "after crash", 3) == 2
        rec.wait()
    check_dataset(root, [6, 4, 3])


def test_crash_after_journal_is_completed_on_reopen(tmp_path, monkeypatch):
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        record_episode(rec, "kept", 4)
        rec.wait()
        real_apply = atomic._apply

        def die_halfway(root, journal):  # the process "dies" after the first rename of the commit
            src, dst = (root / journal[0][0]), (root / journal[0][1])
            os.replace(src, dst)
            raise KeyboardInterrupt("simulated crash")

        monkeypatch.setattr(atomic, "_apply", die_halfway)
        record_episode(rec, "interrupted", 5)
        with pytest.raises(RecorderError):
            rec.wait()
        monkeypatch.setattr(atomic, "_apply", real_apply)
    assert (tmp_path / atomic.JOURNAL_NAME).is_file()
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        assert any("completed an interrupted commit" in n for n in rec.recovery_notes)
        assert not any("discarded" in n for n in rec.recovery_notes)
        assert not any((tmp_path / ".staging").iterdir())
    ds = check_dataset(tmp_path, [4, 5])
    assert ds.episode_task(1) == "interrupted"


def test_crash_before_journal_rolls_back(tmp_path, monkeypatch):
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        record_episode(rec, "kept", 4)
        rec.wait()

        def die(root, renames):
            raise KeyboardInterrupt("simulated crash before the journal")

        monkeypatch.setattr(atomic, "commit", die)
        record_episode(rec, "lost", 5)
        with pytest.raises(RecorderError):
            rec.wait()
    monkeypatch.undo()
    leftovers = list(tmp_path.rglob(f"*{atomic.TMP_MARK}*"))
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        assert rec.recovery_notes  # temporary files removed
    assert not any(p.exists() for p in leftovers)
    check_dataset(tmp_path, [4])


def test_low_disk_refuses_to_start(tmp_path):
    with pytest.raises(DiskSpaceError, match="min_free_bytes"):
        EpisodeRecorder(tmp_path, settings=FAST, min_free_bytes=10**18)
    with EpisodeRecorder(tmp_path, settings=FAST):  # the failed open released the root
        pass


def test_low_disk_mid_episode_stops_cleanly(tmp_path, monkeypatch):
    settings = RecorderSettings(min_free_bytes=10**6, disk_check_interval_s=0.0)
    with EpisodeRecorder(tmp_path, settings=settings) as rec:
        record_episode(rec, "fine", 4)
        rec.wait()
        rec.start_episode("disk fills")
        rec.add(observation(0), command(0))
        rec.wait()
        monkeypatch.setattr(rec, "_free_bytes", lambda: 10)
        rec.add(observation(1), command(1))
        with pytest.raises(DiskSpaceError, match="below min_free_bytes"):
            rec.wait()
        with pytest.raises(DiskSpaceError):
            rec.add(observation(2), command(2))
        assert not any((tmp_path / ".staging").iterdir())  # the partial episode was removed
    check_dataset(tmp_path, [4])


def test_root_lock_and_layout_checks(tmp_path):
    with EpisodeRecorder(tmp_path, settings=FAST), pytest.raises(RecorderError, match="another recorder"):
        EpisodeRecorder(tmp_path, settings=FAST)
    with pytest.raises(RecorderError, match="different settings"):
        EpisodeRecorder(tmp_path, fps=15, settings=FAST)
    with pytest.raises(RecorderError, match="formats"):
        EpisodeRecorder(tmp_path / "x", formats=("hdf5",), settings=FAST)


def test_image_size_must_match_the_dataset(tmp_path):
    with EpisodeRecorder(tmp_path, formats=("lerobot",), settings=FAST) as rec:
        record_episode(rec, "small", 2)
        rec.start_episode("bigger")
        rec.add(observation(0, height=48, width=64), command(0))
        with pytest.raises(RecorderError, match="image shape"):
            rec.wait()
    check = LeRobotV3Dataset(tmp_path / "lerobot")
    assert check.num_episodes == 1


def test_settings_from_config():
    settings = RecorderSettings.from_config()
    assert settings.overflow in ("drop", "block")
    assert settings.video.codec == "libx264" and settings.video.pix_fmt == "yuv420p"


def test_bag_only_and_lerobot_only_roots(tmp_path):
    with EpisodeRecorder(tmp_path / "m", formats=("mcap",), settings=FAST) as rec:
        record_episode(rec, "m", 3)
        rec.wait()
    assert not (tmp_path / "m" / "lerobot").exists()
    assert len([m for m in read_bag(tmp_path / "m" / "bags" / "episode_000000") if m.topic.endswith("image_raw")]) == 9


def test_cli_data_info(tmp_path, capsys):
    from a2world_ros.cli.main import main

    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        record_episode(rec, "pick", 4)
        record_episode(rec, "place", 3, success=False)
        rec.wait()
    assert main(["data", "info", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    lerobot = summary["lerobot"]
    assert (lerobot["episodes"], lerobot["frames"], lerobot["fps"], lerobot["success_rate"]) == (2, 7, 30, 0.5)
    assert lerobot["cameras"] == {"front": [64, 80], "wrist_left": [64, 80], "wrist_right": [64, 80]}
    assert lerobot["tasks"] == {"pick": {"episodes": 1, "successes": 1}, "place": {"episodes": 1, "successes": 0}}
    assert lerobot["duration_s"] == pytest.approx(7 / 30, abs=1e-3)
    assert summary["mcap"]["bags"] == 2 and summary["mcap"]["metadata_versions"] == [8]
    assert main(["data", "info", str(tmp_path / "lerobot"), "--episodes"]) == 0
    text = capsys.readouterr().out
    assert "success 50.0 %" in text and "place" in text
    assert main(["data", "info", str(tmp_path / "bags")]) == 1
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
