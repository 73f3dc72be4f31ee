"""Twin arm control: Cartesian targets reached within 2 mm / 1 deg, joint and speed limits respected,
gripper lifts a small box."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from rig.rotations import angle_between, compose_poses
from rig.sim import rizon4s
from rig.sim.twin import Twin

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # TCP z axis pointing at the table, fingers along world x
SMALL = (48, 64)


@pytest.fixture(scope="module")
def twin() -> Twin:
    return Twin(render_size=SMALL)


def _errors(twin: Twin, arm: str, target_world: np.ndarray) -> tuple[float, float]:
    pose = twin.tcp_pose_world(arm)
    rot_err = float(np.degrees(angle_between(pose[3:], target_world[3:])))
    return float(np.linalg.norm(pose[:3] - target_world[:3])), rot_err


@pytest.mark.parametrize("arm", ["left", "right"])
def test_reaches_cartesian_targets_within_2mm_1deg(twin: Twin, arm: str) -> None:
    twin.reset_state(0)
    sign = 1.0 if arm == "left" else -1.0  # tilt 45 deg about world x, tool pointing toward its own base
    tilt = np.array([sign * np.sin(np.pi / 8), 0.0, 0.0, np.cos(np.pi / 8)])
    targets = [
        np.r_[0.10, 0.05, 0.12, DOWN],
        np.r_[-0.08, -0.10, 0.05, DOWN],
        np.r_[0.0, 0.0, 0.15, compose_poses(np.r_[0, 0, 0, tilt], np.r_[0, 0, 0, DOWN])[3:]],
    ]
    for target in targets:
        twin.set_arm_target_world(arm, target)
        twin.step(3.0)
        pos_err, rot_err = _errors(twin, arm, target)
        assert pos_err < 0.002, f"{arm} position error {pos_err * 1000:.2f} mm for {target}"
        assert rot_err < 1.0, f"{arm} rotation error {rot_err:.3f} deg for {target}"


def test_target_in_base_frame_matches_world(twin: Twin) -> None:
    twin.reset_state(1)
    target_world = np.r_[0.05, 0.1, 0.2, DOWN]
    T = np.linalg.inv(twin.T_world_base("left"))
    from rig.rotations import matrix_to_pose, pose_to_matrix

    target_base = matrix_to_pose(T @ pose_to_matrix(target_world))
    twin.set_arm_target("left", target_base)
    twin.step(2.5)
    assert np.linalg.norm(twin.tcp_pose_base("left")[:3] - target_base[:3]) < 0.002
    assert np.linalg.norm(twin.tcp_pose_world("left")[:3] - target_world[:3]) < 0.002


def test_speed_and_joint_limits_respected(twin: Twin) -> None:
    twin.reset_state(0)
    lim = twin.motion_limits
    lower, upper = rizon4s.joint_limits()
    vmax = rizon4s.velocity_limits()
    # A long move with a large rotation: the motion generator must cap speed and acceleration.
    start = twin.tcp_pose_world("right")
    target = np.r_[0.12, 0.15, 0.05, 0.9238795, 0.0, 0.0, 0.3826834]  # 135 deg about x from identity
    twin.set_arm_target_world("right", target)
    prev = twin.motion["right"].pose()
    dt = twin.control_dt
    peak_lin = peak_ang = 0.0
    for _ in range(int(4.0 / dt)):
        twin.step(dt)
        ref = twin.motion["right"].pose()
        peak_lin = max(peak_lin, float(np.linalg.norm(ref[:3] - prev[:3])) / dt)
        peak_ang = max(peak_ang, float(angle_between(ref[3:], prev[3:])) / dt)
        prev = ref
        q = twin.joint_positions("right")
        assert np.all(q >= lower - 0.005) and np.all(q <= upper + 0.005), f"joint limit violated: {q}"
        qd = twin.data.qvel[twin.handles["right"].dofadr]
        assert np.all(np.abs(qd) <= vmax * 1.1), f"joint speed {qd} exceeds {vmax}"
        state = twin.arm_state("right")
        assert np.linalg.norm(state.tcp_vel[:3]) <= lim.max_linear_vel * 1.15
    assert peak_lin <= lim.max_linear_vel * (1 + 1e-6)
    assert peak_lin > 0.9 * lim.max_linear_vel, "move too short to exercise the speed limit"
    assert peak_ang <= lim.max_angular_vel * (1 + 1e-6)
    assert np.linalg.norm(start[:3] - target[:3]) > 0.3


def test_ik_reference_stays_inside_joint_limits_for_unreachable_target(twin: Twin) -> None:
    twin.reset_state(0)
    lower, upper = rizon4s.joint_limits()
    twin.set_arm_target_world("left", np.r_[0.0, -1.5, 0.1, DOWN])  # far out of reach
    twin.step(4.0)
    q_ref = twin.q_ref["left"]
    assert np.all(q_ref >= lower) and np.all(q_ref <= upper)
    assert np.all(np.isfinite(twin.data.qpos))


def test_bad_commands_raise_clear_errors(twin: Twin) -> None:
    with pytest.raises(ValueError, match="7 finite numbers"):
        twin.set_arm_target("left", np.zeros(6))
    with pytest.raises(ValueError, match="unit length"):
        twin.set_arm_target("left", np.r_[0, 0, 0, 0, 0, 0, 2.0])
    with pytest.raises(ValueError, match="expected one of"):
        twin.set_arm_target("middle", np.r_[0, 0, 0, 0, 0, 0, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        twin.set_gripper("left", 1.5)


class _Box:
    """A 4 cm, 100 g box on the table (a minimal TaskSpec)."""

    name = "test_box"
    instruction = "lift the box"

    def build(self, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name="box", pos=[0.05, 0.0, 0.02])
        body.add_freejoint(name="box_free")
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 0.02, 0.02], mass=0.1, rgba=[0.9, 0.1, 0.1, 1])

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        adr = model.jnt_qposadr[model.joint("box_free").id]
        data.qpos[adr : adr + 3] = [0.05 + rng.uniform(-0.02, 0.02), rng.uniform(-0.05, 0.05), 0.02]

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(data.body("box").xpos[2] > 0.1)

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        return float(np.clip((data.body("box").xpos[2] - 0.02) / 0.08, 0.0, 1.0))


@pytest.mark.parametrize("arm", ["left", "right"])
def test_gripper_grasps_and_lifts_a_box(arm: str) -> None:
    twin = Twin(task=_Box(), render_size=SMALL)
    twin.reset_state(7)
    box = twin.data.body("box").xpos.copy()
    assert not twin.task_success()
    twin.set_arm_target_world(arm, np.r_[box[0], box[1], 0.12, DOWN])
    twin.step(2.5)
    twin.set_arm_target_world(arm, np.r_[box[0], box[1], 0.02, DOWN])
    twin.step(1.0)
    twin.set_gripper(arm, 0.0)
    twin.step(1.0)
    grip = twin.gripper_state(arm)
    assert grip.object_detected and 0.035 < grip.width_m < 0.042, grip
    twin.set_arm_target_world(arm, np.r_[box[0], box[1], 0.25, DOWN])
    twin.step(2.0)
    assert twin.task_success(), f"box at {twin.data.body('box').xpos}"
    assert twin.task_progress() == 1.0
    twin.set_gripper(arm, 1.0)
    twin.step(1.0)
    assert twin.gripper_state(arm).opening > 0.99
    assert twin.data.body("box").xpos[2] < 0.05, "box did not drop after opening"
