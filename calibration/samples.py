"""Recorded hand-eye samples: the `.npz` file format and its loader (no pickle: `allow_pickle=False`).

Arrays in the file (N samples; poses are [x, y, z, qx, qy, qz, qw], metres, scalar-last quaternion):

- robot side, one of: `flange_poses` (N, 7), the flange in the arm's base frame; or `tcp_poses` (N, 7)
  as the arm reports them plus `tcp_in_flange` (7,), the tool centre point in the flange frame.
- camera: `camera_matrix` (3, 3), `dist_coeffs` (k,) in OpenCV order, optional `image_size` [width, height]
  (default 640 x 480).
- target side, one of:
  - `image_points` (N, M, 2) pixels and `object_points` (M, 3) or (N, M, 3) board coordinates in metres,
    optional `point_mask` (N, M) bool for partial detections (ChArUco);
  - `images` (N, H, W) or (N, H, W, 3) uint8 and `board` [cols, rows, square_m] (inner chessboard corners);
  - `target_poses` (N, 7), the target in the camera optical frame, already estimated.

Samples where the board is not found or fewer than 4 points are visible are dropped and listed.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from calibration.intrinsics import IntrinsicsError, from_matrix
from calibration.target import Chessboard, TargetError, target_pose
from rig.conventions import IMAGE_HEIGHT, IMAGE_WIDTH
from rig.rotations import UNIT_QUAT_TOL, pose_to_matrix
from rig.schema import CameraIntrinsics


class SamplesError(ValueError):
    """A samples file is missing, malformed or unusable; the message names the file and the array."""


@dataclass(frozen=True)
class HandEyeSamples:
    """Hand-eye samples ready for `solve_hand_eye`: N kept samples (pixels present when recorded)."""

    T_base_flange: NDArray[np.float64]
    T_camera_target: NDArray[np.float64]
    intrinsics: CameraIntrinsics | None
    image_points: list[NDArray[np.float64]] | None = None
    object_points: list[NDArray[np.float64]] | None = None
    dropped: tuple[int, ...] = field(default_factory=tuple)
    """Indices of recorded samples that were not usable (board not found, < 4 points)."""


def _poses(data: dict[str, NDArray], key: str, where: str, n: int | None = None) -> NDArray[np.float64]:
    arr = np.asarray(data[key], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 7 or (n is not None and len(arr) != n) or not np.all(np.isfinite(arr)):
        raise SamplesError(f"{where}: {key} has shape {arr.shape}, expected ({n or 'N'}, 7) finite poses "
                           "[x, y, z, qx, qy, qz, qw]")
    norms = np.linalg.norm(arr[:, 3:], axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_QUAT_TOL)
    if bad.size:
        raise SamplesError(f"{where}: {key}[{int(bad[0])}] quaternion norm {norms[bad[0]]:.6f}, expected 1")
    arr[:, 3:] /= norms[:, None]
    return pose_to_matrix(arr)


def _flange(data: dict[str, NDArray], where: str) -> NDArray[np.float64]:
    if "flange_poses" in data:
        return _poses(data, "flange_poses", where)
    if "tcp_poses" in data and "tcp_in_flange" in data:
        tcp = _poses(data, "tcp_poses", where)
        T_flange_tcp = _poses({"tcp_in_flange": np.reshape(data["tcp_in_flange"], (1, 7))}, "tcp_in_flange", where)[0]
        return tcp @ np.linalg.inv(T_flange_tcp)
    raise SamplesError(f"{where}: needs 'flange_poses' (N, 7) or 'tcp_poses' (N, 7) with 'tcp_in_flange' (7,) "
                       f"(present: {sorted(data)})")


def _intrinsics(data: dict[str, NDArray], where: str) -> CameraIntrinsics | None:
    if "camera_matrix" not in data:
        return None
    size = np.asarray(data.get("image_size", (IMAGE_WIDTH, IMAGE_HEIGHT))).reshape(-1)
    if size.shape != (2,):
        raise SamplesError(f"{where}: image_size {size.tolist()}, expected [width, height]")
    try:
        return from_matrix(data["camera_matrix"], data.get("dist_coeffs", np.zeros(5)), int(size[0]), int(size[1]),
                           where)
    except IntrinsicsError as exc:
        raise SamplesError(str(exc)) from None


def load_samples(path: str | os.PathLike[str]) -> HandEyeSamples:
    """Read a samples file (module docstring) and estimate each kept sample's target pose."""
    where = str(path)
    if not Path(path).is_file():
        raise SamplesError(f"{where}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
        if not hasattr(npz, "files"):
            raise ValueError("a single array, not an .npz archive of named arrays")
        with npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SamplesError(f"{where}: not a readable .npz without pickled objects ({exc})") from None
    G = _flange(data, where)
    n = len(G)
    intrinsics = _intrinsics(data, where)
    if "target_poses" in data:
        return HandEyeSamples(G, _poses(data, "target_poses", where, n), intrinsics)
    if intrinsics is None:
        raise SamplesError(f"{where}: needs 'camera_matrix' (3, 3) (and 'dist_coeffs') to estimate target poses")
    pixels, points = _detections(data, where, n)
    kept = [k for k in range(n) if pixels[k] is not None and len(pixels[k]) >= 4]
    poses = []
    for k in kept:
        try:
            poses.append(target_pose(pixels[k], points[k], intrinsics))
        except TargetError as exc:
            raise SamplesError(f"{where}: sample {k}: {exc}") from None
    dropped = tuple(k for k in range(n) if k not in kept)
    if not kept:
        raise SamplesError(f"{where}: the target was found in none of the {n} samples")
    return HandEyeSamples(G[kept], np.stack(poses), intrinsics, [pixels[k] for k in kept],
                          [points[k] for k in kept], dropped)


def _detections(data: dict[str, NDArray], where: str, n: int) -> tuple[list, list]:
    if "image_points" in data:
        img = np.asarray(data["image_points"], dtype=np.float64)
        obj = np.asarray(data.get("object_points", np.zeros((0, 3))), dtype=np.float64)
        if img.ndim != 3 or img.shape[0] != n or img.shape[2] != 2:
            raise SamplesError(f"{where}: image_points shape {img.shape}, expected ({n}, M, 2)")
        if obj.ndim == 2:
            obj = np.broadcast_to(obj, (n, *obj.shape))
        if obj.shape != (n, img.shape[1], 3):
            raise SamplesError(f"{where}: object_points shape {obj.shape}, expected ({img.shape[1]}, 3) or "
                               f"({n}, {img.shape[1]}, 3) to match image_points")
        mask = np.asarray(data.get("point_mask", np.ones(img.shape[:2], bool)), dtype=bool)
        if mask.shape != img.shape[:2]:
            raise SamplesError(f"{where}: point_mask shape {mask.shape}, expected {img.shape[:2]}")
        mask &= np.all(np.isfinite(img), axis=2)
        return [img[k][mask[k]] for k in range(n)], [obj[k][mask[k]] for k in range(n)]
    if "images" in data and "board" in data:
        board_spec = np.asarray(data["board"], dtype=np.float64).reshape(-1)
        if board_spec.shape != (3,):
            raise SamplesError(f"{where}: board {board_spec.tolist()}, expected [cols, rows, square_m]")
        try:
            board = Chessboard(int(board_spec[0]), int(board_spec[1]), float(board_spec[2]))
        except TargetError as exc:
            raise SamplesError(f"{where}: {exc}") from None
        images = data["images"]
        if len(images) != n:
            raise SamplesError(f"{where}: {len(images)} images for {n} robot poses")
        pixels = []
        for index, image in enumerate(images):
            try:
                pixels.append(board.detect(image))
            except TargetError as exc:
                raise SamplesError(f"{where}: images[{index}]: {exc}") from None
        return pixels, [board.object_points()] * n
    raise SamplesError(f"{where}: needs 'target_poses', 'image_points' + 'object_points', or 'images' + 'board' "
                       f"(present: {sorted(data)})")
