"""Round trip of `RealtimeExecutor.committed(arm, t)` (the real-time-chunking prefix query over the
executor process's control pipe, answered after the process's next tick) while the process ticks at
100 Hz on a plan, p50 / p99 / max over `--calls` queries. Arms: bench_executor's `EchoArm`.

    python3 bench/bench_executor_committed.py --calls 200
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_executor import EchoArm, circle_chunk, guard_config

from rig.executor import ExecutorConfig
from rig.realtime.executor_process import RealtimeConfig, RealtimeExecutor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    arms = {name: functools.partial(EchoArm, name) for name in ("left", "right")}
    cfg = RealtimeConfig(ExecutorConfig(command_hz=100.0), guard_config(), arms)
    with RealtimeExecutor(cfg) as rt:
        start = {name: rec.tcp_pose for name, rec in rt.drain()[-1].states.items()}
        rt.submit(circle_chunk(time.monotonic(), start))
        time.sleep(0.1)
        ms = []
        for _ in range(args.calls):
            t = time.perf_counter()
            if rt.committed("left", time.monotonic() + 0.1) is None:
                raise SystemExit("no plan in the executor process")
            ms.append(1e3 * (time.perf_counter() - t))
    d = np.array(ms)
    print(f"committed() round trip, {args.calls} calls at 100 Hz ticks: p50 {np.percentile(d, 50):.2f} ms, "
          f"p99 {np.percentile(d, 99):.2f} ms, max {d.max():.2f} ms")


if __name__ == "__main__":
    main()
