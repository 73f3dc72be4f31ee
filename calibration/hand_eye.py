"""Hand-eye calibration: the wrist cameras on the flanges (eye-in-hand) and the front camera (eye-to-hand).

Each sample pairs a flange pose `G_i = T_base_flange` (as the arm reports it) with the calibration
target's pose `C_i = T_camera_target` (from `target.target_pose`, i.e. solvePnP with the camera's
intrinsics). With `M_i = G_i` (eye-in-hand) or `M_i = inv(G_i)` (eye-to-hand) every sample satisfies
`M_i @ X @ C_i = Z` for two unknown constant transforms:

| mount        | X (the result)              | Z (by-product)                   |
|--------------|-----------------------------|----------------------------------|
| eye_in_hand  | `T_flange_camera` (wrist)   | `T_base_target` (board on table) |
| eye_to_hand  | `T_base_camera` (front)     | `T_flange_target` (board held)   |

Solvers: OpenCV's `calibrateHandEye` (tsai, park, horaud, andreff, daniilidis) and
`calibrateRobotWorldHandEye` (shah, li) when the installed cv2 exposes them, and `builtin` (always
available): Park-Martin rotation over all sample pairs (`Rotation.align_vectors`), linear least-squares
translation, then a nonlinear refinement of X and Z on the sample poses. When the detected pixels are
given, X and Z are finally refined on the reprojection error, which does not suffer from PnP's depth
noise. The report gives per-sample residuals: how far each sample's `M_i X C_i` is from Z (rotation,
translation) and the reprojection error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from calibration.target import project
from calibration.transforms import validate_transform
from rig.rotations import matrix_to_pose, pose_to_matrix, quat_to_rotvec, rotvec_to_quat
from rig.schema import CameraIntrinsics

MOUNTS: Final = ("eye_in_hand", "eye_to_hand")
HAND_EYE_METHODS: Final = {
    "tsai": "CALIB_HAND_EYE_TSAI",
    "park": "CALIB_HAND_EYE_PARK",
    "horaud": "CALIB_HAND_EYE_HORAUD",
    "andreff": "CALIB_HAND_EYE_ANDREFF",
    "daniilidis": "CALIB_HAND_EYE_DANIILIDIS",
}
"""Method name -> cv2 constant for `cv2.calibrateHandEye`."""
ROBOT_WORLD_METHODS: Final = {"shah": "CALIB_ROBOT_WORLD_HAND_EYE_SHAH", "li": "CALIB_ROBOT_WORLD_HAND_EYE_LI"}
"""Method name -> cv2 constant for `cv2.calibrateRobotWorldHandEye`."""
METHODS: Final = ("auto", *HAND_EYE_METHODS, *ROBOT_WORLD_METHODS, "builtin")
MIN_SAMPLES: Final = 3
ROTATION_WEIGHT_M: Final = 0.1
"""Metres per radian when rotation and translation residuals share one cost (pose refinement)."""


class HandEyeError(ValueError):
    """The samples cannot determine the hand-eye transform; the message says why."""


def opencv_has_hand_eye() -> bool:
    """Whether the installed cv2 exposes calibrateHandEye (OpenCV 5.0.0's Python wheels do not)."""
    return hasattr(cv2, "calibrateHandEye") and hasattr(cv2, "calibrateRobotWorldHandEye")


@dataclass(frozen=True)
class HandEyeResult:
    """Solved transforms with per-sample residuals (see the module docstring for X and Z)."""

    mount: str
    method: str
    X: NDArray[np.float64]
    """eye_in_hand: T_flange_camera; eye_to_hand: T_base_camera."""
    Z: NDArray[np.float64]
    """eye_in_hand: T_base_target; eye_to_hand: T_flange_target."""
    rotation_residual_deg: NDArray[np.float64]
    translation_residual_m: NDArray[np.float64]
    reprojection_rms_px: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Per-sample RMS reprojection error; empty when no pixels were given."""
    refined_on_pixels: bool = False

    @property
    def n_samples(self) -> int:
        return len(self.rotation_residual_deg)

    def summary(self) -> str:
        """Multi-line report: method, result pose and residual statistics."""
        pose = matrix_to_pose(self.X)
        rot, trans = self.rotation_residual_deg, self.translation_residual_m * 1000.0
        lines = [
            f"hand-eye {self.mount}, method {self.method}, {self.n_samples} samples"
            + (", refined on reprojection error" if self.refined_on_pixels else ""),
            f"  X translation [m]  : {np.array2string(pose[:3], precision=5, suppress_small=True)}",
            f"  X quaternion xyzw  : {np.array2string(pose[3:], precision=6, suppress_small=True)}",
            f"  consistency rotation    [deg]: rms {np.sqrt(np.mean(rot**2)):.3f}  max {rot.max():.3f}"
            f" (sample {int(rot.argmax())})",
            f"  consistency translation [mm] : rms {np.sqrt(np.mean(trans**2)):.3f}  max {trans.max():.3f}"
            f" (sample {int(trans.argmax())})",
        ]
        if self.reprojection_rms_px.size:
            px = self.reprojection_rms_px
            lines.append(f"  reprojection [px]            : rms {np.sqrt(np.mean(px**2)):.3f}  max {px.max():.3f}"
                         f" (sample {int(px.argmax())})")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------- helpers


def _params_to_matrix(params: NDArray[np.float64]) -> NDArray[np.float64]:
    """6 numbers [tx, ty, tz, rx, ry, rz] (translation, rotation vector) to a 4x4 transform."""
    return pose_to_matrix(np.concatenate([params[:3], rotvec_to_quat(params[3:6])]))


def _matrix_to_params(T: NDArray[np.float64]) -> NDArray[np.float64]:
    pose = matrix_to_pose(T)
    return np.concatenate([pose[:3], quat_to_rotvec(pose[3:])])


def _inv(T: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros_like(T)
    R = T[..., :3, :3]
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def _chained(M: NDArray[np.float64], X: NDArray[np.float64], C: NDArray[np.float64]) -> NDArray[np.float64]:
    return M @ X @ C


def _mean_transform(Ts: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = Rotation.from_matrix(Ts[:, :3, :3]).mean().as_matrix()
    out[:3, 3] = Ts[:, :3, 3].mean(axis=0)
    return out


def _residuals(M: NDArray, X: NDArray, C: NDArray, Z: NDArray) -> tuple[NDArray, NDArray]:
    chained = _chained(M, X, C)
    rel = np.swapaxes(Z[:3, :3], 0, 1)[None] @ chained[:, :3, :3]
    angles = Rotation.from_matrix(rel).magnitude()
    return np.degrees(angles), np.linalg.norm(chained[:, :3, 3] - Z[:3, 3], axis=1)


def _check_motion(M: NDArray[np.float64]) -> None:
    """Hand-eye needs rotations about at least two non-parallel axes between samples."""
    rel = _inv(M[:, None]) @ M[None, :]
    rotvecs = Rotation.from_matrix(rel[..., :3, :3].reshape(-1, 3, 3)).as_rotvec()
    angles = np.linalg.norm(rotvecs, axis=1)
    if angles.max() < np.radians(5.0):
        raise HandEyeError(f"the flange rotates at most {np.degrees(angles.max()):.1f} deg between samples; "
                           "tilt the wrist by 15-45 deg between poses")
    strong = rotvecs[angles > np.radians(2.0)]
    axes = strong / np.linalg.norm(strong, axis=1, keepdims=True)
    singular = np.linalg.svd(axes, compute_uv=False)
    if len(singular) < 2 or singular[1] / singular[0] < 0.05:
        raise HandEyeError("all flange rotations between samples share one axis; rotate the wrist about "
                           "at least two different axes")


# ------------------------------------------------------------------------------------- solvers


def _solve_builtin(M: NDArray[np.float64], C: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Park-Martin rotation and least-squares translation over all pairs, then pose refinement."""
    i, j = np.triu_indices(len(M), k=1)
    A = _inv(M[j]) @ M[i]  # A X = X B for every pair, from M_i X C_i = M_j X C_j
    B = C[j] @ _inv(C[i])
    alpha = Rotation.from_matrix(A[:, :3, :3]).as_rotvec()
    beta = Rotation.from_matrix(B[:, :3, :3]).as_rotvec()
    weights = np.linalg.norm(alpha, axis=1) > 1e-6
    R_X = Rotation.align_vectors(alpha[weights], beta[weights])[0].as_matrix()
    lhs = (A[:, :3, :3] - np.eye(3)).reshape(-1, 3)
    rhs = (np.einsum("ij,njk->nik", R_X, B[:, :3, 3:4])[..., 0] - A[:, :3, 3]).reshape(-1)
    t_X = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    X = np.eye(4)
    X[:3, :3], X[:3, 3] = R_X, t_X
    Z = _mean_transform(_chained(M, X, C))

    def cost(p: NDArray[np.float64]) -> NDArray[np.float64]:
        Xp, Zp = _params_to_matrix(p[:6]), _params_to_matrix(p[6:])
        chained = _chained(M, Xp, C)
        rel = np.swapaxes(Zp[:3, :3], 0, 1)[None] @ chained[:, :3, :3]
        rot = Rotation.from_matrix(rel).as_rotvec() * ROTATION_WEIGHT_M
        return np.concatenate([rot.ravel(), (chained[:, :3, 3] - Zp[:3, 3]).ravel()])

    fit = least_squares(cost, np.concatenate([_matrix_to_params(X), _matrix_to_params(Z)]), method="lm")
    return _params_to_matrix(fit.x[:6]), _params_to_matrix(fit.x[6:])


def _rt(Ts: NDArray[np.float64]) -> tuple[list[NDArray], list[NDArray]]:
    return [T[:3, :3].copy() for T in Ts], [T[:3, 3:4].copy() for T in Ts]


def _solve_opencv(M: NDArray[np.float64], C: NDArray[np.float64], method: str) -> tuple[NDArray, NDArray]:
    if not opencv_has_hand_eye():
        raise HandEyeError(f"method {method!r} needs cv2.calibrateHandEye, which this OpenCV {cv2.__version__} "
                           "does not expose to Python (opencv/opencv#29565); use method 'builtin' or 'auto'")
    if method in HAND_EYE_METHODS:
        R_m, t_m = _rt(M)  # "gripper2base" slot: M_i
        R_c, t_c = _rt(C)  # "target2cam" slot: C_i
        R, t = cv2.calibrateHandEye(R_m, t_m, R_c, t_c, method=getattr(cv2, HAND_EYE_METHODS[method]))
        X = np.eye(4)
        X[:3, :3], X[:3, 3] = R, np.asarray(t).reshape(3)
        return X, _mean_transform(_chained(M, X, C))
    # calibrateRobotWorldHandEye solves cTw wTb = cTg gTb; ours is C_i inv(Z) = inv(X) inv(M_i).
    R_c, t_c = _rt(C)
    R_m, t_m = _rt(_inv(M))
    R_bw, t_bw, R_gc, t_gc = cv2.calibrateRobotWorldHandEye(
        R_c, t_c, R_m, t_m, method=getattr(cv2, ROBOT_WORLD_METHODS[method]))
    inv_Z, inv_X = np.eye(4), np.eye(4)
    inv_Z[:3, :3], inv_Z[:3, 3] = R_bw, np.asarray(t_bw).reshape(3)
    inv_X[:3, :3], inv_X[:3, 3] = R_gc, np.asarray(t_gc).reshape(3)
    return _inv(inv_X), _inv(inv_Z)


def _refine_on_pixels(M: NDArray, X: NDArray, Z: NDArray, pixels: Sequence[NDArray], points: Sequence[NDArray],
                      intrinsics: CameraIntrinsics) -> tuple[NDArray, NDArray]:
    """Minimise the reprojection error of every sample's board points over X and Z jointly."""
    inv_M = _inv(M)

    def cost(p: NDArray[np.float64]) -> NDArray[np.float64]:
        inv_X, Zp = _inv(_params_to_matrix(p[:6])), _params_to_matrix(p[6:])
        return np.concatenate([
            (project(inv_X @ inv_M[k] @ Zp, points[k], intrinsics) - pixels[k]).ravel() for k in range(len(M))
        ])

    fit = least_squares(cost, np.concatenate([_matrix_to_params(X), _matrix_to_params(Z)]), method="lm")
    return _params_to_matrix(fit.x[:6]), _params_to_matrix(fit.x[6:])


def _as_transforms(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 7:
        arr = pose_to_matrix(arr)
    if arr.ndim != 3 or arr.shape[1:] != (4, 4):
        raise HandEyeError(f"{name}: shape {arr.shape}, expected (N, 4, 4) transforms or (N, 7) poses")
    return np.stack([validate_transform(T, f"{name}[{k}]") for k, T in enumerate(arr)])


def solve_hand_eye(
    T_base_flange: ArrayLike,
    T_camera_target: ArrayLike,
    mount: str,
    method: str = "auto",
    image_points: Sequence[ArrayLike] | None = None,
    object_points: Sequence[ArrayLike] | None = None,
    intrinsics: CameraIntrinsics | None = None,
    refine: bool = True,
) -> HandEyeResult:
    """Solve `M_i X C_i = Z` (module docstring) from N >= 3 samples.

    T_base_flange, T_camera_target: (N, 4, 4) transforms or (N, 7) poses [x, y, z, qx, qy, qz, qw].
    method: one of METHODS; "auto" is OpenCV's Park-Martin when available, else "builtin".
    image_points / object_points (per sample (M_k, 2) / (M_k, 3)) and intrinsics enable the final
    reprojection refinement (when `refine`) and the reprojection residuals.
    """
    if mount not in MOUNTS:
        raise HandEyeError(f"mount: {mount!r}, expected one of {list(MOUNTS)}")
    if method not in METHODS:
        raise HandEyeError(f"method: {method!r}, expected one of {list(METHODS)}")
    G = _as_transforms(T_base_flange, "T_base_flange")
    C = _as_transforms(T_camera_target, "T_camera_target")
    if len(G) != len(C) or len(G) < MIN_SAMPLES:
        raise HandEyeError(f"{len(G)} flange poses and {len(C)} target poses, "
                           f"expected the same number >= {MIN_SAMPLES}")
    M = G if mount == "eye_in_hand" else _inv(G)
    _check_motion(M)
    if method == "auto":
        method = "park" if opencv_has_hand_eye() else "builtin"
    X, Z = _solve_builtin(M, C) if method == "builtin" else _solve_opencv(M, C, method)

    pixels: list[NDArray] = []
    points: list[NDArray] = []
    if image_points is not None or object_points is not None:
        if image_points is None or object_points is None or intrinsics is None:
            raise HandEyeError("image_points, object_points and intrinsics must be given together")
        if len(image_points) != len(G) or len(object_points) != len(G):
            raise HandEyeError(f"{len(image_points)} pixel sets and {len(object_points)} point sets "
                               f"for {len(G)} samples")
        pixels = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in image_points]
        points = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in object_points]
        if refine:
            X, Z = _refine_on_pixels(M, X, Z, pixels, points, intrinsics)
    rot, trans = _residuals(M, X, C, Z)
    reproj = np.zeros(0)
    if pixels:
        inv_X, inv_M = _inv(X), _inv(M)
        reproj = np.array([
            np.sqrt(np.mean(np.sum((project(inv_X @ inv_M[k] @ Z, points[k], intrinsics) - pixels[k]) ** 2, axis=1)))
            for k in range(len(M))
        ])
    backend = "opencv" if method in HAND_EYE_METHODS or method in ROBOT_WORLD_METHODS else "numpy"
    return HandEyeResult(mount, f"{method} ({backend})", X, Z, rot, trans, reproj, bool(pixels) and refine)
