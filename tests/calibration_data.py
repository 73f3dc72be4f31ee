"""Synthetic ground truth for the calibration tests: random views of a chessboard, projected with
cv2.projectPoints plus pixel noise, and the robot poses consistent with a known hand-eye transform."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from calibration.target import Chessboard
from rig.schema import CameraIntrinsics

BOARD = Chessboard(cols=9, rows=6, square_m=0.025)
# D405-like colour intrinsics at 640x480 with mild Brown-Conrady distortion.
INTRINSICS = CameraIntrinsics(width=640, height=480, fx=432.0, fy=431.0, cx=318.5, cy=242.0,
                              coeffs=(-0.05, 0.06, 0.0005, -0.0003, -0.02))


def transform(rotvec, translation) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = translation
    return T


def random_transform(rng: np.random.Generator, max_angle_deg: float = 180.0, max_t: float = 0.5) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return transform(axis * np.radians(rng.uniform(10.0, max_angle_deg)), rng.uniform(-max_t, max_t, size=3))


def board_views(rng: np.random.Generator, n: int, distance=(0.35, 0.6), cone_deg: float = 35.0,
                intrinsics: CameraIntrinsics = INTRINSICS) -> np.ndarray:
    """(n, 4, 4) T_camera_target: the camera looks at the board centre from within a cone, random roll."""
    centre = np.array([(BOARD.cols - 1) / 2, (BOARD.rows - 1) / 2, 0.0]) * BOARD.square_m
    out = []
    while len(out) < n:
        tilt = Rotation.from_rotvec(rng.normal(size=3) * np.radians(cone_deg) / 2).as_matrix()
        direction = tilt @ np.array([0.0, 0.0, -1.0])  # camera on the -z side of the board
        if direction[2] > -np.cos(np.radians(cone_deg)):
            continue
        position = centre + rng.uniform(*distance) * direction
        z = (centre - position) / np.linalg.norm(centre - position)
        x = np.cross(rng.normal(size=3), z)
        x /= np.linalg.norm(x)
        T_target_camera = np.eye(4)
        T_target_camera[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
        T_target_camera[:3, 3] = position
        T_camera_target = np.linalg.inv(T_target_camera)
        pixels = project(T_camera_target, intrinsics)
        if np.all((pixels > 10) & (pixels < [INTRINSICS.width - 10, INTRINSICS.height - 10])):
            out.append(T_camera_target)
    return np.stack(out)


def project(T_camera_target: np.ndarray, intrinsics: CameraIntrinsics = INTRINSICS) -> np.ndarray:
    rvec = cv2.Rodrigues(T_camera_target[:3, :3])[0]
    pixels, _ = cv2.projectPoints(BOARD.object_points(), rvec, T_camera_target[:3, 3], intrinsics.matrix(),
                                  np.asarray(intrinsics.coeffs))
    return pixels.reshape(-1, 2)


@dataclass
class HandEyeScene:
    mount: str
    X: np.ndarray  # eye_in_hand: T_flange_camera; eye_to_hand: T_base_camera
    Z: np.ndarray  # eye_in_hand: T_base_target; eye_to_hand: T_flange_target
    T_base_flange: np.ndarray
    T_camera_target: np.ndarray
    image_points: np.ndarray  # (N, M, 2) noisy


def hand_eye_scene(mount: str, n: int = 15, noise_px: float = 0.2, seed: int = 0,
                   intrinsics: CameraIntrinsics = INTRINSICS, cone_deg: float = 35.0) -> HandEyeScene:
    rng = np.random.default_rng(seed)
    C = board_views(rng, n, cone_deg=cone_deg, intrinsics=intrinsics)
    if mount == "eye_in_hand":
        X = transform([0.05, -0.2, 1.5], [0.0, -0.09, 0.06])
        Z = transform([0.0, 0.0, 0.7], [0.55, 0.05, 0.02])
        G = Z @ np.linalg.inv(C) @ np.linalg.inv(X)
    else:
        X = transform([-1.9, 0.4, -0.5], [-0.6, 0.4, 0.8])
        Z = transform([0.1, 3.0, 0.2], [0.03, 0.0, 0.12])
        G = X @ C @ np.linalg.inv(Z)
    noise = rng.normal(scale=noise_px, size=(n, BOARD.cols * BOARD.rows, 2))
    pixels = np.stack([project(c, intrinsics) for c in C]) + noise
    return HandEyeScene(mount, X, Z, G, C, pixels)


def rotation_error_deg(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(A[:3, :3].T @ B[:3, :3]).magnitude()))


def translation_error_m(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A[:3, 3] - B[:3, 3]))


def render_board(T_camera_target: np.ndarray, intrinsics: CameraIntrinsics = INTRINSICS) -> np.ndarray:
    """A grey 480x640 uint8 image of the chessboard (pinhole, no distortion) by a plane homography."""
    sq_px = 40
    cols, rows = BOARD.cols + 1, BOARD.rows + 1  # squares
    margin = sq_px
    tex = np.full((rows * sq_px + 2 * margin, cols * sq_px + 2 * margin), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2 == 0:
                tex[margin + r * sq_px: margin + (r + 1) * sq_px, margin + c * sq_px: margin + (c + 1) * sq_px] = 0
    # texture pixel (u, v) -> board point (x, y): the first inner corner is at texture (margin + sq, margin + sq)
    s = BOARD.square_m / sq_px
    tex_to_board = np.array([[s, 0, -(margin + sq_px - 0.5) * s], [0, s, -(margin + sq_px - 0.5) * s], [0, 0, 1]])
    K = intrinsics.matrix()
    board_to_image = K @ np.column_stack([T_camera_target[:3, 0], T_camera_target[:3, 1], T_camera_target[:3, 3]])
    H = board_to_image @ tex_to_board
    return cv2.warpPerspective(tex, H, (intrinsics.width, intrinsics.height), flags=cv2.INTER_LINEAR,
                               borderValue=200)
