"""The capture ring (one copy in, read-only views out, pinned slots never overwritten) and the
device-stamp to monotonic-time mapping used by the RealSense driver."""

import threading
import time

import numpy as np
import pytest

from rig.drivers.frame_clock import FrameClock, StampDomain
from rig.drivers.frame_ring import FrameRing, SlotMeta

FIELDS = {"color": ((4, 5, 3), np.uint8)}


def put(ring, value, t=None):
    def fill(arrays):
        arrays["color"][...] = value

    return ring.write(
        fill, lambda seq: SlotMeta(seq=seq, t=float(value if t is None else t), device_t=0.0, frame_number=int(value))
    )


def test_views_are_read_only_and_share_the_slot_memory():
    ring = FrameRing(3, FIELDS)
    assert ring.latest() is None
    put(ring, 7)
    entry = ring.latest()
    assert entry.meta.seq == 1 and entry.meta.frame_number == 7
    assert np.all(entry.arrays["color"] == 7)
    with pytest.raises(ValueError):
        entry.arrays["color"][0, 0, 0] = 1
    assert ring.writes == 1 and ring.reads == 1


def test_a_view_pins_its_slot_until_released():
    ring = FrameRing(3, FIELDS)
    put(ring, 1)
    held = ring.latest().arrays["color"]
    derived = held[1:3]  # views of views keep the slot's base array alive too
    del held
    for v in range(2, 20):
        assert put(ring, v)
    assert np.all(derived == 1)
    assert put(ring, 20)
    pinned = ring.latest().arrays["color"]  # second pin (on the newest slot); the third is free
    assert put(ring, 21)
    assert not put(ring, 22) and ring.full_drops == 1  # pinned, pinned, newest: frame not written
    assert ring.latest().meta.frame_number == 21 and np.all(pinned == 20) and np.all(derived == 1)
    del derived, pinned
    assert put(ring, 23) and ring.latest().meta.frame_number == 23


def test_wait_returns_newer_frames_and_times_out():
    ring = FrameRing(4, FIELDS)
    assert ring.wait(lambda m: True, 0.01) is None

    def writer():
        for v in range(1, 6):
            time.sleep(0.005)
            put(ring, v)

    thread = threading.Thread(target=writer)
    thread.start()
    entry = ring.wait(lambda m: m.t > 3, 2.0)
    thread.join()
    assert entry is not None and entry.meta.t > 3


def test_ring_rejects_bad_sizes():
    with pytest.raises(ValueError, match="at least 2"):
        FrameRing(1, FIELDS)
    with pytest.raises(ValueError, match="fields is empty"):
        FrameRing(3, {})


def test_global_and_system_time_are_wall_clock_minus_offset_minus_latency():
    clock = FrameClock(latency_s=0.02)
    wall_minus_mono = 1000.0
    for domain in (StampDomain.GLOBAL_TIME, StampDomain.SYSTEM_TIME):
        t = clock.to_monotonic(1_000_500.0, domain, arrival_mono=0.6, wall_minus_mono=wall_minus_mono)
        assert t == pytest.approx(1000.5 - 1000.0 - 0.02)


def test_hardware_clock_uses_the_minimum_transport_delay():
    clock = FrameClock(latency_s=0.01, window=10)
    # device ms with an arbitrary epoch, arriving 5..8 ms after the stamp (+ an epoch of 100 s)
    delays = [0.008, 0.005, 0.007, 0.006]
    out = []
    for i, d in enumerate(delays):
        stamp = 1000.0 * i / 30
        out.append(clock.to_monotonic(stamp, StampDomain.HARDWARE_CLOCK, arrival_mono=100.0 + i / 30 + d))
    # after the second frame the estimate is the 5 ms minimum
    assert out[-1] == pytest.approx(100.0 + 3 / 30 + 0.005 - 0.01)
    clock.reset()
    assert clock.to_monotonic(0.0, StampDomain.HARDWARE_CLOCK, arrival_mono=50.0) == pytest.approx(50.0 - 0.01)
