"""`a2world data curate` and `a2world data replay` (registered by cmd_data): curation of recorded datasets
and replay of an episode's commands on the twin behind the guard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CURATE_HELP = """\
Copy the episodes of DATASET that pass the filters into a new LeRobot v3.0 dataset OUT, each trimmed of
idle frames at its start and end (a frame is idle when the command barely moves: below --idle-speed m/s,
0.02 rad/s and 0.05 opening/s on both arms; --margin seconds of idle are kept on each side). Episodes
with an idle gap longer than --max-idle-gap seconds are flagged (and dropped with --drop-flagged).
DATASET is a LeRobot root or a recorder root (holding lerobot/).

Examples:
  a2world data curate /tmp/teleop_lift /tmp/teleop_lift_curated
  a2world data curate /tmp/teleop_lift /tmp/all --include-failures --min-seconds 2 --max-seconds 60
"""

REPLAY_HELP = """\
Play episode --episode of DATASET back on the twin (lockstep, scene reset to the episode's seed) or the
robot (--rig real --yes: the arms first move to the episode's first pose at --approach-speed, then follow
the recording in real time): its recorded commands go through the chunk executor and the safety guard as
a policy's would. Reports the
reproduction error (replayed TCP poses vs the recorded ones) and the tracking error (vs the commands)
per arm, and the guard's interventions.

Examples:
  a2world data replay /tmp/teleop_lift --episode 0 --rig sim
  a2world data replay ~/a2world_data/lift --episode 3 --rig real --yes
"""


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("curate", help="trim idle frames, flag idle gaps, filter episodes into a new dataset",
                       description=CURATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("dataset", type=Path, metavar="DATASET")
    c.add_argument("out", type=Path, metavar="OUT", help="new LeRobot dataset directory")
    c.add_argument("--idle-speed", type=float, default=0.005, help="m/s below which a frame is idle")
    c.add_argument("--margin", type=float, default=0.2, help="idle seconds kept at each end (default 0.2)")
    c.add_argument("--max-idle-gap", type=float, default=2.0, help="flag idle gaps longer than this (s)")
    c.add_argument("--drop-flagged", action="store_true", help="drop flagged episodes")
    c.add_argument("--include-failures", action="store_true", help="keep unsuccessful episodes too")
    c.add_argument("--min-seconds", type=float, default=0.5, help="drop shorter episodes (after trimming)")
    c.add_argument("--max-seconds", type=float, default=float("inf"), help="drop longer episodes")
    c.add_argument("--json", action="store_true", help="print the per-episode verdicts as JSON")
    c.set_defaults(func=_curate)
    r = sub.add_parser("replay", help="play an episode's commands on the twin and report tracking error",
                       description=REPLAY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("dataset", type=Path, metavar="DATASET")
    r.add_argument("--episode", type=int, required=True)
    r.add_argument("--rig", choices=("sim", "real"), default="sim",
                   help="the twin (default, lockstep) or the real rig (the arms MOVE; needs --yes)")
    r.add_argument("--yes", action="store_true", help="real rig: confirm that the workspace is clear")
    r.add_argument("--approach-speed", type=float, default=0.05,
                   help="m/s of the unmeasured move to the episode's first pose (default 0.05)")
    r.add_argument("--task", default=None, help="twin task (default: the episode's extra.task or its instruction)")
    r.add_argument("--seed", type=int, default=None, help="scene seed (default: the episode's extra.seed)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_replay)


def _curate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rig.dataformats.lerobot_v3 import DatasetError, LeRobotV3Dataset
    from teleop.curate import CurateSettings, curate, resolve_lerobot_root
    from teleop.recorder import RecorderSettings

    settings = CurateSettings(idle_speed=args.idle_speed, margin_s=args.margin, max_idle_gap_s=args.max_idle_gap,
                              only_success=not args.include_failures, min_seconds=args.min_seconds,
                              max_seconds=args.max_seconds, drop_flagged=args.drop_flagged)
    try:
        source = resolve_lerobot_root(args.dataset)
        total = LeRobotV3Dataset(source).num_episodes
        with tqdm(total=total, unit="ep", desc="curate", file=sys.stderr) as bar:
            verdicts = curate(source, args.out, settings, RecorderSettings.from_config().video,
                              progress=lambda _v: bar.update(1))
    except (DatasetError, OSError) as exc:
        print(f"data curate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([v.as_dict() for v in verdicts], indent=2))
    else:
        for v in verdicts:
            gaps = f", idle gaps {v.idle_gaps_s} s" if v.idle_gaps_s else ""
            what = f"kept as {v.new_index}" if v.kept else f"dropped: {v.reason}"
            print(f"episode {v.episode}: {v.frames} frames, trim [{v.start}, {v.stop}){gaps} -> {what}")
        kept = sum(v.kept for v in verdicts)
        print(f"{kept}/{len(verdicts)} episodes into {args.out}" + ("" if not kept else
                                                                    f" (inspect: a2world data info {args.out})"))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from a2world_ros.cli.cmd_sim import ensure_headless_gl

    ensure_headless_gl()
    from rig.config import load_yaml
    from rig.dataformats.lerobot_v3 import DatasetError, LeRobotV3Dataset
    from rig.factory import build_rig
    from teleop.config import load_teleop_config
    from teleop.curate import resolve_lerobot_root
    from teleop.replay import format_report, replay_episode, task_for

    try:
        ds = LeRobotV3Dataset(resolve_lerobot_root(args.dataset))
    except DatasetError as exc:
        print(f"data replay: {exc}", file=sys.stderr)
        return 1
    if not 0 <= args.episode < ds.num_episodes:
        print(f"data replay: --episode {args.episode}, the dataset has episodes 0..{ds.num_episodes - 1}",
              file=sys.stderr)
        return 2
    cfg = load_teleop_config()
    if args.rig == "real":
        if not args.yes:
            print("data replay: --rig real moves the arms; clear the workspace and add --yes", file=sys.stderr)
            return 2
        rig = build_rig(rig="real")
    else:
        task = args.task or task_for(ds, args.episode, load_yaml("tasks.yaml"))
        if task is None:
            print(f"data replay: episode {args.episode} names no twin task; give --task", file=sys.stderr)
            return 2
        rig = build_rig(rig="sim", sim_overrides={"task": task, "clock": "lockstep"})
    rig.cameras = {}
    rig.connect()
    try:
        report = replay_episode(ds, args.episode, rig, cfg.executor, cfg.guard, seed=args.seed,
                                approach_speed=args.approach_speed)
    finally:
        rig.disconnect()
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 0
