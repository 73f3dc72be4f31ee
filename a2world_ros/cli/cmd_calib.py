"""`a2world calib show|hand-eye|register-bases|intrinsics`: inspect and update config/calibration.yaml.

`show` prints the five calibrated transforms. `hand-eye` solves a wrist camera's `T_flange_wrist_<arm>`
or the front camera's `T_world_front` from recorded samples; `register-bases` places the arm bases in
`world` from touched points; both write only their keys back (atomically, comments kept) and only
when the residuals pass the limits in config/calibration_tools.yaml. `intrinsics` estimates a camera's
intrinsics from chessboard images. File formats: docs/calibration.md.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_INPUT = 2

SHOW_HELP = """\
Print each calibrated transform of a calibration file: translation (m), quaternion (qx, qy, qz, qw),
rotation angle and axis, and the 4x4 matrix T_parent_child (maps points from the child frame to the
parent frame). Exits 2 if the file is missing or invalid (the message names the key).

Example:
  a2world calib show
  a2world calib show --config /tmp/calibration.yaml
"""

HAND_EYE_HELP = """\
Solve a camera's mounting from recorded samples (robot flange pose + calibration-board view each; the
.npz layout is in docs/calibration.md) and write it into --out:
  wrist_left / wrist_right  eye-in-hand: board fixed on the table, the arm moves the camera;
                            writes T_flange_wrist_<arm>.
  front                     eye-to-hand: board held by arm --arm, the front camera is fixed;
                            writes T_world_front = T_world_base_<arm> (from the file) @ T_base_front.
Take 10-20 samples with the wrist tilted 15-45 deg about different axes between them, the board
filling a good part of the image. The report shows per-sample consistency and reprojection residuals;
above the limits in calibration_tools.yaml nothing is written (exit 1) unless --force. Only the solved
key changes in --out; if --out does not exist it starts as a copy of --config.

Example:
  a2world calib hand-eye --samples wrist_left.npz --camera wrist_left --out config/calibration.yaml
  a2world calib hand-eye --samples front.npz --camera front --arm left --out config/calibration.yaml
"""

REGISTER_HELP = """\
Place the arm bases in `world` from points touched with each arm's TCP (pointer tool; TCP positions in
each arm's base frame). The .npz holds tcp_points_left (N, 3), tcp_points_right (N, 3) and optionally
world_points (N, 3), at least 3 points spread over the table. With world_points both
T_world_base_left and T_world_base_right are fitted; without, the right base is placed relative to
the left base already in the file (only T_world_base_right changes). Writes when the RMS residual is
within calibration_tools.yaml's limit (exit 1 otherwise) unless --force.

Example:
  a2world calib register-bases --points touch.npz --out config/calibration.yaml
"""

INTRINSICS_HELP = """\
Estimate pinhole intrinsics and Brown-Conrady distortion (OpenCV order k1, k2, p1, p2, k3) from
images of a chessboard (any format OpenCV reads). --board is the number of INNER corners COLSxROWS.
Prints the camera matrix, distortion, RMS reprojection error and the images where the board was not
found. Use 15-30 views covering the whole image at different tilts.

Example:
  a2world calib intrinsics --images 'captures/front_*.png' --board 9x6 --square 0.025
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calib",
        help="show and update the rig calibration (hand-eye, base registration, intrinsics)",
        description="Calibration: `show` the transforms, solve `hand-eye`, `register-bases`, estimate `intrinsics`.",
    )
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="calib_command", metavar="SUBCOMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    p_show = sub.add_parser("show", help="print the calibrated transforms", description=SHOW_HELP, formatter_class=raw)
    p_show.add_argument("--config", default="calibration.yaml",
                        help="calibration file name or path (default: calibration.yaml from the config dirs)")
    p_show.set_defaults(func=cmd_show)

    p_he = sub.add_parser("hand-eye", help="solve a camera's hand-eye transform from recorded samples",
                          description=HAND_EYE_HELP, formatter_class=raw)
    p_he.add_argument("--samples", required=True, help="recorded samples (.npz, see docs/calibration.md)")
    p_he.add_argument("--camera", required=True, choices=("wrist_left", "wrist_right", "front"))
    p_he.add_argument("--arm", choices=("left", "right"),
                      help="front camera only: the arm holding the board (its base placement is used)")
    p_he.add_argument("--out", required=True, help="calibration file to update (created from --config if absent)")
    p_he.add_argument("--config", default="calibration.yaml", help="template when --out does not exist")
    p_he.add_argument("--method", help="solver; default from calibration_tools.yaml (see there for the list)")
    p_he.add_argument("--no-refine", action="store_true", help="skip the reprojection refinement")
    p_he.add_argument("--tools-config", default="calibration_tools.yaml", help="limits and defaults file")
    p_he.add_argument("--force", action="store_true", help="write even when residuals exceed the limits")
    p_he.add_argument("--dry-run", action="store_true", help="solve and report, write nothing")
    p_he.set_defaults(func=cmd_hand_eye)

    p_reg = sub.add_parser("register-bases", help="place the arm bases in world from touched points",
                           description=REGISTER_HELP, formatter_class=raw)
    p_reg.add_argument("--points", required=True, help="touched points (.npz)")
    p_reg.add_argument("--out", required=True, help="calibration file to update (created from --config if absent)")
    p_reg.add_argument("--config", default="calibration.yaml", help="template when --out does not exist")
    p_reg.add_argument("--tools-config", default="calibration_tools.yaml", help="limits file")
    p_reg.add_argument("--force", action="store_true", help="write even when the residual exceeds the limit")
    p_reg.add_argument("--dry-run", action="store_true", help="solve and report, write nothing")
    p_reg.set_defaults(func=cmd_register_bases)

    p_int = sub.add_parser("intrinsics", help="estimate intrinsics from chessboard images",
                           description=INTRINSICS_HELP, formatter_class=raw)
    p_int.add_argument("--images", required=True, nargs="+", help="image files or glob patterns")
    p_int.add_argument("--board", required=True, help="inner corners COLSxROWS, e.g. 9x6")
    p_int.add_argument("--square", required=True, type=float, help="square side in metres")
    p_int.set_defaults(func=cmd_intrinsics)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_INPUT


def _tools(name: str, section: str) -> dict[str, Any]:
    from rig.config import ConfigError, load_yaml

    data = load_yaml(name)
    value = data.get(section)
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: missing mapping {section!r} (present: {sorted(data)})")
    return value


def _limit(tools: dict[str, Any], key: str, where: str) -> float:
    from rig.config import ConfigError, require

    value = require(tools, key, where)
    if not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}.{key}: {value!r}, expected a positive number")
    return float(value)


def cmd_show(args: argparse.Namespace) -> int:
    from calibration.transforms import describe, load_calibration
    from rig.config import ConfigError

    try:
        print(describe(load_calibration(args.config)))
    except ConfigError as exc:
        return _error(str(exc))
    return EXIT_OK


def _current(out: str, template: str) -> Any:
    from calibration.transforms import load_calibration

    return load_calibration(out if Path(out).is_file() else template)


def cmd_hand_eye(args: argparse.Namespace) -> int:
    import numpy as np

    from calibration.hand_eye import HandEyeError, solve_hand_eye
    from calibration.samples import SamplesError, load_samples
    from rig.config import ConfigError

    try:
        tools = _tools(args.tools_config, "hand_eye")
        where = f"{args.tools_config}: hand_eye"
        method = args.method or str(tools.get("method", "auto"))
        refine = bool(tools.get("refine", True)) and not args.no_refine
        limits = {k: _limit(tools, k, where) for k in
                  ("max_reprojection_rms_px", "max_rotation_residual_deg", "max_translation_residual_mm")}
        min_samples = int(_limit(tools, "min_samples", where))
        if args.camera == "front" and args.arm is None:
            return _error("--camera front needs --arm (the arm that holds the board)")
        samples = load_samples(args.samples)
        if samples.dropped:
            print(f"dropped samples (board not found or < 4 points): {list(samples.dropped)}")
        if len(samples.T_base_flange) < min_samples:
            return _error(f"{args.samples}: {len(samples.T_base_flange)} usable samples, expected >= {min_samples} "
                          f"({args.tools_config}: hand_eye.min_samples)")
        mount = "eye_to_hand" if args.camera == "front" else "eye_in_hand"
        result = solve_hand_eye(samples.T_base_flange, samples.T_camera_target, mount, method,
                                samples.image_points, samples.object_points, samples.intrinsics, refine)
        if args.camera == "front":
            key = "T_world_front"
            value = _current(args.out, args.config).T_world_base(args.arm) @ result.X
        else:
            key = f"T_flange_{args.camera}"
            value = result.X
    except (ConfigError, SamplesError, HandEyeError) as exc:
        return _error(str(exc))
    print(result.summary())
    failures = []
    if result.reprojection_rms_px.size:
        rms_px = float(np.sqrt(np.mean(result.reprojection_rms_px**2)))
        if rms_px > limits["max_reprojection_rms_px"]:
            failures.append(f"reprojection rms {rms_px:.3f} px > {limits['max_reprojection_rms_px']}")
    if result.rotation_residual_deg.max() > limits["max_rotation_residual_deg"]:
        failures.append(f"rotation residual {result.rotation_residual_deg.max():.3f} deg > "
                        f"{limits['max_rotation_residual_deg']}")
    if result.translation_residual_m.max() * 1000 > limits["max_translation_residual_mm"]:
        failures.append(f"translation residual {result.translation_residual_m.max() * 1000:.2f} mm > "
                        f"{limits['max_translation_residual_mm']}")
    return _write(args, {key: value}, failures)


def _write(args: argparse.Namespace, updates: dict[str, Any], failures: list[str]) -> int:
    from calibration.transforms import save_calibration
    from rig.config import ConfigError

    for failure in failures:
        print(f"REJECTED: {failure}")
    if args.dry_run:
        print(f"dry run: {sorted(updates)} not written")
        return EXIT_REJECTED if failures else EXIT_OK
    if failures and not args.force:
        print(f"not written to {args.out} (use --force to write anyway)")
        return EXIT_REJECTED
    try:
        path = save_calibration(args.out, updates, template=args.config)
    except ConfigError as exc:
        return _error(str(exc))
    print(f"wrote {', '.join(sorted(updates))} to {path}")
    return EXIT_OK


def cmd_register_bases(args: argparse.Namespace) -> int:
    import zipfile

    import numpy as np

    from calibration.base_registration import RegistrationError, register_dual_arm
    from rig.config import ConfigError

    try:
        limit_mm = _limit(_tools(args.tools_config, "base_registration"), "max_rms_mm",
                          f"{args.tools_config}: base_registration")
        try:
            with np.load(args.points, allow_pickle=False) as npz:
                data = {key: npz[key] for key in npz.files}
        except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as exc:
            return _error(f"{args.points}: not a readable .npz of named arrays ({exc})")
        missing = [k for k in ("tcp_points_left", "tcp_points_right") if k not in data]
        if missing:
            return _error(f"{args.points}: missing array(s) {missing} (present: {sorted(data)})")
        if "world_points" in data:
            reg = register_dual_arm(data["tcp_points_left"], data["tcp_points_right"],
                                    world_points=data["world_points"])
            updates = {"T_world_base_left": reg.T_world_base_left, "T_world_base_right": reg.T_world_base_right}
        else:
            left = _current(args.out, args.config).T_world_base("left")
            reg = register_dual_arm(data["tcp_points_left"], data["tcp_points_right"], T_world_base_left=left)
            updates = {"T_world_base_right": reg.T_world_base_right}
    except (ConfigError, RegistrationError) as exc:
        return _error(str(exc))
    print(reg.summary())
    failures = []
    for arm, res in (("left", reg.residuals_left_m), ("right", reg.residuals_right_m)):
        rms_mm = float(np.sqrt(np.mean(res**2)) * 1000)
        if rms_mm > limit_mm:
            failures.append(f"{arm} rms {rms_mm:.2f} mm > {limit_mm}")
    return _write(args, updates, failures)


def cmd_intrinsics(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from calibration.intrinsics import IntrinsicsError, calibrate_from_images
    from calibration.target import Chessboard, TargetError

    try:
        cols, rows = (int(v) for v in args.board.lower().split("x"))
        board = Chessboard(cols, rows, args.square)
    except (ValueError, TargetError) as exc:
        return _error(f"--board {args.board!r} --square {args.square}: {exc}; expected e.g. --board 9x6 --square 0.025")
    files = sorted({f for pattern in args.images for f in (glob.glob(pattern) or [pattern])})
    images = []
    for name in files:
        image = cv2.imread(name, cv2.IMREAD_GRAYSCALE)
        if image is None:
            return _error(f"{name}: not a readable image")
        images.append(image)
    try:
        result = calibrate_from_images(images, board)
    except IntrinsicsError as exc:
        return _error(str(exc))
    intr = result.intrinsics
    print(f"{len(result.used_views)} of {len(files)} images used; RMS reprojection {result.rms_px:.3f} px")
    missed = [files[k] for k in range(len(files)) if k not in result.used_views]
    if missed:
        print(f"board not found in: {missed}")
    print(f"size {intr.width}x{intr.height}  fx {intr.fx:.3f}  fy {intr.fy:.3f}  cx {intr.cx:.3f}  cy {intr.cy:.3f}")
    print(f"camera_matrix:\n{np.array2string(intr.matrix(), precision=3, suppress_small=True)}")
    print(f"dist_coeffs (k1, k2, p1, p2, k3): {[round(c, 6) for c in intr.coeffs]}")
    return EXIT_OK
