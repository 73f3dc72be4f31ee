"""Message conversions of the ROS layer: the diagnostics / transform builders in ros_messages against
rosbags' Humble and Jazzy definitions (fields, types, CDR round trip), the generic rosbags <-> rclpy
conversion through the rclpy double's rosidl-like classes, observation sync, parameter helpers."""

from __future__ import annotations

import array

import numpy as np
import pytest

from a2world_ros.nodes.observation_sync import ObservationSync
from a2world_ros.params import calibration_transforms, flatten, load_node_params, unflatten
from rig.config import ConfigError
from rig.dataformats import ros_messages as rm
from rig.schema import ArmState, CameraFrame, CommandChunk, GripperState
from tests.doubles.rig_devices import HOME
from tests.ros_env import ros_doubles

ros_module = pytest.fixture(scope="module", autouse=True)(ros_doubles)
DISTROS = ("humble", "jazzy")


@pytest.mark.parametrize("distro", DISTROS)
def test_diagnostic_array_fields_and_cdr_round_trip(distro):
    fields = dict(rm.typestore(distro).fielddefs["diagnostic_msgs/msg/DiagnosticStatus"][1])
    assert set(fields) == {"level", "name", "message", "hardware_id", "values"}
    assert fields["level"][1][0] == "byte"
    entries = [
        rm.diagnostic_entry("arms", "ERROR", "e-stop latched", {"guard.estop": 1, "jitter_p99_s": 1.23456789e-4}),
        rm.diagnostic_entry("policy", "OK", "running", [("rate_hz", 30.0)], hardware_id="gpu0"),
    ]
    msg = rm.diagnostic_array_msg(entries, 1_700_000_000_123_456_789, distro)
    back = rm.deserialize(rm.serialize(msg, distro), rm.DIAGNOSTIC_ARRAY, distro)
    assert rm.stamp_ns(back.header.stamp) == 1_700_000_000_123_456_789
    assert rm.diagnostic_entries(back) == entries
    assert dict(entries[0].values)["jitter_p99_s"] == "0.000123457"
    with pytest.raises(rm.MessageError, match="level"):
        rm.diagnostic_entry("x", "FINE", "")


@pytest.mark.parametrize("distro", DISTROS)
def test_transform_stamped_round_trip(distro):
    pose = np.array([0.1, -0.2, 0.3, 0.0, 0.0, np.sin(0.3), np.cos(0.3)])
    msg = rm.transform_stamped_msg("world", "left_base_link", pose, 42, distro)
    back = rm.deserialize(rm.serialize(msg, distro), rm.TRANSFORM_STAMPED, distro)
    parent, child, got = rm.transform_pose(back)
    assert (parent, child) == ("world", "left_base_link") and np.allclose(got, pose)
    with pytest.raises(rm.MessageError, match="left_base_link"):
        rm.transform_stamped_msg("world", "left_base_link", [0, 0, 0, np.nan, 0, 0, 1], 0, distro)


def _samples():
    chunk = CommandChunk(np.tile(np.r_[HOME, 0.4], (5, 2, 1)), t0=100.0, dt=1 / 30)
    clock = rm.ClockMap(1000.0)
    poses, grippers = rm.command_chunk_msgs(chunk, clock)
    state = ArmState("left", 100.0, np.arange(7.0), np.zeros(7), np.ones(7), HOME)
    intr = CameraFrame("front", 1.0, np.zeros((4, 6, 3), np.uint8))
    return {
        rm.IMAGE: rm.image_msg(np.arange(72, dtype=np.uint8).reshape(4, 6, 3), 5, "front_color_optical_frame"),
        "depth": rm.image_msg(np.arange(24, dtype=np.uint16).reshape(4, 6), 5, "d", "16UC1"),
        rm.CAMERA_INFO: rm.camera_info_msg(None, 7, "c", width=intr.color.shape[1], height=4),
        rm.JOINT_STATE: rm.arm_joint_state_msg(state, 9),
        rm.POSE_STAMPED: rm.tcp_pose_msg(HOME, 11, "left_base_link"),
        rm.MULTI_DOF_TRAJECTORY: poses,
        rm.JOINT_TRAJECTORY: grippers,
        rm.DIAGNOSTIC_ARRAY: rm.diagnostic_array_msg([rm.diagnostic_entry("a", "WARN", "m", {"k": 1})], 3),
        rm.TRANSFORM_STAMPED: rm.transform_stamped_msg("a", "b", HOME, 13),
    }


@pytest.mark.parametrize("key", list(_samples()))
def test_rclpy_round_trip_through_rosidl_like_classes(key):
    from a2world_ros.nodes.convert import from_ros, to_ros

    msg = _samples()[key]
    ros = to_ros(msg)
    assert type(ros).__module__ == msg.__msgtype__.rsplit("/", 1)[0].replace("/", ".")
    back = from_ros(ros, msg.__msgtype__)
    assert rm.serialize(back) == rm.serialize(msg)  # identical CDR bytes


def test_rclpy_storage_rules_are_respected():
    from a2world_ros.nodes.convert import to_ros

    img = to_ros(_samples()[rm.IMAGE])
    assert isinstance(img.data, array.array) and img.data.typecode == "B" and len(img.data) == 72
    info = to_ros(_samples()[rm.CAMERA_INFO])
    assert isinstance(info.k, np.ndarray) and info.k.dtype == np.float64 and isinstance(info.height, int)
    diag = to_ros(_samples()[rm.DIAGNOSTIC_ARRAY])
    assert diag.status[0].level == b"\x01"
    from sensor_msgs.msg import JointState

    with pytest.raises(AssertionError):  # rosidl setters refuse numpy arrays for sequences
        JointState().position = np.zeros(3)


def _frame(cam, t):
    return CameraFrame(cam, t, np.zeros((2, 2, 3), np.uint8))


def _arm(arm, t):
    z = np.zeros(7)
    return ArmState(arm, t, z, z, z, HOME)


def test_observation_sync_pairs_by_time_and_emits_once():
    sync = ObservationSync(["front", "wrist_left"], ["left"], slop_s=0.02, state_slop_s=0.02, task="t")
    for k in range(10):
        sync.add_arm_state(_arm("left", 0.01 * k))
        sync.add_gripper_state(GripperState("left", 0.01 * k, 1.0, 0.085))
    assert sync.add_frame(_frame("front", 0.05)) is None  # wrist frame missing
    obs = sync.add_frame(_frame("wrist_left", 0.06))
    assert obs is not None and obs.t == 0.06 and obs.frames["front"].t == 0.05 and obs.arms["left"].t == 0.06
    assert sync.add_frame(_frame("front", 0.05)) is None  # out of order / same reference
    assert sync.add_frame(_frame("front", 0.2)) is None  # wrist too far away, states too old
    sync.add_frame(_frame("wrist_left", 0.2))
    assert sync.add_gripper_state(GripperState("left", 0.2, 1.0, 0.085)) is None  # arm state still old
    late = sync.add_arm_state(_arm("left", 0.2))  # a state arriving after the frames completes the set
    assert late is not None and late.t == 0.2 and sync.emitted == 2


def test_flatten_unflatten_and_yaml_round_trip():
    params = load_node_params("policy.yaml", "arms")
    flat = flatten(params)
    assert flat["guard.arms.left.max_linear_speed"] == 0.25
    assert unflatten(flat) == params
    with pytest.raises(ConfigError, match="both a value and a group"):
        unflatten({"a": 1, "a.b": 2})


def test_calibration_is_symmetric_and_validated():
    params = load_node_params("calibration.yaml", "static_tf")
    tfs = {t.child: t for t in calibration_transforms(params)}
    left, right = np.array(tfs["left_base_link"].pose), np.array(tfs["right_base_link"].pose)
    assert np.allclose(left[:3] * [1, -1, 1], right[:3]) and np.allclose(left[3:] * [-1, 1, -1, 1], right[3:])
    from scipy.spatial.transform import Rotation

    assert np.degrees(Rotation.from_quat(left[3:]).magnitude()) == pytest.approx(45.0, abs=0.01)
    assert tfs["wrist_left_color_optical_frame"].parent == "left_flange"
    bad = dict(params, T_world_front=[0, 0, 0, 0, 0, 0, 2])
    with pytest.raises(ConfigError, match="T_world_front"):
        calibration_transforms(bad)
    with pytest.raises(ConfigError, match="T_flange_wrist_right"):
        calibration_transforms({k: v for k, v in params.items() if k != "T_flange_wrist_right"})
