"""A2World-sim commands: `a2world worldmodel train-sim` (worldmodel/train_sim.py) and `a2world worldmodel
rollout`, a long autoregressive rollout along a recorded episode written as real | predicted | difference
per view (worldmodel/episode_rollout.py does the work)."""

from __future__ import annotations

import argparse
import json
import sys

from worldmodel.history import SAMPLERS

ROLLOUT_DESCRIPTION = """\
Roll the world model out chunk by chunk (20 actions each) along a recorded episode: the first frame of
every camera conditions chunk 0, each later chunk starts from the previous chunk's last prediction, and an
A2World-sim checkpoint also sees frames picked from its growing history (--history). The mp4 has one row
per view: real | predicted | |difference|. --json writes the metrics of the generated frames and of the
last --last-seconds (PSNR, SSIM, temporal SSIM, Farneback flow EPE / cosine).

Examples:
  a2world worldmodel rollout --checkpoint runs/wm_sim/checkpoints/step_0002000 \\
      --episode /work/data/twin/heldout/lerobot:0 --seconds 10 --out rollout.mp4 --steps 10
  a2world worldmodel rollout --checkpoint ckpt --episode data:3 --seconds 12 --history sliding_window \\
      --out sw.mp4 --json sw.json
"""


TRAIN_SIM_DESCRIPTION = """\
Fine-tune A2World-sim (history-aware) from a base A2World checkpoint. Arguments are Hydra overrides of
config/worldmodel/train_sim.yaml (train.yaml plus history.* and self_forcing.*; docs/worldmodel_sim.md):
  init_from=CKPT                 base checkpoint (ours or a2world-pretrained.pt); shared trunk copied
  history.sampler=arc_dual       release | release_training | arc_single | arc_dual | sliding_window | none
  self_forcing.mode=release      release | teacher_free | off; self_forcing.warmup_steps, .probability

Example:
  a2world worldmodel train-sim data.roots=[/work/data/multitask_96x128/train] vae=embedded \\
      vae_weights=/work/data/ckpt/vae_tiny/vae.safetensors init_from=/work/data/ckpt/wm_tiny \\
      data.resolution=[96,128] trainer.max_steps=2000 run_dir=runs/wm_sim
"""


def _cmd_train_sim(args: argparse.Namespace) -> int:
    from a2world_ros.cli.cmd_worldmodel import print_config
    from worldmodel.train import load_train_config
    from worldmodel.train_sim import TRAIN_SIM_CONFIG_NAME, main

    if args.print_config:
        return print_config(lambda o: load_train_config(o, name=TRAIN_SIM_CONFIG_NAME), args.overrides)
    return main(args.overrides)


def add_train_sim(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-sim", help="fine-tune A2World-sim (history, self-forcing) from a base checkpoint",
                       description=TRAIN_SIM_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. data.roots=[DIR]")
    p.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    p.set_defaults(func=_cmd_train_sim)


def _cmd_rollout(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from worldmodel.episode_rollout import (
        SegmentSettings,
        comparison_video,
        load_segment,
        parse_episode,
        rollout_episode,
        tail_metrics,
    )
    from worldmodel.history import HistoryConfig
    from worldmodel.predict import PredictError, WorldModelPredictor, write_side_by_side
    from worldmodel.threads import configure_torch_threads

    try:
        configure_torch_threads(args.threads, source="--threads")
        root, episode = parse_episode(args.episode)
        predictor = WorldModelPredictor.from_checkpoint(args.checkpoint, device=args.device, vae_weights=args.vae)
        settings = SegmentSettings.of_checkpoint(args.checkpoint)
        if args.cameras:
            settings.cameras = list(args.cameras)
        segment = load_segment(root, episode, args.seconds, predictor, settings, start=args.start)
        trained = settings.history or HistoryConfig("release")
        history = replace(trained, sampler=args.history or trained.sampler,
                          budget=args.budget if args.budget is not None else trained.budget)
        result = rollout_episode(predictor, segment, history=history, seed=args.seed, steps=args.steps,
                                 progress=not args.no_progress)
        out = write_side_by_side(args.out, [comparison_video(segment.real, result.frames)], fps=segment.fps)
    except (PredictError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = next(iter(result.frames.values())).shape[0]
    print(f"wrote {out}: {len(segment.cameras)} views ({', '.join(segment.cameras)}) x {n} frames "
          f"({(n - 1) / segment.fps:.1f} s predicted), history {history.sampler} (budget {history.budget})")
    if args.json:
        report = {
            "checkpoint": str(args.checkpoint), "episode": args.episode, "start": args.start,
            "history": history.sampler, "budget": history.budget, "seed": args.seed, "steps": args.steps,
            "fps": segment.fps, "frames": n,
            "all": tail_metrics(segment.real, result.frames, segment.fps),
            "last": tail_metrics(segment.real, result.frames, segment.fps, args.last_seconds),
            "history_indices": [c.history_indices for c in result.chunks],
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        last = report["last"]["summary"]["all"]
        print(f"last {args.last_seconds:g} s: PSNR {last['psnr']:.2f} dB, flow EPE {last['flow_epe']:.4f} px "
              f"-> {args.json}")
    return 0


def add_rollout(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollout", help="long autoregressive rollout along a recorded episode (real | pred | diff)",
                       description=ROLLOUT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="our checkpoint folder (or model.safetensors) or official .pt")
    p.add_argument("--episode", required=True, metavar="DIR:INDEX", help="LeRobot v3 dataset folder and episode")
    p.add_argument("--seconds", type=float, required=True, help="seconds to predict (rounded up to 20-frame chunks)")
    p.add_argument("--out", required=True, help="output mp4")
    p.add_argument("--start", type=int, default=0, help="first source frame of the episode (default 0)")
    p.add_argument("--history", choices=SAMPLERS, default=None,
                   help="history sampler of A2World-sim (default: the one it was trained with, else release)")
    p.add_argument("--budget", type=int, default=None,
                   help="history frames the network sees (default: as trained, else 20)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the release's 35)")
    p.add_argument("--seed", type=int, default=0, help="noise seed of chunk 0; chunk k uses seed + k")
    p.add_argument("--cameras", nargs="+", default=None, help="cameras (default: the checkpoint's)")
    p.add_argument("--vae", default=None, help="VAE weights (needed for an official .pt)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", default=None, help="torch CPU threads (default: physical cores)")
    p.add_argument("--json", default=None, help="write metrics (all generated frames and the last seconds) here")
    p.add_argument("--last-seconds", type=float, default=3.0, help="tail scored in --json (default 3 s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_rollout)
