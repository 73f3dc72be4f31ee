"""A preallocated ring of frame slots written by a capture callback and read without copying.

Scheme (one copy per frame, zero per read):

- Every slot owns preallocated arrays (e.g. `color` (H, W, 3) uint8, optional `depth` (H, W) uint16).
- The writer (a librealsense callback thread) picks a free slot under a short lock, copies the
  device frame into it outside the lock (the only copy), then publishes it as the newest slot and
  bumps the ring's sequence number.
- A reader gets read-only views of the newest slot. A slot is free only if it is not the newest one
  and no view of it is alive anywhere: every view (and every view derived from it, a memoryview or a
  torch tensor made from it) holds a reference to the slot's base array, so the writer checks the
  base array's reference count against its value when nothing else refers to it. A frame a consumer
  still holds is therefore never overwritten; once the consumer drops it, the slot is reused.
- If every slot is pinned (a consumer hoarding frames), the new frame is not written and counted in
  `full_drops`; capture itself never waits for a consumer.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class SlotMeta:
    """What the writer records with a slot: ring sequence number, frame time, device stamp, number."""

    seq: int
    t: float
    device_t: float
    frame_number: int


@dataclass(frozen=True)
class RingEntry:
    """A published slot as a reader sees it: read-only views of its arrays plus its metadata."""

    arrays: dict[str, NDArray]
    meta: SlotMeta


class FrameRing:
    """Fixed set of slots, each holding one array per field in `fields` (name -> (shape, dtype))."""

    def __init__(self, slots: int, fields: Mapping[str, tuple[tuple[int, ...], np.dtype | type]]) -> None:
        if slots < 2:
            raise ValueError(f"FrameRing: slots={slots}, expected at least 2 (newest + one being written)")
        if not fields:
            raise ValueError("FrameRing: fields is empty, expected at least one array per slot")
        self._arrays: list[dict[str, NDArray]] = [
            {name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in fields.items()} for _ in range(slots)
        ]
        self._first_field = next(iter(fields))
        self._free_refcount = self._refcount(0)
        self._meta: list[SlotMeta | None] = [None] * slots
        self._writing: list[bool] = [False] * slots
        self._newest = -1
        self._seq = 0
        self._next = 0
        self._cond = threading.Condition(threading.Lock())
        self.writes = 0
        self.full_drops = 0
        self.reads = 0

    @property
    def slots(self) -> int:
        return len(self._arrays)

    @property
    def seq(self) -> int:
        """Sequence number of the newest published slot (0 before the first write)."""
        return self._seq

    def _refcount(self, slot: int) -> int:
        return sys.getrefcount(self._arrays[slot][self._first_field])

    def pinned(self, slot: int) -> bool:
        """True while a reader still holds a view of `slot`."""
        return self._refcount(slot) > self._free_refcount

    def write(self, fill: Callable[[dict[str, NDArray]], None], meta: Callable[[int], SlotMeta]) -> bool:
        """Copy one frame in: `fill(arrays)` writes the slot's arrays, `meta(seq)` describes it.

        Returns False (and counts a `full_drop`) when every slot is the newest, being written or
        pinned by a reader.
        """
        with self._cond:
            slot = self._claim()
            if slot < 0:
                self.full_drops += 1
                return False
            self._writing[slot] = True
        try:
            fill(self._arrays[slot])
        except BaseException:
            with self._cond:
                self._writing[slot] = False
            raise
        with self._cond:
            self._writing[slot] = False
            self._seq += 1
            self._meta[slot] = meta(self._seq)
            self._newest = slot
            self.writes += 1
            self._cond.notify_all()
        return True

    def _claim(self) -> int:
        n = len(self._arrays)
        for k in range(n):
            slot = (self._next + k) % n
            if slot != self._newest and not self._writing[slot] and not self.pinned(slot):
                self._next = (slot + 1) % n
                return slot
        return -1

    def _entry(self, slot: int) -> RingEntry:
        views: dict[str, NDArray] = {}
        for name, arr in self._arrays[slot].items():
            view = arr.view()
            view.flags.writeable = False
            views[name] = view
        meta = self._meta[slot]
        assert meta is not None  # a published slot always has metadata
        self.reads += 1
        return RingEntry(views, meta)

    def latest(self) -> RingEntry | None:
        """Read-only views of the newest slot, or None before the first write."""
        with self._cond:
            if self._newest < 0:
                return None
            return self._entry(self._newest)

    def wait(self, newer_than: Callable[[SlotMeta], bool], timeout: float) -> RingEntry | None:
        """Block until the newest slot satisfies `newer_than(meta)`; None after `timeout` seconds."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while True:
                if self._newest >= 0:
                    meta = self._meta[self._newest]
                    if meta is not None and newer_than(meta):
                        return self._entry(self._newest)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wake_all(self) -> None:
        """Wake waiting readers (used when the producer stops)."""
        with self._cond:
            self._cond.notify_all()
