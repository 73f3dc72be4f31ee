"""Chunk-executor timing at the arm command rate: wake-up jitter of each tick (how late it started
against its absolute schedule) and the tick's own compute time, p50 / p99 / max, overruns.

Executors:
  thread   `ExecutorThread` in this process (the layout before rig.realtime)
  process  `RealtimeExecutor`: executor + guard + arm streaming in a dedicated process (shared-memory
           chunk and tick rings), optionally SCHED_FIFO (`--rt-priority`)

Loads (besides whatever else runs on the machine):
  none     nothing added
  full     stand-ins for what runs beside the executor on the rig PC:
           cameras  - the MuJoCo twin stepping and rendering its three 640x480 views (own process)
           recorder - three libx264 encoders at 30 fps, 640x480, the recorder's settings (own process)
           ROS      - a thread in this process converting messages (numpy + dict churn) without pause,
                      where the ROS nodes' executor would hold the GIL
Arms: `EchoArm`, an in-memory arm that is wherever it was last told to be. `--arms isolated` (process
executor only) runs each EchoArm in its own arm process (rig.realtime.arm_process.IsolatedArm, states at
200 Hz through shared memory), the layout for the real Flexiv arms. A new 60-step chunk (2 s at 30 Hz, a
slow circle) arrives every 0.5 s, so ticks interpolate and splice.

    MUJOCO_GL=osmesa python3 bench/bench_executor.py --seconds 15 --executor thread process \
        --load none full --rt-priority 0 50 [--arms isolated]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from rig.drivers.base import Arm
from rig.executor import ChunkExecutor, ExecutorConfig, ExecutorThread, TickResult
from rig.realtime.executor_process import IsolatedArmFactory, RealtimeConfig, RealtimeExecutor
from rig.safety import ArmLimits, GuardConfig, SafetyGuard
from rig.schema import ArmState, CommandChunk

HOME = np.array([0.0, -0.0707, 0.4243, 0.92388, 0.0, 0.0, 0.38268])
LIMITS = ArmLimits((-0.35, -0.55, 0.12), (0.35, 0.55, 0.85), 0.25, 1.0, 1.0, 3.0)


class EchoArm(Arm):
    """An arm that is wherever it was last told to be (no hardware, no simulation)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pose = HOME.copy()

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    @property
    def is_connected(self) -> bool:
        return True

    def read_state(self) -> ArmState:
        z = np.zeros(7)
        return ArmState(self.name, time.monotonic(), z, z, z, self.pose)

    def send_pose(self, pose: np.ndarray) -> None:
        self.pose = np.asarray(pose, dtype=float)

    def in_fault(self) -> bool:
        return False

    def recover(self) -> None:
        pass

    def stop(self) -> None:
        pass


def circle_chunk(t0: float, start: dict[str, np.ndarray]) -> CommandChunk:
    k = np.arange(60)
    targets = np.zeros((60, 2, 8))
    for a, name in enumerate(("left", "right")):
        phase = 2 * np.pi * 0.2 * (t0 + k / 30.0)
        targets[:, a, :3] = start[name][:3] + 0.03 * np.stack([np.cos(phase), np.sin(phase), 0 * phase], -1)
        targets[:, a, 3:7] = start[name][3:7]
        targets[:, a, 7] = 0.5 + 0.4 * np.sin(phase)
    return CommandChunk(targets, t0=t0, dt=1 / 30)


# ------------------------------------------------------------------------------------------------ loads


def twin_worker(stop: Any) -> None:
    """Cameras stand-in: the twin stepping in real time and rendering its three views."""
    from rig.factory import build_rig

    rig = build_rig(rig="sim", sim_overrides={"clock": "realtime"})
    rig.connect()
    try:
        stop.wait()
    finally:
        rig.disconnect()


def recorder_worker(stop: Any) -> None:
    """Recorder stand-in: three 640x480 libx264 streams at 30 fps (config/recording.yaml settings)."""
    from rig.dataformats.video import VideoEncoder, VideoSettings

    with tempfile.TemporaryDirectory() as tmp:
        encoders = [VideoEncoder(Path(tmp) / f"cam{i}.mp4", 640, 480, 30, VideoSettings()) for i in range(3)]
        frame = np.zeros((480, 640, 3), np.uint8)
        k, t_next = 0, time.monotonic()
        while not stop.is_set():
            for i, enc in enumerate(encoders):
                frame[:, :, i] = (np.arange(640)[None, :] + 4 * k) % 256  # moving gradient: real motion
                enc.encode(frame)
            k += 1
            t_next += 1 / 30
            time.sleep(max(0.0, t_next - time.monotonic()))
        for enc in encoders:
            enc.close()


def ros_thread(stop: threading.Event) -> None:
    """ROS-node stand-in in the caller's process: message conversion work holding the GIL."""
    rng = np.random.default_rng(0)
    while not stop.is_set():
        msg = {"header": {"stamp": time.time_ns()}, "poses": rng.normal(size=(60, 2, 8)).tolist()}
        json.loads(json.dumps(msg))


class Load:
    """Starts and stops the chosen load."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ctx = mp.get_context("spawn")
        self.stop_mp = self.ctx.Event()
        self.stop_thread = threading.Event()
        self.children: list[Any] = []
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        if self.kind == "full":
            for target in (twin_worker, recorder_worker):
                child = self.ctx.Process(target=target, args=(self.stop_mp,), daemon=True)
                child.start()
                self.children.append(child)
            thread = threading.Thread(target=ros_thread, args=(self.stop_thread,), daemon=True)
            thread.start()
            self.threads.append(thread)
            time.sleep(5.0)  # let the twin come up and start rendering
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_mp.set()
        self.stop_thread.set()
        for child in self.children:
            child.join(15)
        for thread in self.threads:
            thread.join(5)


# ------------------------------------------------------------------------------------------------ runs


def pct(values: Any) -> str:
    a = np.asarray(values) * 1e3
    return f"p50 {np.percentile(a, 50):.3f}  p99 {np.percentile(a, 99):.3f}  max {a.max():.3f} ms"


def guard_config() -> GuardConfig:
    return GuardConfig(arms={"left": LIMITS, "right": LIMITS}, watch=())


def run_thread(seconds: float, hz: float, rt_priority: int) -> tuple[np.ndarray, np.ndarray, int]:
    arms: dict[str, Arm] = {n: EchoArm(n) for n in ("left", "right")}
    guard = SafetyGuard(guard_config(), arms)
    executor = ChunkExecutor(ExecutorConfig(command_hz=hz, rt_priority=rt_priority), guard)
    start = {n: arm.read_state().tcp_pose.copy() for n, arm in arms.items()}
    durations: list[float] = []

    def on_tick(result: TickResult) -> None:
        durations.append(time.monotonic() - result.now)

    runner = ExecutorThread(executor, on_tick=on_tick)
    executor.submit(circle_chunk(time.monotonic(), start), time.monotonic())
    runner.start()
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and runner.running:
        time.sleep(0.5)
        executor.submit(circle_chunk(time.monotonic() - 0.1, start), time.monotonic())
    runner.stop()
    late = np.asarray(list(runner.rate.stats._late))
    return late, np.asarray(durations), runner.jitter().overruns


def run_process(seconds: float, hz: float, rt_priority: int, cpu: int | None,
                isolated: bool) -> tuple[np.ndarray, np.ndarray, int]:
    arms: dict[str, Any] = {n: functools.partial(EchoArm, n) for n in ("left", "right")}
    if isolated:
        arms = {n: IsolatedArmFactory(n, make) for n, make in arms.items()}
    cfg = RealtimeConfig(ExecutorConfig(command_hz=hz), guard_config(), arms, rt_priority=rt_priority, cpu=cpu)
    records = []
    with RealtimeExecutor(cfg) as rt:
        print(f"  executor process pid {rt.pid}: {rt.scheduling}")
        start = {n: HOME.copy() for n in ("left", "right")}
        rt.submit(circle_chunk(time.monotonic(), start))
        rt.drain()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end and rt.running:
            time.sleep(0.5)
            rt.submit(circle_chunk(time.monotonic() - 0.1, start))
            records.extend(rt.drain())
        records.extend(rt.drain())
        lost = rt._rings["ticks"].lost
    late = np.array([r.late for r in records])
    compute = np.array([r.compute for r in records])
    print(f"  inputs after the sends (chunks, stamps, requests): {pct([r.inputs for r in records])}")
    sent = sum(r.commands["left"] is not None for r in records)
    print(f"  ticks {len(records)} (lost to the ring {lost}), left commands sent {sent}")
    return late, compute, int(sum(r.overrun for r in records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--hz", type=float, default=100.0)
    parser.add_argument("--executor", nargs="+", default=["thread", "process"], choices=["thread", "process"])
    parser.add_argument("--load", nargs="+", default=["none", "full"], choices=["none", "full"])
    parser.add_argument("--rt-priority", type=int, nargs="+", default=[0],
                        help="SCHED_FIFO priorities to try (0 = normal scheduler)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the executor process to this core")
    parser.add_argument("--arms", choices=["echo", "isolated"], default="echo",
                        help="process executor: in-memory arms, or each in its own arm process")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"cpus={os.cpu_count()} loadavg={os.getloadavg()[0]:.2f} (machine shared with other work)")
    for load in args.load:
        with Load(load):
            for kind in args.executor:
                for prio in args.rt_priority:
                    load_before = os.getloadavg()[0]
                    if kind == "thread":
                        late, compute, overruns = run_thread(args.seconds, args.hz, prio)
                    else:
                        late, compute, overruns = run_process(args.seconds, args.hz, prio, args.cpu,
                                                              args.arms == "isolated")
                    arms = args.arms if kind == "process" else "echo"
                    print(f"executor={kind:7s} arms={arms} load={load:4s} rt_priority={prio} {args.hz:.0f} Hz "
                          f"{args.seconds:.0f} s ticks={late.size} overruns={overruns} "
                          f"loadavg {load_before:.1f}")
                    print(f"  wake-up jitter  {pct(late)}")
                    print(f"  tick compute    {pct(compute)}")


if __name__ == "__main__":
    main()
