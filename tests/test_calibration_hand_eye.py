"""calibration.hand_eye and calibration.samples on synthetic ground truth: random robot poses, a known
hand-eye transform, chessboard corners projected with cv2.projectPoints plus pixel noise."""

import numpy as np
import pytest
from calibration_data import (
    BOARD,
    INTRINSICS,
    hand_eye_scene,
    random_transform,
    render_board,
    rotation_error_deg,
    transform,
    translation_error_m,
)

from calibration.hand_eye import (
    HAND_EYE_METHODS,
    ROBOT_WORLD_METHODS,
    HandEyeError,
    opencv_has_hand_eye,
    solve_hand_eye,
)
from calibration.samples import SamplesError, load_samples
from calibration.target import Chessboard, TargetError, target_pose
from rig.rotations import matrix_to_pose
from rig.schema import CameraIntrinsics

NO_CV_HAND_EYE = "this cv2 does not expose calibrateHandEye to Python (OpenCV 5.0.0 wheels, opencv/opencv#29565)"
MOUNTS = ("eye_in_hand", "eye_to_hand")


def pnp_poses(scene):
    return np.stack([target_pose(p, BOARD.object_points(), INTRINSICS) for p in scene.image_points])


def assert_recovers(result, scene, rot_deg=0.5, trans_m=0.002):
    assert rotation_error_deg(result.X, scene.X) < rot_deg
    assert translation_error_m(result.X, scene.X) < trans_m
    assert rotation_error_deg(result.Z, scene.Z) < rot_deg
    assert translation_error_m(result.Z, scene.Z) < trans_m


@pytest.mark.parametrize("mount", MOUNTS)
def test_builtin_recovers_known_transform_from_pnp_poses(mount):
    scene = hand_eye_scene(mount, noise_px=0.3, seed=1)
    result = solve_hand_eye(scene.T_base_flange, pnp_poses(scene), mount, "builtin")
    assert_recovers(result, scene)
    assert result.n_samples == 15 and result.reprojection_rms_px.size == 0 and not result.refined_on_pixels


@pytest.mark.parametrize("mount", MOUNTS)
def test_reprojection_refinement_is_tighter_and_reports_pixel_residuals(mount):
    scene = hand_eye_scene(mount, noise_px=0.3, seed=2)
    C = pnp_poses(scene)
    obj = [BOARD.object_points()] * len(C)
    coarse = solve_hand_eye(scene.T_base_flange, C, mount, "builtin", list(scene.image_points), obj, INTRINSICS,
                            refine=False)
    fine = solve_hand_eye(scene.T_base_flange, C, mount, "builtin", list(scene.image_points), obj, INTRINSICS)
    assert_recovers(fine, scene, rot_deg=0.3, trans_m=0.0005)
    assert fine.refined_on_pixels and not coarse.refined_on_pixels
    # 0.3 px noise per coordinate: per-point RMS distance is about 0.3 * sqrt(2)
    assert 0.3 < np.sqrt(np.mean(fine.reprojection_rms_px**2)) < 0.5
    # the refinement minimises the total squared reprojection error (same point count per sample here)
    assert np.sum(fine.reprojection_rms_px**2) <= np.sum(coarse.reprojection_rms_px**2) + 1e-9
    text = fine.summary()
    assert mount in text and "reprojection [px]" in text and "refined" in text


@pytest.mark.skipif(not opencv_has_hand_eye(), reason=NO_CV_HAND_EYE)
@pytest.mark.parametrize("method", [*HAND_EYE_METHODS, *ROBOT_WORLD_METHODS])
@pytest.mark.parametrize("mount", MOUNTS)
def test_opencv_methods_recover_known_transform(mount, method):
    scene = hand_eye_scene(mount, noise_px=0.2, seed=3)
    C = pnp_poses(scene)
    result = solve_hand_eye(scene.T_base_flange, C, mount, method)
    assert_recovers(result, scene, trans_m=0.01 if method in ("andreff", "li") else 0.002)  # linear: mm off
    assert "(opencv)" in result.method
    refined = solve_hand_eye(scene.T_base_flange, C, mount, method, list(scene.image_points),
                             [BOARD.object_points()] * len(C), INTRINSICS)
    assert_recovers(refined, scene, rot_deg=0.3, trans_m=0.001)


@pytest.mark.skipif(opencv_has_hand_eye(), reason="cv2 exposes calibrateHandEye here")
def test_opencv_method_without_binding_names_the_fallback():
    scene = hand_eye_scene("eye_in_hand", n=6)
    with pytest.raises(HandEyeError, match="builtin"):
        solve_hand_eye(scene.T_base_flange, pnp_poses(scene), "eye_in_hand", "park")
    assert "numpy" in solve_hand_eye(scene.T_base_flange, pnp_poses(scene), "eye_in_hand", "auto").method


def test_exact_poses_give_exact_answer_for_random_transforms():
    rng = np.random.default_rng(7)
    X, Z = random_transform(rng), random_transform(rng)
    G = np.stack([random_transform(rng, max_t=0.8) for _ in range(8)])
    C = np.linalg.inv(X) @ np.linalg.inv(G) @ Z  # G X C = Z exactly
    result = solve_hand_eye(matrix_to_pose(G), matrix_to_pose(C), "eye_in_hand", "builtin")  # (N, 7) poses work
    assert rotation_error_deg(result.X, X) < 1e-6 and translation_error_m(result.X, X) < 1e-8
    assert result.rotation_residual_deg.max() < 1e-6 and result.translation_residual_m.max() < 1e-8


def test_residuals_point_at_a_bad_sample():
    scene = hand_eye_scene("eye_in_hand", noise_px=0.1, seed=4)
    G = scene.T_base_flange.copy()
    G[6, :3, 3] += [0.02, 0.0, -0.01]  # this sample's robot pose is off by 2.2 cm
    result = solve_hand_eye(G, pnp_poses(scene), "eye_in_hand", "builtin")
    assert int(np.argmax(result.translation_residual_m)) == 6
    assert result.translation_residual_m[6] > 5 * np.median(result.translation_residual_m)


def test_degenerate_or_invalid_input_is_refused():
    scene = hand_eye_scene("eye_in_hand", n=6)
    C = pnp_poses(scene)
    one_axis = np.stack([transform([0, 0, a], [0.3 + 0.01 * k, 0, 0.4]) for k, a in enumerate(np.linspace(0, 1, 6))])
    with pytest.raises(HandEyeError, match="one axis"):
        solve_hand_eye(one_axis, C, "eye_in_hand", "builtin")
    still = np.stack([transform([0, 0, 0.01 * k], [0.1 * k, 0, 0.4]) for k in range(6)])
    with pytest.raises(HandEyeError, match="rotates at most"):
        solve_hand_eye(still, C, "eye_in_hand", "builtin")
    with pytest.raises(HandEyeError, match="mount"):
        solve_hand_eye(scene.T_base_flange, C, "eye_on_table")
    with pytest.raises(HandEyeError, match="method"):
        solve_hand_eye(scene.T_base_flange, C, "eye_in_hand", "magic")
    with pytest.raises(HandEyeError, match="same number"):
        solve_hand_eye(scene.T_base_flange[:5], C, "eye_in_hand")
    bad = scene.T_base_flange.copy()
    bad[2, :3, :3] *= 1.1
    with pytest.raises(ValueError, match=r"T_base_flange\[2\].*orthonormal"):
        solve_hand_eye(bad, C, "eye_in_hand")
    with pytest.raises(HandEyeError, match="together"):
        solve_hand_eye(scene.T_base_flange, C, "eye_in_hand", image_points=list(scene.image_points))


def write_samples(path, scene, **extra):
    np.savez(path, flange_poses=matrix_to_pose(scene.T_base_flange), camera_matrix=INTRINSICS.matrix(),
             dist_coeffs=np.asarray(INTRINSICS.coeffs), image_size=np.array([640, 480]), **extra)


def test_samples_file_with_pixels_tcp_poses_and_partial_detections(tmp_path):
    scene = hand_eye_scene("eye_in_hand", n=12, noise_px=0.2, seed=5)
    mask = np.ones(scene.image_points.shape[:2], bool)
    mask[3, 10:40] = False  # partial detection (ChArUco-like)
    mask[8, 3:] = False  # only 3 points left: dropped
    write_samples(tmp_path / "s.npz", scene, image_points=scene.image_points, object_points=BOARD.object_points(),
                  point_mask=mask)
    samples = load_samples(tmp_path / "s.npz")
    assert samples.dropped == (8,) and len(samples.T_base_flange) == 11
    assert len(samples.image_points[3]) == len(BOARD.object_points()) - 30
    result = solve_hand_eye(samples.T_base_flange, samples.T_camera_target, "eye_in_hand", "builtin",
                            samples.image_points, samples.object_points, samples.intrinsics)
    assert_recovers(result, scene, rot_deg=0.2, trans_m=0.001)

    # the same samples recorded as TCP poses with the tool offset give the same flange poses
    T_flange_tcp = transform([0.0, 0.0, 0.3], [0.0, 0.0, 0.174])
    np.savez(tmp_path / "tcp.npz", tcp_poses=matrix_to_pose(scene.T_base_flange @ T_flange_tcp),
             tcp_in_flange=matrix_to_pose(T_flange_tcp), target_poses=matrix_to_pose(samples.T_camera_target[:1]
             .repeat(12, axis=0)))
    tcp = load_samples(tmp_path / "tcp.npz")
    assert np.allclose(tcp.T_base_flange, scene.T_base_flange, atol=1e-9) and tcp.intrinsics is None


def test_samples_file_with_images_detects_the_board(tmp_path):
    pinhole = CameraIntrinsics(width=640, height=480, fx=432.0, fy=431.0, cx=318.5, cy=242.0)
    scene = hand_eye_scene("eye_in_hand", n=8, noise_px=0.0, seed=6, intrinsics=pinhole)
    images = np.stack([render_board(c, pinhole) for c in scene.T_camera_target])
    images[2] = 200  # a blank frame: board not found, sample dropped
    np.savez_compressed(tmp_path / "img.npz", flange_poses=matrix_to_pose(scene.T_base_flange),
                        camera_matrix=pinhole.matrix(), dist_coeffs=np.zeros(5), images=images,
                        board=[BOARD.cols, BOARD.rows, BOARD.square_m])
    samples = load_samples(tmp_path / "img.npz")
    assert samples.dropped == (2,)
    result = solve_hand_eye(samples.T_base_flange, samples.T_camera_target, "eye_in_hand", "builtin",
                            samples.image_points, samples.object_points, samples.intrinsics)
    assert_recovers(result, scene, rot_deg=0.2, trans_m=0.001)
    assert np.sqrt(np.mean(result.reprojection_rms_px**2)) < 0.5


def test_bad_samples_files_are_named(tmp_path):
    scene = hand_eye_scene("eye_in_hand", n=6)
    with pytest.raises(SamplesError, match="no such file"):
        load_samples(tmp_path / "missing.npz")
    np.savez(tmp_path / "a.npz", image_points=scene.image_points)
    with pytest.raises(SamplesError, match="flange_poses"):
        load_samples(tmp_path / "a.npz")
    write_samples(tmp_path / "b.npz", scene)
    with pytest.raises(SamplesError, match="target_poses"):
        load_samples(tmp_path / "b.npz")
    write_samples(tmp_path / "c.npz", scene, image_points=scene.image_points, object_points=np.zeros((5, 3)))
    with pytest.raises(SamplesError, match=r"c\.npz: object_points shape"):
        load_samples(tmp_path / "c.npz")
    poses = matrix_to_pose(scene.T_base_flange)
    poses[1, 3:] *= 2
    np.savez(tmp_path / "d.npz", flange_poses=poses, target_poses=poses)
    with pytest.raises(SamplesError, match=r"flange_poses\[1\] quaternion norm"):
        load_samples(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", flange_poses=np.array([object()], dtype=object))
    with pytest.raises(SamplesError, match="pickled"):
        load_samples(tmp_path / "e.npz")


def test_target_pose_and_board_validation():
    with pytest.raises(TargetError, match="at least 3x3"):
        Chessboard(2, 5, 0.02)
    with pytest.raises(TargetError, match="square_m"):
        Chessboard(9, 6, 0.0)
    with pytest.raises(TargetError, match=">= 4"):
        target_pose(np.zeros((3, 2)), np.zeros((3, 3)), INTRINSICS)
    assert BOARD.detect(np.full((480, 640), 128, np.uint8)) is None
    with pytest.raises(TargetError, match="uint8"):
        BOARD.detect(np.zeros((480, 640), np.float32))
