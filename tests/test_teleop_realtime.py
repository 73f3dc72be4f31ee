"""The real-time path end to end on the twin: `TeleopApp` (twin in real time, ZeroMQ input, recorder)
fed by the reference sender's stream over loopback ZeroMQ, as `a2world teleop` + `a2world teleop
send-scripted` run it. Asserts what does not depend on how fast this machine is: the episode is saved
with its frames and commands, and the lifting arm's recorded commands rise."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("av")

from rig.sim import ensure_headless_gl
from teleop.app import TeleopApp, TeleopSettings
from teleop.config import load_teleop_config
from teleop.protocol import restamp
from teleop.scripted import controller_stream, default_mappings, plan_episode
from teleop.transport import ZmqSender, send_paced

ensure_headless_gl()
pytestmark = pytest.mark.slow  # plans the expert (~10 s here) and runs ~10 s of wall-clock teleop


def test_zmq_stream_records_an_episode_on_the_realtime_twin(tmp_path) -> None:
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset

    plan = plan_episode("lift_box_high", 0)
    messages = list(controller_stream(plan, default_mappings(load_teleop_config().retarget), rate_hz=60))
    app = TeleopApp(TeleopSettings(rig="sim", vr="zmq://127.0.0.1:0", out=tmp_path / "rt", task="lift_box_high",
                                   operator="ci", render_size=(48, 64), episodes=1, max_seconds=60.0))
    try:
        sender = ZmqSender(f"zmq://127.0.0.1:{app.input.port}")
        feeder = threading.Thread(target=send_paced, args=(sender, messages, restamp), daemon=True)
        feeder.start()
        app.run()
        feeder.join(timeout=30)
        sender.close()
        status = app.runner.session.status()
    finally:
        app.close()
    assert len(app.runner.episodes.log.saved) == 1
    assert status["accepted"] >= 0.9 * len(messages) and status["dropped"]["malformed"] == 0
    ds = LeRobotV3Dataset(tmp_path / "rt" / "lerobot")
    assert ds.num_episodes == 1 and ds.num_frames > 100
    z = np.asarray(ds.data("action"), dtype=np.float64).reshape(-1, 2, 8)[:, :, 2]
    low = z.argmin(axis=0)
    lifted = [z[low[i]:, i].max() - z[low[i], i] for i in range(2)]
    assert max(lifted) > 0.1  # one arm went down to the box and then rose by more than 10 cm
