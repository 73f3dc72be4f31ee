"""Recorder throughput at 3 cameras 480x640: real-time 30 Hz feed (does it keep up, drops, lag), the
maximum sustained rate per format (backpressure instead of drops), and raw encode speed.

    python3 bench/bench_recorder.py [--seconds 10] [--out /tmp/bench_recorder]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.dataformats.video import VideoEncoder, VideoSettings
from rig.schema import ArmState, CameraFrame, GripperState, Observation
from teleop.recorder import EpisodeRecorder, RecorderSettings

H, W, FPS = 480, 640, 30


def make_images(n: int, seed: int) -> list[np.ndarray]:
    """Camera-like frames: shading, fine texture panning with a moving camera, a few moving objects,
    sensor noise (sigma 3). Harder to compress than a static scene, like a wrist camera."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([90 + 60 * np.sin(x / 97 + seed), 110 + 50 * np.cos(y / 71), 100 + 40 * np.sin((x + y) / 150)], -1)
    texture = rng.normal(0, 18, (H // 2, W // 2, 3)).repeat(2, 0).repeat(2, 1).astype(np.float32)
    out = []
    for i in range(n):
        img = base + np.roll(texture, (i, 3 * i), axis=(0, 1))
        for k in range(4):
            cx, cy = int(100 + 120 * k + 4 * i) % W, int(150 + 60 * np.sin(0.1 * i + k)) % H
            img[max(0, cy - 30):cy + 30, max(0, cx - 40):cx + 40] = (40 * k, 200 - 30 * k, 80)
        img += rng.normal(0, 3.0, img.shape).astype(np.float32)
        out.append(img.clip(0, 255).astype(np.uint8))
    return out


def make_obs(i: int, t: float, images: dict[str, list[np.ndarray]]) -> Observation:
    frames = {c: CameraFrame(camera=c, t=t, color=imgs[i % len(imgs)], frame_number=i) for c, imgs in images.items()}
    pose = np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0])
    arms = {a: ArmState(arm=a, t=t, q=np.full(7, 0.01 * i), dq=np.zeros(7), tau=np.zeros(7), tcp_pose=pose)
            for a in ARM_NAMES}
    grippers = {a: GripperState(arm=a, t=t, opening=0.5, width_m=0.0425) for a in ARM_NAMES}
    return Observation(t=t, frames=frames, arms=arms, grippers=grippers)


def command() -> np.ndarray:
    return np.tile(np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0, 0.5]), (2, 1))


class TickProbe:
    """A 100 Hz loop in a thread of the same process (like a control loop): records how late each tick wakes."""

    def __init__(self, hz: float = 100.0):
        import threading

        self.period, self.late = 1.0 / hz, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += self.period
            time.sleep(max(0.0, next_t - time.monotonic()))
            self.late.append(time.monotonic() - next_t)

    def __enter__(self) -> TickProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        late = np.array(self.late) * 1e3
        return f"p50 {np.percentile(late, 50):.2f} ms, p99 {np.percentile(late, 99):.2f} ms, max {late.max():.2f} ms"


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(root: Path, formats: tuple[str, ...], frames: int, images: dict, realtime: bool) -> dict:
    shutil.rmtree(root, ignore_errors=True)
    settings = RecorderSettings.from_config()
    if not realtime:  # measure the sustained rate: wait for the writer instead of dropping
        settings = RecorderSettings(**{**settings.__dict__, "overflow": "block", "block_timeout_s": 30.0})
    proc = psutil.Process()
    with EpisodeRecorder(root, formats=formats, settings=settings) as rec:
        rec.start_episode("benchmark")
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        add_max = 0.0
        for i in range(frames):
            if realtime:
                due = t0 + i / FPS
                time.sleep(max(0.0, due - time.monotonic()))
            a = time.perf_counter()
            rec.add(make_obs(i, time.monotonic(), images), command())
            add_max = max(add_max, time.perf_counter() - a)
        t_fed = time.monotonic()
        rec.end_episode(success=True)
        rec.wait()
        t_done = time.monotonic()
        cpu1 = proc.cpu_times()
        stats = rec.stats
    wall = t_done - t0
    size = dir_bytes(root)
    return {
        "formats": "+".join(formats), "frames": frames, "dropped": stats.frames_dropped,
        "written": stats.frames_written, "queue_max": stats.queue_high_water,
        "feed_s": t_fed - t0, "drain_s": t_done - t_fed - stats.last_commit_s, "commit_s": stats.last_commit_s,
        "fps": stats.frames_written / wall, "MB/s": size / 1e6 / wall, "MB": size / 1e6,
        "cpu_cores": ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / wall,
        "add_max_ms": add_max * 1e3, "blocked_s": stats.blocked_s,
        "cpu_ms_per_obs": ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) * 1e3 / max(1, stats.frames_written),
    }


def encode_speed(images: list[np.ndarray], settings: VideoSettings, out: Path) -> float:
    enc = VideoEncoder(out, W, H, FPS, settings)
    t0 = time.perf_counter()
    for img in images:
        enc.encode(img)
    enc.close()
    return len(images) / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="episode length of the real-time run")
    parser.add_argument("--out", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_recorder_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"cpu cores: {psutil.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}, scratch: {out}")
    images = {c: make_images(60, k) for k, c in enumerate(CAMERA_NAMES)}
    frames = int(args.seconds * FPS)
    print(f"\n3 cameras {W}x{H} @ {FPS} Hz, {frames} observations per run")
    header = ("run", "formats", "fps", "MB/s", "MB", "dropped", "queue_max", "drain_s", "commit_s", "cpu_cores",
              "cpu_ms/obs", "cores@30Hz", "add_max_ms", "load")
    with TickProbe() as idle:
        time.sleep(min(args.seconds, 5.0))
    print(" | ".join(header))
    probes = {}
    for realtime, formats in ((True, ("lerobot", "mcap")), (False, ("lerobot", "mcap")),
                              (False, ("lerobot",)), (False, ("mcap",))):
        with TickProbe() as probe:
            r = run(out / "rec", formats, frames, images, realtime)
        probes[("real-time " if realtime else "max rate ") + r["formats"]] = probe.summary()
        print(" | ".join([
            "real-time 30 Hz" if realtime else "max rate", r["formats"], f"{r['fps']:.1f}", f"{r['MB/s']:.1f}",
            f"{r['MB']:.0f}", str(r["dropped"]), str(r["queue_max"]), f"{r['drain_s']:.2f}", f"{r['commit_s']:.2f}",
            f"{r['cpu_cores']:.2f}", f"{r['cpu_ms_per_obs']:.1f}", f"{r['cpu_ms_per_obs'] * FPS / 1e3:.2f}",
            f"{r['add_max_ms']:.2f}", f"{os.getloadavg()[0]:.1f}"]))
    print("\nlateness of a 100 Hz loop thread in the same process:")
    print(f"  {'no recorder':30s} {idle.summary()}")
    for name, text in probes.items():
        print(f"  {name:30s} {text}")
    settings = RecorderSettings.from_config().video
    print(f"\nLeRobot export encode speed, one camera, one thread ({settings.codec} {settings.preset} "
          f"crf {settings.crf} gop {settings.gop}):")
    for name, s in (("config", settings), ("libx264 ultrafast", VideoSettings(preset="ultrafast")),
                    ("libsvtav1 preset 10", VideoSettings(codec="libsvtav1", preset="10", crf=30))):
        fps = encode_speed(images["front"] * 2, s, out / "enc.mp4")
        size = (out / "enc.mp4").stat().st_size / 120
        print(f"  {name:22s} {fps:6.0f} frames/s  ({fps / (3 * FPS):.1f}x real time for 3 cameras), "
              f"{size / 1e3:.0f} kB/frame")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
