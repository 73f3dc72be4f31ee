"""Benchmark of the MuJoCo twin: physics + control rate, 3-view render rate, and a 30 Hz observe loop.

Usage: MUJOCO_GL=osmesa python3 bench/bench_twin.py [--sizes 480x640 240x320] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

from rig.sim.twin import Twin  # MUJOCO_GL must be set before mujoco loads


def _size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def bench(size: tuple[int, int], seconds: float) -> dict[str, float]:
    twin = Twin(render_size=size)
    twin.reset(0)
    targets = [np.r_[0.1, 0.1, 0.1, 1.0, 0, 0, 0], np.r_[-0.1, -0.1, 0.2, 1.0, 0, 0, 0]]

    # Physics + control only (both arms moving).
    twin.set_arm_target_world("left", targets[0])
    twin.set_arm_target_world("right", targets[1])
    start = time.perf_counter()
    twin.step(seconds)
    physics_wall = time.perf_counter() - start
    steps = seconds / twin.timestep

    # Rendering only: the three views.
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        twin.render()
        n += 1
    render_hz = n / (time.perf_counter() - start)

    # Closed loop at 30 Hz of simulated time: step 1/30 s, then a full observation (3 views + states).
    frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        twin.set_arm_target_world("left", targets[frames % 2])
        twin.step(1.0 / 30.0)
        twin.observe(render=True)
        frames += 1
    loop_wall = time.perf_counter() - start
    twin.close()
    return {
        "physics_steps_per_s": steps / physics_wall,
        "realtime_factor_physics": seconds / physics_wall,
        "render_3view_hz": render_hz,
        "observe_loop_hz": frames / loop_wall,
        "realtime_factor_loop": frames / 30.0 / loop_wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["480x640", "240x320"], help="render sizes HxW")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = parser.parse_args()
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"MUJOCO_GL={os.environ['MUJOCO_GL']}")
    for text in args.sizes:
        r = bench(_size(text), args.seconds)
        print(f"{text}: physics+control {r['physics_steps_per_s']:.0f} steps/s "
              f"({r['realtime_factor_physics']:.2f}x real time), 3-view render {r['render_3view_hz']:.1f} Hz, "
              f"30 Hz step+observe loop {r['observe_loop_hz']:.1f} Hz ({r['realtime_factor_loop']:.2f}x real time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
