"""Admission of teleop input messages: malformed, out-of-order, late and future-stamped ones are dropped
and counted; a silent stream is detected as lost.

Sender and receiver clocks differ (a headset's clock is not the robot's), so the filter maps the sender
time `t` onto the receiver's clock with an offset: the smallest `receive - t` seen over the first
`sync_messages` messages of a stream (the least-delayed message bounds the true offset from above).
After that the offset is fixed, and each message's age is `receive - (t + offset)`: older than
`max_age_s` is late, younger than `-future_tolerance_s` is stamped in the future (the sender clock
jumped); both are dropped. A sequence number not above the last accepted one is out of order.

No accepted message for `loss_timeout_s` is a stream loss: the session disengages both arms. The next
message after a loss starts a new stream: sequence numbers and the clock offset are learnt afresh, so a
restarted sender (seq from 0) is accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rig.params import get_float, get_int, reject_unknown
from teleop.protocol import Message, ProtocolError, decode

DROP_REASONS = ("malformed", "out_of_order", "late", "future")


@dataclass(frozen=True)
class StreamConfig:
    """`stream:` of config/teleop.yaml."""

    max_age_s: float = 0.1
    future_tolerance_s: float = 0.02
    sync_messages: int = 10
    loss_timeout_s: float = 0.25

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "stream") -> StreamConfig:
        reject_unknown(data, set(cls.__dataclass_fields__), where)
        return cls(max_age_s=get_float(data, "max_age_s", where, cls.max_age_s, positive=True),
                   future_tolerance_s=get_float(data, "future_tolerance_s", where, cls.future_tolerance_s, low=0.0),
                   sync_messages=get_int(data, "sync_messages", where, cls.sync_messages, low=1),
                   loss_timeout_s=get_float(data, "loss_timeout_s", where, cls.loss_timeout_s, positive=True))


class InputFilter:
    """Decodes raw messages and admits only valid, in-order, fresh ones; see the module doc."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.counters: Counter[str] = Counter()
        self.last_error = ""
        self._last_seq = -1
        self._offset = math.inf
        self._synced = 0
        self._last_accept = -math.inf
        self._streaming = False

    def accept(self, raw: bytes, now: float) -> Message | None:
        """The decoded message if admitted, else None (and the reason counted)."""
        self.counters["received"] += 1
        try:
            msg = decode(raw)
        except ProtocolError as exc:
            return self._drop("malformed", str(exc))
        if not self._streaming:
            self._new_stream()
        if msg.seq <= self._last_seq:
            return self._drop("out_of_order", f"seq {msg.seq} after {self._last_seq}")
        if self._synced < self.config.sync_messages:
            self._offset = min(self._offset, now - msg.t)
            self._synced += 1
        age = now - (msg.t + self._offset)
        if age > self.config.max_age_s:
            return self._drop("late", f"seq {msg.seq} is {age * 1e3:.0f} ms old")
        if age < -self.config.future_tolerance_s:
            return self._drop("future", f"seq {msg.seq} stamped {-age * 1e3:.0f} ms ahead")
        self._last_seq = msg.seq
        self._last_accept = now
        self._streaming = True
        self.counters["accepted"] += 1
        return msg

    def local_time(self, msg: Message) -> float:
        """The receiver-clock time at which `msg` was sampled (after sync)."""
        return msg.t + self._offset

    def check_loss(self, now: float) -> bool:
        """True once, when the stream has been silent for `loss_timeout_s` (counted as `losses`)."""
        if self._streaming and now - self._last_accept > self.config.loss_timeout_s:
            self._streaming = False
            self.counters["losses"] += 1
            return True
        return False

    @property
    def streaming(self) -> bool:
        return self._streaming

    def dropped(self) -> dict[str, int]:
        return {r: self.counters[r] for r in DROP_REASONS}

    def _new_stream(self) -> None:
        self._last_seq = -1
        self._offset = math.inf
        self._synced = 0

    def _drop(self, reason: str, detail: str) -> None:
        self.counters[reason] += 1
        self.last_error = f"{reason}: {detail}"
        return None

