"""Curation rules on synthetic command streams: idle detection, trimming with a margin, idle-gap flags,
success and length filters."""

from __future__ import annotations

import numpy as np

from teleop.curate import CurateSettings, idle_mask, judge_episode
from tests.doubles.rig_devices import HOME

FPS = 30


def stream(segments: list[tuple[float, float]]) -> np.ndarray:
    """(N, 16) commands: each (seconds, x speed m/s) segment moves the left arm along x."""
    rows, x = [], 0.4
    for seconds, speed in segments:
        for _ in range(round(seconds * FPS)):
            x += speed / FPS
            left = np.concatenate([[x], HOME[1:], [1.0]])
            right = np.concatenate([HOME, [1.0]])
            rows.append(np.concatenate([left, right]))
    return np.asarray(rows)


def test_idle_mask_and_trim() -> None:
    actions = stream([(1.0, 0.0), (2.0, 0.05), (1.5, 0.0)])
    idle = idle_mask(actions, FPS, CurateSettings())
    assert idle[:30].all() and not idle[31:90].any() and idle[91:].all()
    v = judge_episode(0, actions, True, FPS, CurateSettings(margin_s=0.2))
    assert v.kept and (v.start, v.stop) == (29 - 6, 90 + 6)
    assert not v.flagged


def test_gripper_or_rotation_motion_is_not_idle() -> None:
    actions = stream([(1.0, 0.0)])
    actions[10:20, 7] = np.linspace(1.0, 0.0, 10)
    assert not idle_mask(actions, FPS, CurateSettings())[11:20].any()


def test_idle_gap_flags_and_filters() -> None:
    actions = stream([(0.5, 0.0), (1.0, 0.05), (3.0, 0.0), (1.0, 0.05), (0.5, 0.0)])
    v = judge_episode(0, actions, True, FPS, CurateSettings(max_idle_gap_s=2.0))
    assert v.flagged and v.kept and v.idle_gaps_s == [3.0]
    assert not judge_episode(0, actions, True, FPS, CurateSettings(drop_flagged=True)).kept
    failed = judge_episode(1, actions, False, FPS, CurateSettings())
    assert not failed.kept and failed.reason == "not successful"
    assert judge_episode(1, actions, False, FPS, CurateSettings(only_success=False)).kept
    assert "too short" in judge_episode(2, actions, True, FPS, CurateSettings(min_seconds=10)).reason
    assert "too long" in judge_episode(2, actions, True, FPS, CurateSettings(max_seconds=2)).reason
    assert judge_episode(3, stream([(2.0, 0.0)]), True, FPS, CurateSettings()).reason == "no motion"
