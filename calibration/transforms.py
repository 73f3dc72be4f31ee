"""The rig's calibrated transforms: config/calibration.yaml <-> validated 4x4 homogeneous matrices.

The file is a ROS parameter file read by the `static_tf` node; its layout is kept exactly: under
`static_tf: ros__parameters:` a `world_frame` name and five poses `[x, y, z, qx, qy, qz, qw]` (metres,
scalar-last unit quaternion, the child frame expressed in the parent frame). Here each pose becomes a
4x4 matrix `T_parent_child`, so `T_world_base_left @ p_base` maps a point from the left base frame to
`world`. Writing updates only the named keys in place (comments and every other key survive) and
replaces the file atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray

from rig import hardware_limits as hw
from rig.config import ConfigError, config_path, load_yaml
from rig.rotations import UNIT_QUAT_TOL, matrix_to_pose, pose_to_matrix, quat_to_rotvec

CALIBRATION_FILE: Final = "calibration.yaml"
SECTION: Final = "static_tf"
"""Node name whose `ros__parameters` hold the transforms."""

TRANSFORM_KEYS: Final = (
    "T_world_base_left",
    "T_world_base_right",
    "T_world_front",
    "T_flange_wrist_left",
    "T_flange_wrist_right",
)
ORTHONORMAL_TOL: Final = 1e-6
"""Largest accepted entry of |R^T R - I| for a 4x4 matrix that claims to be a rigid transform."""


class CalibrationError(ConfigError):
    """Calibration data is missing or invalid; the message names the file or source and the key."""


def pose_to_transform(value: Any, where: str) -> NDArray[np.float64]:
    """A YAML pose `[x, y, z, qx, qy, qz, qw]` as a 4x4 matrix; errors name `where`, the value and the form."""
    try:
        pose = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: {value!r}, expected 7 numbers [x, y, z, qx, qy, qz, qw]") from None
    if pose.shape != (7,) or not np.all(np.isfinite(pose)):
        raise CalibrationError(f"{where}: {value!r}, expected 7 finite numbers [x, y, z, qx, qy, qz, qw]")
    norm = float(np.linalg.norm(pose[3:]))
    if abs(norm - 1.0) > UNIT_QUAT_TOL:
        raise CalibrationError(
            f"{where}: quaternion {pose[3:].tolist()} has norm {norm:.6f}, expected a unit quaternion "
            f"(|norm - 1| <= {UNIT_QUAT_TOL}); the rotation is not orthonormal"
        )
    pose[3:] /= norm
    return pose_to_matrix(pose)


def validate_transform(matrix: ArrayLike, where: str) -> NDArray[np.float64]:
    """A float64 copy of a 4x4 rigid transform, or a CalibrationError naming `where` and what is wrong."""
    T = np.array(matrix, dtype=np.float64)
    if T.shape != (4, 4):
        raise CalibrationError(f"{where}: shape {T.shape}, expected a 4x4 homogeneous transform")
    if not np.all(np.isfinite(T)):
        raise CalibrationError(f"{where}: contains non-finite values {T.tolist()}")
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=1e-12):
        raise CalibrationError(f"{where}: last row {T[3].tolist()}, expected [0, 0, 0, 1]")
    R = T[:3, :3]
    err = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if err > ORTHONORMAL_TOL:
        raise CalibrationError(f"{where}: rotation not orthonormal (max |R^T R - I| = {err:.2e} > {ORTHONORMAL_TOL})")
    if np.linalg.det(R) < 0.0:
        raise CalibrationError(f"{where}: rotation has determinant {np.linalg.det(R):.3f}, a reflection, expected +1")
    return T


def transform_to_pose(matrix: ArrayLike, where: str = "transform") -> list[float]:
    """A validated 4x4 transform as the YAML pose list `[x, y, z, qx, qy, qz, qw]` (canonical quaternion)."""
    pose = matrix_to_pose(validate_transform(matrix, where))
    return [float(v) + 0.0 for v in pose]  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True)
class Calibration:
    """The five calibrated transforms of the rig as 4x4 matrices `T_parent_child`, keyed as in the YAML."""

    transforms: Mapping[str, NDArray[np.float64]]
    world_frame: str = "world"
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other parameters of the section, kept for writing back."""

    def __post_init__(self) -> None:
        missing = [k for k in TRANSFORM_KEYS if k not in self.transforms]
        if missing:
            raise CalibrationError(f"{self.source or 'calibration'}: missing transform(s) {missing}")
        checked = {k: validate_transform(self.transforms[k], f"{self.source or 'calibration'}: {k}")
                   for k in TRANSFORM_KEYS}
        for key, T in checked.items():
            limit = hw.FLANGE_CAMERA_TRANSLATION_MAX_M if key.startswith("T_flange") else hw.WORLD_TRANSLATION_MAX_M
            distance = float(np.linalg.norm(T[:3, 3]))
            if distance > limit:
                raise CalibrationError(f"{self.source or 'calibration'}: {key}: translation {T[:3, 3].tolist()} is "
                                       f"{distance:.3f} m long, expected at most {limit} m (metres, not mm?)")
        object.__setattr__(self, "transforms", checked)

    def __getitem__(self, key: str) -> NDArray[np.float64]:
        if key not in self.transforms:
            raise CalibrationError(
                f"{self.source or 'calibration'}: no transform {key!r} (known: {list(TRANSFORM_KEYS)})")
        return self.transforms[key].copy()

    def T_world_base(self, arm: str) -> NDArray[np.float64]:
        """Pose of arm `left` / `right`'s base frame in `world`."""
        return self[f"T_world_base_{arm}"]

    def T_flange_wrist(self, arm: str) -> NDArray[np.float64]:
        """Pose of the wrist camera's optical frame in arm `left` / `right`'s flange frame."""
        return self[f"T_flange_wrist_{arm}"]

    def with_transforms(self, updates: Mapping[str, ArrayLike]) -> Calibration:
        """A copy with some transforms replaced (validated)."""
        unknown = sorted(set(updates) - set(TRANSFORM_KEYS))
        if unknown:
            raise CalibrationError(f"unknown calibration key(s) {unknown}, expected some of {list(TRANSFORM_KEYS)}")
        merged = {**self.transforms, **{k: np.asarray(v, dtype=np.float64) for k, v in updates.items()}}
        return Calibration(merged, self.world_frame, self.source, self.extra)


def parse_calibration(data: Mapping[str, Any], source: str) -> Calibration:
    """Calibration from a parsed calibration.yaml mapping; errors name `source` and the key path."""
    section = data.get(SECTION)
    params = section.get("ros__parameters") if isinstance(section, Mapping) else None
    if not isinstance(params, Mapping):
        raise CalibrationError(f"{source}: missing mapping {SECTION}.ros__parameters (present: {sorted(data)})")
    where = f"{source}: {SECTION}.ros__parameters"
    transforms = {}
    for key in TRANSFORM_KEYS:
        if key not in params:
            raise CalibrationError(f"{where}: missing key {key!r} ([x, y, z, qx, qy, qz, qw])")
        transforms[key] = pose_to_transform(params[key], f"{where}.{key}")
    world = params.get("world_frame", "world")
    if not isinstance(world, str) or not world:
        raise CalibrationError(f"{where}.world_frame: {world!r}, expected a frame name")
    extra = {k: v for k, v in params.items() if k not in TRANSFORM_KEYS and k != "world_frame"}
    return Calibration(transforms, world, source, extra)


def load_calibration(name: str | os.PathLike[str] = CALIBRATION_FILE) -> Calibration:
    """Read and validate a calibration file given as a path or a config name (default calibration.yaml)."""
    path = config_path(name)
    return parse_calibration(load_yaml(path), str(path))


def _format_pose(pose: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in pose) + "]"


def _patch_text(text: str, poses: Mapping[str, list[float]]) -> str | None:
    """Replace each key's one-line flow list in place; None when a key is absent or not on one line."""
    for key, pose in poses.items():
        pattern = re.compile(rf"^(?P<head>[ \t]+{re.escape(key)}:[ \t]*)\[[^\]\n]*\]", re.MULTILINE)
        if len(pattern.findall(text)) != 1:
            return None
        text = pattern.sub(lambda m, p=pose: m.group("head") + _format_pose(p), text)
    return text


def _atomic_write(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_calibration(path: str | os.PathLike[str], updates: Mapping[str, ArrayLike],
                     template: str | os.PathLike[str] | None = None, world_frame: str = "world") -> Path:
    """Write transforms (4x4 matrices) into a calibration file, atomically.

    An existing file (or, when `path` does not exist, the `template` file) keeps its comments and every
    other key: each updated key's pose list is replaced in place (or, if it is not a one-line list, the
    file is re-serialised without comments). Without either, a new file needs all five transforms. The
    result is re-read and checked before it replaces the file.
    """
    target = Path(path)
    unknown = sorted(set(updates) - set(TRANSFORM_KEYS))
    if unknown:
        raise CalibrationError(
            f"{target}: unknown calibration key(s) {unknown}, expected some of {list(TRANSFORM_KEYS)}")
    poses = {key: transform_to_pose(value, f"{target}: {key}") for key, value in updates.items()}
    source = target if target.exists() else (config_path(template) if template is not None else None)
    if source is not None:
        original = source.read_text()
        try:
            data = yaml.safe_load(original) or {}
        except yaml.YAMLError as exc:
            raise CalibrationError(f"{source}: invalid YAML ({exc})") from None
        section = data.get(SECTION) if isinstance(data, dict) else None
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise CalibrationError(f"{source}: missing mapping {SECTION}.ros__parameters, not a calibration file")
        expected = data
        expected[SECTION]["ros__parameters"].update(
            {k: [float(f"{v:.6f}") for v in p] for k, p in poses.items()})
        text = _patch_text(original, poses)
        if text is None or yaml.safe_load(text) != expected:
            text = yaml.safe_dump(expected, sort_keys=False, default_flow_style=None)
    else:
        missing = [k for k in TRANSFORM_KEYS if k not in poses]
        if missing:
            raise CalibrationError(f"{target}: does not exist and {missing} are not given; start from a copy "
                                   f"of config/{CALIBRATION_FILE}")
        params: dict[str, Any] = {"world_frame": world_frame}
        params.update({k: [float(f"{v:.6f}") for v in poses[k]] for k in TRANSFORM_KEYS})
        text = yaml.safe_dump({SECTION: {"ros__parameters": params}}, sort_keys=False, default_flow_style=None)
    parse_calibration(yaml.safe_load(text), str(target))  # never write a file that would not load
    _atomic_write(target, text)
    return target


def describe(calibration: Calibration) -> str:
    """Human-readable listing: each transform's translation (m), rotation (rotation vector, deg) and matrix."""
    lines = [f"calibration: {calibration.source or '(in memory)'}  world frame: {calibration.world_frame}"]
    for key in TRANSFORM_KEYS:
        T = calibration.transforms[key]
        pose = matrix_to_pose(T)
        rotvec = quat_to_rotvec(pose[3:])
        angle = float(np.degrees(np.linalg.norm(rotvec)))
        axis = rotvec / np.linalg.norm(rotvec) if angle > 0 else np.zeros(3)
        lines.append(f"\n{key}")
        lines.append(f"  translation [m]     : {np.array2string(T[:3, 3], precision=4, suppress_small=True)}")
        lines.append(f"  quaternion xyzw     : {np.array2string(pose[3:], precision=6, suppress_small=True)}")
        lines.append(f"  rotation            : {angle:.3f} deg about {np.array2string(axis, precision=4)}")
        for row in T:
            lines.append("    " + " ".join(f"{v:+.6f}" for v in row))
    return "\n".join(lines)
