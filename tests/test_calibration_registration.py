"""calibration.base_registration (known transforms recovered from noisy points) and calibration.intrinsics
(RealSense profiles, cv2.calibrateCamera on projected and on rendered chessboards)."""

import numpy as np
import pytest
from calibration_data import BOARD, INTRINSICS, board_views, project, random_transform, render_board
from calibration_data import rotation_error_deg as rot_err
from calibration_data import translation_error_m as trans_err

from calibration.base_registration import (
    RegistrationError,
    register_dual_arm,
    register_points,
    register_with_camera,
)
from calibration.intrinsics import (
    IntrinsicsError,
    calibrate_from_images,
    calibrate_from_points,
    from_matrix,
    from_realsense_profile,
)
from calibration.transforms import load_calibration
from rig.schema import CameraIntrinsics


def apply(T, pts):
    return pts @ T[:3, :3].T + T[:3, 3]


def table_points(rng, n=12):
    return np.column_stack([rng.uniform(-0.3, 0.3, n), rng.uniform(-0.5, 0.5, n), rng.uniform(0.0, 0.15, n)])


def test_register_points_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    T_world_base = random_transform(rng)
    world = table_points(rng)
    base = apply(np.linalg.inv(T_world_base), world)
    exact = register_points(world, base)
    assert np.allclose(exact.T, T_world_base, atol=1e-10) and exact.max_m < 1e-10
    noisy = register_points(world + rng.normal(scale=0.0005, size=world.shape), base)
    assert rot_err(noisy.T, T_world_base) < 0.2 and trans_err(noisy.T, T_world_base) < 0.001
    assert 0.0002 < noisy.rms_m < 0.0012


def test_dual_arm_with_world_points_and_relative_to_left():
    rng = np.random.default_rng(1)
    cal = load_calibration()
    T_left, T_right = cal.T_world_base("left"), cal.T_world_base("right")
    world = table_points(rng, 9)
    left = apply(np.linalg.inv(T_left), world) + rng.normal(scale=0.0003, size=world.shape)
    right = apply(np.linalg.inv(T_right), world) + rng.normal(scale=0.0003, size=world.shape)

    both = register_dual_arm(left, right, world_points=world)
    for est, true in ((both.T_world_base_left, T_left), (both.T_world_base_right, T_right)):
        assert rot_err(est, true) < 0.2 and trans_err(est, true) < 0.001
    assert "left : rms" in both.summary()

    relative = register_dual_arm(left, right, T_world_base_left=T_left)  # the same points, unknown in world
    assert np.array_equal(relative.T_world_base_left, T_left)
    assert rot_err(relative.T_world_base_right, T_right) < 0.2
    assert trans_err(relative.T_world_base_right, T_right) < 0.001
    with pytest.raises(RegistrationError, match="world_points or T_world_base_left"):
        register_dual_arm(left, right)


def test_register_with_front_camera_observations():
    rng = np.random.default_rng(2)
    cal = load_calibration()
    T_world_front, T_world_base = cal["T_world_front"], cal.T_world_base("right")
    tcp = table_points(rng, 8) + np.array([0.4, 0.0, 0.2])
    cam = apply(np.linalg.inv(T_world_front) @ T_world_base, tcp)
    reg = register_with_camera(T_world_front, cam, tcp)
    assert np.allclose(reg.T, T_world_base, atol=1e-9)


def test_degenerate_points_are_refused():
    line = np.column_stack([np.linspace(0, 1, 5), np.zeros(5), np.zeros(5)])
    with pytest.raises(RegistrationError, match="tcp_points_left: points are nearly collinear"):
        register_dual_arm(line, line, world_points=table_points(np.random.default_rng(5), 5))
    with pytest.raises(RegistrationError, match=r"points_source: shape \(2, 3\)"):
        register_points(np.eye(3), np.eye(3)[:2])
    with pytest.raises(RegistrationError, match="pairs"):
        register_points(np.eye(3), np.vstack([np.eye(3), [[1, 1, 1]]]))
    with pytest.raises(RegistrationError, match="non-finite"):
        register_points(np.eye(3), np.full((3, 3), np.nan))


def test_intrinsics_from_realsense_profile():
    profile = {"width": 640, "height": 480, "fx": 604.2, "fy": 603.9, "ppx": 321.4, "ppy": 244.1,
               "model": "distortion.inverse_brown_conrady", "coeffs": [0.0] * 5}
    intr = from_realsense_profile(profile)
    assert (intr.width, intr.fx, intr.cx, intr.cy, intr.coeffs) == (640, 604.2, 321.4, 244.1, (0.0,) * 5)
    bc = from_realsense_profile({**profile, "model": "brown_conrady", "coeffs": [-0.05, 0.06, 0.001, 0.0, -0.02]})
    assert bc.coeffs[0] == -0.05
    with pytest.raises(IntrinsicsError, match="inverse_brown_conrady.*chessboard"):
        from_realsense_profile({**profile, "coeffs": [0.1, 0, 0, 0, 0]})
    with pytest.raises(IntrinsicsError, match="missing key 'ppy'"):
        from_realsense_profile({k: v for k, v in profile.items() if k != "ppy"})
    with pytest.raises(IntrinsicsError, match="fx"):
        from_realsense_profile({**profile, "fx": -1.0})

    class RsIntrinsics:  # attribute access as on pyrealsense2.intrinsics
        width, height, fx, fy, ppx, ppy, coeffs = 640, 480, 380.0, 380.0, 320.0, 240.0, [0.0] * 5
        model = "distortion.brown_conrady"

    assert from_realsense_profile(RsIntrinsics()).fx == 380.0
    with pytest.raises(IntrinsicsError, match="camera_matrix"):
        from_matrix(np.eye(2), np.zeros(5), 640, 480)


def test_calibrate_from_projected_corners_recovers_intrinsics():
    rng = np.random.default_rng(3)
    views = board_views(rng, 12, distance=(0.25, 0.5), cone_deg=45.0)
    pixels = [project(v) + rng.normal(scale=0.1, size=(len(BOARD.object_points()), 2)) for v in views]
    result = calibrate_from_points([BOARD.object_points()] * len(views), pixels, (640, 480))
    intr = result.intrinsics
    for key, tol in (("fx", 2.0), ("fy", 2.0), ("cx", 2.0), ("cy", 2.0)):
        assert abs(getattr(intr, key) - getattr(INTRINSICS, key)) < tol, key
    assert 0.05 < result.rms_px < 0.2 and len(result.per_view_rms_px) == 12
    with pytest.raises(IntrinsicsError, match="at least 3"):
        calibrate_from_points([BOARD.object_points()] * 2, pixels[:2], (640, 480))


def test_calibrate_from_rendered_images():
    pinhole = CameraIntrinsics(width=640, height=480, fx=450.0, fy=450.0, cx=320.0, cy=240.0)
    rng = np.random.default_rng(4)
    views = board_views(rng, 8, distance=(0.25, 0.45), cone_deg=45.0, intrinsics=pinhole)
    images = [render_board(v, pinhole) for v in views] + [np.full((480, 640), 90, np.uint8)]
    result = calibrate_from_images(images, BOARD)
    assert result.used_views == tuple(range(8))
    assert abs(result.intrinsics.fx - 450.0) < 4.5 and abs(result.intrinsics.cx - 320.0) < 5.0
    assert result.rms_px < 0.3
    with pytest.raises(IntrinsicsError, match="found in 0 of 2"):
        calibrate_from_images([images[-1]] * 2, BOARD)
    with pytest.raises(IntrinsicsError, match="different sizes"):
        calibrate_from_images([images[0], images[0][:100]], BOARD)
