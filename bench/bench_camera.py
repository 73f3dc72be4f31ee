"""Capture path of the RealSense driver through librealsense software devices (no hardware needed).

Three cameras (D435i + 2x D405, 640x480 RGB8) are fed at --fps by a feeder thread that stands in for
the USB thread; each frame goes through the real pyrealsense2 sensor callback, the timestamp mapping
and one copy into the driver's ring. Measured:

1. paced capture: frames/s per camera through the ring, drops, copies per frame;
2. consumer latency: a consumer thread per camera calls `wait_frame()`; latency is the consumer's
   receipt time minus the frame's stamp (latency_s = 0, so `t` is the push time);
3. slow consumer: the consumer holds each frame for --slow-ms; capture rate must not change;
4. capacity: one camera pushed as fast as possible (frames/s the callback + copy sustain).

Run: python3 bench/bench_camera.py [--seconds 5] [--fps 30] [--depth]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

from rig.drivers.base import DeviceError
from rig.drivers.realsense import RealSenseCamera, RealSenseConfig
from rig.drivers.realsense_software import FrameFeeder, SoftwareRealSense, SoftwareSource

RIG = [
    ("front", "100000000001", "D435i"),
    ("wrist_left", "100000000002", "D405"),
    ("wrist_right", "100000000003", "D405"),
]


def make_rig(depth: bool, count: int = 3) -> tuple[list[RealSenseCamera], list[SoftwareRealSense]]:
    devices = [SoftwareRealSense(serial, model) for _, serial, model in RIG[:count]]
    source = SoftwareSource(devices)
    cams = [
        RealSenseCamera(
            RealSenseConfig.from_dict(
                name, {"serial": serial, "model": model, "latency_s": 0.0, "depth": depth, "watchdog_timeout_s": 5.0}
            ),
            source,
        )
        for name, serial, model in RIG[:count]
    ]
    for cam in cams:
        cam.connect()
    return cams, devices


def consume(cam: RealSenseCamera, stop: threading.Event, hold_s: float, latencies: list[float], shared: list[bool]):
    last_t = -np.inf
    while not stop.is_set():
        try:
            frame = cam.wait_frame(last_t, 0.5)
        except DeviceError:
            continue
        latencies.append(time.monotonic() - frame.t)
        last_t = frame.t
        again = cam.latest()
        if again is not None and again.frame_number == frame.frame_number:
            shared.append(np.shares_memory(again.color, frame.color))  # same ring slot, no copy per read
        if hold_s:
            time.sleep(hold_s)  # "processing": `frame` stays referenced, so its ring slot stays pinned


def paced_run(seconds: float, fps: float, depth: bool, hold_s: float) -> None:
    cams, devices = make_rig(depth)
    stop = threading.Event()
    latencies: dict[str, list[float]] = {c.name: [] for c in cams}
    shared: list[bool] = []
    consumers = [
        threading.Thread(target=consume, args=(c, stop, hold_s, latencies[c.name], shared), daemon=True) for c in cams
    ]
    for t in consumers:
        t.start()
    feeder = FrameFeeder(devices, fps=fps, depth=depth).start()
    time.sleep(seconds)
    feeder.stop()
    stop.set()
    for t in consumers:
        t.join()
    pushed = len(feeder.push_times)
    elapsed = feeder.push_times[-1] - feeder.push_times[0] if pushed > 1 else float("nan")
    label = f"consumer holds each frame {hold_s * 1000:.0f} ms" if hold_s else "consumer waits on every frame"
    print(f"\n{label}; {pushed} frames pushed per camera in {elapsed:.2f} s (target {fps:g} fps, depth={depth})")
    print(
        f"  {'camera':<12} {'frames/s':>9} {'captured':>9} {'dropped':>8} {'ring_full':>9} {'copies/frame':>12} "
        f"{'consumed':>9} {'lat p50 ms':>10} {'lat p99 ms':>10}"
    )
    for cam in cams:
        s = cam.stats()
        lat = sorted(latencies[cam.name])
        p50 = 1000 * statistics.median(lat) if lat else float("nan")
        p99 = 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
        rate = (s.samples - 1) / elapsed if s.samples > 1 else 0.0
        print(
            f"  {cam.name:<12} {rate:9.2f} {s.samples:9d} {s.dropped:8d} {int(s.extra['ring_full_drops']):9d} "
            f"{s.extra['copies'] / max(s.samples, 1):12.2f} {len(lat):9d} {p50:10.2f} {p99:10.2f}"
        )
    if shared:
        print(f"  reads sharing the ring slot (zero-copy): {sum(shared)}/{len(shared)}")
    for cam in cams:
        cam.disconnect()


def capacity_run(seconds: float, depth: bool) -> None:
    cams, devices = make_rig(depth, count=1)
    dev, cam = devices[0], cams[0]
    color = np.zeros((480, 640, 3), np.uint8)
    depth_img = np.full((480, 640), 1000, np.uint16) if depth else None
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        dev.push(n, color=color, depth=depth_img)
        n += 1
    elapsed = time.perf_counter() - t0
    s = cam.stats()
    print(
        f"\ncapacity ({cam.name}, one camera, frames pushed back to back, depth={depth}): "
        f"{n / elapsed:.0f} frames/s, {1e6 * elapsed / n:.0f} us per frame (push + callback + one copy), "
        f"captured {s.samples}/{n}, errors {s.errors}"
    )
    for c in cams:
        c.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--slow-ms", type=float, default=100.0, help="hold time per frame of the slow consumer")
    parser.add_argument("--depth", action="store_true", help="also stream depth aligned to colour")
    args = parser.parse_args()
    paced_run(args.seconds, args.fps, args.depth, hold_s=0.0)
    paced_run(args.seconds, args.fps, args.depth, hold_s=args.slow_ms / 1000.0)
    capacity_run(min(args.seconds, 2.0), args.depth)


if __name__ == "__main__":
    main()
