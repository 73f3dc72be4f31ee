"""Chunk-executor timing at the arm command rate: wake-up jitter of each tick (how late it started
against its absolute schedule) and the tick's own compute time, p50 / p99 / max.

Loads:
  none     executor alone, streaming to in-memory arms
  process  same, while the MuJoCo twin steps and renders its three 640x480 views in a child process
  thread   the sim-node layout: the twin (stepping + rendering) on a thread of this process, and the
           executor streaming to the twin's own arms (GIL shared with the renderer)

A new 60-step chunk (2 s at 30 Hz, a slow circle) arrives every 0.5 s, so ticks interpolate and splice.

    MUJOCO_GL=osmesa python3 bench/bench_executor.py --seconds 20 --load none process thread \
        --rt-priority 0 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from typing import Any

import numpy as np

from rig.drivers.base import Arm
from rig.executor import ChunkExecutor, ExecutorConfig, ExecutorThread, TickResult
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


def twin_worker(stop: Any, seconds: float) -> None:
    from rig.factory import build_rig

    rig = build_rig(rig="sim", sim_overrides={"clock": "realtime"})
    rig.connect()
    try:
        stop.wait(seconds + 30)
    finally:
        rig.disconnect()


def pct(values: list[float]) -> str:
    a = np.asarray(values) * 1e3
    return f"p50 {np.percentile(a, 50):.3f}  p99 {np.percentile(a, 99):.3f}  max {a.max():.3f} ms"


def run(load: str, seconds: float, hz: float, rt_priority: int) -> None:
    rig = None
    child = None
    ctx = mp.get_context("spawn")  # a fresh interpreter: no GL or thread state inherited
    stop = ctx.Event()
    if load == "thread":
        from rig.factory import build_rig

        rig = build_rig(rig="sim", sim_overrides={"clock": "realtime"})
        rig.connect()
        arms: dict[str, Arm] = dict(rig.arms)
    else:
        arms = {n: EchoArm(n) for n in ("left", "right")}
        if load == "process":
            child = ctx.Process(target=twin_worker, args=(stop, seconds), daemon=True)
            child.start()
            time.sleep(3.0)  # let the twin come up and start rendering
    guard = SafetyGuard(GuardConfig(arms={"left": LIMITS, "right": LIMITS}, watch=()), arms)
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
    frames = None
    if rig is not None:
        frames = rig.cameras["front"].latest()
        rig.disconnect()
    if child is not None:
        stop.set()
        child.join(10)
    jitter = np.asarray(list(runner.rate.stats._late))
    summary = runner.jitter()
    sent = guard.counters
    print(f"load={load:8s} rt_priority={rt_priority} {hz:.0f} Hz {seconds:.0f} s ticks={summary.ticks} "
          f"overruns={summary.overruns} period={summary.mean_period * 1e3:.3f} ms")
    print(f"  wake-up jitter  {pct(list(jitter))}")
    print(f"  tick compute    {pct(durations)}")
    print(f"  chunks={executor.stats.counters['chunks']} splice={executor.stats.counters['splice']} "
          f"blend={executor.stats.counters['blend']} guard interventions={dict(sent)}")
    if frames is not None:
        print(f"  twin rendered up to frame {frames.frame_number}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hz", type=float, default=100.0)
    parser.add_argument("--load", nargs="+", default=["none", "process", "thread"],
                        choices=["none", "process", "thread"])
    parser.add_argument("--rt-priority", type=int, nargs="+", default=[0],
                        help="SCHED_FIFO priorities of the executor thread to try (0 = normal scheduler)")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    print(f"cpus={os.cpu_count()} loadavg={os.getloadavg()[0]:.2f}")
    for load in args.load:
        for prio in args.rt_priority:
            run(load, args.seconds, args.hz, prio)


if __name__ == "__main__":
    main()
