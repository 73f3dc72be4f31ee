"""Builds the twin's MuJoCo scene as an `MjSpec`: table, two Rizon 4S arms with 2F-85-sized grippers,
the front camera and one wrist camera per flange. Tasks add their bodies to the returned spec.

Collision filtering: every rig geom that moves (arm links, gripper) has contype 2 / conaffinity 1, the
table and task objects keep MuJoCo's default 1 / 1. So arms and fingers touch the table and objects but
not each other (no self-collision, no arm-arm collision; the safety guard owns that on the real rig).
Link 1 never collides with the table (it turns inside the base on its pedestal).
"""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.sim import names, rizon4s
from rig.sim.camera_model import fovy_deg, lookat_rotation
from rig.sim.simconfig import SimConfig

ARM_RGBA = (0.86, 0.87, 0.89, 1.0)
JOINT_RGBA = (0.25, 0.27, 0.3, 1.0)
GRIPPER_RGBA = (0.12, 0.12, 0.13, 1.0)
PAD_RGBA = (0.35, 0.35, 0.38, 1.0)
MOVING_CONTYPE = 2
MOVING_CONAFFINITY = 1


def mj_quat(rotation: Rotation) -> list[float]:
    """MuJoCo (w, x, y, z) quaternion of a scipy rotation."""
    x, y, z, w = rotation.as_quat()
    return [float(w), float(x), float(y), float(z)]


def rpy_rotation(rpy: tuple[float, float, float] | np.ndarray) -> Rotation:
    """URDF roll-pitch-yaw (fixed axes x, then y, then z) as a rotation."""
    return Rotation.from_euler("xyz", np.asarray(rpy, float))


def _moving_geom(body: mujoco.MjsBody, **kwargs: object) -> mujoco.MjsGeom:
    geom = body.add_geom(**kwargs)
    geom.contype = MOVING_CONTYPE
    geom.conaffinity = MOVING_CONAFFINITY
    return geom


def _add_environment(spec: mujoco.MjSpec, cfg: SimConfig) -> None:
    size = cfg.vector("table.size", 2)
    thickness = cfg.number("table.thickness", positive=True)
    spec.worldbody.add_geom(
        name=names.TABLE, type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[size[0] / 2, size[1] / 2, thickness / 2], pos=[0, 0, -thickness / 2],
        rgba=cfg.vector("table.rgba", 4), friction=cfg.vector("table.friction", 3),
    )
    spec.worldbody.add_geom(
        name=names.FLOOR, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.75],
        rgba=[0.32, 0.34, 0.36, 1.0],
    )
    spec.worldbody.add_light(name="rig/key_light", pos=[0.2, 0.0, 2.0], dir=[0, 0, -1],
                             diffuse=[0.7, 0.7, 0.7], castshadow=False)
    spec.worldbody.add_light(name="rig/fill_light", pos=[-1.2, 0.6, 1.5], dir=[1.0, -0.4, -1.0],
                             diffuse=[0.35, 0.35, 0.35], castshadow=False)


def _add_arm(spec: mujoco.MjSpec, cfg: SimConfig, arm: str) -> mujoco.MjsBody:
    """Add one arm; returns its gripper body (the flange frame)."""
    pos = cfg.vector(f"arms.placement.{arm}.pos", 3)
    rpy = np.radians(cfg.vector(f"arms.placement.{arm}.rpy_deg", 3))
    kp = cfg.vector("arms.actuator.kp", 7)
    kv = cfg.vector("arms.actuator.kv", 7)
    armature = cfg.vector("arms.actuator.armature", 7)
    damping = cfg.number("arms.actuator.damping")

    base = spec.worldbody.add_body(name=names.base(arm), pos=pos, quat=mj_quat(rpy_rotation(rpy)))
    _moving_geom(base, type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.075, 0.0775, 0], pos=[0, 0, 0.0775],
                 rgba=ARM_RGBA, mass=rizon4s.BASE_LINK.mass)
    # Pedestal from the base down to the table top, for the picture only.
    base.add_geom(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.09, 0.01, 0], pos=[0, 0, -0.01],
                  rgba=JOINT_RGBA, contype=0, conaffinity=0, mass=0.0)

    parent = base
    for i, (jspec, lspec) in enumerate(zip(rizon4s.JOINTS, rizon4s.LINKS), start=1):
        body = parent.add_body(
            name=names.link(arm, i), pos=list(jspec.xyz), quat=mj_quat(rpy_rotation(jspec.rpy)),
            mass=lspec.mass, ipos=list(lspec.com), inertia=list(lspec.inertia), gravcomp=1.0,
        )
        body.explicitinertial = True
        body.add_joint(
            name=names.joint(arm, i), type=mujoco.mjtJoint.mjJNT_HINGE, axis=list(jspec.axis),
            range=[jspec.lower, jspec.upper], limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            armature=float(armature[i - 1]), damping=damping,
        )
        nxt = rizon4s.JOINTS[i].xyz if i < len(rizon4s.JOINTS) else rizon4s.FLANGE_XYZ
        radius = rizon4s.LINK_RADII[i - 1]
        _moving_geom(body, type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[0, 0, 0, *nxt], size=[radius, 0, 0],
                     rgba=ARM_RGBA, mass=0.0)
        # Dark ring marking the joint, visual only.
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[radius * 1.02, 0.012, 0],
                      rgba=JOINT_RGBA, contype=0, conaffinity=0, mass=0.0,
                      quat=mj_quat(Rotation.align_vectors([jspec.axis], [[0, 0, 1]])[0]))
        spec.add_actuator(
            name=names.position_actuator(arm, i), target=names.joint(arm, i),
            trntype=mujoco.mjtTrn.mjTRN_JOINT, gaintype=mujoco.mjtGain.mjGAIN_FIXED,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE, gainprm=[kp[i - 1]] + [0] * 9,
            biasprm=[0, -kp[i - 1], 0] + [0] * 7, ctrlrange=[jspec.lower, jspec.upper],
            ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE, forcerange=[-jspec.effort, jspec.effort],
            forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        )
        spec.add_actuator(
            name=names.velocity_actuator(arm, i), target=names.joint(arm, i),
            trntype=mujoco.mjtTrn.mjTRN_JOINT, gaintype=mujoco.mjtGain.mjGAIN_FIXED,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE, gainprm=[kv[i - 1]] + [0] * 9,
            biasprm=[0, 0, -kv[i - 1]] + [0] * 7, ctrlrange=[-jspec.velocity, jspec.velocity],
            ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE, forcerange=[-jspec.effort, jspec.effort],
            forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        )
        if i == 1:
            # Link 1 turns inside the base on its pedestal; its proxy would graze the table edge.
            spec.add_exclude(bodyname1="world", bodyname2=names.link(arm, 1))
        parent = body

    flange_rot = rpy_rotation(rizon4s.FLANGE_RPY)
    parent.add_site(name=names.flange_site(arm), pos=list(rizon4s.FLANGE_XYZ), quat=mj_quat(flange_rot),
                    size=[0.005, 0, 0], rgba=[1, 0, 0, 0])
    gripper = parent.add_body(name=names.gripper(arm), pos=list(rizon4s.FLANGE_XYZ),
                              quat=mj_quat(flange_rot), gravcomp=1.0)
    _add_gripper(spec, cfg, arm, gripper)
    return gripper


def _add_gripper(spec: mujoco.MjSpec, cfg: SimConfig, arm: str, body: mujoco.MjsBody) -> None:
    """A Robotiq-2F-85-sized parallel gripper in the flange frame: fingers open along flange x."""
    stroke = cfg.number("gripper.stroke", positive=True)
    force = cfg.number("gripper.force", positive=True)
    kp = cfg.number("gripper.kp", positive=True)
    tcp = cfg.number("arms.tcp_offset", positive=True)
    friction = cfg.vector("gripper.pad_friction", 3)
    condim = int(cfg.number("gripper.pad_condim", positive=True))
    if condim not in (1, 3, 4, 6):
        raise ValueError(f"sim config: gripper.pad_condim = {condim}, expected one of 1, 3, 4, 6")

    # Coupling + housing (0.925 kg total like the 2F-85 tool entry in config/rig.yaml).
    _moving_geom(body, type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.038, 0.008, 0], pos=[0, 0, 0.008],
                 rgba=GRIPPER_RGBA, mass=0.1)
    palm_top, palm_bottom = 0.016, tcp - 0.068
    _moving_geom(body, type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0, 0, (palm_top + palm_bottom) / 2],
                 size=[0.045, 0.031, (palm_bottom - palm_top) / 2], rgba=GRIPPER_RGBA, mass=0.725)

    pad_half = (0.004, 0.011, 0.019)
    pad_z = tcp - 0.005
    for side, sign in (("a", 1.0), ("b", -1.0)):
        finger = body.add_body(name=f"rig/{arm}/finger_body_{side}", pos=[0, 0, 0], gravcomp=1.0)
        finger.add_joint(
            name=names.finger_joint(arm, side), type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[sign, 0, 0],
            range=[0.0, stroke / 2], limited=mujoco.mjtLimited.mjLIMITED_TRUE, armature=0.01, damping=5.0,
        )
        # Finger plate from the palm down to the tip, outside the pad.
        plate_top = palm_bottom
        plate_bottom = pad_z + pad_half[2]
        _moving_geom(finger, type=mujoco.mjtGeom.mjGEOM_BOX,
                     pos=[sign * (2 * pad_half[0] + 0.004), 0, (plate_top + plate_bottom) / 2],
                     size=[0.004, 0.012, (plate_bottom - plate_top) / 2], rgba=GRIPPER_RGBA, mass=0.04)
        pad = _moving_geom(finger, name=names.finger_pad(arm, side), type=mujoco.mjtGeom.mjGEOM_BOX,
                           pos=[sign * pad_half[0], 0, pad_z], size=list(pad_half), rgba=PAD_RGBA,
                           mass=0.01, friction=friction, condim=condim, priority=1)
        pad.solref = [0.004, 1.0]
        pad.solimp = [0.95, 0.99, 0.001, 0.5, 2.0]

    tendon = spec.add_tendon(name=names.gripper_tendon(arm))
    tendon.wrap_joint(names.finger_joint(arm, "a"), 1.0)
    tendon.wrap_joint(names.finger_joint(arm, "b"), 1.0)
    spec.add_equality(
        type=mujoco.mjtEq.mjEQ_JOINT, name1=names.finger_joint(arm, "a"), name2=names.finger_joint(arm, "b"),
        data=[0, 1, 0, 0, 0] + [0] * 7, solref=[0.005, 1.0],
    )
    spec.add_actuator(
        name=names.gripper_actuator(arm), target=names.gripper_tendon(arm),
        trntype=mujoco.mjtTrn.mjTRN_TENDON, gaintype=mujoco.mjtGain.mjGAIN_FIXED,
        biastype=mujoco.mjtBias.mjBIAS_AFFINE, gainprm=[kp] + [0] * 9, biasprm=[0, -kp, -0.05 * kp] + [0] * 7,
        ctrlrange=[0.0, stroke], ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        forcerange=[-force, force], forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
    )
    body.add_site(name=names.tcp_site(arm), pos=[0, 0, tcp], size=[0.004, 0, 0], rgba=[0, 1, 0, 0])


def _add_camera(cfg: SimConfig, name: str, parents: dict[str, mujoco.MjsBody], world: mujoco.MjsBody) -> None:
    key = f"cameras.{name}"
    parent_kind = cfg.choice(f"{key}.parent", ("world", "flange"))
    parent = world if parent_kind == "world" else parents[name.removeprefix("wrist_")]
    pos = cfg.vector(f"{key}.pos", 3)
    rot = lookat_rotation(pos, cfg.vector(f"{key}.lookat", 3), cfg.vector(f"{key}.up", 3))
    fy = cfg.number(f"{key}.fy", positive=True)
    parent.add_camera(name=names.camera(name), pos=pos, quat=mj_quat(Rotation.from_matrix(rot)),
                      fovy=fovy_deg(fy))


def build_scene(cfg: SimConfig) -> mujoco.MjSpec:
    """The rig scene without task objects; call `spec.compile()` after tasks have added theirs."""
    spec = mujoco.MjSpec()
    spec.modelname = "a2world_twin"
    spec.compiler.degree = False  # joint ranges in radians (camera fovy is always degrees)
    spec.option.timestep = cfg.number("physics.timestep", positive=True)
    spec.option.integrator = {
        "euler": mujoco.mjtIntegrator.mjINT_EULER,
        "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
        "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
        "rk4": mujoco.mjtIntegrator.mjINT_RK4,
    }[cfg.choice("physics.integrator", ("euler", "implicitfast", "implicit", "rk4"))]
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    height = int(cfg.number("render.height", positive=True))
    width = int(cfg.number("render.width", positive=True))
    spec.visual.global_.offheight = max(height, 480)
    spec.visual.global_.offwidth = max(width, 640)
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    spec.visual.headlight.diffuse = [0.3, 0.3, 0.3]

    _add_environment(spec, cfg)
    grippers = {arm: _add_arm(spec, cfg, arm) for arm in ARM_NAMES}
    for cam in CAMERA_NAMES:
        _add_camera(cfg, cam, grippers, spec.worldbody)
    return spec
