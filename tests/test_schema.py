"""Schema validation: every bad input names the field and the problem."""

import numpy as np
import pytest

from rig.schema import (
    ArmState,
    CameraFrame,
    CameraIntrinsics,
    CommandChunk,
    GripperState,
    Observation,
    SchemaError,
)

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def arm_state(**overrides):
    values = dict(
        arm="left",
        t=1.0,
        q=np.zeros(7),
        dq=np.zeros(7),
        tau=np.zeros(7),
        tcp_pose=np.array([0.4, 0.0, 0.3, *IDENTITY]),
    )
    values.update(overrides)
    return ArmState(**values)


def chunk_targets(steps=4):
    targets = np.zeros((steps, 2, 8))
    targets[..., 3:7] = IDENTITY
    targets[..., 7] = 1.0
    return targets


def test_valid_types_construct():
    frame = CameraFrame("front", 1.0, np.zeros((480, 640, 3), np.uint8))
    state = arm_state()
    grip = GripperState("left", 1.0, opening=0.5, width_m=0.0425)
    obs = Observation(1.0, {"front": frame}, {"left": state}, {"left": grip}, task="lift")
    assert obs.max_skew() == 0.0
    chunk = CommandChunk(chunk_targets(), t0=2.0, dt=1 / 30)
    assert chunk.steps == 4
    np.testing.assert_allclose(chunk.times(), 2.0 + np.arange(4) / 30)
    assert chunk.arm("right").shape == (4, 8)


def test_camera_frame_keeps_the_buffer_without_copy():
    buffer = np.zeros((480, 640, 3), np.uint8)
    frame = CameraFrame("front", 1.0, buffer)
    assert frame.color is buffer


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("q", np.full(7, np.nan), "left.q: non-finite"),
        ("dq", np.zeros(6), r"left.dq: shape \(6,\), expected \(7\)"),
        ("tcp_pose", np.array([0, 0, 0, 0, 0, 0, 2.0]), r"left.tcp_pose\[3:7\].*norm 2.000000"),
        ("tcp_pose", np.array([0, 0, np.inf, 0, 0, 0, 1.0]), "left.tcp_pose: non-finite value inf at index"),
        ("t", float("nan"), "left.t: non-finite"),
        ("arm", "middle", "arm: 'middle' is not one of"),
        ("tau", "abc", "left.tau: cannot convert"),
    ],
)
def test_arm_state_errors_name_the_field(field, value, message):
    with pytest.raises(SchemaError, match=message):
        arm_state(**{field: value})


def test_chunk_errors_name_the_field():
    with pytest.raises(SchemaError, match=r"chunk.targets: shape \(4, 2, 7\), expected \(N, 2, 8\)"):
        CommandChunk(np.zeros((4, 2, 7)), 0.0, 0.1)
    bad = chunk_targets()
    bad[2, 1, 0] = np.nan
    with pytest.raises(SchemaError, match=r"chunk.targets: non-finite value nan at index \(2, 1, 0\)"):
        CommandChunk(bad, 0.0, 0.1)
    bad = chunk_targets()
    bad[1, 0, 3:7] = [0.0, 0.0, 0.0, 0.5]
    with pytest.raises(SchemaError, match=r"quaternion at index \(1, 0\) has norm 0.500000"):
        CommandChunk(bad, 0.0, 0.1)
    bad = chunk_targets()
    bad[3, 1, 7] = 1.5
    with pytest.raises(SchemaError, match=r"gripper opening 1.5 at \(step, arm\) \(3, 1\)"):
        CommandChunk(bad, 0.0, 0.1)
    with pytest.raises(SchemaError, match="chunk.dt: -0.1"):
        CommandChunk(chunk_targets(), 0.0, -0.1)
    with pytest.raises(SchemaError, match="expected at least one step"):
        CommandChunk(np.zeros((0, 2, 8)), 0.0, 0.1)


def test_frame_and_gripper_errors():
    with pytest.raises(SchemaError, match=r"front.color: shape \(480, 640\), expected \(H, W, 3\)"):
        CameraFrame("front", 0.0, np.zeros((480, 640), np.uint8))
    with pytest.raises(SchemaError, match=r"front.depth: shape \(10, 10\), expected \(480, 640\)"):
        CameraFrame("front", 0.0, np.zeros((480, 640, 3), np.uint8), depth=np.zeros((10, 10), np.uint16))
    with pytest.raises(SchemaError, match=r"right.gripper.opening: 1.7, expected a value in \[0, 1\]"):
        GripperState("right", 0.0, opening=1.7, width_m=0.0)
    with pytest.raises(SchemaError, match="intrinsics.fx"):
        CameraIntrinsics(640, 480, fx=float("nan"), fy=600, cx=320, cy=240)


def test_observation_checks_keys():
    frame = CameraFrame("front", 1.0, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(SchemaError, match="observation.frames\\['wrist_left'\\]: holds a frame of camera 'front'"):
        Observation(1.0, {"wrist_left": frame}, {}, {})
    with pytest.raises(SchemaError, match="observation.frames key: 'top' is not one of"):
        Observation(1.0, {"top": frame}, {}, {})
