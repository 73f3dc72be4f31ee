"""Pose helpers built on scipy Rotation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from rig.rotations import (
    angle_between,
    compose_poses,
    interpolate_poses,
    invert_pose,
    matrix_to_pose,
    normalize_quat,
    pose_to_matrix,
    slerp_quat,
)


def random_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(size=(n, 3)), Rotation.random(n, random_state=seed).as_quat()], axis=1)


def test_matrix_round_trip_batched():
    poses = random_poses(8)
    back = matrix_to_pose(pose_to_matrix(poses))
    np.testing.assert_allclose(back[:, :3], poses[:, :3], atol=1e-12)
    assert np.all(angle_between(back[:, 3:], poses[:, 3:]) < 1e-9)
    assert np.all(back[:, 6] >= 0)


def test_compose_with_inverse_is_identity():
    poses = random_poses(5, seed=1)
    ident = compose_poses(poses, invert_pose(poses))
    np.testing.assert_allclose(ident[:, :3], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(ident[:, 6]), 1.0, atol=1e-12)


def test_interpolation_is_linear_and_slerp():
    a = np.array([0, 0, 0, 0, 0, 0, 1.0])
    b = np.concatenate([[1.0, 2.0, 3.0], Rotation.from_euler("z", 90, degrees=True).as_quat()])
    mid = interpolate_poses([0.0, 1.0], np.stack([a, b]), [0.5, -1.0, 2.0])
    np.testing.assert_allclose(mid[0, :3], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(Rotation.from_quat(mid[0, 3:]).as_euler("xyz", degrees=True), [0, 0, 45], atol=1e-9)
    np.testing.assert_allclose(mid[1], a, atol=1e-12)  # clamped before the start
    np.testing.assert_allclose(mid[2, :3], b[:3])  # clamped after the end
    np.testing.assert_allclose(slerp_quat(a[3:], b[3:], 0.5), mid[0, 3:], atol=1e-12)


def test_normalize_canonical_sign():
    q = normalize_quat([0.0, 0.0, 0.0, -2.0])
    np.testing.assert_allclose(q, [0, 0, 0, 1.0])


_quat = st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=4, max_size=4).filter(
    lambda q: float(np.linalg.norm(q)) > 1e-3)


@settings(max_examples=200, deadline=None)
@given(_quat, _quat, st.floats(0.0, 1.0), st.lists(st.floats(-4.0, 4.0), min_size=3, max_size=3))
def test_single_quaternion_fast_paths_equal_the_batched_ones(a, b, alpha, rotvec):
    """The scalar `math` path for one quaternion gives the batched numpy path's values."""
    from rig.rotations import quat_multiply, quat_to_rotvec, rotvec_to_quat, slerp_quats

    qa, qb, v = np.array(a), np.array(b), np.array(rotvec)
    np.testing.assert_allclose(normalize_quat(qa), normalize_quat(qa[None])[0], atol=1e-12)
    np.testing.assert_allclose(quat_multiply(qa, qb), quat_multiply(qa[None], qb[None])[0], atol=1e-12)
    na, nb = normalize_quat(qa), normalize_quat(qb)
    np.testing.assert_allclose(quat_to_rotvec(na), quat_to_rotvec(na[None])[0], atol=1e-9)
    np.testing.assert_allclose(rotvec_to_quat(v), rotvec_to_quat(v[None])[0], atol=1e-12)
    assert float(angle_between(qa, qb)) == pytest.approx(float(angle_between(qa[None], qb[None])[0]), abs=1e-6)
    np.testing.assert_allclose(slerp_quats(na, nb, alpha), slerp_quats(na[None], nb[None], np.array([alpha]))[0],
                               atol=1e-9)
