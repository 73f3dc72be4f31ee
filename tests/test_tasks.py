"""Tasks of the simulated rig: registry, seeded resets, success tests and progress milestones on
hand-built simulator states (bare scene: table plane + the task's bodies)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from rig.config import ConfigError
from rig.sim.task_spec import OBJECT_WORKSPACE, TaskSpec
from rig.sim.tasks import TASK_NAMES, get_task
from rig.sim.tasks.base import set_free_pose, set_hinge


def bare(task):
    spec = mujoco.MjSpec()
    spec.worldbody.add_geom(name="rig/table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1, 1, 0.01])
    task.build(spec)
    model = spec.compile()
    return model, mujoco.MjData(model)


def reset(task, model, data, seed):
    mujoco.mj_resetData(model, data)
    task.reset(model, data, np.random.default_rng(seed))
    mujoco.mj_forward(model, data)


def settle(model, data, seconds=0.3):
    for _ in range(int(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)


def test_registry_lists_five_tasks_that_follow_the_protocol():
    assert TASK_NAMES == ("lift_box_high", "flip_small_box", "toggle_switch", "insert_ram", "chain_in_box")
    for name in TASK_NAMES:
        task = get_task(name)
        assert isinstance(task, TaskSpec)
        assert task.name == name and task.instruction
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        get_task("nope")


def test_bad_config_is_reported_with_file_and_key():
    with pytest.raises(ConfigError, match=r"lift_box_high: missing key 'mass'"):
        get_task("lift_box_high", {"instruction": "lift", "box_half_size": [0.02, 0.02, 0.02]})
    with pytest.raises(ConfigError, match="box_half_size"):
        get_task("lift_box_high", {"instruction": "lift", "box_half_size": [0.02, 0.02]})


@pytest.mark.parametrize("name", TASK_NAMES)
def test_reset_is_seeded_inside_the_workspace_and_not_already_solved(name):
    task = get_task(name)
    model, data = bare(task)
    states = []
    for seed in (3, 3, 4):
        reset(task, model, data, seed)
        states.append(np.concatenate([data.qpos.copy(), data.mocap_pos.ravel().copy()]))
        (x0, x1), (y0, y1) = OBJECT_WORKSPACE
        bodies = [b for b in range(1, model.nbody)]
        xy = data.xpos[bodies, :2]
        assert np.all((xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)), xy
        settle(model, data)
        assert not task.success(model, data)
        assert task.progress(model, data) == 0.0
    assert np.array_equal(states[0], states[1])
    assert not np.allclose(states[0], states[2])


def test_lift_box_high_milestones():
    task = get_task("lift_box_high")
    model, data = bare(task)
    reset(task, model, data, 0)
    half = task.half[2]
    cases = ((0.0, 0.0, 0.0, False), (0.03, 0.5, 0.7, False), (0.1, 0.7, 0.9, False),
             (task.lift_height + 0.01, 1.0, 1.0, True))
    for bottom, low, high, ok in cases:
        set_free_pose(model, data, "lift_box_free", [0.0, 0.0, bottom + half + 5e-4], [1, 0, 0, 0])
        mujoco.mj_forward(model, data)
        assert low <= task.progress(model, data) <= high
        assert task.success(model, data) is ok


def test_flip_small_box_success_needs_upside_down_and_resting():
    task = get_task("flip_small_box")
    model, data = bare(task)
    reset(task, model, data, 0)
    h = task.half[2]
    upside_down = [0.0, 1.0, 0.0, 0.0]  # half turn about x
    set_free_pose(model, data, "flip_box_free", [0.0, 0.0, h + 1e-4], upside_down)
    settle(model, data, 0.2)
    assert task.success(model, data) and task.progress(model, data) == 1.0
    # Same orientation but in the air (held or falling): almost there, not a success.
    set_free_pose(model, data, "flip_box_free", [0.0, 0.0, 0.1], upside_down)
    mujoco.mj_forward(model, data)
    assert not task.success(model, data) and task.progress(model, data) == pytest.approx(0.9)
    # On its side: 0.7.
    side = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]
    set_free_pose(model, data, "flip_box_free", [0.0, 0.0, 0.05], side)
    mujoco.mj_forward(model, data)
    assert task.progress(model, data) == pytest.approx(0.7)


def test_toggle_switch_milestones():
    task = get_task("toggle_switch")
    model, data = bare(task)
    reset(task, model, data, 0)
    assert task.angle(model, data) == pytest.approx(task.off_angle)
    for angle, expected, ok in ((task.off_angle, 0.0, False), (0.5 * task.off_angle, 0.45, False),
                                (0.0, 0.6, False), (task.on_angle, 1.0, True)):
        set_hinge(model, data, "switch_hinge", angle)
        mujoco.mj_forward(model, data)
        assert task.progress(model, data) == pytest.approx(expected, abs=0.01)
        assert task.success(model, data) is ok
    # Joint friction holds the lever where it was left (like a detent).
    set_hinge(model, data, "switch_hinge", 0.0)
    settle(model, data, 0.5)
    assert abs(task.angle(model, data)) < np.deg2rad(2.0)


def _place_card(task, model, data, height_above_floor, lateral=0.0):
    slot_pos = data.xpos[model.body("ram_slot").id]
    slot_quat = data.xquat[model.body("ram_slot").id]
    rot = data.xmat[model.body("ram_slot").id].reshape(3, 3)
    pos = slot_pos + rot @ np.array([0.0, lateral, 0.0])
    pos[2] += task.floor_z + task.card_half[2] + height_above_floor
    set_free_pose(model, data, "ram_card_free", pos, slot_quat)
    mujoco.mj_forward(model, data)


def test_insert_ram_milestones_and_tight_slot():
    task = get_task("insert_ram")
    model, data = bare(task)
    reset(task, model, data, 1)
    _place_card(task, model, data, 0.0005)
    assert task.success(model, data) and task.progress(model, data) == 1.0
    _place_card(task, model, data, 0.6 * task.rail_height)
    assert not task.success(model, data) and task.progress(model, data) == pytest.approx(0.8)
    _place_card(task, model, data, task.rail_height + 0.01)
    assert task.progress(model, data) == pytest.approx(0.6)
    _place_card(task, model, data, task.rail_height + 0.01, lateral=0.01)
    assert task.progress(model, data) == pytest.approx(0.4)
    # Seated card stays seated: the slot holds it upright (clearance smaller than the card thickness).
    _place_card(task, model, data, 0.0005)
    settle(model, data, 0.5)
    assert task.success(model, data)


def _fold_chain_into_box(task, model, data):
    """Chain folded into a pentagon (72 deg turns) lying on the box floor."""
    box = data.xpos[model.body("chain_box").id]
    start = box + np.array([-0.02, -0.02, task.wall + task.link_radius + 0.002])
    set_free_pose(model, data, "chain_link_free", start, [1, 0, 0, 0])
    turn = np.deg2rad(72.0)
    for name in task.link_names[1:]:
        jid = model.joint(f"{name}_ball").id
        adr = model.jnt_qposadr[jid]
        data.qpos[adr : adr + 4] = [np.cos(turn / 2), 0, 0, np.sin(turn / 2)]
    mujoco.mj_forward(model, data)


def test_chain_in_box_milestones():
    task = get_task("chain_in_box")
    model, data = bare(task)
    reset(task, model, data, 2)
    assert task.lid_angle(model, data) == pytest.approx(task.lid_open)
    _fold_chain_into_box(task, model, data)
    assert np.all(task.links_inside(model, data))
    assert not task.success(model, data)
    assert 0.7 <= task.progress(model, data) < 0.75  # all inside, lid still open
    set_hinge(model, data, "chain_box_lid_hinge", 0.5 * task.lid_open)
    mujoco.mj_forward(model, data)
    assert 0.8 < task.progress(model, data) < 0.95
    set_hinge(model, data, "chain_box_lid_hinge", 0.0)
    mujoco.mj_forward(model, data)
    assert task.success(model, data) and task.progress(model, data) == 1.0
    # Lid closed on an empty box is not a success.
    reset(task, model, data, 2)
    set_hinge(model, data, "chain_box_lid_hinge", 0.0)
    mujoco.mj_forward(model, data)
    assert not task.success(model, data) and task.progress(model, data) == 0.0


def test_open_lid_rests_on_its_stop_and_chain_is_limp():
    task = get_task("chain_in_box")
    model, data = bare(task)
    reset(task, model, data, 0)
    settle(model, data, 0.5)
    assert task.lid_angle(model, data) >= task.lid_open - 1e-3  # leaning back: stays open
    # Held up by its tag (a mocap body welded to link 0), the rest of the chain hangs below it.
    spec = mujoco.MjSpec()
    task.build(spec)
    spec.worldbody.add_body(name="holder", mocap=True)  # weld keeps link 0 at the holder's pose
    spec.add_equality(type=mujoco.mjtEq.mjEQ_WELD, name1="holder", name2="chain_link0",
                      objtype=mujoco.mjtObj.mjOBJ_BODY)
    model = spec.compile()
    data = mujoco.MjData(model)
    reset(task, model, data, 0)
    data.mocap_pos[model.body_mocapid[model.body("holder").id]] = [0.0, -0.1, 0.3]
    set_free_pose(model, data, "chain_link_free", [0.0, -0.1, 0.3], [1, 0, 0, 0])
    settle(model, data, 1.5)
    z = task.link_centres(model, data)[:, 2]
    assert z[0] > z[-1] + 0.08
