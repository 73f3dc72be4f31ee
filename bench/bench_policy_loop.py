"""Policy-loop timing on the twin, in real time, through the policy server over loopback:

1. server: inference round trip of one request with three camera images through `PolicyServer` /
   `PolicyClient` (a constant policy, so the figure is transport + (de)serialisation), p50/p95/p99/max.
2. graph: the whole no-ROS graph (`PolicyRunner`, real-time clock) with the twin stepping and rendering
   its three views on its own thread, the scripted expert served over loopback, the executor at 100 Hz:
   - executor tick jitter p50/p99/max (how late each tick started against its schedule),
   - inference latency p50/p95 as the loop measured it (observation handed over -> chunk ready),
   - observation-to-command latency: from an observation's capture time to the first executor tick that
     streams the chunk inferred from it (submit time + wait for the next tick),
   - camera frame rate achieved and guard interventions (stale data would show here).

    MUJOCO_GL=osmesa python3 bench/bench_policy_loop.py --seconds 20 --size 480x640
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")

from a2world_ros.run_policy import PolicyRunner, build_sim_rig, load_graph_config, task_instruction
from a2world_ros.runtime.expert_policy import ExpertPolicy
from a2world_ros.runtime.policy_loop import open_policy
from policy.interface import PolicyRequest, PolicyResult
from policy.server import PolicyServer, ServerConfig
from rig.executor import TickResult


def pct(values: list[float] | np.ndarray, qs: tuple[float, ...] = (50, 95, 99)) -> str:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return "n/a"
    parts = [f"p{int(q)} {np.percentile(arr, q):.2f}" for q in qs]
    return ", ".join(parts) + f", max {arr.max():.2f} ms (n={arr.size})"


class ConstantPolicy:
    """Returns the request state repeated: measures the transport, not a model."""

    def metadata(self) -> dict[str, Any]:
        return {"name": "constant", "dt": 1 / 30}

    def infer(self, request: PolicyRequest) -> PolicyResult:
        return PolicyResult(chunk=np.repeat(request.state[None], 60, axis=0), dt=1 / 30)


def bench_server(n: int, size: tuple[int, int]) -> None:
    server = PolicyServer(ConstantPolicy(), ServerConfig(address="tcp://127.0.0.1:0"))
    server.start_background()
    client = open_policy(server.address, timeout_s=5.0)
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 255, (*size, 3), dtype=np.uint8) for c in ("front", "wrist_left", "wrist_right")}
    state = np.tile(np.array([0.0, -0.07, 0.42, 0.0, 0.0, 0.0, 1.0, 1.0]), (2, 1))
    request = PolicyRequest(images=images, state=state, instruction="lift the box high", t_obs=0.0,
                            prefix=np.repeat(state[None], 6, axis=0))
    times = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        client.infer(request)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1e3)
    client.close()  # type: ignore[attr-defined]
    server.stop()
    mb = sum(im.nbytes for im in images.values()) / 1e6
    print(f"server round trip, 3 views {size[0]}x{size[1]} ({mb:.1f} MB/request), constant policy: {pct(times)}")


def bench_graph(seconds: float, size: tuple[int, int], task: str, seed: int, policy_config: str | None) -> None:
    rig = build_sim_rig(task, seed=seed, clock="realtime", render_size=size)
    twin = rig.arms["left"].twin  # type: ignore[attr-defined]
    expert = ExpertPolicy(twin)
    server = PolicyServer(expert, ServerConfig(address="tcp://127.0.0.1:0"))
    server.start_background()
    config = load_graph_config(policy_config=policy_config)
    config = replace(config, run=replace(config.run, stop_on_success=False))  # run the full --seconds
    client = open_policy(server.address, config.client_timeout_s)
    rig.connect()
    runner = PolicyRunner(rig, client, config, task_instruction(task), on_episode_start=expert.reset)
    submits: list[tuple[float, float]] = []  # (submit time, observation time = chunk t0)
    first_tick: list[float] = []
    submit = runner.executor.submit

    def timed_submit(chunk: Any, now: float) -> dict[str, str]:
        out = submit(chunk, now)
        submits.append((time.monotonic(), chunk.t0))
        return out

    def on_tick(result: TickResult) -> None:
        # The first tick that started after the submit streams the new chunk.
        if len(first_tick) < len(submits) and result.now >= submits[len(first_tick)][0]:
            first_tick.append(result.now)

    runner.executor.submit = timed_submit  # type: ignore[method-assign]
    runner._on_tick = on_tick  # type: ignore[method-assign]
    frames_before = rig.cameras["front"].stats().samples
    report = runner.run_episode(0, seed, seconds)
    frames = rig.cameras["front"].stats().samples - frames_before
    jitter = runner.jitter
    runner.close()
    server.stop()
    rig.disconnect()
    n = min(len(submits), len(first_tick))
    obs_to_submit = [(s - t0) * 1e3 for s, t0 in submits[:n]]
    obs_to_cmd = [(first_tick[i] - submits[i][1]) * 1e3 for i in range(n)]
    print(f"graph on the real-time twin, {task} seed {seed}, {seconds:g} s, 3 views {size[0]}x{size[1]}:")
    print(f"  {report.summary()}")
    print(f"  camera frames delivered: {frames / report.seconds:.1f} fps; "
          f"observations {report.observations / report.seconds:.1f}/s")
    print(f"  executor tick jitter at {config.executor.command_hz:g} Hz: p50 {jitter.p50 * 1e3:.3f} ms, "
          f"p99 {jitter.p99 * 1e3:.3f} ms, max {jitter.max * 1e3:.3f} ms over {jitter.ticks} ticks "
          f"({jitter.overruns} overruns)")
    print(f"  inference latency (loop, via server): p50 {report.latency_p50_ms:.1f} ms, "
          f"p95 {report.latency_p95_ms:.1f} ms")
    print(f"  observation -> chunk submitted: {pct(obs_to_submit)}")
    print(f"  observation -> first command from it: {pct(obs_to_cmd)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="graph run length (default 20)")
    parser.add_argument("--size", default="480x640", help="camera size HxW (default 480x640)")
    parser.add_argument("--requests", type=int, default=100, help="server round trips (default 100)")
    parser.add_argument("--task", default="lift_box_high")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=None, help="executor/guard file (default: config/policy.yaml)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    assert len(size) == 2
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min) at start")
    bench_server(args.requests, size)  # type: ignore[arg-type]
    bench_graph(args.seconds, size, args.task, args.seed, args.config)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
