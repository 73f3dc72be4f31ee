"""Arm and gripper driver timing without hardware.

- FlexivArm against the flexivrdk v1.9 test double: measured background state rate at the configured
  `state_hz`, the cost of one state read (SDK call + ArmState), and a 100 Hz `send_pose` loop
  (achieved rate, interval spread, call latency, refusals).
- RobotiqGripper against the fake 2F-85 on a pseudo-terminal: Modbus RTU round-trip time of a status
  read and the achieved status poll rate. A pty has no baud-rate timing, so the 115200 baud wire time
  of the frames is printed next to it.

Usage: python3 bench/bench_arm.py [--seconds 3] [--state-hz 200] [--poll-hz 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rig.drivers.flexiv import FlexivArm, FlexivArmConfig  # noqa: E402
from rig.drivers.robotiq import RobotiqConfig, RobotiqGripper  # noqa: E402


def load(name: str, file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "doubles" / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_flexiv(seconds: float, state_hz: float) -> None:
    load("flexivrdk", "flexivrdk.py")
    cfg = FlexivArmConfig.from_dict("left", {
        "type": "flexiv", "serial": "Rizon4s-123456", "command_hz": 100.0, "state_hz": state_hz,
        "max_linear_vel": 0.25, "max_angular_vel": 1.0, "max_linear_acc": 1.0, "max_angular_acc": 3.0,
        "max_contact_wrench": [20.0, 20.0, 20.0, 3.0, 3.0, 3.0],
        "home_plan": "",
    })
    with FlexivArm(cfg) as arm:
        time.sleep(0.2)
        s0 = arm.stats().samples
        t0 = time.monotonic()
        time.sleep(seconds)
        st = arm.stats()
        measured = (st.samples - s0) / (time.monotonic() - t0)
        print(f"flexiv state: configured {state_hz:.0f} Hz, measured {measured:.1f} Hz over {seconds:.1f} s "
              f"(sliding-window rate_hz {st.rate_hz:.1f}, dropped {st.dropped}, errors {st.errors})")

        costs = []
        for _ in range(2000):
            a = time.perf_counter()
            arm._poll_once()  # one SDK states() call + fault() + ArmState construction
            costs.append(time.perf_counter() - a)
        print(f"flexiv state read cost: p50 {1e6 * pct(costs, 50):.0f} us, p99 {1e6 * pct(costs, 99):.0f} us "
              f"(upper bound ~{1.0 / pct(costs, 50):.0f} reads/s on this CPU)")

        pose = arm.read_state().tcp_pose.copy()
        period = 1.0 / cfg.command_hz
        sends, latencies = [], []
        refused = 0
        next_t = time.monotonic()
        end = next_t + seconds
        while next_t < end:
            target = pose.copy()
            target[1] += 0.02 * np.sin(2 * np.pi * 0.5 * (next_t - end))
            a = time.monotonic()
            try:
                arm.send_pose(target)
                sends.append(a)
            except Exception:
                refused += 1
            latencies.append(time.monotonic() - a)
            next_t += period
            now = time.monotonic()
            if now >= next_t:
                next_t += (now - next_t) // period * period + period
            time.sleep(max(0.0, next_t - time.monotonic()))
        intervals = np.diff(sends)
        rate = (len(sends) - 1) / (sends[-1] - sends[0])
        print(f"flexiv command loop: target 100 Hz, achieved {rate:.1f} Hz ({len(sends)} sent, {refused} refused); "
              f"interval p1 {1e3 * pct(list(intervals), 1):.2f} ms, p50 {1e3 * pct(list(intervals), 50):.2f} ms, "
              f"p99 {1e3 * pct(list(intervals), 99):.2f} ms; send_pose p50 {1e6 * pct(latencies, 50):.0f} us, "
              f"p99 {1e6 * pct(latencies, 99):.0f} us")
        print(f"flexiv state during streaming: {arm.stats().rate_hz:.1f} Hz")


def bench_robotiq(seconds: float, poll_hz: float) -> None:
    fake_mod = load("robotiq_fake", "robotiq_fake.py")
    with fake_mod.FakeRobotiq(activation_time_s=0.05) as fake:
        cfg = RobotiqConfig.from_dict("left", {"type": "robotiq_modbus", "port": fake.port_name,
                                               "poll_hz": poll_hz, "timeout_s": 0.05})
        with RobotiqGripper(cfg) as gripper:
            client = gripper.client
            assert client is not None
            client.stats.rtt_s.clear()
            s0 = gripper.stats().samples
            t0 = time.monotonic()
            # Commands interleaved with polling, like a 30 Hz policy would send them.
            n_cmd = 0
            while time.monotonic() - t0 < seconds:
                gripper.command(0.5 + 0.5 * np.sin(time.monotonic()))
                n_cmd += 1
                time.sleep(1.0 / 30.0)
            elapsed = time.monotonic() - t0
            st = gripper.stats()
            rtts = list(client.stats.rtt_s)
            print(f"robotiq poll: configured {poll_hz:.0f} Hz, measured {(st.samples - s0) / elapsed:.1f} Hz "
                  f"with {n_cmd / elapsed:.0f} Hz commands interleaved; errors {st.errors}, "
                  f"timeouts {client.stats.timeouts}, crc errors {client.stats.crc_errors}")
            print(f"modbus RTU round trip over pty ({len(rtts)} transactions): p50 {1e3 * pct(rtts, 50):.2f} ms, "
                  f"p95 {1e3 * pct(rtts, 95):.2f} ms, p99 {1e3 * pct(rtts, 99):.2f} ms")
            wire = (8 + 11) * 10 / 115200  # status read: 8-byte request + 11-byte reply, 10 bits/char
            print(f"  (+ {1e3 * wire:.2f} ms wire time per status read at 115200 baud on a real RS-485 line, "
                  "+ the gripper's own response time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument("--state-hz", type=float, default=200.0, help="FlexivArm state_hz to configure")
    parser.add_argument("--poll-hz", type=float, default=100.0, help="RobotiqGripper poll_hz to configure")
    args = parser.parse_args()
    bench_flexiv(args.seconds, args.state_hz)
    bench_robotiq(args.seconds, args.poll_hz)


if __name__ == "__main__":
    main()
