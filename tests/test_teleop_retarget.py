"""Retargeting and the clutch: VR-to-base directions for the 45-degree mounts, the inverse used by the
scripted sender, no jump on engage, frozen on release, re-centre, trigger to gripper, stream loss."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from calibration.transforms import load_calibration
from rig.conventions import ARM_NAMES
from teleop.config import load_teleop_config
from teleop.retarget import R_WORLD_VR, RetargetConfig, VRToBase, headset_yaw
from teleop.scripted import CONTROLLER_HOME
from tests.teleop_helpers import HOME, frame, make_session, moved

CALIB = load_calibration()


def test_vr_frame_maps_to_world_and_bases() -> None:
    assert np.isclose(np.linalg.det(R_WORLD_VR), 1.0)
    assert np.allclose(R_WORLD_VR @ [0, 0, -1], [1, 0, 0])  # VR forward -> world +x (toward the camera)
    assert np.allclose(R_WORLD_VR @ [0, 1, 0], [0, 0, 1])  # VR up -> world up
    for arm in ARM_NAMES:
        R_wb = CALIB.T_world_base(arm)[:3, :3]
        m = VRToBase(R_wb, RetargetConfig())
        ee0 = HOME.copy()
        ctrl0 = CONTROLLER_HOME[arm]
        target = m.target(moved(arm, dz=-0.1), ctrl0, ee0)  # hand 10 cm forward
        assert np.allclose(R_wb @ (target[:3] - ee0[:3]), [0.1, 0.0, 0.0], atol=1e-9)
        # The 45-degree mount: in the arm's own base frame forward has equal x and |y| components.
        step = target[:3] - ee0[:3]
        assert np.isclose(abs(step[0]), abs(step[1])) and np.isclose(np.linalg.norm(step), 0.1)


def test_heading_and_scaling() -> None:
    headset = np.concatenate([[0, 1.6, 0], Rotation.from_euler("y", 90, degrees=True).as_quat()])
    assert np.isclose(headset_yaw(headset), np.pi / 2)  # looking to the left (-x of VR is left... +90 about y)
    R_wb = CALIB.T_world_base("left")[:3, :3]
    m = VRToBase(R_wb, RetargetConfig(translation_scale=0.5), yaw=headset_yaw(headset))
    # After re-centring on that heading, the operator's own forward (VR -x) is world +x, halved.
    target = m.target(moved("left", dx=-0.2), CONTROLLER_HOME["left"], HOME)
    assert np.allclose(R_wb @ (target[:3] - HOME[:3]), [0.1, 0.0, 0.0], atol=1e-9)


poses = st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5), st.floats(-0.5, 0.5),
                  st.floats(-0.8, 0.8), st.floats(-0.8, 0.8), st.floats(-0.8, 0.8))


@given(poses, st.sampled_from(ARM_NAMES), st.floats(0.3, 2.0), st.floats(0.5, 1.5), st.floats(-3, 3))
@settings(max_examples=100, deadline=None)
def test_controller_is_the_inverse_of_target(p: tuple, arm: str, ts: float, rs: float, yaw: float) -> None:
    # (a controller turn beyond pi would wrap: rotations here stay below 1.4 rad / 0.5)
    m = VRToBase(CALIB.T_world_base(arm)[:3, :3], RetargetConfig(translation_scale=ts, rotation_scale=rs), yaw)
    target = np.concatenate([HOME[:3] + np.array(p[:3]) * 0.5,
                             (Rotation.from_euler("xyz", p[3:]) * Rotation.from_quat(HOME[3:])).as_quat()])
    ctrl = m.controller(target, CONTROLLER_HOME[arm], HOME)
    back = m.target(ctrl, CONTROLLER_HOME[arm], HOME)
    assert np.allclose(back[:3], target[:3], atol=1e-9)
    assert (Rotation.from_quat(back[3:]) * Rotation.from_quat(target[3:]).inv()).magnitude() < 1e-6


def _run(session, executor, clock, messages):
    """Deliver (t, raw) messages at 100 Hz ticks; return the commanded left pose after each tick."""
    out = []
    for t, raw in messages:
        while clock.now() < t:
            executor.tick(clock.now())
            session.poll(clock.now())
            clock.advance(0.01)
        session.handle(raw, clock.now())
        executor.tick(clock.now())
        out.append(executor.guard.last_command("left"))
        clock.advance(0.01)
    return out


def test_clutch_no_jump_frozen_on_release_and_recenter() -> None:
    session, executor, arms, clock = make_session()
    dt = 1 / 60
    seq = iter(range(10000))
    msgs = [(k * dt, frame(next(seq), k * dt)) for k in range(10)]  # idle: nothing moves
    # The hand is already 30 cm away from its home when the grip closes: engaging must not jump.
    far = moved("left", dx=0.3, dz=-0.2)
    t = 10 * dt
    msgs += [(t + k * dt, frame(next(seq), t + k * dt, poses={"left": far}, grip={"left": 1.0})) for k in range(20)]
    cmds = _run(session, executor, clock, msgs)
    assert all(c is None or np.allclose(c[:3], HOME[:3], atol=1e-9) for c in cmds)
    assert session.engaged() == {"left": True, "right": False}
    # Move 5 cm forward (VR -z) over 0.5 s: the arm follows in the world +x direction.
    t = clock.now()
    path = [(t + k * dt, frame(next(seq), t + k * dt, poses={"left": far + np.r_[0, 0, -0.05 * k / 30, 0, 0, 0, 0]},
                               grip={"left": 1.0})) for k in range(1, 31)]
    path += [(t + (31 + k) * dt, frame(next(seq), t + (31 + k) * dt,
                                       poses={"left": far + np.r_[0, 0, -0.05, 0, 0, 0, 0]}, grip={"left": 1.0}))
             for k in range(40)]
    cmds = _run(session, executor, clock, path)
    R_wb = CALIB.T_world_base("left")[:3, :3]
    assert np.allclose(R_wb @ (cmds[-1][:3] - HOME[:3]), [0.05, 0, 0], atol=2e-3)
    # Release, then wave the controller around: the arm stays where it was.
    released = arms["left"].pose.copy()
    t = clock.now()
    wave = [(t + k * dt, frame(next(seq), t + k * dt, poses={"left": moved("left", dx=0.2 * np.sin(k / 5))}))
            for k in range(60)]
    cmds = _run(session, executor, clock, wave)
    assert not session.engaged()["left"]
    assert np.linalg.norm(cmds[-1][:3] - released[:3]) < 3e-3
    # Re-engage somewhere else: still no jump (anchors are stored again).
    t = clock.now()
    here = arms["left"].pose.copy()
    again = [(t + k * dt, frame(next(seq), t + k * dt, poses={"left": moved("left", dy=-0.3)}, grip={"left": 1.0}))
             for k in range(20)]
    cmds = _run(session, executor, clock, again)
    assert np.linalg.norm(cmds[-1][:3] - here[:3]) < 1e-3
    # Re-centre with the grip held after turning the headset: no jump either.
    turned = np.concatenate([[0, 1.6, 0], Rotation.from_euler("y", 40, degrees=True).as_quat()])
    t = clock.now()
    rc = [(t + k * dt, frame(next(seq), t + k * dt, poses={"left": moved("left", dy=-0.3)}, grip={"left": 1.0},
                             buttons={"left": {"thumbstick": k < 3}}, headset=turned)) for k in range(20)]
    cmds = _run(session, executor, clock, rc)
    assert session.counters["action_recenter"] == 1
    assert np.linalg.norm(cmds[-1][:3] - here[:3]) < 1e-3


def test_trigger_drives_gripper_only_while_engaged() -> None:
    session, executor, _arms, clock = make_session()
    dt = 1 / 60
    msgs = [(k * dt, frame(k, k * dt, trigger={"right": 1.0})) for k in range(10)]
    msgs += [((10 + k) * dt, frame(10 + k, (10 + k) * dt, grip={"right": 1.0}, trigger={"right": 1.0}))
             for k in range(60)]
    _run(session, executor, clock, msgs)
    assert executor.guard.last_command("right")[7] < 0.05  # trigger fully pulled: closed
    assert session.clutches["left"].target is None or session.clutches["left"].target[7] == 1.0


def test_stream_loss_disengages_within_the_timeout() -> None:
    cfg = load_teleop_config()
    cfg = replace(cfg, stream=replace(cfg.stream, loss_timeout_s=0.2))
    session, executor, _arms, clock = make_session(cfg)
    dt = 1 / 60
    msgs = [(k * dt, frame(k, k * dt, grip={"left": 1.0, "right": 1.0})) for k in range(30)]
    _run(session, executor, clock, msgs)
    assert session.engaged() == {"left": True, "right": True}
    last = clock.now()
    while session.engaged()["left"]:
        executor.tick(clock.now())
        session.poll(clock.now())
        clock.advance(0.01)
    assert clock.now() - last <= 0.2 + 0.011
    assert session.counters["disengaged_on_loss"] == 1 and session.filter.counters["losses"] == 1
    # The stream comes back with the grip still held: no re-engage until released and pressed again.
    t = clock.now()
    back = [(t + k * dt, frame(100 + k, t + k * dt, poses={"left": moved("left", dx=0.2)}, grip={"left": 1.0}))
            for k in range(10)]
    _run(session, executor, clock, back)
    assert not session.engaged()["left"]


quats = st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).filter(
    lambda q: np.linalg.norm(q) > 0.1).map(lambda q: np.asarray(q) / np.linalg.norm(q))
points = st.tuples(st.floats(-1, 1), st.floats(0, 2), st.floats(-1, 1)).map(np.asarray)


@given(points, quats, points, quats, st.floats(0, 1), st.floats(0.0, 0.9), st.sampled_from(ARM_NAMES))
@settings(max_examples=100, deadline=None)
def test_engaging_never_jumps_and_released_never_moves(p_ctrl, q_ctrl, p_ee, q_ee, opening, smoothing, arm):
    from teleop.retarget import ArmClutch

    cfg = RetargetConfig(translation_scale=1.7, rotation_scale=0.8, smoothing=smoothing)
    clutch = ArmClutch(VRToBase(CALIB.T_world_base(arm)[:3, :3], cfg, yaw=0.3))
    ctrl = np.concatenate([p_ctrl, q_ctrl])
    anchor = np.concatenate([p_ee * 0.5, q_ee, [opening]])
    clutch.engage(ctrl, anchor)
    first = clutch.update(ctrl, 1.0 - opening)  # the same controller pose and trigger as at engage
    assert np.allclose(first[:3], anchor[:3], atol=1e-9) and np.isclose(first[7], opening)
    assert (Rotation.from_quat(first[3:7]) * Rotation.from_quat(q_ee).inv()).magnitude() < 1e-6
    clutch.release(hold=first)
    assert clutch.update(np.concatenate([p_ctrl + 0.3, q_ctrl]), 0.0) is None
    assert np.array_equal(clutch.target, first)
