"""`a2world data`: inspect recorded data (LeRobot v3.0 datasets and rosbag2 MCAP bags)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

INFO_HELP = """\
Summarise a recording: episodes, frames, tasks, success rate, cameras, fps and duration.

DIR may be a recorder root (holding lerobot/ and/or bags/), a LeRobot v3.0 dataset root (holding
meta/info.json) or a single rosbag2 bag directory (holding metadata.yaml).

Examples:
  a2world data info ~/a2world_data/pick_cube
  a2world data info ~/a2world_data/pick_cube --episodes
  a2world data info ~/a2world_data/pick_cube --json > summary.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="inspect recorded datasets and bags",
                              description="Inspect recorded datasets (LeRobot v3.0) and rosbag2 MCAP bags.")
    p.set_defaults(func=lambda a: p.print_help() or 0)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    info = sub.add_parser("info", help="summarise a recording directory", description=INFO_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("dir", type=Path, metavar="DIR", help="recorder root, LeRobot dataset root or bag directory")
    info.add_argument("--episodes", action="store_true", help="also list every episode (task, frames, success)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=_info)
    from a2world_ros.cli import data_curate

    data_curate.register(sub)


def _lerobot_summary(root: Path, per_episode: bool) -> dict[str, Any]:
    from rig.dataformats.lerobot_v3 import DatasetError, LeRobotV3Dataset

    ds = LeRobotV3Dataset(root)
    missing = ds.missing_files()  # verify the layout: a summary of a damaged dataset would mislead
    if missing:
        raise DatasetError(f"damaged LeRobot dataset, missing: {', '.join(missing)}")
    successes = [ds.episode_success(e) for e in range(ds.num_episodes)]
    per_task: dict[str, list[int]] = {}
    for e in range(ds.num_episodes):
        per_task.setdefault(ds.episode_task(e), []).append(e)
    out: dict[str, Any] = {
        "path": str(root),
        "format": f"LeRobot {ds.info['codebase_version']}",
        "robot_type": ds.info.get("robot_type"),
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "fps": ds.fps,
        "duration_s": round(ds.num_frames / ds.fps, 3),
        "success_rate": round(sum(successes) / len(successes), 4) if successes else None,
        "cameras": {c: ds.features[f"observation.images.{c}"]["shape"][:2] for c in ds.cameras},
        "codec": sorted({ds.features[f"observation.images.{c}"]["info"]["video.codec"] for c in ds.cameras}),
        "tasks": {t: {"episodes": len(eps), "successes": sum(successes[e] for e in eps)}
                  for t, eps in per_task.items()},
    }
    if per_episode:
        out["episode_list"] = [
            {"episode": e, "task": ds.episode_task(e), "frames": int(ds.episode(e)["length"]),
             "duration_s": round(ds.episode_duration(e), 3), "success": successes[e]}
            for e in range(ds.num_episodes)
        ]
    return out


def _bags_summary(bags: list[Path]) -> dict[str, Any]:
    # Imported only when there are bags: the bag module pulls in the ROS message code (and scipy).
    from rig.dataformats.lerobot_v3 import DatasetError
    from rig.dataformats.rosbag_mcap import BagError, bag_summary

    try:
        summaries = [bag_summary(b) for b in bags]
    except BagError as exc:
        raise DatasetError(str(exc)) from None
    return {
        "bags": len(bags),
        "messages": sum(s["messages"] for s in summaries),
        "duration_s": round(sum(s["duration_s"] for s in summaries), 3),
        "metadata_versions": sorted({s["version"] for s in summaries}),
        "topics": sorted({t for s in summaries for t in s["topics"]}),
        "bytes": sum(f.stat().st_size for b in bags for f in b.glob("*.mcap")),
    }


def _info(args: argparse.Namespace) -> int:
    from rig.dataformats.lerobot_v3 import DatasetError

    root: Path = args.dir
    if not root.is_dir():
        print(f"data info: {root} is not a directory", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {}
    try:
        lerobot_root = root if (root / "meta" / "info.json").is_file() else root / "lerobot"
        if (lerobot_root / "meta" / "info.json").is_file():
            summary["lerobot"] = _lerobot_summary(lerobot_root, args.episodes)
        bags = [root] if (root / "metadata.yaml").is_file() else sorted(
            p for p in (root / "bags").glob("*") if (p / "metadata.yaml").is_file())
        if bags:
            summary["mcap"] = _bags_summary(bags)
    except (DatasetError, OSError, KeyError, ValueError) as exc:
        print(f"data info: {root}: {exc}", file=sys.stderr)
        return 1
    staging = root / ".staging"
    if staging.is_dir() and any(staging.iterdir()):
        summary["unfinished"] = sorted(p.name for p in staging.iterdir())
    if not summary:
        print(f"data info: {root} holds no LeRobot dataset (meta/info.json, lerobot/) and no bags "
              "(metadata.yaml, bags/)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    _print(summary)
    return 0


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _print(summary: dict[str, Any]) -> None:
    if "lerobot" in summary:
        s = summary["lerobot"]
        rate = "n/a" if s["success_rate"] is None else f"{100 * s['success_rate']:.1f} %"
        print(f"{s['format']} dataset at {s['path']} (robot {s['robot_type']})")
        print(f"  episodes  {s['episodes']}   frames {s['frames']}   fps {s['fps']}   "
              f"duration {_duration(s['duration_s'])}   success {rate}")
        cams = ", ".join(f"{c} {h}x{w}" for c, (h, w) in s["cameras"].items())
        print(f"  cameras   {cams} ({', '.join(s['codec'])})")
        print(f"  tasks     {len(s['tasks'])}")
        for task, t in s["tasks"].items():
            print(f"    {t['episodes']:5d} episodes, {t['successes']:5d} successful: {task}")
        for e in s.get("episode_list", []):
            print(f"  episode {e['episode']:6d}  {e['frames']:6d} frames  {e['duration_s']:8.2f} s  "
                  f"{'success' if e['success'] else 'failure'}  {e['task']}")
    if "mcap" in summary:
        b = summary["mcap"]
        print(f"rosbag2 MCAP: {b['bags']} bag(s), {b['messages']} messages, {_duration(b['duration_s'])}, "
              f"{b['bytes'] / 1e6:.1f} MB, metadata version {b['metadata_versions']}")
        print(f"  topics    {', '.join(b['topics'])}")
    if "unfinished" in summary:
        print(f"unfinished episodes (discarded when a recorder next opens this root): {summary['unfinished']}")
