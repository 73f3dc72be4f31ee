"""History samplers and action-path features against hand-worked trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rig.config import ConfigError
from worldmodel.history import (
    HistoryConfig,
    HistoryError,
    _rotation_steps,
    action_path_features,
    arc_dual_indices,
    arc_single_indices,
    release_indices,
    release_training_indices,
    select_history,
    sliding_window_indices,
)


def moves(x: list[float], rot: list[float] | None = None, right_rot: list[float] | None = None) -> np.ndarray:
    """Model actions (T, 14): arm 0 translation along x, optional arm-0 roll and arm-1 roll."""
    a = np.zeros((len(x), 14))
    a[:, 0] = x
    if rot is not None:
        a[:, 3] = rot
    if right_rot is not None:
        a[:, 10] = right_rot
    return a


def test_release_sampler_follows_the_arc_and_keeps_the_ends() -> None:
    a = moves([1, 1, 0, 0, 1, 1])  # arc per node: 0 1 2 2 2 3 4
    assert release_indices(a, 3) == [0, 2, 6]  # the pause (nodes 2-4) takes the first node at arc 2
    assert release_indices(a, 5) == [0, 1, 2, 5, 6]
    assert release_indices(a, 1) == [6]
    assert release_indices(np.zeros((7, 14)), 4) == [0, 0, 0, 7]  # no motion
    assert release_indices(np.zeros((0, 14)), 3) == [0, 0, 0]
    # both arms count, rotation with weight 0.25: a right-arm roll of 2 rad is a step of 1
    assert release_indices(moves([0, 0, 0, 0], right_rot=[2, 2, 0, 0]), 3) == [0, 1, 4]


def test_algorithm1_pause_costs_nothing_and_turning_points_survive() -> None:
    pause_then_move = moves([0] * 10 + [1, 1, 1, 1])  # arc: 0 x 11 nodes, then 1 2 3 4
    assert arc_single_indices(pause_then_move, 5) == [0, 11, 12, 13, 14]
    assert sliding_window_indices(15, 5) == [10, 11, 12, 13, 14]
    out_and_back = moves([1, 1, 1, -1, -1, -1])  # turning point at node 3; |dp| makes the arc monotone
    assert arc_single_indices(out_and_back, 3) == [0, 3, 6]
    # rotation weighted by w_r = 0.3: a 1 rad roll step is sqrt(0.3) long
    rolled = moves([0, 0, 0, 0], rot=[0, 0, 1, 1])  # arc: 0 0 0 .548 1.095
    assert arc_single_indices(rolled, 3) == [0, 3, 4]
    assert arc_single_indices(rolled, 3, w_r=0.0) == [0, 1, 4]  # no motion at all: first interior node
    # few nodes with large steps: picks are a set, padded at the front with the start anchor
    assert arc_single_indices(moves([1, 1]), 5) == [0, 0, 0, 1, 2]


def test_release_training_sampler_dedupes_and_fills_the_shortfall() -> None:
    jump = moves([10, 0.1, 0.1, 0.1, 0.1])  # arc: 0 10 10.1 10.2 10.3 10.4
    assert release_training_indices(jump, 4) == [0, 1, 2, 5]  # both middle targets pick node 1: fill with 2
    assert arc_single_indices(jump, 4) == [0, 0, 1, 5]  # Algorithm 1 keeps the set and pads instead
    assert release_training_indices(moves([1, 1]), 5) == [0, 0, 0, 1, 2]
    # arm 0 only: the right arm's motion is ignored, unlike the released inference sampler
    right_only = moves([0, 0, 0, 0], right_rot=[2, 2, 0, 0])
    assert release_training_indices(right_only, 3) == [0, 1, 4]  # flat arc: first interior node
    assert release_indices(right_only, 3) == [0, 1, 4]
    # padding-aware start: the first node whose frame id is 0
    assert release_training_indices(moves([1, 1, 1, 1]), 3, frame_ids=[9, 0, 1, 2, 3]) == [1, 2, 4]


def poses_from(steps_left: list[float], roll_right: list[float]) -> np.ndarray:
    """Absolute poses (N, 2, 7): left arm steps along x, right arm rolls about x."""
    n = len(steps_left) + 1
    p = np.zeros((n, 2, 7))
    p[:, :, 6] = 1.0
    p[1:, 0, 0] = np.cumsum(steps_left)
    p[:, 1, 3:7] = Rotation.from_euler("x", np.concatenate([[0.0], np.cumsum(roll_right)])[:, None]).as_quat()
    return p


def test_algorithm2_weights_both_arms_over_absolute_poses() -> None:
    p = poses_from([0.01, 0.01, 0, 0], [0, 0, 0.1, 0.1])
    # steps: .01 .01 sqrt(.3)*.1 = .0548 twice -> arc 0 .01 .02 .0748 .1296; middle target .0648 -> node 3
    assert arc_dual_indices(p, 3) == [0, 3, 4]
    assert arc_dual_indices(p[:, :1], 3) == [0, 1, 4]  # left arm alone: the right arm's roll is invisible
    assert arc_dual_indices(p, 3, rotation_scale=0.1) == [0, 2, 4]  # s_r shrinks the rotation steps
    # zero-motion padding: r_s repeated m-1 times, then r_e
    still = poses_from([0, 0, 0], [0, 0, 0])
    assert arc_dual_indices(still, 4) == [0, 0, 0, 3]
    # frame ids: padding frames carry id 0; r_s is the earliest of them (anchors kept)
    assert arc_dual_indices(p, 3, frame_ids=[4, 0, 0, 1, 2])[0] == 1
    # the rotation step is geodesic: crossing +-pi is a 0.1 rad step, not ~2 pi
    wrap = poses_from([0, 0, 0], [math.pi - 0.05, 0.1, 3.0])
    np.testing.assert_allclose(_rotation_steps(wrap[:, 1, 3:7]), [math.pi - 0.05, 0.1, 3.0], atol=1e-9)


def test_sliding_window_and_dispatch() -> None:
    assert sliding_window_indices(3, 5) == [0, 0, 0, 1, 2]
    assert sliding_window_indices(30, 4) == [26, 27, 28, 29]
    a = moves([0] * 10 + [1, 1, 1, 1])
    p = poses_from([0] * 10 + [1, 1, 1, 1], [0] * 14)
    assert select_history(HistoryConfig("none", 5), a) is None
    assert select_history(HistoryConfig("sliding_window", 5), a) == [10, 11, 12, 13, 14]
    assert select_history(HistoryConfig("arc_single", 5), a) == [0, 11, 12, 13, 14]
    assert select_history(HistoryConfig("arc_dual", 5), a, poses=p) == [0, 11, 12, 13, 14]
    assert select_history(HistoryConfig("release", 5), a) == [0, 11, 12, 13, 14]
    with pytest.raises(HistoryError, match="absolute poses"):
        select_history(HistoryConfig("arc_dual", 5), a)
    with pytest.raises(HistoryError, match=r"actions: shape \(3, 7\)"):
        select_history(HistoryConfig("release", 5), np.zeros((3, 7)))
    with pytest.raises(ConfigError, match="history.sampler='uniform'"):
        HistoryConfig("uniform")
    with pytest.raises(ConfigError, match="unknown history keys"):
        HistoryConfig.from_dict({"sampler": "release", "budjet": 3})


def test_action_path_features_hand_worked() -> None:
    hist = np.zeros((2, 14))
    fut = np.zeros((2, 14))
    hist[:, 0], fut[:, 0] = [0.01, 0.02], [0.03, 0.04]
    hist[:, 6], fut[:, 6] = [1, 1], [0, 0]  # gripper per node: 1 1 1 0 0 (one toggle, at node 3)
    f = action_path_features(hist, fut, [0, 2])
    assert f.shape == (2, 2, 22) and f.dtype == np.float32
    # future 0 (node 3) from slot node 0: path of 3 steps
    np.testing.assert_allclose(f[0, 0, 0], math.tanh(0.02 / 0.05), rtol=1e-6)
    np.testing.assert_allclose(f[0, 0, 6], 0.02, rtol=1e-6)
    np.testing.assert_allclose(f[0, 0, 12], math.sqrt((1 + 4 + 9) * 1e-4 / 3), rtol=1e-6)
    np.testing.assert_allclose(f[0, 0, 18:], [3 / 4, 1, 0, 1], rtol=1e-6)
    # future 1 (node 4) from slot node 2: two steps .03 .04
    np.testing.assert_allclose(f[1, 1, 0], math.tanh(0.035 / 0.05), rtol=1e-6)
    np.testing.assert_allclose(f[1, 1, 18:], [2 / 4, 1, 0, 1], rtol=1e-6)
    assert np.all(f[..., 1:6] == 0)  # no y/z/rotation motion
    with pytest.raises(HistoryError, match="indices"):
        action_path_features(hist, fut, [3])
