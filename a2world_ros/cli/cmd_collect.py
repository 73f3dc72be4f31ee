"""`a2world collect`: record scripted-expert demonstrations of a task on the MuJoCo twin into a dataset.

Each episode resets the twin with its own seed, runs the task's scripted expert at 30 Hz and hands every
observation (three rendered views, arm and gripper states) with the command issued at it to the
episode recorder, which writes a LeRobot v3.0 dataset and one rosbag2 MCAP bag per episode.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from a2world_ros.cli.cmd_sim import parse_size
from rig.sim import ensure_headless_gl

COLLECT_HELP = """\
Record --episodes demonstrations of --task by its scripted expert on the MuJoCo twin (lockstep clock,
30 observations per second of simulated time) into --out: `lerobot/` (LeRobot v3.0 dataset: parquet +
one mp4 per camera) and `bags/episode_NNNNNN/` (rosbag2 MCAP). Episode i uses seed --seed + i, so a
run is reproducible; appending to an existing --out continues its episode numbering. Every episode is
kept with its success flag (in meta/episodes) unless --only-success. Inspect the result with
`a2world data info DIR`.

Examples:
  a2world collect --task lift_box_high --episodes 5 --out ~/a2world_data/lift_sim
  a2world collect --task insert_ram --episodes 50 --out /data/ram --seed 1000 --only-success
  a2world collect --task toggle_switch --episodes 20 --out /tmp/switch --no-video --formats mcap
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from rig.sim.tasks import TASK_NAMES

    p = subparsers.add_parser("collect", help="record scripted demonstrations on the MuJoCo twin",
                              description=COLLECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=TASK_NAMES, help="task to demonstrate")
    p.add_argument("--episodes", type=int, required=True, help="number of episodes to record")
    p.add_argument("--out", type=Path, required=True, help="recording root (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    p.add_argument("--no-video", action="store_true",
                   help="record states and commands only: no rendering, no camera streams (much faster); "
                        "needs --formats mcap")
    p.add_argument("--size", type=parse_size, default=(480, 640), help="image size HxW (default: 480x640)")
    p.add_argument("--formats", nargs="+", choices=("lerobot", "mcap"), default=["lerobot", "mcap"],
                   help="what to write (default: lerobot mcap)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="episode time limit in simulated seconds (default: the task's `max_seconds`)")
    p.add_argument("--only-success", action="store_true", help="discard episodes the expert failed")
    p.set_defaults(func=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    if args.episodes <= 0:
        print(f"error: --episodes {args.episodes}, expected a positive number", file=sys.stderr)
        return 2
    if args.no_video and "lerobot" in args.formats:
        # EpisodeRecorder's LeRobot writer sizes its video features from the first camera frame, so it
        # needs at least one camera; state-only recording currently goes to the MCAP bags.
        print("error: --no-video records no camera streams, which the LeRobot writer does not support yet; "
              "add `--formats mcap` to record states and commands into rosbag2 MCAP bags only", file=sys.stderr)
        return 2
    ensure_headless_gl()
    from dataclasses import replace

    import numpy as np
    from tqdm import tqdm

    from rig.conventions import CAMERA_NAMES, POLICY_HZ
    from rig.schema import Observation
    from rig.sim.experts import get_expert
    from rig.sim.experts.runner import episode_limit, run_episode
    from rig.sim.tasks import get_task
    from rig.sim.twin import Twin
    from teleop.recorder import EpisodeRecorder, RecorderError, RecorderSettings

    task = get_task(args.task)
    max_seconds = args.max_seconds if args.max_seconds is not None else episode_limit(task)
    cameras = () if args.no_video else CAMERA_NAMES
    twin = Twin(task=task, render_size=args.size)
    # Offline collection can wait for the writer: block instead of dropping frames when it falls behind.
    settings = replace(RecorderSettings.from_config(), overflow="block", block_timeout_s=30.0)
    intrinsics = {cam: twin.intrinsics(cam) for cam in cameras}
    wins = 0
    t_start = time.monotonic()
    try:
        recorder = EpisodeRecorder(args.out, fps=POLICY_HZ, cameras=cameras, formats=tuple(args.formats),
                                   settings=settings, intrinsics=intrinsics, sample_clock="sim")
    except RecorderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar = tqdm(total=args.episodes, unit="ep", desc=args.task, dynamic_ncols=True)
    try:
        for i in range(args.episodes):
            seed = args.seed + i
            index = recorder.start_episode(task.instruction)
            expert = get_expert(task)
            counter = [0]

            def on_step(obs: Observation, command: np.ndarray, _counter: list[int] = counter,
                        _seed: int = seed) -> None:
                recorder.add(obs, command)
                _counter[0] += 1
                if _counter[0] % POLICY_HZ == 0:
                    bar.set_postfix_str(f"seed {_seed}, sim {_counter[0] / POLICY_HZ:.0f} s", refresh=True)

            t0 = time.monotonic()
            result = run_episode(twin, expert, seed, max_seconds, on_step=on_step, render=not args.no_video)
            bar.update(1)
            wins += result.success
            extra = {"seed": seed, "progress": result.progress, "best_progress": result.best_progress,
                     "expert": type(expert).__name__, "source": "sim_scripted_expert"}
            if args.only_success and not result.success:
                recorder.discard_episode(f"expert failed (seed {seed}, progress {result.progress:.2f})")
                kept = "discarded"
            else:
                recorder.end_episode(result.success, extra)
                kept = f"episode {index}"
            bar.write(f"[{i + 1}/{args.episodes}] seed {seed}: {'SUCCESS' if result.success else 'failure'} "
                      f"(progress {result.progress:.2f}, best {result.best_progress:.2f}) "
                      f"{result.steps} steps, {time.monotonic() - t0:.1f} s wall -> {kept}")
        recorder.wait()
    except RecorderError as exc:
        print(f"error: recorder: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        recorder.close()
        twin.close()
    elapsed = time.monotonic() - t_start
    print(f"{args.task}: {wins}/{args.episodes} successful ({100.0 * wins / args.episodes:.0f} %), "
          f"{elapsed:.1f} s wall, dataset in {args.out} (inspect: a2world data info {args.out})")
    return 0
