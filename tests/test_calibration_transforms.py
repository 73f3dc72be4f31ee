"""calibration.transforms: config/calibration.yaml <-> validated 4x4 transforms, in-place atomic updates."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from calibration.transforms import (
    TRANSFORM_KEYS,
    CalibrationError,
    describe,
    load_calibration,
    parse_calibration,
    save_calibration,
    transform_to_pose,
    validate_transform,
)
from rig.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "calibration.yaml"


@pytest.fixture
def calib_file(tmp_path):
    path = tmp_path / "calibration.yaml"
    shutil.copy(CONFIG, path)
    return path


def make_transform(rotvec, t):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = t
    return T


def test_default_file_loads_as_rigid_transforms():
    cal = load_calibration()  # resolved through the config dirs
    assert set(cal.transforms) == set(TRANSFORM_KEYS)
    for T in cal.transforms.values():
        assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-6) and np.isclose(np.linalg.det(T[:3, :3]), 1)
    left = cal.T_world_base("left")
    assert np.allclose(left[:3, 3], [-0.32, 0.32, 0.0])
    assert np.allclose(left[:3, :3], Rotation.from_euler("z", -45, degrees=True).as_matrix(), atol=1e-5)
    # the base's x axis (where the arm reaches) points from the back-left corner at the table centre
    assert left[0, 0] > 0 and left[1, 0] < 0
    assert cal.world_frame == "world"
    with pytest.raises(CalibrationError, match="T_world_base_middle"):
        cal.T_world_base("middle")


def test_round_trip_updates_only_the_given_key_and_keeps_comments(calib_file):
    original_text = calib_file.read_text()
    before = load_calibration(calib_file)
    new = make_transform([0.3, -0.2, 1.4], [0.012, -0.087, 0.061])
    save_calibration(calib_file, {"T_flange_wrist_left": new})
    after = load_calibration(calib_file)
    assert np.allclose(after["T_flange_wrist_left"], new, atol=2e-6)
    for key in TRANSFORM_KEYS:
        if key != "T_flange_wrist_left":
            assert np.array_equal(after[key], before[key])
    new_lines, old_lines = calib_file.read_text().splitlines(), original_text.splitlines()
    assert len(new_lines) == len(old_lines)
    changed = [n for n, o in zip(new_lines, old_lines) if n != o]
    assert len(changed) == 1 and changed[0].lstrip().startswith("T_flange_wrist_left:")
    assert "# D405 on each flange" in calib_file.read_text()
    # the ROS parameter types stay doubles, and no temporary file is left behind
    params = yaml.safe_load(calib_file.read_text())["static_tf"]["ros__parameters"]
    assert all(isinstance(v, float) for v in params["T_flange_wrist_left"])
    assert sorted(os.listdir(calib_file.parent)) == ["calibration.yaml"]


def test_save_to_new_file_from_template_and_from_all_keys(tmp_path):
    out = tmp_path / "new.yaml"
    T = make_transform([0.0, 0.0, 0.1], [0.1, 0.2, 0.3])
    save_calibration(out, {"T_world_front": T}, template=CONFIG)
    assert np.allclose(load_calibration(out)["T_world_front"], T, atol=2e-6)
    assert "# Calibrated transforms of the rig" in out.read_text()

    with pytest.raises(CalibrationError, match="does not exist"):
        save_calibration(tmp_path / "partial.yaml", {"T_world_front": T})
    full = {key: make_transform([0.1 * k, 0, 0], [0.05 * k, 0, 0]) for k, key in enumerate(TRANSFORM_KEYS)}
    save_calibration(tmp_path / "full.yaml", full)
    loaded = load_calibration(tmp_path / "full.yaml")
    for key in TRANSFORM_KEYS:
        assert np.allclose(loaded[key], full[key], atol=2e-6)


def test_rejected_update_leaves_file_untouched(calib_file):
    text = calib_file.read_text()
    bad = np.eye(4)
    bad[:3, :3] *= 1.01
    with pytest.raises(CalibrationError, match="T_world_front.*not orthonormal"):
        save_calibration(calib_file, {"T_world_front": bad})
    with pytest.raises(CalibrationError, match="unknown calibration key"):
        save_calibration(calib_file, {"T_world_back": np.eye(4)})
    assert calib_file.read_text() == text


def _params():
    return yaml.safe_load(CONFIG.read_text())


def test_bad_yaml_errors_name_the_key(tmp_path):
    data = _params()
    data["static_tf"]["ros__parameters"]["T_world_base_right"] = [0, -0.5, 0, 0.5, 0, 0, 0.5]  # |q| = 0.707
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"bad\.yaml.*T_world_base_right.*not orthonormal"):
        load_calibration(path)

    data = _params()
    del data["static_tf"]["ros__parameters"]["T_flange_wrist_right"]
    with pytest.raises(CalibrationError, match="missing key 'T_flange_wrist_right'"):
        parse_calibration(data, "mem.yaml")

    for value, hint in (([0, 0, 0, 0, 0, 1], "7 finite numbers"), ([0, 0, float("nan"), 0, 0, 0, 1], "7 finite"),
                        ("identity", "7 numbers")):
        data = _params()
        data["static_tf"]["ros__parameters"]["T_world_front"] = value
        with pytest.raises(CalibrationError, match=f"T_world_front.*{hint}"):
            parse_calibration(data, "mem.yaml")

    with pytest.raises(CalibrationError, match="static_tf.ros__parameters"):
        parse_calibration({"other": {}}, "mem.yaml")


def test_validate_transform_checks_shape_finiteness_rotation_and_last_row():
    assert np.array_equal(validate_transform(np.eye(4), "I"), np.eye(4))
    reflection = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(CalibrationError, match="X: rotation has determinant"):
        validate_transform(reflection, "X")
    with pytest.raises(CalibrationError, match="X: shape"):
        validate_transform(np.eye(3), "X")
    inf = np.eye(4)
    inf[0, 3] = np.inf
    with pytest.raises(CalibrationError, match="non-finite"):
        validate_transform(inf, "X")
    row = np.eye(4)
    row[3, 0] = 0.5
    with pytest.raises(CalibrationError, match="last row"):
        validate_transform(row, "X")
    pose = transform_to_pose(make_transform([0, 0, np.pi / 2], [1, 2, 3]))
    assert np.allclose(pose, [1, 2, 3, 0, 0, np.sqrt(0.5), np.sqrt(0.5)])


def test_describe_lists_every_transform():
    text = describe(load_calibration(CONFIG))
    for key in TRANSFORM_KEYS:
        assert key in text
    assert "45.000 deg" in text
