"""`a2world calib show|hand-eye|register-bases|intrinsics` end to end on synthetic recordings."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from calibration_data import BOARD, INTRINSICS, board_views, hand_eye_scene, render_board, rotation_error_deg

from a2world_ros.cli.main import main
from calibration.transforms import TRANSFORM_KEYS, load_calibration
from rig.rotations import matrix_to_pose
from rig.schema import CameraIntrinsics

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "calibration.yaml"


@pytest.fixture
def calib_file(tmp_path):
    path = tmp_path / "calibration.yaml"
    shutil.copy(CONFIG, path)
    return path


def write_samples(path, scene):
    np.savez(path, flange_poses=matrix_to_pose(scene.T_base_flange), camera_matrix=INTRINSICS.matrix(),
             dist_coeffs=np.asarray(INTRINSICS.coeffs), image_points=scene.image_points,
             object_points=BOARD.object_points())


def test_group_without_subcommand_prints_help(capsys):
    assert main(["calib"]) == 0
    out = capsys.readouterr().out
    assert "hand-eye" in out and "show" in out


def test_show_prints_transforms_and_names_bad_keys(calib_file, capsys):
    assert main(["calib", "show", "--config", str(calib_file)]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in TRANSFORM_KEYS) and "world frame: world" in out
    data = yaml.safe_load(calib_file.read_text())
    del data["static_tf"]["ros__parameters"]["T_world_front"]
    calib_file.write_text(yaml.safe_dump(data))
    assert main(["calib", "show", "--config", str(calib_file)]) == 2
    assert "missing key 'T_world_front'" in capsys.readouterr().err


def test_hand_eye_wrist_writes_only_its_key(tmp_path, calib_file, capsys):
    scene = hand_eye_scene("eye_in_hand", n=12, noise_px=0.2, seed=11)
    write_samples(tmp_path / "wrist.npz", scene)
    before = load_calibration(calib_file)
    code = main(["calib", "hand-eye", "--samples", str(tmp_path / "wrist.npz"), "--camera", "wrist_right",
                 "--out", str(calib_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "wrote T_flange_wrist_right" in out and "reprojection [px]" in out
    after = load_calibration(calib_file)
    assert rotation_error_deg(after["T_flange_wrist_right"], scene.X) < 0.3
    assert np.linalg.norm(after["T_flange_wrist_right"][:3, 3] - scene.X[:3, 3]) < 0.001
    for key in TRANSFORM_KEYS:
        if key != "T_flange_wrist_right":
            assert np.array_equal(after[key], before[key])
    assert "# D405 on each flange" in calib_file.read_text()


def test_hand_eye_front_composes_with_the_arm_base(tmp_path, capsys):
    scene = hand_eye_scene("eye_to_hand", n=12, noise_px=0.2, seed=12)
    write_samples(tmp_path / "front.npz", scene)
    out_file = tmp_path / "out" / "calibration.yaml"
    out_file.parent.mkdir()
    args = ["calib", "hand-eye", "--samples", str(tmp_path / "front.npz"), "--camera", "front", "--out", str(out_file),
            "--config", str(CONFIG)]
    assert main(args) == 2 and "--arm" in capsys.readouterr().err
    assert main([*args, "--arm", "right"]) == 0
    result = load_calibration(out_file)["T_world_front"]  # new file, started from --config
    expected = load_calibration(CONFIG).T_world_base("right") @ scene.X
    assert rotation_error_deg(result, expected) < 0.3 and np.linalg.norm(result[:3, 3] - expected[:3, 3]) < 0.001


def test_hand_eye_rejects_noisy_samples_unless_forced(tmp_path, calib_file, capsys):
    scene = hand_eye_scene("eye_in_hand", n=12, noise_px=2.0, seed=13)
    write_samples(tmp_path / "noisy.npz", scene)
    text = calib_file.read_text()
    base = ["calib", "hand-eye", "--samples", str(tmp_path / "noisy.npz"), "--camera", "wrist_left",
            "--out", str(calib_file)]
    assert main(base) == 1
    out = capsys.readouterr().out
    assert "REJECTED: reprojection rms" in out and "not written" in out
    assert calib_file.read_text() == text
    assert main([*base, "--dry-run"]) == 1 and calib_file.read_text() == text
    assert main([*base, "--force"]) == 0 and calib_file.read_text() != text
    capsys.readouterr()
    write_samples(tmp_path / "few.npz", hand_eye_scene("eye_in_hand", n=5, seed=14))
    assert main([*base[:3], str(tmp_path / "few.npz"), *base[4:]]) == 2
    assert "min_samples" in capsys.readouterr().err


def test_register_bases(tmp_path, calib_file, capsys):
    rng = np.random.default_rng(15)
    cal = load_calibration(calib_file)
    world = np.column_stack([rng.uniform(-0.3, 0.3, 8), rng.uniform(-0.4, 0.4, 8), rng.uniform(0, 0.1, 8)])
    shift = np.eye(4)
    shift[:3, 3] = [0.004, -0.003, 0.002]  # the true right base is 5 mm off the nominal one
    truth = {"left": cal.T_world_base("left"), "right": shift @ cal.T_world_base("right")}
    local = {arm: world @ np.linalg.inv(T)[:3, :3].T + np.linalg.inv(T)[:3, 3] for arm, T in truth.items()}
    np.savez(tmp_path / "touch.npz", tcp_points_left=local["left"], tcp_points_right=local["right"], world_points=world)
    assert main(["calib", "register-bases", "--points", str(tmp_path / "touch.npz"), "--out", str(calib_file)]) == 0
    assert "wrote T_world_base_left, T_world_base_right" in capsys.readouterr().out
    assert np.allclose(load_calibration(calib_file).T_world_base("right"), truth["right"], atol=1e-5)

    bad = local["right"].copy()
    bad[0] += 0.02
    np.savez(tmp_path / "bad.npz", tcp_points_left=local["left"], tcp_points_right=bad)
    assert main(["calib", "register-bases", "--points", str(tmp_path / "bad.npz"), "--out", str(calib_file)]) == 1
    assert "REJECTED: left rms" in capsys.readouterr().out
    np.savez(tmp_path / "none.npz", tcp_points_left=local["left"])
    assert main(["calib", "register-bases", "--points", str(tmp_path / "none.npz"), "--out", str(calib_file)]) == 2
    assert "tcp_points_right" in capsys.readouterr().err


def test_intrinsics_from_image_files(tmp_path, capsys):
    pinhole = CameraIntrinsics(width=640, height=480, fx=450.0, fy=450.0, cx=320.0, cy=240.0)
    for k, view in enumerate(board_views(np.random.default_rng(16), 6, (0.25, 0.45), 45.0, pinhole)):
        cv2.imwrite(str(tmp_path / f"view_{k}.png"), render_board(view, pinhole))
    pattern = str(tmp_path / "*.png")
    assert main(["calib", "intrinsics", "--images", pattern, "--board", "9x6", "--square", "0.025"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 images used" in out and "fx 4" in out
    assert main(["calib", "intrinsics", "--images", pattern, "--board", "9", "--square", "0.025"]) == 2
