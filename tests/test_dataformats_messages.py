"""Conversions between schema types / arrays and ROS 2 messages, against the rosbags Humble and Jazzy
typestores: field names and types, CDR serialize/deserialize round trips, inverse conversions."""

from __future__ import annotations

import numpy as np
import pytest
from recording_data import command, observation

from rig.dataformats import ros_messages as rm
from rig.schema import CameraIntrinsics, CommandChunk

DISTROS = ("humble", "jazzy")
TYPES = (rm.IMAGE, rm.CAMERA_INFO, rm.JOINT_STATE, rm.POSE_STAMPED, rm.MULTI_DOF_TRAJECTORY, rm.JOINT_TRAJECTORY,
         rm.TRANSFORM_STAMPED, rm.DIAGNOSTIC_ARRAY)
CLOCK = rm.ClockMap(offset_s=1.7e9)


def cdr_round_trip(msg, distro):
    data = rm.serialize(msg, distro)
    assert data[:4] == b"\x00\x01\x00\x00"  # CDR little-endian encapsulation header
    back = rm.deserialize(data, msg.__msgtype__, distro)
    assert rm.serialize(back, distro) == data
    return back


def test_both_stores_define_the_same_types():
    humble, jazzy = rm.typestore("humble"), rm.typestore("jazzy")
    for name in TYPES:
        assert humble.fielddefs[name] == jazzy.fielddefs[name], name
        assert humble.hash_rihs01(name) == jazzy.hash_rihs01(name), name


def test_unknown_distro_is_rejected():
    with pytest.raises(rm.MessageError, match="distro"):
        rm.typestore("foxy")


def test_clock_map_round_trip_and_now():
    t = 12345.678901234
    ns = CLOCK.to_ros_ns(t)
    assert abs(CLOCK.to_monotonic(ns) - t) < 1e-6
    live = rm.ClockMap.now()
    import time

    assert abs(live.to_ros_ns(time.monotonic()) * 1e-9 - time.time()) < 0.01
    assert rm.stamp_ns(rm.time_msg(ns)) == ns
    with pytest.raises(rm.MessageError, match="negative"):
        rm.time_msg(-1)


@pytest.mark.parametrize("distro", DISTROS)
def test_image_rgb8_round_trip(distro):
    img = observation(3).frames["front"].color
    msg = rm.image_msg(img, 1_700_000_000_123_456_789, "front_color_optical_frame", "rgb8", distro)
    assert [f for f, _ in rm.typestore(distro).fielddefs[rm.IMAGE][1]] == [
        "header", "height", "width", "encoding", "is_bigendian", "step", "data"]
    assert (msg.height, msg.width, msg.step, msg.encoding) == (64, 80, 240, "rgb8")
    back = cdr_round_trip(msg, distro)
    assert rm.stamp_ns(back.header.stamp) == 1_700_000_000_123_456_789
    assert back.header.frame_id == "front_color_optical_frame"
    np.testing.assert_array_equal(rm.image_array(back), img)


@pytest.mark.parametrize("distro", DISTROS)
def test_image_depth_and_bgr_and_padding(distro):
    depth = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 7)
    back = cdr_round_trip(rm.image_msg(depth, 5, "d", "16UC1", distro), distro)
    assert back.step == 128
    np.testing.assert_array_equal(rm.image_array(back), depth)
    bgr = observation(1).frames["front"].color[..., ::-1]
    np.testing.assert_array_equal(rm.image_array(rm.image_msg(bgr, 5, "c", "bgr8", distro)), bgr)
    # a padded row (step > width * 3) as some drivers publish
    padded = rm.image_msg(bgr, 5, "c", "bgr8", distro)
    rows = np.zeros((64, 80 * 3 + 16), np.uint8)
    rows[:, :240] = bgr.reshape(64, 240)
    padded = type(padded)(header=padded.header, height=64, width=80, encoding="bgr8", is_bigendian=0,
                          step=256, data=rows.reshape(-1))
    np.testing.assert_array_equal(rm.image_array(padded), bgr)
    with pytest.raises(rm.MessageError, match="expected"):
        rm.image_msg(depth, 5, "d", "rgb8", distro)
    with pytest.raises(rm.MessageError, match="encoding"):
        rm.image_msg(depth, 5, "d", "yuv422", distro)


@pytest.mark.parametrize("distro", DISTROS)
def test_camera_frame_round_trip(distro):
    from rig.schema import CameraFrame

    color = observation(2).frames["wrist_left"].color
    depth = (np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) * 3)
    frame = CameraFrame(camera="wrist_left", t=1234.5, color=color, depth=depth)
    rgb_msg, depth_msg = rm.camera_frame_msgs(frame, CLOCK, distro)
    rgb_msg, depth_msg = cdr_round_trip(rgb_msg, distro), cdr_round_trip(depth_msg, distro)
    assert rgb_msg.header.frame_id == depth_msg.header.frame_id == "wrist_left_color_optical_frame"
    back = rm.camera_frame_from_msgs("wrist_left", rgb_msg, CLOCK, depth_msg)
    np.testing.assert_array_equal(back.color, color)
    np.testing.assert_array_equal(back.depth, depth)
    assert back.t == pytest.approx(1234.5, abs=1e-6)
    bgr = rm.image_msg(color[..., ::-1], 5, "c", "bgr8", distro)
    np.testing.assert_array_equal(rm.camera_frame_from_msgs("front", bgr, CLOCK).color, color)
    assert rm.camera_frame_msgs(CameraFrame(camera="front", t=1.0, color=color), CLOCK, distro)[1] is None


@pytest.mark.parametrize("distro", DISTROS)
def test_camera_info_round_trip(distro):
    intr = CameraIntrinsics(width=640, height=480, fx=615.2, fy=614.8, cx=321.5, cy=242.25,
                            coeffs=(0.1, -0.05, 0.001, 0.002, 0.0))
    back = cdr_round_trip(rm.camera_info_msg(intr, 77, "front_color_optical_frame", distro=distro), distro)
    assert back.distortion_model == "plumb_bob"
    assert rm.camera_info_intrinsics(back) == intr
    np.testing.assert_allclose(np.asarray(back.p).reshape(3, 4)[:, :3], intr.matrix())
    unknown = cdr_round_trip(rm.camera_info_msg(None, 77, "x", width=80, height=64, distro=distro), distro)
    assert (unknown.width, unknown.height) == (80, 64)
    assert rm.camera_info_intrinsics(unknown) is None
    with pytest.raises(rm.MessageError, match="width and height"):
        rm.camera_info_msg(None, 77, "x", distro=distro)


@pytest.mark.parametrize("distro", DISTROS)
def test_arm_state_round_trip(distro):
    obs = observation(5)
    state = obs.arms["right"]
    stamp = CLOCK.to_ros_ns(state.t)
    js = cdr_round_trip(rm.arm_joint_state_msg(state, stamp, distro), distro)
    assert list(js.name) == [f"right_joint{i}" for i in range(1, 8)]
    pose = cdr_round_trip(rm.tcp_pose_msg(state.tcp_pose, stamp, rm.base_frame("right"), distro), distro)
    assert pose.header.frame_id == "right_base_link"
    np.testing.assert_array_equal(rm.pose_array(pose), state.tcp_pose)
    back = rm.arm_state_from_msgs("right", js, pose, CLOCK)
    for key in ("q", "dq", "tau", "tcp_pose"):
        np.testing.assert_array_equal(getattr(back, key), getattr(state, key))
    assert abs(back.t - state.t) < 1e-6
    # joint order in the message does not matter, missing joints do
    shuffled = rm.joint_state_msg(list(js.name)[::-1], np.asarray(js.position)[::-1], None, None, stamp, distro)
    np.testing.assert_array_equal(rm.arm_state_from_msgs("right", shuffled, pose, CLOCK).q, state.q)
    with pytest.raises(rm.MessageError, match="missing"):
        rm.arm_state_from_msgs("left", js, pose, CLOCK)


@pytest.mark.parametrize("distro", DISTROS)
def test_gripper_state_round_trip(distro):
    grip = observation(2).grippers["left"]
    msg = cdr_round_trip(rm.gripper_state_msg(grip, CLOCK.to_ros_ns(grip.t), distro), distro)
    assert list(msg.name) == ["left_gripper_opening", "left_gripper_width"]
    back = rm.gripper_state_from_msg("left", msg, CLOCK)
    assert back.opening == pytest.approx(grip.opening, abs=1e-12)
    assert back.width_m == pytest.approx(grip.width_m, abs=1e-12)


@pytest.mark.parametrize("distro", DISTROS)
def test_command_chunk_round_trip(distro):
    targets = np.stack([command(i) for i in range(6)])
    chunk = CommandChunk(targets=targets, t0=2000.0, dt=1 / 30)
    poses, grips = rm.command_chunk_msgs(chunk, CLOCK, distro)
    assert [f for f, _ in rm.typestore(distro).fielddefs[rm.MULTI_DOF_TRAJECTORY][1]] == [
        "header", "joint_names", "points"]
    poses, grips = cdr_round_trip(poses, distro), cdr_round_trip(grips, distro)
    assert list(poses.joint_names) == ["left_tcp", "right_tcp"]
    assert list(grips.joint_names) == ["left_gripper", "right_gripper"]
    assert len(poses.points) == 6 and len(poses.points[0].transforms) == 2
    back = rm.command_chunk_from_msgs(poses, grips, CLOCK, default_dt=0.1)
    np.testing.assert_array_equal(back.targets, targets)
    assert back.dt == pytest.approx(1 / 30, abs=1e-9)
    assert back.t0 == pytest.approx(2000.0, abs=1e-6)
    one_p, one_g = rm.chunk_msgs(command(0), 99, 1 / 30, distro)
    got, stamp, dt = rm.chunk_targets(one_p, one_g)
    np.testing.assert_array_equal(got[0], command(0))
    assert (stamp, dt) == (99, 0.0)
    with pytest.raises(rm.MessageError, match="expected"):
        rm.chunk_msgs(np.zeros((3, 8)), 0, 0.1, distro)


@pytest.mark.parametrize("distro", DISTROS)
def test_transform_and_diagnostics_round_trip(distro):
    pose = np.concatenate([[0.1, -0.2, 0.3], observation(0).arms["left"].tcp_pose[3:]])
    tf = cdr_round_trip(rm.transform_stamped_msg("world", "left_base_link", pose, 42, distro), distro)
    parent, child, back = rm.transform_pose(tf)
    assert (parent, child) == ("world", "left_base_link")
    np.testing.assert_array_equal(back, pose)
    entries = [rm.diagnostic_entry("arms", "WARN", "stale", {"rate_hz": 99.87654321, "estop": False, "n": 3}),
               rm.diagnostic_entry("cameras/front", "OK", "streaming", hardware_id="D435i")]
    msg = cdr_round_trip(rm.diagnostic_array_msg(entries, 42, distro), distro)
    assert [s.level for s in msg.status] == [1, 0]
    assert rm.diagnostic_entries(msg) == entries
    assert dict(entries[0].values) == {"rate_hz": "99.8765", "estop": "False", "n": "3"}
    with pytest.raises(rm.MessageError, match="level"):
        rm.diagnostic_entry("x", "FATAL", "")
