"""The chunk executor + guard in their own process (rig.realtime.executor_process): chunks in and tick
records out through shared memory, e-stop and reset over the control pipe, and with each arm's SDK in
one more process a GIL-holding Stop() on one arm does not hold up the ticks."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from rig.executor import ExecutorConfig
from rig.realtime.executor_process import IsolatedArmFactory, RealtimeConfig, RealtimeExecutor
from rig.safety import ArmLimits, GuardConfig
from rig.schema import CommandChunk
from rig.timing import MonotonicClock
from tests.doubles.rig_devices import HOME, RecordingArm
from tests.flexiv_double_factory import DoubleFlexivFactory
from tests.test_arm_process import config

LIMITS = ArmLimits((0.0, -0.6, 0.0), (0.9, 0.6, 0.8), 0.25, 1.0, 1.0, 3.0)


def line_chunk(t0: float, start: np.ndarray, dy: float, steps: int = 30) -> CommandChunk:
    targets = np.zeros((steps, 2, 8))
    for a in range(2):
        targets[:, a, :3] = start[:3]
        targets[:, a, 1] = start[1] + np.linspace(0.0, dy, steps)
        targets[:, a, 3:7] = start[3:7]
        targets[:, a, 7] = 1.0
    return CommandChunk(targets, t0=t0, dt=1 / 30)


def drain_for(rt: RealtimeExecutor, seconds: float) -> list:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
        out.extend(rt.drain())
    return out


def test_chunks_in_ticks_out_estop_and_reset() -> None:
    arms = {n: functools.partial(RecordingArm, n, HOME, MonotonicClock()) for n in ("left", "right")}
    cfg = RealtimeConfig(ExecutorConfig(command_hz=100.0), GuardConfig(arms={"left": LIMITS, "right": LIMITS}),
                         arms)
    with RealtimeExecutor(cfg) as rt:
        assert rt.pid is not None and rt.scheduling == "normal scheduler"
        idle = drain_for(rt, 0.2)
        assert idle and all(r.commands["left"] is None for r in idle)  # nothing sent before a chunk
        assert set(idle[-1].states) == {"left", "right"}
        rt.submit(line_chunk(time.monotonic(), HOME, 0.05))
        moving = drain_for(rt, 1.2)
        sent = [r.commands["left"] for r in moving if r.commands["left"] is not None]
        assert len(sent) > 50
        assert sent[-1][0][1] == pytest.approx(HOME[1] + 0.05, abs=2e-3)  # reached the chunk's end
        assert moving[-1].states["left"].tcp_pose[1] == pytest.approx(sent[-1][0][1], abs=1e-3)
        late = np.array([r.late for r in moving])
        assert np.all(late >= 0.0) and np.all([r.compute > 0.0 for r in moving])
        assert max(r.inputs for r in moving) > 0.0  # the chunk was taken in after a tick's sends
        rt.estop("test")
        stopped = drain_for(rt, 0.2)
        assert stopped and all(r.estopped and r.commands["left"] is None for r in stopped[2:])
        with pytest.raises(KeyError, match="not watched"):
            rt.feed("front", time.monotonic())
        rt.reset()
        assert not drain_for(rt, 0.1)[-1].estopped
        assert rt.diagnostics()["executor"]["chunks"] == 1
    assert not rt.running


def test_blocking_stop_on_one_arm_does_not_hold_up_the_ticks() -> None:
    timing = {"stop_s": 0.8, "first_state_s": 0.0}
    arms = {n: IsolatedArmFactory(n, DoubleFlexivFactory(config(n, f"Rizon4s-30000{i}"), timing))
            for i, n in enumerate(("left", "right"))}
    cfg = RealtimeConfig(ExecutorConfig(command_hz=100.0), GuardConfig(arms={"left": LIMITS, "right": LIMITS}),
                         arms)
    with RealtimeExecutor(cfg) as rt:
        before = drain_for(rt, 0.3)
        start = before[-1].states["left"].tcp_pose
        rt.submit(line_chunk(time.monotonic(), start, 0.0))
        drain_for(rt, 0.2)
        rt.estop("test")  # the guard stops both arms: each Stop() blocks 0.8 s in its own process
        during = drain_for(rt, 0.8)
        starts = np.array([r.now for r in during])
        assert len(during) >= 60 and np.diff(starts).max() < 0.1  # ticks kept their 100 Hz schedule


def test_a_late_reply_is_not_taken_for_the_next_request() -> None:
    from rig.drivers.base import DeviceError

    arms = {n: functools.partial(RecordingArm, n, HOME, MonotonicClock()) for n in ("left", "right")}
    cfg = RealtimeConfig(ExecutorConfig(command_hz=100.0), GuardConfig(arms={"left": LIMITS, "right": LIMITS}),
                         arms)
    with RealtimeExecutor(cfg) as rt:
        with pytest.raises(DeviceError, match="no reply to committed"):
            rt._request("committed", "left", time.monotonic(), timeout=0.0)  # answered after the next tick
        assert rt.committed("left", time.monotonic()) is None  # no plan yet
        assert set(rt.diagnostics()) >= {"guard", "executor"}  # its own reply, not the late None
