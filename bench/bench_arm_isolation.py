"""Two Flexiv arms on the flexivrdk double (tests/doubles/flexivrdk.py, blocking calls hold the GIL like
the real SDK): the state and command path, and what a blocking `Stop()` on the left arm does to the
right arm, with both drivers in this process and with each in its own process
(rig.realtime.arm_process.IsolatedArm, shared-memory rings).

A 100 Hz loop in this process streams hold targets to the right arm and reads both states. Figures:
- command path: parent write -> the arm process's `SendCartesianMotionForce` returned (isolated only);
- state path: age of the newest state when read (host time - its stamp), and the longest gap between
  consecutive fresh right-arm states;
- the caller: how long `left.stop()` blocked it, and the loop's longest period.

    python3 bench/bench_arm_isolation.py [--seconds 6] [--stop-s 2.0]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rig.drivers.base import DeviceError  # noqa: E402
from rig.drivers.flexiv import FlexivArm, FlexivArmConfig  # noqa: E402
from rig.realtime.arm_process import IsolatedArm  # noqa: E402
from rig.timing import RateKeeper  # noqa: E402
from tests.flexiv_double_factory import DoubleFlexivFactory, load_double  # noqa: E402


def arm_config(name: str, serial: str) -> FlexivArmConfig:
    return FlexivArmConfig.from_dict(name, {
        "type": "flexiv", "serial": serial, "command_hz": 100.0, "state_hz": 200.0, "home_plan": "",
        "max_linear_vel": 0.25, "max_angular_vel": 1.0, "max_linear_acc": 1.0, "max_angular_acc": 3.0,
        "max_contact_wrench": [20.0, 20.0, 20.0, 3.0, 3.0, 3.0]})


def pct(values: Any, unit: float = 1e3) -> str:
    a = np.asarray(values) * unit
    return f"p50 {np.percentile(a, 50):.3f}  p99 {np.percentile(a, 99):.3f}  max {a.max():.3f} ms"


def run(isolated: bool, seconds: float, stop_s: float) -> None:
    timing = {"stop_s": stop_s, "first_state_s": 0.0}
    serials = {"left": "Rizon4s-500001", "right": "Rizon4s-500002"}
    arms: dict[str, Any]
    if isolated:
        arms = {n: IsolatedArm(n, DoubleFlexivFactory(arm_config(n, s), timing)) for n, s in serials.items()}
    else:
        sdk = load_double()
        for s in serials.values():
            for key, value in timing.items():
                setattr(sdk.controller(s).timing, key, value)
        arms = {n: FlexivArm(arm_config(n, s)) for n, s in serials.items()}
    for arm in arms.values():
        arm.connect()
    time.sleep(0.2)
    hold = arms["right"].read_state().tcp_pose.copy()
    ages, periods, cmd_latency, right_gaps = [], [], [], [0.0]
    last_t = arms["right"].read_state().t
    last_cmd = -1.0
    stop_call = float("nan")
    t_start = time.monotonic()
    t_prev = t_start
    rate = RateKeeper(100.0)  # fixed grid, missed ticks skipped (no catch-up bursts)
    while time.monotonic() - t_start < seconds:
        rate.wait()
        now = time.monotonic()
        periods.append(now - t_prev)
        t_prev = now
        if np.isnan(stop_call) and now - t_start > 1.0:
            a = time.monotonic()
            arms["left"].stop()
            stop_call = time.monotonic() - a
        state = arms["right"].read_state()
        ages.append(time.monotonic() - state.t)
        if state.t != last_t:
            right_gaps.append(state.t - last_t)
            last_t = state.t
        with contextlib.suppress(DeviceError):
            arms["right"].send_pose(hold)
        if isolated:
            rec = arms["right"].record()
            if rec["last_command_written_t"] != last_cmd and rec["last_command_sent_t"] > 0:
                last_cmd = rec["last_command_written_t"]
                cmd_latency.append(rec["last_command_sent_t"] - rec["last_command_written_t"])
    for arm in arms.values():
        arm.disconnect()
    print(f"{'isolated (one process per arm)' if isolated else 'in one process'}: left Stop() blocks {stop_s} s "
          f"holding the GIL")
    print(f"  caller blocked by left.stop(): {stop_call * 1e3:.1f} ms; loop period {pct(periods)}")
    print(f"  right arm: longest gap between fresh states {max(right_gaps) * 1e3:.1f} ms; "
          f"state age when read {pct(ages)}")
    if cmd_latency:
        print(f"  right arm command path (write -> SDK call returned in the arm process): {pct(cmd_latency)} "
              f"over {len(cmd_latency)} commands")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--stop-s", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"cpus={os.cpu_count()} loadavg={os.getloadavg()[0]:.2f} (machine shared with other work)")
    run(False, args.seconds, args.stop_s)
    run(True, args.seconds, args.stop_s)


if __name__ == "__main__":
    main()
