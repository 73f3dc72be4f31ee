"""`a2world sim view`: render the twin's three camera views for a task, as PNG stills and mp4 clips.

The scripted expert drives the arms during the clip (unless --idle), so one command shows the scene, the
cameras and what a demonstration of the task looks like.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rig.sim import ensure_headless_gl

VIEW_HELP = """\
Build the MuJoCo twin with a task, reset it with --seed, and write for each camera (front,
wrist_left, wrist_right) a PNG of the first frame and an mp4 of --seconds at 30 fps while the task's
scripted expert works (use --idle to keep the arms still). Prints where the files went and whether
the expert succeeded within the clip.

Rendering is headless: MUJOCO_GL defaults to osmesa when unset and no display is present; on a
machine with a GPU, `export MUJOCO_GL=egl` is faster.

Examples:
  a2world sim view --task lift_box_high
  a2world sim view --task chain_in_box --out /tmp/chain --seconds 20 --seed 3
"""


def parse_size(text: str) -> tuple[int, int]:
    """`HxW` (e.g. 480x640) to (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HEIGHTxWIDTH, e.g. 480x640") from None
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected positive even height and width")
    return h, w


def register(subparsers: argparse._SubParsersAction) -> None:
    from rig.sim.tasks import TASK_NAMES

    parser = subparsers.add_parser("sim", help="look at the MuJoCo twin and its tasks",
                                   description="Tools for the MuJoCo twin of the rig.")
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    view = sub.add_parser("view", help="render the three camera views of a task to PNG and mp4",
                          description=VIEW_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    view.add_argument("--task", required=True, choices=TASK_NAMES, help="task to build into the scene")
    view.add_argument("--out", type=Path, default=Path("sim_view"), help="output folder (default: ./sim_view)")
    view.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (default: 10)")
    view.add_argument("--seed", type=int, default=0, help="reset seed: object placement (default: 0)")
    view.add_argument("--size", type=parse_size, default=(480, 640), help="image size HxW (default: 480x640)")
    view.add_argument("--idle", action="store_true", help="keep the arms at home instead of running the expert")
    view.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    if args.seconds < 0:
        print(f"error: --seconds {args.seconds}, expected >= 0", file=sys.stderr)
        return 2
    ensure_headless_gl()
    import cv2
    import numpy as np

    from rig.conventions import CAMERA_NAMES, POLICY_HZ
    from rig.dataformats.video import VideoEncoder, VideoSettings
    from rig.sim.experts import get_expert
    from rig.sim.experts.runner import apply_command
    from rig.sim.tasks import get_task
    from rig.sim.twin import Twin

    task = get_task(args.task)
    twin = Twin(task=task, render_size=args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    twin.reset(args.seed)
    expert = None if args.idle else get_expert(task)
    if expert is not None:
        expert.reset(twin, np.random.default_rng([args.seed, 0xE1]))
    frames = twin.render()
    for cam in CAMERA_NAMES:
        cv2.imwrite(str(args.out / f"{cam}.png"), cv2.cvtColor(frames[cam], cv2.COLOR_RGB2BGR))
    h, w = args.size
    encoders = {cam: VideoEncoder(args.out / f"{cam}.mp4", w, h, POLICY_HZ, VideoSettings()) for cam in CAMERA_NAMES}
    steps = round(args.seconds * POLICY_HZ)
    success_at: float | None = None
    from tqdm import tqdm

    try:
        for k in tqdm(range(steps), desc=f"render {args.task}", unit="frame", dynamic_ncols=True, mininterval=1.0):
            for cam in CAMERA_NAMES:
                encoders[cam].encode(frames[cam])
            if expert is not None:
                apply_command(twin, expert.act(twin))
            twin.step(1.0 / POLICY_HZ)
            if success_at is None and twin.task_success():
                success_at = (k + 1) / POLICY_HZ
            frames = twin.render()
    finally:
        for enc in encoders.values():
            enc.close()
        twin.close()
    print(f"task {args.task} (\"{task.instruction}\"), seed {args.seed}: wrote "
          f"{', '.join(f'{c}.png/.mp4' for c in CAMERA_NAMES)} to {args.out}")
    outcome = f"success at {success_at:.1f} s" if success_at is not None else "no success within the clip"
    print(f"{steps} frames per camera at {POLICY_HZ} fps, {outcome}, progress {twin.task_progress():.2f}, "
          f"{time.monotonic() - t0:.1f} s wall")
    return 0
