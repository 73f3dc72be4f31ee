"""Teleop input protocol: msgpack round trip, malformed messages named, and the input filter's drops
(malformed, out of order, late, future-stamped) and stream-loss detection."""

from __future__ import annotations

import contextlib
import math
import pickle

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teleop.protocol import ProtocolError, VRCommand, VRFrame, decode, encode_command, restamp
from teleop.stream import InputFilter, StreamConfig
from tests.teleop_helpers import frame


def test_frame_round_trip() -> None:
    raw = frame(7, 12.5, grip={"left": 1.0}, trigger={"right": 0.25}, buttons={"right": {"a": True}})
    msg = decode(raw)
    assert isinstance(msg, VRFrame) and msg.seq == 7 and msg.t == 12.5
    assert msg.controllers["left"].grip == 1.0 and msg.controllers["right"].trigger == 0.25
    assert msg.controllers["right"].buttons == {"a": True}
    assert len(raw) < 600
    cmd = decode(encode_command(3, 1.0, "success"))
    assert isinstance(cmd, VRCommand) and cmd.command == "success"
    assert decode(restamp(raw, 99.0)).t == 99.0
    instr = decode(encode_command(4, 1.0, "instruction", " stack the cups "))
    assert isinstance(instr, VRCommand) and instr.text == "stack the cups"


def _mutate(**changes) -> bytes:
    data = msgpack.unpackb(frame(1, 1.0))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return msgpack.packb(data)


@pytest.mark.parametrize(("raw", "needle"), [
    (b"\xc1", "not a msgpack"),
    (msgpack.packb([1, 2]), "expected a msgpack map"),
    (_mutate(v=2), "message.v"),
    (_mutate(kind="pose"), "message.kind"),
    (_mutate(seq=-1), "message.seq"),
    (_mutate(seq=True), "message.seq"),
    (_mutate(t=None), "message.t"),
    (_mutate(t=math.nan), "message.t"),
    (_mutate(headset=[0, 0, 0, 0, 0, 0, 2.0]), "message.headset: quaternion norm"),
    (_mutate(left={"pose": [0, 0, 0], "trigger": 0, "grip": 0}), "message.left.pose"),
    (_mutate(left={"pose": ["0", 0, 0, 0, 0, 0, 1]}), "message.left.pose"),
    (_mutate(right={"pose": [0, 0, 0, 0, 0, 0, 1], "trigger": 3.0}), "message.right.trigger"),
    (_mutate(right={"pose": [0, 0, 0, 0, 0, 0, 1], "buttons": {"a": 1}}), "message.right.buttons"),
    (msgpack.packb({"v": 1, "kind": "command", "seq": 0, "t": 0.0, "command": "explode"}), "message.command"),
    (b"\x00" * 9000, "at most"),
    (msgpack.packb({"v": 1, "kind": "command", "seq": 0, "t": 0.0, "command": "instruction"}), "message.text"),
    (pickle.dumps({"v": 1}), "msgpack"),
])
def test_malformed_messages_are_named(raw: bytes, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        decode(raw)


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_any_bytes_decode_or_raise_protocol_error(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(raw)


def test_filter_drops_and_counts() -> None:
    f = InputFilter(StreamConfig(max_age_s=0.1, future_tolerance_s=0.02, sync_messages=3, loss_timeout_s=0.25))
    # Sender clock is 1000 s behind the receiver; first messages arrive with 5..20 ms of delay.
    for seq, delay in enumerate((0.02, 0.005, 0.01)):
        assert f.accept(frame(seq, seq * 0.01), 1000.0 + seq * 0.01 + delay) is not None
    assert f.accept(frame(1, 0.01), 1000.05) is None  # replayed / out of order
    assert f.accept(b"junk", 1000.05) is None
    assert f.accept(frame(5, 0.05), 1000.05 + 0.2) is None  # 200 ms old
    assert f.accept(frame(6, 0.50), 1000.06) is None  # stamped ~440 ms in the future
    assert f.accept(frame(7, 0.07), 1000.08) is not None
    assert f.dropped() == {"malformed": 1, "out_of_order": 1, "late": 1, "future": 1}
    assert f.counters["accepted"] == 4 and f.counters["received"] == 8
    assert "future" in f.last_error


def test_stream_loss_then_new_stream() -> None:
    f = InputFilter(StreamConfig(loss_timeout_s=0.25))
    assert f.accept(frame(100, 5.0), 10.0) is not None
    assert not f.check_loss(10.2)
    assert f.check_loss(10.26) and not f.check_loss(10.3)  # reported once
    assert f.counters["losses"] == 1 and not f.streaming
    # The sender restarted (seq from 0, another clock): a new stream is learnt afresh.
    assert f.accept(frame(0, 0.0), 20.0) is not None
    assert f.streaming


@given(st.permutations(list(range(12))))
@settings(max_examples=50, deadline=None)
def test_accepted_sequence_is_strictly_increasing(order: list[int]) -> None:
    f = InputFilter(StreamConfig(max_age_s=10.0))
    accepted = [m.seq for s in order if (m := f.accept(frame(s, 0.0), 1.0)) is not None]
    assert accepted == sorted(set(accepted))
    assert len(accepted) + f.counters["out_of_order"] == 12
    assert np.all(np.diff(accepted) > 0)
