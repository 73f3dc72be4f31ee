"""ZeroMQ transport of the teleop protocol on loopback: a sender's frames reach the session through the
receiver thread, stamped on receipt; a bad address is refused with the expected form named."""

from __future__ import annotations

import time

import pytest

from rig.timing import MonotonicClock
from teleop.protocol import restamp
from teleop.transport import ZmqReceiver, ZmqSender, parse_zmq_url, send_paced
from tests.teleop_helpers import frame, make_session


def test_parse_zmq_url() -> None:
    assert parse_zmq_url("zmq://127.0.0.1:5600") == ("127.0.0.1", 5600)
    for bad in ("tcp://127.0.0.1:5600", "zmq://host", "127.0.0.1:5600"):
        with pytest.raises(ValueError, match="zmq://HOST:PORT"):
            parse_zmq_url(bad)


def test_frames_over_loopback_reach_the_session() -> None:
    session, _executor, _arms, _clock = make_session(clock=MonotonicClock())
    receiver = ZmqReceiver("zmq://127.0.0.1:0", session.handle, poll_ms=5).start()
    sender = ZmqSender(f"zmq://127.0.0.1:{receiver.port}")
    try:
        messages = [(k / 100, frame(k, 0.0, grip={"right": 1.0})) for k in range(50)]
        messages.insert(10, (0.1, b"\x93not a map"))
        assert send_paced(sender, messages, lambda raw, t: raw if raw.startswith(b"\x93") else restamp(raw, t)) == 51
        deadline = time.monotonic() + 5.0
        while session.filter.counters["received"] < 51 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sender.close()
        receiver.stop()
    assert session.filter.counters["received"] == 51
    assert session.filter.counters["malformed"] == 1
    assert session.filter.counters["accepted"] + session.filter.counters["late"] == 50
    assert session.engaged()["right"] and receiver.error is None
