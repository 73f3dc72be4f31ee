"""`a2world demo train`: regenerate the embedded checkpoints from scratch on the twin (config/demo.yaml)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DESCRIPTION = """\
Regenerate the small trained checkpoints the main job ships with (checkpoints/embedded/: vae/,
worldmodel/, policy/) from scratch on the MuJoCo twin: scripted demonstrations, VAE training,
world-model training, policy training initialised from the world model. The steps are the `a2world`
commands listed in config/demo.yaml (profile `full`; `quick` is a few-minute version for tests).
Rerunning resumes: a step whose output exists is skipped.

Examples:
  a2world demo train                                   # writes checkpoints/embedded, scratch in runs/demo
  a2world demo train --profile quick --out /tmp/emb --work /tmp/demo
"""


def _cmd_train(args: argparse.Namespace) -> int:
    from a2world_ros.cli.main import main
    from a2world_ros.demo_pipeline import load_recipe, run_recipe
    from rig.config import ConfigError

    try:
        recipe = load_recipe(args.profile, args.config)
        summary = run_recipe(recipe, Path(args.out), Path(args.work), main)
    except (ConfigError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = sum(s.get("seconds", 0.0) for s in summary["steps"])
    print(f"embedded checkpoints in {args.out} ({', '.join(summary['exports'])}); {total:.0f} s of steps")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from a2world_ros.demo_pipeline import main_job_report

    try:
        report = main_job_report(Path(args.policy_json), Path(args.worldmodel_json) if args.worldmodel_json else None,
                                 {k: float(v) for k, v in (t.split("=", 1) for t in args.timing)})
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(report["summary"])
    print(f"wrote {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("demo", help="regenerate the embedded demo checkpoints on the twin",
                                  description="The embedded default: small trained checkpoints for the main job.")
    group.set_defaults(func=lambda a: group.print_help() or 0)
    sub = group.add_subparsers(dest="demo_command", metavar="SUBCOMMAND")
    p = sub.add_parser("train", help="collect, train VAE, world model and policy; write checkpoints/embedded",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="full", help="recipe profile in config/demo.yaml (default: full)")
    p.add_argument("--out", default="checkpoints/embedded", help="embedded folder to write (default: %(default)s)")
    p.add_argument("--work", default="runs/demo", help="scratch folder for data and runs (default: %(default)s)")
    p.add_argument("--config", default="demo.yaml", help="recipe file (default: config/demo.yaml)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("report", help="combine the main job's policy and world-model results into one JSON",
                       description="Write the main job's results.json: the policy's success rate over its twin "
                                   "episodes (`run policy --json`) and the world model's held-out PSNR vs "
                                   "copy-last-frame (`worldmodel eval --json`).")
    p.add_argument("--policy-json", required=True, help="episode results of `a2world run policy --json`")
    p.add_argument("--worldmodel-json", default=None, help="report of `a2world worldmodel eval --json`")
    p.add_argument("--timing", nargs="*", default=[], metavar="STEP=SECONDS", help="wall time of each step")
    p.add_argument("--out", required=True, help="results file to write")
    p.set_defaults(func=_cmd_report)
