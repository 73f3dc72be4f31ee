"""Hand-eye accuracy and solve time on synthetic ground truth (the test scenes of tests/calibration_data.py):
N random views of a 9x6 chessboard (25 mm squares) at 0.35-0.6 m from within a cone about the board
normal, corners projected with cv2.projectPoints
plus Gaussian pixel noise, the robot poses consistent with a known hand-eye transform. Reports the error of
the recovered transform over many seeds, per noise level, for the closed-form + pose refinement and for
the reprojection refinement, and the same for base registration from touched points.

Usage: python3 bench/bench_calibration.py [--seeds 20] [--method auto]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from calibration_data import (  # noqa: E402
    BOARD,
    INTRINSICS,
    hand_eye_scene,
    random_transform,
    rotation_error_deg,
    translation_error_m,
)

from calibration.base_registration import register_points  # noqa: E402
from calibration.hand_eye import opencv_has_hand_eye, solve_hand_eye  # noqa: E402
from calibration.target import target_pose  # noqa: E402


def bench_hand_eye(seeds: int, method: str) -> None:
    print(f"hand-eye eye_in_hand, method {method} (cv2 calibrateHandEye available: {opencv_has_hand_eye()}), "
          f"{seeds} seeds; error of X: median / max over seeds")
    print(f"{'N':>3} {'cone deg':>8} {'noise px':>8} {'refine':>7} {'rot deg med':>11} {'rot deg max':>11} "
          f"{'trans mm med':>12} {'trans mm max':>12} {'solve ms':>9}")
    for n, cone in ((8, 35.0), (15, 35.0), (15, 60.0)):
        for noise in (0.1, 0.3, 1.0):
            for refine in (False, True):
                rot, trans, times = [], [], []
                for seed in range(seeds):
                    scene = hand_eye_scene("eye_in_hand", n=n, noise_px=noise, seed=1000 + seed, cone_deg=cone)
                    C = np.stack([target_pose(p, BOARD.object_points(), INTRINSICS) for p in scene.image_points])
                    pixels = list(scene.image_points) if refine else None
                    points = [BOARD.object_points()] * n if refine else None
                    start = time.perf_counter()
                    result = solve_hand_eye(scene.T_base_flange, C, "eye_in_hand", method, pixels, points,
                                            INTRINSICS if refine else None)
                    times.append(time.perf_counter() - start)
                    rot.append(rotation_error_deg(result.X, scene.X))
                    trans.append(translation_error_m(result.X, scene.X) * 1000)
                print(f"{n:>3} {cone:>8.0f} {noise:>8.1f} {'pixels' if refine else 'poses':>7} {np.median(rot):>11.3f} "
                      f"{np.max(rot):>11.3f} {np.median(trans):>12.3f} {np.max(trans):>12.3f} "
                      f"{np.median(times) * 1000:>9.1f}")


def bench_registration(seeds: int) -> None:
    print(f"\nbase registration, {seeds} seeds, points spread over 0.6 x 1.0 x 0.15 m; error of T_world_base")
    print(f"{'points':>6} {'noise mm':>8} {'rot deg max':>11} {'trans mm max':>12} {'rms mm med':>10}")
    for n in (4, 8, 16):
        for noise_mm in (0.2, 1.0):
            rot, trans, rms = [], [], []
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                T = random_transform(rng)
                world = np.column_stack([rng.uniform(-0.3, 0.3, n), rng.uniform(-0.5, 0.5, n), rng.uniform(0, 0.15, n)])
                base = (world - T[:3, 3]) @ T[:3, :3]
                fit = register_points(world + rng.normal(scale=noise_mm / 1000, size=world.shape), base)
                rot.append(rotation_error_deg(fit.T, T))
                trans.append(translation_error_m(fit.T, T) * 1000)
                rms.append(fit.rms_m * 1000)
            print(f"{n:>6} {noise_mm:>8.1f} {np.max(rot):>11.3f} {np.max(trans):>12.3f} {np.median(rms):>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--method", default="auto")
    args = parser.parse_args()
    bench_hand_eye(args.seeds, args.method)
    bench_registration(args.seeds)


if __name__ == "__main__":
    main()
