"""Pose <-> 14-D model action conversion (official convention) and per-dataset normalisation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rig.rotations import angle_between, compose_poses, normalize_quat, pose_to_matrix
from worldmodel.actions import (
    ActionError,
    ActionStats,
    actions_to_command_chunk,
    actions_to_poses,
    command_chunk_to_actions,
    libero_servo_to_actions,
    poses_to_actions,
)


def trajectory(T: int = 20, arms: int = 2, seed: int = 0, step_rot: float = 0.05):
    """A smooth random EE trajectory: (T+1, arms, 7) poses and (T+1, arms) grippers."""
    rng = np.random.default_rng(seed)
    pos = 0.4 + np.cumsum(rng.normal(0, 0.01, (T + 1, arms, 3)), axis=0)
    quat = np.zeros((T + 1, arms, 4))
    quat[0] = normalize_quat(rng.normal(size=(arms, 4)))
    for k in range(T):
        axis = rng.normal(size=(arms, 3))
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        ang = rng.uniform(0, step_rot, (arms, 1))
        dq = np.concatenate([axis * np.sin(ang / 2), np.cos(ang / 2)], axis=-1)
        zero = np.zeros((arms, 3))
        quat[k + 1] = compose_poses(np.concatenate([zero, quat[k]], -1), np.concatenate([zero, dq], -1))[:, 3:]
    poses = np.concatenate([pos, quat], axis=-1)
    grippers = rng.uniform(0, 1, (T + 1, arms))
    return poses, grippers


def official_reference(poses: np.ndarray, grippers: np.ndarray) -> np.ndarray:
    """The release's `actions_from_absolute_states`, written out with explicit Rz @ Ry @ Rx matrices."""

    def rx(a):
        return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])

    def ry(a):
        return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])

    def rz(a):
        return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])

    def quat_to_euler(q):  # scipy "xyz" via the rotation matrix (release: Rotation.as_euler("xyz"))
        R = pose_to_matrix(np.concatenate([np.zeros(3), q]))[:3, :3]
        return np.array([math.atan2(R[2, 1], R[2, 2]), math.atan2(-R[2, 0], math.hypot(R[0, 0], R[1, 0])),
                         math.atan2(R[1, 0], R[0, 0])])

    def euler2rotm(e):
        return rz(e[2]) @ ry(e[1]) @ rx(e[0])

    def rotm2euler(R):
        sy = math.hypot(R[0, 0], R[1, 0])
        return np.array([math.atan2(R[2, 1], R[2, 2]), math.atan2(-R[2, 0], sy), math.atan2(R[1, 0], R[0, 0])])

    T1, arms = poses.shape[:2]
    out = np.zeros((T1 - 1, 14))
    for arm in range(arms):
        for k in range(1, T1):
            Rp = euler2rotm(quat_to_euler(poses[k - 1, arm, 3:]))
            Rc = euler2rotm(quat_to_euler(poses[k, arm, 3:]))
            out[k - 1, arm * 7:arm * 7 + 3] = Rp.T @ (poses[k, arm, :3] - poses[k - 1, arm, :3])
            out[k - 1, arm * 7 + 3:arm * 7 + 6] = rotm2euler(Rp.T @ Rc)
            out[k - 1, arm * 7 + 6] = grippers[k, arm]
    return out


def test_matches_the_official_formula() -> None:
    poses, grippers = trajectory()
    np.testing.assert_allclose(poses_to_actions(poses, grippers), official_reference(poses, grippers), atol=1e-12)


@pytest.mark.parametrize("step_rot", [0.05, 1.0])
def test_round_trip_within_1e6(step_rot: float) -> None:
    poses, grippers = trajectory(step_rot=step_rot, seed=3)
    actions = poses_to_actions(poses, grippers)
    assert actions.shape == (20, 14)
    back, g = actions_to_poses(poses[0], actions)
    assert np.abs(back[..., :3] - poses[..., :3]).max() < 1e-6
    assert angle_between(back[..., 3:], poses[..., 3:]).max() < 1e-6
    np.testing.assert_allclose(g, grippers[1:], atol=1e-12)
    np.testing.assert_allclose(poses_to_actions(back, np.concatenate([grippers[:1], g])), actions, atol=1e-6)


def test_translation_is_in_the_previous_ee_frame() -> None:
    # EE yawed by +90 deg: a world +y motion is a +x motion in the EE frame
    q = np.array([0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    poses = np.array([[0, 0, 0, *q], [0, 0.01, 0, *q]])
    a = poses_to_actions(poses, np.array([1.0, 0.5]))
    np.testing.assert_allclose(a[0, :7], [0.01, 0, 0, 0, 0, 0, 0.5], atol=1e-12)
    np.testing.assert_array_equal(a[0, 7:], np.zeros(7))  # single arm: second half zero-padded


def test_command_chunk_helpers_round_trip() -> None:
    poses, grippers = trajectory(T=60, seed=5)
    states = np.concatenate([poses, grippers[..., None]], axis=-1)  # (61, 2, 8)
    actions = command_chunk_to_actions(states[0], states[1:])
    chunk = actions_to_command_chunk(states[0], actions)
    assert chunk.shape == (60, 2, 8)
    np.testing.assert_allclose(chunk[..., :3], states[1:, :, :3], atol=1e-6)
    assert angle_between(chunk[..., 3:7], states[1:, :, 3:7]).max() < 1e-6
    np.testing.assert_allclose(chunk[..., 7], states[1:, :, 7], atol=1e-12)


def test_libero_servo_conversion() -> None:
    servo = np.array([[1.0, -1.0, 0.5, 0.2, -0.2, 0.1, -1.0], [0, 0, 0, 0, 0, 0, 1.0]])
    a = libero_servo_to_actions(servo)
    assert a.shape == (2, 14)
    np.testing.assert_allclose(a[0, :7], [0.05, -0.05, 0.025, 0.01, -0.01, 0.005, 1.0])
    assert a[1, 6] == 0.0  # +1 = closed -> opening 0
    np.testing.assert_array_equal(a[:, 7:], 0.0)


def test_normalisation_stats(tmp_path: Path) -> None:
    poses, grippers = trajectory(T=200, seed=2)
    actions = poses_to_actions(poses, grippers)
    stats = ActionStats.fit("rig_v1", actions)
    norm = stats.normalize(actions)
    np.testing.assert_allclose(norm[:, :6].mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(norm[:, :6].std(0), 1, atol=1e-9)
    np.testing.assert_array_equal(norm[:, [6, 13]], actions[:, [6, 13]])  # grippers untouched
    np.testing.assert_allclose(stats.denormalize(norm), actions, atol=1e-12)
    stats.save(tmp_path / "stats.json")
    assert ActionStats.load(tmp_path / "stats.json") == stats
    ident = ActionStats.identity()
    np.testing.assert_array_equal(ident.normalize(actions), actions)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ActionError, match=r"bad\.json"):
        ActionStats.load(tmp_path / "bad.json")


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ActionError, match="poses"):
        poses_to_actions(np.zeros((5, 6)), np.zeros(5))
    with pytest.raises(ActionError, match="grippers"):
        poses_to_actions(np.tile([0, 0, 0, 0, 0, 0, 1.0], (5, 1)), np.zeros(4))
    with pytest.raises(ActionError, match="actions"):
        actions_to_poses(np.zeros((2, 7)), np.zeros((3, 7)))
