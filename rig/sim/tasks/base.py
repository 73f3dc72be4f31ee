"""Shared pieces of the task definitions: config access, scene-building helpers and state queries.

Every task adds its bodies under names prefixed with the task's short prefix, so it never clashes with
the twin's own bodies, and queries the simulator only through MuJoCo ids resolved from those names.
"Robot contact" means a contact between a task body and any body that is neither the world body nor one
of the task's own bodies (the twin's fingers, links or a test gripper); this keeps the tasks independent
of how the twin names its gripper geoms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from rig.config import ConfigError, load_yaml

TASKS_CONFIG = "tasks.yaml"


def task_config(name: str, config: str = TASKS_CONFIG) -> dict[str, Any]:
    """The mapping of task `name` in `config/tasks.yaml` (or another file given by name or path)."""
    data = load_yaml(config)
    section = data.get(name)
    if not isinstance(section, dict):
        raise ConfigError(f"{config}: missing task section {name!r} (present: {sorted(data)})")
    return section


def cfg_float(cfg: dict[str, Any], key: str, where: str) -> float:
    """A finite float from `cfg[key]`, or a ConfigError naming `where.key`."""
    if key not in cfg:
        raise ConfigError(f"{where}: missing key {key!r}")
    try:
        value = float(cfg[key])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: {cfg[key]!r}, expected a number") from None
    if not np.isfinite(value):
        raise ConfigError(f"{where}.{key}: {value}, expected a finite number")
    return value


def cfg_vec(cfg: dict[str, Any], key: str, where: str, size: int) -> NDArray[np.float64]:
    """A float vector of length `size` from `cfg[key]`, or a ConfigError naming `where.key`."""
    if key not in cfg:
        raise ConfigError(f"{where}: missing key {key!r}")
    try:
        arr = np.asarray(cfg[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.{key}: {cfg[key]!r}, expected {size} numbers") from None
    if arr.size != size or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{where}.{key}: {cfg[key]!r}, expected {size} finite numbers")
    return arr


def cfg_range(cfg: dict[str, Any], key: str, where: str) -> tuple[float, float]:
    """A `[low, high]` pair with low <= high, or a ConfigError naming `where.key`."""
    low, high = cfg_vec(cfg, key, where, 2)
    if low > high:
        raise ConfigError(f"{where}.{key}: [{low}, {high}], expected low <= high")
    return float(low), float(high)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One sample from U(low, high) (exactly low when the range is empty)."""
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else bounds[0]


def yaw_quat_wxyz(yaw: float) -> NDArray[np.float64]:
    """MuJoCo (w, x, y, z) quaternion of a rotation by `yaw` about world z."""
    return np.array([np.cos(yaw / 2.0), 0.0, 0.0, np.sin(yaw / 2.0)])


def add_free_box(
    parent: mujoco.MjsBody,
    name: str,
    half_size: Sequence[float],
    mass: float,
    rgba: Sequence[float],
    friction: float,
) -> mujoco.MjsBody:
    """A free-floating box body with one collision geom named `name`."""
    body = parent.add_body(name=name, pos=[0.0, 0.0, float(half_size[2])])
    body.add_freejoint(name=f"{name}_free")
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(half_size),
        mass=mass,
        rgba=list(rgba),
        friction=[friction, 0.01, 0.001],
        condim=4,
    )
    return body


def body_id(model: mujoco.MjModel, name: str) -> int:
    """Id of body `name`, or a KeyError saying the task was not built into this model."""
    bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if bid < 0:
        raise KeyError(f"body {name!r} not in the model: was the task built into this scene?")
    return int(bid)


def joint_id(model: mujoco.MjModel, name: str) -> int:
    """Id of joint `name`, or a KeyError saying the task was not built into this model."""
    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    if jid < 0:
        raise KeyError(f"joint {name!r} not in the model: was the task built into this scene?")
    return int(jid)


def set_free_pose(
    model: mujoco.MjModel, data: mujoco.MjData, joint: str, pos: Sequence[float], quat_wxyz: Sequence[float]
) -> None:
    """Place a free joint's body at `pos` with orientation `quat_wxyz` and zero velocity."""
    jid = joint_id(model, joint)
    qadr, vadr = model.jnt_qposadr[jid], model.jnt_dofadr[jid]
    data.qpos[qadr : qadr + 3] = pos
    data.qpos[qadr + 3 : qadr + 7] = np.asarray(quat_wxyz) / np.linalg.norm(quat_wxyz)
    data.qvel[vadr : vadr + 6] = 0.0


def hinge_angle(model: mujoco.MjModel, data: mujoco.MjData, joint: str) -> float:
    """Current angle of a hinge joint (radians)."""
    return float(data.qpos[model.jnt_qposadr[joint_id(model, joint)]])


def set_hinge(model: mujoco.MjModel, data: mujoco.MjData, joint: str, angle: float) -> None:
    """Set a hinge joint's angle, zero velocity."""
    jid = joint_id(model, joint)
    data.qpos[model.jnt_qposadr[jid]] = angle
    data.qvel[model.jnt_dofadr[jid]] = 0.0


def body_pos(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> NDArray[np.float64]:
    """World position of body `name` (from the last forward pass)."""
    return data.xpos[body_id(model, name)].copy()


def body_rot(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> NDArray[np.float64]:
    """World rotation matrix (3, 3) of body `name` (from the last forward pass)."""
    return data.xmat[body_id(model, name)].reshape(3, 3).copy()


def _is_static(model: mujoco.MjModel, body: int) -> bool:
    """A body rigidly attached to the world (table, fixtures) that is not mocap-driven."""
    return int(model.body_weldid[body]) == 0 and int(model.body_mocapid[body]) < 0


def robot_contact(model: mujoco.MjModel, data: mujoco.MjData, bodies: Iterable[int], own: Iterable[int]) -> bool:
    """True when any body in `bodies` touches a moving body that is not one of the task's `own` bodies."""
    targets = set(bodies)
    excluded = set(own)
    for i in range(data.ncon):
        contact = data.contact[i]
        b1 = int(model.geom_bodyid[contact.geom1])
        b2 = int(model.geom_bodyid[contact.geom2])
        for mine, other in ((b1, b2), (b2, b1)):
            if mine in targets and other not in excluded and not _is_static(model, other):
                return True
    return False


def ramp(value: float, start: float, end: float) -> float:
    """0 below `start`, 1 above `end`, linear in between."""
    if end <= start:
        return float(value >= end)
    return float(np.clip((value - start) / (end - start), 0.0, 1.0))


def angle_range(spec: mujoco.MjSpec, low: float, high: float) -> list[float]:
    """A joint range given in radians, in the unit the spec compiles with (`compiler.degree`)."""
    scale = 180.0 / np.pi if spec.compiler.degree else 1.0
    return [low * scale, high * scale]
