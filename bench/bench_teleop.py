"""Teleop measures: input-to-command latency over loopback ZeroMQ, and whether recording keeps up at 30 Hz
with three 480x640 cameras while the teleop loop runs.

Latency: a sender thread streams protocol frames at --rate Hz (both grips held, the left controller moving)
to a `ZmqReceiver` on 127.0.0.1; each message goes through `TeleopSession.handle` (filter, clutch,
retargeting, `executor.submit`) while an `ExecutorThread` streams targets through the guard at 100 Hz to
recording arms. Reported per message: send -> receive (transport), receive -> target handed to the executor
(teleop code), receive -> first guard `send_pose` carrying the new plan (what reaches the arm driver).

Recording: `TeleopRunner.run_realtime` with three synthetic 480x640 cameras delivering a new frame every
1/30 s (camera-like content from bench_recorder.make_images), an episode open the whole time; reports
frames recorded vs the 30 Hz expectation, drops, observation-loop period.

    OMP_NUM_THREADS=1 python3 bench/bench_teleop.py [--seconds 10] [--rate 90]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_recorder import make_images

from calibration.transforms import load_calibration
from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.executor import ChunkExecutor, ExecutorThread
from rig.factory import Rig
from rig.safety import SafetyGuard
from rig.schema import CameraFrame
from rig.timing import MonotonicClock
from teleop.config import load_teleop_config
from teleop.protocol import ControllerState, encode_frame
from teleop.recorder import EpisodeRecorder
from teleop.runner import TeleopRunner
from teleop.scripted import CONTROLLER_HOME, HEADSET_POSE
from teleop.session import TeleopSession
from teleop.transport import ZmqReceiver, ZmqSender
from tests.doubles.rig_devices import RecordingArm, RecordingGripper, StillCamera


class TimedArm(RecordingArm):
    """Records the monotonic time of every pose sent to it."""

    def __init__(self, name: str, clock: MonotonicClock) -> None:
        super().__init__(name, clock=clock)
        self.sent_t: list[float] = []

    def send_pose(self, pose: np.ndarray) -> None:
        super().send_pose(pose)
        self.sent_t.append(time.monotonic())


class LiveCamera(StillCamera):
    """A new camera-like 480x640 frame every 1/30 s of wall time, produced when asked."""

    def __init__(self, name: str, images: list[np.ndarray]) -> None:
        super().__init__(name, 480, 640)
        self.images, self.t0 = images, time.monotonic()

    def latest(self) -> CameraFrame | None:
        n = int((time.monotonic() - self.t0) * 30)
        if self.frame is None or self.frame.frame_number != n:
            t = self.t0 + n / 30
            self.frame = CameraFrame(camera=self.name, t=t, color=self.images[n % len(self.images)], frame_number=n)
        return self.frame

    def intrinsics(self):  # a method here, as on the real and sim cameras
        return super().intrinsics


def pct(values: list[float]) -> str:
    a = np.asarray(values) * 1e3
    return f"p50 {np.percentile(a, 50):.2f} ms, p99 {np.percentile(a, 99):.2f} ms, max {a.max():.2f} ms (n={a.size})"


def bench_latency(seconds: float, rate: float) -> None:
    cfg = load_teleop_config()
    clock = MonotonicClock()
    arms = {a: TimedArm(a, clock) for a in ARM_NAMES}
    guard = SafetyGuard(replace(cfg.guard, watch=()), arms, {a: RecordingGripper(a) for a in ARM_NAMES})
    executor = ChunkExecutor(cfg.executor, guard)
    calib = load_calibration()
    session = TeleopSession(cfg, executor, {a: calib.T_world_base(a)[:3, :3] for a in ARM_NAMES})
    records: list[tuple[float, float, float]] = []  # (sent, received, handled)

    def on_message(raw: bytes, t_recv: float) -> None:
        session.handle(raw, t_recv)
        records.append((float(np.frombuffer(raw[-8:], ">f8")[0]), t_recv, time.monotonic()))

    receiver = ZmqReceiver("zmq://127.0.0.1:0", on_message, poll_ms=5).start()
    thread = ExecutorThread(executor, clock).start()
    sender = ZmqSender(f"zmq://127.0.0.1:{receiver.port}")
    time.sleep(0.3)
    n = int(seconds * rate)
    start = time.monotonic()
    for k in range(n):
        due = start + k / rate
        time.sleep(max(0.0, due - time.monotonic()))
        left = CONTROLLER_HOME["left"].copy()
        left[2] -= 0.05 * np.sin(k / rate)
        ctrls = {"left": ControllerState(left, 0.0, 1.0), "right": ControllerState(CONTROLLER_HOME["right"], 0.0, 1.0)}
        raw = encode_frame(k, time.monotonic(), HEADSET_POSE, ctrls)
        sender.send(_with_send_time(raw))  # the send time rides as an extra field (ignored by the decoder)
    time.sleep(0.3)
    thread.stop()
    receiver.stop()
    sender.close()
    sends = np.asarray(arms["left"].sent_t)
    transport = [r - s for s, r, _ in records]
    handle = [h - r for _, r, h in records]
    to_arm = []
    for _, r, h in records:
        i = int(np.searchsorted(sends, h))
        if i < len(sends):
            to_arm.append(sends[i] - r)
    print(f"latency over loopback ZeroMQ at {rate:.0f} Hz for {seconds:.0f} s "
          f"({session.filter.counters['accepted']}/{n} accepted, dropped {session.filter.dropped()}):")
    print(f"  send -> receive:                    {pct(transport)}")
    print(f"  receive -> target to the executor:  {pct(handle)}")
    print(f"  receive -> guard sends to the arm:  {pct(to_arm)}")


def _with_send_time(raw: bytes) -> bytes:
    import msgpack

    data = msgpack.unpackb(raw)
    data["zz_sent"] = time.monotonic()  # unknown keys are ignored by the decoder; last key -> last 8 bytes
    return msgpack.packb(data)


def bench_recording(seconds: float) -> None:
    cfg = load_teleop_config()
    images = make_images(60, 1)
    cams = {c: LiveCamera(c, images) for c in CAMERA_NAMES}
    clock = MonotonicClock()
    rig = Rig(cams, {a: RecordingArm(a, clock=clock) for a in ARM_NAMES}, {a: RecordingGripper(a) for a in ARM_NAMES})
    out = Path(tempfile.mkdtemp(prefix="bench_teleop_"))
    try:
        with EpisodeRecorder(out, fps=30, intrinsics={c: cams[c].intrinsics() for c in CAMERA_NAMES}) as rec:
            runner = TeleopRunner(rig, cfg, "benchmark", rec)
            ticks: list[float] = []
            original = runner.observe_and_record

            def timed(now: float) -> None:
                ticks.append(now)
                original(now)

            runner.observe_and_record = timed  # type: ignore[method-assign]
            runner.session.command("start")
            threading.Timer(seconds, lambda: runner.session.command("stop")).start()
            t0 = time.monotonic()
            runner.run_realtime(max_seconds=seconds + 1.0, until=lambda: bool(runner.episodes.log.saved))
            wall = time.monotonic() - t0
            rec.wait()
            saved = runner.episodes.log.saved[0] if runner.episodes.log.saved else {"frames": 0, "dropped": 0}
            stats = rec.stats
        period = np.diff(ticks)
        print(f"recording, 3 cameras 480x640 at 30 Hz for {seconds:.0f} s ({wall:.1f} s wall): "
              f"{saved['frames']} frames recorded of {seconds * 30:.0f} expected, {saved['dropped']} dropped, "
              f"writer queue high water {stats.queue_high_water}, commit {stats.last_commit_s:.2f} s; "
              f"observation period p50 {np.median(period) * 1e3:.1f} ms, p99 {np.percentile(period, 99) * 1e3:.1f} ms")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=90.0, help="sender rate (Quest: 72-90 Hz)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    bench_latency(args.seconds, args.rate)
    bench_recording(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
