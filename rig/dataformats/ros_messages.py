"""The one conversion module between our arrays / schema types and ROS 2 messages, both directions.

Message classes come from the `rosbags` typestores for ROS 2 Humble and Jazzy (identical definitions
and RIHS01 hashes for every type used here), so the same code serves the bag writer, the bag readers
and the ROS layer (which can hand the returned objects' fields to rclpy messages, or publish the CDR
bytes from `serialize`).

Mapping (every function has its inverse below it):

| ours | ROS 2 message |
|---|---|
| `CameraFrame.color` (H, W, 3) uint8 RGB | `sensor_msgs/msg/Image`, encoding `rgb8` |
| `CameraFrame.depth` (H, W) uint16 | `sensor_msgs/msg/Image`, encoding `16UC1` (raw device units) |
| `CameraFrame` (both, stamped) | `camera_frame_msgs` / `camera_frame_from_msgs` |
| `CameraIntrinsics` | `sensor_msgs/msg/CameraInfo` (`plumb_bob`; all-zero K when uncalibrated) |
| `ArmState` q, dq, tau | `sensor_msgs/msg/JointState`, names `<arm>_joint1..7` |
| `ArmState.tcp_pose` (7,) | `geometry_msgs/msg/PoseStamped` in frame `<arm>_base_link` |
| `GripperState` | `sensor_msgs/msg/JointState`, names `<arm>_gripper_opening` (0..1), `<arm>_gripper_width` (m) |
| pose (7,) between two frames | `geometry_msgs/msg/TransformStamped` (`/tf`, `/tf_static`) |
| `DiagnosticEntry` list | `diagnostic_msgs/msg/DiagnosticArray` (levels OK, WARN, ERROR, STALE) |
| `CommandChunk` (T, 2, 8) | `trajectory_msgs/msg/MultiDOFJointTrajectory` (joints `left_tcp`, `right_tcp`, one
  `Transform` per arm and step, each in its arm's base frame) + `trajectory_msgs/msg/JointTrajectory`
  (joints `left_gripper`, `right_gripper`, position = opening) with the same header and
  `time_from_start = k * dt` |

Time: samples carry host monotonic seconds; ROS stamps are `ClockMap.to_ros_ns(t)` = monotonic + a
fixed offset to the wall clock captured once per boot and shared by every process of that boot
(`ClockMap.shared`, docs/control.md "Time base").
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, JOINTS_PER_ARM
from rig.schema import ArmState, CameraFrame, CameraIntrinsics, CommandChunk, GripperState, SchemaError

DISTROS = ("humble", "jazzy")
TCP_JOINT_NAMES = tuple(f"{arm}_tcp" for arm in ARM_NAMES)
GRIPPER_JOINT_NAMES = tuple(f"{arm}_gripper" for arm in ARM_NAMES)

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
JOINT_STATE = "sensor_msgs/msg/JointState"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
MULTI_DOF_TRAJECTORY = "trajectory_msgs/msg/MultiDOFJointTrajectory"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"

_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype("<u2"), 1),
    "mono16": (np.dtype("<u2"), 1),
}


class MessageError(ValueError):
    """A ROS message cannot be converted; the message names the type, field and value."""


# --------------------------------------------------------------------------------------------- stores


@cache
def typestore(distro: str = "humble") -> Any:
    """The rosbags typestore of a ROS 2 distribution (`humble` or `jazzy`), cached."""
    from rosbags.typesys import Stores, get_typestore

    stores = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
    if distro not in stores:
        raise MessageError(f"distro: {distro!r} is not one of {list(stores)}")
    return get_typestore(stores[distro])


def _cls(name: str, distro: str) -> Any:
    return typestore(distro).types[name]


def serialize(msg: Any, distro: str = "humble") -> bytes:
    """CDR bytes (little endian, with encapsulation header) of a message, as rmw sends them."""
    return bytes(typestore(distro).serialize_cdr(msg, msg.__msgtype__))


def deserialize(data: bytes | memoryview, msgtype: str, distro: str = "humble") -> Any:
    """Message object from CDR bytes."""
    return typestore(distro).deserialize_cdr(data, msgtype)


# ----------------------------------------------------------------------------------------------- time


@dataclass(frozen=True)
class ClockMap:
    """Maps host monotonic seconds (sample times) to ROS time in integer nanoseconds and back.

    `ros_ns = round((t_monotonic + offset_s) * 1e9)`. `offset_s` is `time.time() - time.monotonic()`
    sampled once (the tightest of a few readings), so stamps are wall-clock time as a ROS node with
    `use_sim_time=false` would see it, while intervals stay exactly the monotonic ones (a later NTP step
    does not bend the recording).
    """

    offset_s: float

    @classmethod
    def now(cls, samples: int = 5) -> ClockMap:
        """Capture the current monotonic-to-wall offset."""
        best: tuple[float, float] | None = None
        for _ in range(max(1, samples)):
            m0 = time.monotonic()
            wall = time.time()
            m1 = time.monotonic()
            if best is None or m1 - m0 < best[0]:
                best = (m1 - m0, wall - 0.5 * (m0 + m1))
        assert best is not None
        return cls(best[1])

    @classmethod
    def shared(cls, path: str | os.PathLike[str] | None = None) -> ClockMap:
        """The one offset of this boot, shared by every process (the cross-node time-base convention).

        The first process of a boot captures the offset (`now()`) and publishes it atomically in
        `clock_file()`; every later process reads that same value. So two nodes started on either side
        of a wall-clock step (NTP/chrony at boot) still convert each other's stamps exactly, because
        both use the same monotonic clock and the same offset. `wall_step_s()` reports how far the wall
        clock has moved since (checked at runtime by the nodes' diagnostics).
        """
        file = os.fspath(path) if path is not None else clock_file()
        if file is None:
            return cls.now()
        try:
            with open(file, encoding="utf-8") as fh:
                return cls(_read_offset(file, fh.read()))
        except FileNotFoundError:
            pass
        mine = cls.now()
        tmp = f"{file}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"offset_s": mine.offset_s, "captured_wall": time.time()}, fh)
        try:
            os.link(tmp, file)  # atomic and refuses to replace: the first writer of the boot wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        with open(file, encoding="utf-8") as fh:
            return cls(_read_offset(file, fh.read()))

    def wall_step_s(self) -> float:
        """How far the wall clock has stepped relative to this map since the offset was captured."""
        return (time.time() - time.monotonic()) - self.offset_s

    def to_ros_ns(self, t_monotonic: float) -> int:
        return round((float(t_monotonic) + self.offset_s) * 1e9)

    def to_monotonic(self, ros_ns: int) -> float:
        return int(ros_ns) * 1e-9 - self.offset_s


CLOCK_FILE_ENV = "A2WORLD_CLOCK_FILE"


def clock_file() -> str | None:
    """Where this boot's shared offset lives: `$A2WORLD_CLOCK_FILE`, else a file in the temp directory
    named after the kernel's boot id (a new boot gets a new file); None where there is no boot id."""
    if os.environ.get(CLOCK_FILE_ENV):
        return os.environ[CLOCK_FILE_ENV]
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot_id = fh.read().strip()
    except OSError:
        return None
    return os.path.join(tempfile.gettempdir(), f"a2world-clock-{boot_id}.json")


def _read_offset(file: str, text: str) -> float:
    try:
        offset = float(json.loads(text)["offset_s"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MessageError(f"{file}: not a clock-offset file ({exc}); delete it to capture a new offset") from None
    if not math.isfinite(offset):
        raise MessageError(f"{file}: offset_s {offset} is not finite; delete it to capture a new offset")
    return offset


def time_msg(stamp_ns: int, distro: str = "humble") -> Any:
    """`builtin_interfaces/msg/Time` from integer nanoseconds (must be >= 0)."""
    if stamp_ns < 0:
        raise MessageError(f"stamp: {stamp_ns} ns is negative, expected ROS time >= 0")
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return _cls("builtin_interfaces/msg/Time", distro)(sec=sec, nanosec=nanosec)


def stamp_ns(stamp: Any) -> int:
    """Integer nanoseconds of a `builtin_interfaces/msg/Time`."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def duration_msg(seconds: float, distro: str = "humble") -> Any:
    """`builtin_interfaces/msg/Duration` from seconds (>= 0)."""
    sec, nanosec = divmod(round(float(seconds) * 1e9), 1_000_000_000)
    return _cls("builtin_interfaces/msg/Duration", distro)(sec=int(sec), nanosec=int(nanosec))


def duration_s(duration: Any) -> float:
    return int(duration.sec) + int(duration.nanosec) * 1e-9


def header_msg(stamp: int, frame_id: str, distro: str = "humble") -> Any:
    """`std_msgs/msg/Header` with a stamp in integer nanoseconds."""
    return _cls("std_msgs/msg/Header", distro)(stamp=time_msg(stamp, distro), frame_id=frame_id)


# --------------------------------------------------------------------------------------------- frames


def base_frame(arm: str) -> str:
    """TF frame of an arm's base (poses and command targets of that arm are expressed in it)."""
    return f"{arm}_base_link"


def camera_frame(camera: str) -> str:
    """TF frame of a camera's colour optical frame (z forward, x right, y down)."""
    return f"{camera}_color_optical_frame"


def joint_names(arm: str) -> list[str]:
    """Joint names of one arm as published in JointState: `<arm>_joint1` .. `<arm>_joint7`."""
    return [f"{arm}_joint{i}" for i in range(1, JOINTS_PER_ARM + 1)]


def gripper_names(arm: str) -> list[str]:
    return [f"{arm}_gripper_opening", f"{arm}_gripper_width"]


# --------------------------------------------------------------------------------------------- images


def image_msg(
    pixels: NDArray, stamp: int, frame_id: str, encoding: str = "rgb8", distro: str = "humble"
) -> Any:
    """`sensor_msgs/msg/Image` wrapping `pixels` ((H, W, 3) uint8 for rgb8/bgr8, (H, W) for mono8,
    (H, W) uint16 for 16UC1/mono16). Contiguous input is referenced, not copied."""
    if encoding not in _ENCODINGS:
        raise MessageError(f"Image.encoding: {encoding!r} is not one of {list(_ENCODINGS)}")
    dtype, channels = _ENCODINGS[encoding]
    arr = np.asarray(pixels)
    want = (arr.shape[0], arr.shape[1], channels) if channels > 1 else arr.shape[:2]
    if arr.ndim != (3 if channels > 1 else 2) or arr.shape != want or arr.dtype.kind != dtype.kind \
            or arr.dtype.itemsize != dtype.itemsize:
        raise MessageError(
            f"Image({encoding}): array {arr.shape} {arr.dtype}, expected (H, W{', 3' if channels > 1 else ''}) "
            f"{dtype.name}"
        )
    arr = np.ascontiguousarray(arr, dtype=dtype)
    height, width = arr.shape[:2]
    return _cls(IMAGE, distro)(
        header=header_msg(stamp, frame_id, distro),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels * dtype.itemsize,
        data=arr.reshape(-1).view(np.uint8),
    )


def image_array(msg: Any) -> NDArray:
    """Pixels of a `sensor_msgs/msg/Image` as (H, W, 3) uint8 or (H, W) array (a view on the data).
    `bgr8` is returned as stored (BGR); call `[..., ::-1]` for RGB. Row padding (step) is honoured."""
    if msg.encoding not in _ENCODINGS:
        raise MessageError(f"Image.encoding: {msg.encoding!r} is not one of {list(_ENCODINGS)}")
    dtype, channels = _ENCODINGS[msg.encoding]
    if msg.is_bigendian and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    data = np.asarray(msg.data, dtype=np.uint8)
    row = msg.width * channels * dtype.itemsize
    if msg.step < row or data.size < msg.step * msg.height:
        raise MessageError(
            f"Image: step {msg.step}, {data.size} bytes for {msg.height}x{msg.width} {msg.encoding}, "
            f"expected step >= {row} and >= {row * msg.height} bytes"
        )
    rows = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(dtype)
    return pixels.reshape(msg.height, msg.width, channels) if channels > 1 else pixels.reshape(
        msg.height, msg.width
    )


def camera_frame_msgs(frame: CameraFrame, clock: ClockMap, distro: str = "humble") -> tuple[Any, Any | None]:
    """(colour Image rgb8, depth Image 16UC1 or None) of a `CameraFrame`, stamped at its time, in the
    camera's optical frame. The colour array is referenced, not copied."""
    stamp = clock.to_ros_ns(frame.t)
    fid = camera_frame(frame.camera)
    depth = None if frame.depth is None else image_msg(frame.depth, stamp, fid, "16UC1", distro)
    return image_msg(frame.color, stamp, fid, "rgb8", distro), depth


def camera_frame_from_msgs(camera: str, color: Any, clock: ClockMap, depth: Any | None = None,
                           depth_scale: float = 0.001) -> CameraFrame:
    """`CameraFrame` from a colour Image (rgb8, bgr8 converted to RGB) and an optional aligned
    16UC1 depth Image; the time is the colour stamp mapped back to host monotonic seconds."""
    pixels = image_array(color)
    if color.encoding == "bgr8":
        pixels = np.ascontiguousarray(pixels[..., ::-1])
    elif color.encoding != "rgb8":
        raise MessageError(f"Image.encoding: {color.encoding!r} for camera {camera}, expected rgb8 or bgr8")
    depth_px = None
    if depth is not None:
        if depth.encoding not in ("16UC1", "mono16"):
            raise MessageError(f"depth Image.encoding: {depth.encoding!r}, expected 16UC1")
        depth_px = image_array(depth)
    try:
        return CameraFrame(camera=camera, t=clock.to_monotonic(stamp_ns(color.header.stamp)), color=pixels,
                           depth=depth_px, depth_scale=depth_scale)
    except SchemaError as exc:
        raise MessageError(f"Image ({camera}): {exc}") from None


def camera_info_msg(
    intrinsics: CameraIntrinsics | None,
    stamp: int,
    frame_id: str,
    width: int | None = None,
    height: int | None = None,
    distro: str = "humble",
) -> Any:
    """`sensor_msgs/msg/CameraInfo` (plumb_bob, identity R, P = [K | 0]). Without intrinsics the
    matrices stay zero, which ROS defines as "uncalibrated"; `width`/`height` are then required."""
    if intrinsics is None:
        if width is None or height is None:
            raise MessageError("CameraInfo: width and height are required when intrinsics are unknown")
        k = np.zeros(9)
        r = np.zeros(9)
        p = np.zeros(12)
        d = np.zeros(0)
    else:
        width, height = intrinsics.width, intrinsics.height
        k = intrinsics.matrix().reshape(-1)
        r = np.eye(3).reshape(-1)
        p = np.hstack([intrinsics.matrix(), np.zeros((3, 1))]).reshape(-1)
        d = np.asarray(intrinsics.coeffs, dtype=np.float64)
    roi = _cls("sensor_msgs/msg/RegionOfInterest", distro)(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return _cls(CAMERA_INFO, distro)(
        header=header_msg(stamp, frame_id, distro),
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=d,
        k=k,
        r=r,
        p=p,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def camera_info_intrinsics(msg: Any) -> CameraIntrinsics | None:
    """`CameraIntrinsics` of a CameraInfo, or None when it is uncalibrated (K[0] == 0)."""
    k = np.asarray(msg.k, dtype=np.float64)
    if k[0] == 0.0:
        return None
    try:
        return CameraIntrinsics(
            width=int(msg.width),
            height=int(msg.height),
            fx=float(k[0]),
            fy=float(k[4]),
            cx=float(k[2]),
            cy=float(k[5]),
            coeffs=tuple(float(c) for c in msg.d),
        )
    except SchemaError as exc:
        raise MessageError(f"CameraInfo: {exc}") from None


# ------------------------------------------------------------------------------------------ arm state


def joint_state_msg(
    names: list[str],
    position: NDArray,
    velocity: NDArray | None,
    effort: NDArray | None,
    stamp: int,
    distro: str = "humble",
) -> Any:
    """`sensor_msgs/msg/JointState`; velocity/effort may be None (empty arrays, as ROS allows)."""
    pos = np.asarray(position, dtype=np.float64).reshape(-1)
    if pos.size != len(names):
        raise MessageError(f"JointState: {len(names)} names but {pos.size} positions")
    arrays = []
    for key, value in (("velocity", velocity), ("effort", effort)):
        arr = np.zeros(0) if value is None else np.asarray(value, dtype=np.float64).reshape(-1)
        if arr.size not in (0, len(names)):
            raise MessageError(f"JointState.{key}: {arr.size} values for {len(names)} joints")
        arrays.append(arr)
    return _cls(JOINT_STATE, distro)(
        header=header_msg(stamp, "", distro), name=list(names), position=pos, velocity=arrays[0],
        effort=arrays[1],
    )


def arm_joint_state_msg(state: ArmState, stamp: int, distro: str = "humble") -> Any:
    """JointState of one arm: q (rad), dq (rad/s), tau (Nm) under names `<arm>_joint1..7`."""
    return joint_state_msg(joint_names(state.arm), state.q, state.dq, state.tau, stamp, distro)


def _joint_values(msg: Any, names: list[str], field_name: str) -> NDArray[np.float64]:
    values = np.asarray(getattr(msg, field_name), dtype=np.float64)
    if values.size == 0:
        return np.zeros(len(names))
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise MessageError(f"JointState.name: missing {missing} (present: {list(msg.name)})")
    return values[[index[n] for n in names]]


def tcp_pose_msg(pose: NDArray, stamp: int, frame_id: str, distro: str = "humble") -> Any:
    """`geometry_msgs/msg/PoseStamped` from [x, y, z, qx, qy, qz, qw]."""
    p = np.asarray(pose, dtype=np.float64).reshape(-1)
    if p.size != 7:
        raise MessageError(f"PoseStamped: pose has {p.size} values, expected 7 (x y z qx qy qz qw)")
    point = _cls("geometry_msgs/msg/Point", distro)(x=p[0], y=p[1], z=p[2])
    quat = _cls("geometry_msgs/msg/Quaternion", distro)(x=p[3], y=p[4], z=p[5], w=p[6])
    return _cls(POSE_STAMPED, distro)(
        header=header_msg(stamp, frame_id, distro),
        pose=_cls("geometry_msgs/msg/Pose", distro)(position=point, orientation=quat),
    )


def pose_array(msg: Any) -> NDArray[np.float64]:
    """[x, y, z, qx, qy, qz, qw] of a PoseStamped or Pose."""
    pose = getattr(msg, "pose", msg)
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w], dtype=np.float64)


def arm_state_from_msgs(arm: str, joint_state: Any, tcp_pose: Any, clock: ClockMap) -> ArmState:
    """`ArmState` from a JointState and a PoseStamped of the same arm (time from the JointState).
    Fields not carried by these messages (tau_ext, ext_wrench, tcp_vel, fault) are zero / False."""
    names = joint_names(arm)
    return ArmState(
        arm=arm,
        t=clock.to_monotonic(stamp_ns(joint_state.header.stamp)),
        q=_joint_values(joint_state, names, "position"),
        dq=_joint_values(joint_state, names, "velocity"),
        tau=_joint_values(joint_state, names, "effort"),
        tcp_pose=pose_array(tcp_pose),
    )


def gripper_state_msg(state: GripperState, stamp: int, distro: str = "humble") -> Any:
    """JointState with `<arm>_gripper_opening` (0..1, 1 = open) and `<arm>_gripper_width` (m).
    The is_moving / object_detected / fault flags are not carried."""
    return joint_state_msg(
        gripper_names(state.arm), np.array([state.opening, state.width_m]), None, None, stamp, distro
    )


def gripper_state_from_msg(arm: str, msg: Any, clock: ClockMap) -> GripperState:
    opening, width = _joint_values(msg, gripper_names(arm), "position")
    return GripperState(
        arm=arm, t=clock.to_monotonic(stamp_ns(msg.header.stamp)), opening=float(opening),
        width_m=float(width),
    )


# ------------------------------------------------------------------------------------------- commands


def chunk_msgs(targets: NDArray, stamp: int, dt: float, distro: str = "humble") -> tuple[Any, Any]:
    """(MultiDOFJointTrajectory, JointTrajectory) of absolute targets (T, 2, 8) due at
    `stamp + k * dt`. A single command (2, 8) is a one-step chunk."""
    arr = np.asarray(targets, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (len(ARM_NAMES), COMMAND_DIM) or arr.shape[0] == 0:
        raise MessageError(f"command targets: shape {np.shape(targets)}, expected (T, 2, 8) or (2, 8)")
    vec3 = _cls("geometry_msgs/msg/Vector3", distro)
    quat = _cls("geometry_msgs/msg/Quaternion", distro)
    transform = _cls("geometry_msgs/msg/Transform", distro)
    mpoint = _cls("trajectory_msgs/msg/MultiDOFJointTrajectoryPoint", distro)
    jpoint = _cls("trajectory_msgs/msg/JointTrajectoryPoint", distro)
    empty = np.zeros(0)
    mpoints, jpoints = [], []
    for k, step in enumerate(arr):
        tfs = [
            transform(translation=vec3(x=s[0], y=s[1], z=s[2]), rotation=quat(x=s[3], y=s[4], z=s[5], w=s[6]))
            for s in step
        ]
        when = duration_msg(k * dt, distro)
        mpoints.append(mpoint(transforms=tfs, velocities=[], accelerations=[], time_from_start=when))
        jpoints.append(jpoint(positions=step[:, 7].copy(), velocities=empty, accelerations=empty,
                              effort=empty, time_from_start=when))
    hdr = header_msg(stamp, "", distro)
    return (
        _cls(MULTI_DOF_TRAJECTORY, distro)(header=hdr, joint_names=list(TCP_JOINT_NAMES), points=mpoints),
        _cls(JOINT_TRAJECTORY, distro)(header=hdr, joint_names=list(GRIPPER_JOINT_NAMES), points=jpoints),
    )


def chunk_targets(poses: Any, grippers: Any) -> tuple[NDArray[np.float64], int, float]:
    """(targets (T, 2, 8), stamp ns of step 0, dt s) from the two messages of `chunk_msgs`.
    dt is the spacing of the first two points (0.0 for a single point)."""
    if list(poses.joint_names) != list(TCP_JOINT_NAMES):
        raise MessageError(f"MultiDOFJointTrajectory.joint_names: {poses.joint_names}, "
                           f"expected {list(TCP_JOINT_NAMES)}")
    if list(grippers.joint_names) != list(GRIPPER_JOINT_NAMES):
        raise MessageError(f"JointTrajectory.joint_names: {grippers.joint_names}, "
                           f"expected {list(GRIPPER_JOINT_NAMES)}")
    if len(poses.points) != len(grippers.points):
        raise MessageError(f"command: {len(poses.points)} pose points but {len(grippers.points)} gripper points")
    out = np.zeros((len(poses.points), len(ARM_NAMES), COMMAND_DIM))
    for k, (mp, jp) in enumerate(zip(poses.points, grippers.points)):
        for a, tf in enumerate(mp.transforms):
            t, r = tf.translation, tf.rotation
            out[k, a, :7] = (t.x, t.y, t.z, r.x, r.y, r.z, r.w)
        out[k, :, 7] = np.asarray(jp.positions, dtype=np.float64)
    dt = duration_s(poses.points[1].time_from_start) - duration_s(poses.points[0].time_from_start) \
        if len(poses.points) > 1 else 0.0
    return out, stamp_ns(poses.header.stamp), dt


def command_chunk_msgs(chunk: CommandChunk, clock: ClockMap, distro: str = "humble") -> tuple[Any, Any]:
    """Messages of a validated `CommandChunk` (step 0 stamped at `clock.to_ros_ns(chunk.t0)`)."""
    return chunk_msgs(chunk.targets, clock.to_ros_ns(chunk.t0), chunk.dt, distro)


def command_chunk_from_msgs(poses: Any, grippers: Any, clock: ClockMap, default_dt: float) -> CommandChunk:
    """Validated `CommandChunk`; `default_dt` is used for single-point trajectories."""
    targets, stamp, dt = chunk_targets(poses, grippers)
    return CommandChunk(targets=targets, t0=clock.to_monotonic(stamp), dt=dt if dt > 0 else default_dt)


# ------------------------------------------------- operator and diagnostics (ROS layer, docs/ros.md)

DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
TRANSFORM_STAMPED = "geometry_msgs/msg/TransformStamped"
DIAGNOSTIC_LEVELS = {"OK": 0, "WARN": 1, "ERROR": 2, "STALE": 3}
"""diagnostic_msgs/DiagnosticStatus level constants (a `byte` field)."""


@dataclass(frozen=True)
class DiagnosticEntry:
    """One DiagnosticStatus: level name (OK/WARN/ERROR/STALE), component name, summary, key/values."""

    name: str
    level: str = "OK"
    message: str = ""
    hardware_id: str = ""
    values: tuple[tuple[str, str], ...] = ()


def _diag_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def diagnostic_entry(name: str, level: str, message: str, values: Any = (), hardware_id: str = "") -> DiagnosticEntry:
    """DiagnosticEntry from a mapping or pairs of values (numbers formatted with 6 significant digits)."""
    if level not in DIAGNOSTIC_LEVELS:
        raise MessageError(f"DiagnosticStatus.level: {level!r} is not one of {list(DIAGNOSTIC_LEVELS)}")
    pairs = values.items() if hasattr(values, "items") else values
    return DiagnosticEntry(name, level, message, hardware_id, tuple((str(k), _diag_value(v)) for k, v in pairs))


def diagnostic_array_msg(entries: list[DiagnosticEntry], stamp: int, distro: str = "humble") -> Any:
    """`diagnostic_msgs/msg/DiagnosticArray` with one DiagnosticStatus per entry."""
    key_value = _cls("diagnostic_msgs/msg/KeyValue", distro)
    status = _cls("diagnostic_msgs/msg/DiagnosticStatus", distro)
    statuses = []
    for e in entries:
        if e.level not in DIAGNOSTIC_LEVELS:
            raise MessageError(f"DiagnosticStatus.level: {e.level!r} is not one of {list(DIAGNOSTIC_LEVELS)}")
        statuses.append(status(level=DIAGNOSTIC_LEVELS[e.level], name=e.name, message=e.message,
                               hardware_id=e.hardware_id,
                               values=[key_value(key=k, value=v) for k, v in e.values]))
    return _cls(DIAGNOSTIC_ARRAY, distro)(header=header_msg(stamp, "", distro), status=statuses)


def diagnostic_entries(msg: Any) -> list[DiagnosticEntry]:
    """Inverse of `diagnostic_array_msg`."""
    names = {v: k for k, v in DIAGNOSTIC_LEVELS.items()}
    out = []
    for s in msg.status:
        level = int(s.level[0]) if isinstance(s.level, bytes) else int(s.level)
        if level not in names:
            raise MessageError(f"DiagnosticStatus.level: {level}, expected one of {sorted(names)}")
        out.append(DiagnosticEntry(s.name, names[level], s.message, s.hardware_id,
                                   tuple((kv.key, kv.value) for kv in s.values)))
    return out


def transform_stamped_msg(parent: str, child: str, pose: NDArray, stamp: int, distro: str = "humble") -> Any:
    """`geometry_msgs/msg/TransformStamped`: `pose` [x, y, z, qx, qy, qz, qw] of `child` in `parent`."""
    p = np.asarray(pose, dtype=np.float64).reshape(-1)
    if p.size != 7 or not np.all(np.isfinite(p)):
        raise MessageError(f"TransformStamped {parent}->{child}: pose {p.tolist()}, expected 7 finite values")
    transform = _cls("geometry_msgs/msg/Transform", distro)(
        translation=_cls("geometry_msgs/msg/Vector3", distro)(x=p[0], y=p[1], z=p[2]),
        rotation=_cls("geometry_msgs/msg/Quaternion", distro)(x=p[3], y=p[4], z=p[5], w=p[6]),
    )
    return _cls(TRANSFORM_STAMPED, distro)(header=header_msg(stamp, parent, distro), child_frame_id=child,
                                           transform=transform)


def transform_pose(msg: Any) -> tuple[str, str, NDArray[np.float64]]:
    """(parent, child, pose (7,)) of a TransformStamped."""
    t, r = msg.transform.translation, msg.transform.rotation
    return msg.header.frame_id, msg.child_frame_id, np.array([t.x, t.y, t.z, r.x, r.y, r.z, r.w])
