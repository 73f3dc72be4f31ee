"""`a2world worldmodel ...`: world-model tools (checkpoint inspection, training, prediction).

Each subcommand is one `_add_<name>(sub)` function listed in `SUBCOMMANDS`; handlers import torch and
the model code lazily so `a2world --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from worldmodel.threads import add_threads_option

GROUP_HELP = "world model: inspect checkpoints, train on recordings, predict videos from actions"
GROUP_DESCRIPTION = """\
World-model tools. A checkpoint is either an official release file (a2world-pretrained.pt,
a2world-libero.pt; loaded with torch.load(weights_only=True, mmap=True)) or one of ours (a directory
with model.safetensors and config.yaml, or the model.safetensors file itself).

Examples:
  a2world worldmodel inspect checkpoints/a2world-pretrained.pt
  a2world worldmodel train data.roots=[~/a2world_data/lift_sim] trainer.max_steps=200
  a2world worldmodel predict --checkpoint runs/worldmodel/X/checkpoints/step_0000200 \
      --images front.png left.png --view-ids 2 0 --actions actions.npz --out rollout.mp4
"""


def print_config(compose: Callable[[list[str]], dict], overrides: list[str]) -> int:
    """`--print-config` of the Hydra-configured commands: the composed config as YAML (exit 0), or the error (2)."""
    import yaml

    from rig.config import ConfigError

    try:
        print(yaml.safe_dump(compose(list(overrides)), sort_keys=False), end="")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from worldmodel.checkpoint import CheckpointError, inspect_checkpoint

    try:
        report = inspect_checkpoint(args.file)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
        return 0
    dtypes = ", ".join(f"{name} ({count} tensors)" for name, count in sorted(report.dtypes.items()))
    print(f"file:        {report.path}")
    print(f"format:      {report.format}")
    print(f"variant:     {report.variant}"
          + ("" if report.variant == "a2world" else "  (history-aware A2World-sim / libero)"))
    print(f"dtype:       {dtypes}")
    print(f"keys:        {report.n_keys}")
    print(f"parameters:  {report.n_parameters:,}")
    print(f"buffers:     {report.n_buffer_elements:,} elements (RoPE tables)")
    if report.matches:
        print(f"config:      matches {', '.join(report.matches)} (config/worldmodel/net/)")
    else:
        print("config:      no known config matches")
        if report.closest:
            print(f"closest:     {report.closest}: {report.closest_diff}")
    return 0 if report.matches or not args.require_match else 2


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="report variant, dtype, parameter count and matching config of a checkpoint",
        description="Read a checkpoint's tensor names, shapes and dtypes (without loading the weights "
                    "into a model) and compare them with the network configs in config/worldmodel/net/.",
    )
    p.add_argument("file", help="official .pt, our model.safetensors, or a directory holding it")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--require-match", action="store_true",
                   help="exit with status 2 when no known config matches")
    p.set_defaults(func=_cmd_inspect)


TRAIN_DESCRIPTION = """\
Train the A2World network on LeRobot v3 recordings (`a2world collect --out DIR`, or a teleop recording).
Arguments are Hydra overrides of config/worldmodel/train.yaml (see docs/worldmodel_training.md):
  data.roots=[DIR,...]      datasets to mix (one dataset per batch; data.weights=[..] to weight them)
  trainer.max_steps=N       steps to train; trainer.batch_size=B clips per step
  data.latent_cache=DIR     encode the clips once with the VAE and train on the cached latents
  +train=a2world_2b         full-size preset (2B network, Wan2.1 VAE, 256x256, bf16, FSDP2)
  trainer.resume=auto       continue the newest checkpoint in run_dir
Output: run_dir/ (metrics.jsonl, checkpoints/step_N/ with model.safetensors for `predict`).

Examples:
  a2world worldmodel train data.roots=[/tmp/lift] trainer.max_steps=200 run_dir=/tmp/wm_run
  a2world worldmodel train --nproc 8 +train=a2world_2b data.roots=[/data/a,/data/b] \\
      vae_weights=checkpoints/Wan2.1_VAE.pth init_from=checkpoints/a2world-pretrained.pt
"""


def _cmd_train(args: argparse.Namespace) -> int:
    import os
    import subprocess

    if args.nproc > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            print("error: --nproc inside a torchrun job; drop --nproc", file=sys.stderr)
            return 2
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "worldmodel.train", *args.overrides]
        return subprocess.call(cmd)
    from worldmodel.train import load_train_config, main

    if args.print_config:
        return print_config(load_train_config, args.overrides)
    return main(args.overrides)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the world model on recorded datasets (Hydra overrides)",
                       description=TRAIN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. data.roots=[DIR]")
    p.add_argument("--nproc", type=int, default=1,
                   help="processes (GPUs) on this machine; > 1 relaunches under torchrun (default: 1)")
    p.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    p.set_defaults(func=_cmd_train)


TRAIN_VAE_DESCRIPTION = """\
Train the embedded Wan-layout VAE (config/worldmodel/vae/embedded.yaml) on the frames of LeRobot v3
recordings. Arguments are Hydra overrides of config/worldmodel/train_vae.yaml (docs/worldmodel_vae.md):
  data.roots=[DIR,...]          recordings to train on
  data.heldout_roots=[DIR,...]  recordings for the held-out PSNR/SSIM report (default: every 5th episode)
  data.resolution=[H,W]         frame size every view is resized to (default 96x128)
  trainer.max_steps=N           steps; trainer.resume=auto continues the newest checkpoint in run_dir
Output: run_dir/vae.safetensors (weights + fitted latent mean/std + training record; pass it to
`worldmodel train vae=embedded vae_weights=...`), report.json (held-out PSNR/SSIM), metrics.jsonl.

Example:
  a2world worldmodel train-vae data.roots=[/work/data/multitask_96x128/train] \\
      data.heldout_roots=[/work/data/multitask_96x128/heldout] run_dir=runs/vae_embedded
"""


def _cmd_train_vae(args: argparse.Namespace) -> int:
    from worldmodel.vae.train import load_config, main

    if args.print_config:
        return print_config(load_config, args.overrides)
    return main(args.overrides)


def _add_train_vae(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-vae", help="train the embedded VAE on recorded frames (Hydra overrides)",
                       description=TRAIN_VAE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. data.roots=[DIR]")
    p.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    p.set_defaults(func=_cmd_train_vae)


EVAL_DESCRIPTION = """\
Score a trained world model on held-out recordings against two baselines, per view and per horizon step
(10 fps, 20 steps = 2 s): PSNR, SSIM and Farneback flow end-point error of the predicted vs the real
video for (a) the model, (b) copy-last-frame (the observed frame repeated), (c) the model with the action
chunks shuffled across clips. Settings: config/worldmodel/eval.yaml (docs/worldmodel_training.md).

Example:
  a2world worldmodel eval --checkpoint /work/data/ckpt/wm_tiny --data /work/data/multitask_96x128/heldout \\
      --json runs/wm_eval.json
"""


def _cmd_eval(args: argparse.Namespace) -> int:
    from rig.config import ConfigError
    from worldmodel.data.clips import DataError
    from worldmodel.evaluate import METHODS, EvalConfig, evaluate
    from worldmodel.predict import PredictError
    from worldmodel.threads import configure_torch_threads

    try:
        configure_torch_threads(args.threads, source="--threads")
        cfg = EvalConfig.load(args.config, max_clips=args.max_clips, sampler_steps=args.steps, seed=args.seed)
        report = evaluate(args.checkpoint, args.data, cfg, device=args.device)
    except (ConfigError, DataError, PredictError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report["vae_warning"]:
        print(f"WARNING: UNTRAINED VAE: {report['vae_warning']}", file=sys.stderr)
    if args.json:
        from pathlib import Path

        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    print(f"{report['clips']} held-out clips x {len(report['cameras'])} views, horizon {report['horizon_steps']} "
          f"steps at {report['fps']:g} fps; mean over the horizon:")
    print(f"  {'method':<10} {'view':<12} {'PSNR dB':>8} {'SSIM':>6} {'EPE px':>7} {'EPE(all) px':>12}")
    for method in METHODS:
        for view in [*report["cameras"], "all"]:
            h = report["methods"][method][view]["horizon_mean"]
            cells = [f"{h[k]:.3f}" if h[k] is not None else "n/a" for k in ("psnr", "ssim", "flow_epe", "flow_epe_all")]
            print(f"  {method:<10} {view:<12} {cells[0]:>8} {cells[1]:>6} {cells[2]:>7} {cells[3]:>12}")
    print("  " + ", ".join(f"{k}: {v}" for k, v in report["verdict"].items()))
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a world model vs copy-last-frame and shuffled actions on held-out data",
                       description=EVAL_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="our checkpoint folder (or its model.safetensors)")
    p.add_argument("--data", required=True, nargs="+",
                   help="held-out LeRobot v3 dataset(s) (`a2world collect --out` folders); clips of all are pooled")
    p.add_argument("--json", default=None, help="write the full report (per view and step) to this JSON file")
    p.add_argument("--max-clips", type=int, default=None, help="at most this many clips (default: eval.yaml)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps per prediction (default: eval.yaml)")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: eval.yaml)")
    p.add_argument("--config", default=None, help="evaluation settings YAML (default: config/worldmodel/eval.yaml)")
    p.add_argument("--threads", default=None, help="torch CPU threads (default: physical cores; env A2WORLD_THREADS)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.set_defaults(func=_cmd_eval)


PREDICT_DESCRIPTION = """\
Predict one 21-frame chunk per view (10 fps) from one image per view and 20 actions, and write the
views side by side as an mp4. --actions is the release's actions.npz: key `actions`, shape (T, 14) model
actions (per arm dx dy dz droll dpitch dyaw gripper, left arm first), T >= 20; with --autoregressive all
floor(T / 20) chunks are chained. View ids: 0 left/main wrist, 1 right wrist, 2 and 3 third-person
(our rig: wrist_left=0, wrist_right=1, front=2).

Examples:
  a2world worldmodel predict --checkpoint runs/worldmodel/X/checkpoints/step_0000200 \\
      --images front.png wrist_left.png --view-ids 2 0 --actions actions.npz --out rollout.mp4 --steps 10
  a2world worldmodel predict --checkpoint checkpoints/a2world-pretrained.pt --vae checkpoints/Wan2.1_VAE.pth \\
      --images head.png left.png right.png --view-ids 2 0 1 --actions agibot/actions.npz --out agibot.mp4
"""


def _cmd_predict(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    from worldmodel.data.official import SampleError, load_official_sample
    from worldmodel.predict import PredictError, UntrainedVAEWarning, WorldModelPredictor, write_side_by_side
    from worldmodel.threads import configure_torch_threads

    try:
        configure_torch_threads(args.threads, source="--threads")
        view_ids = args.view_ids if args.view_ids is not None else list(range(len(args.images)))
        images, actions = load_official_sample(args.images, view_ids, args.actions, args.action_format)
        with warnings.catch_warnings():  # printed below as a banner instead of a Python warning line
            warnings.simplefilter("ignore", UntrainedVAEWarning)
            predictor = WorldModelPredictor.from_checkpoint(args.checkpoint, device=args.device,
                                                            vae_weights=args.vae)
        if predictor.vae_warning:
            print(f"{'!' * 78}\nWARNING: UNTRAINED VAE\n{predictor.vae_warning}\n{'!' * 78}", file=sys.stderr)
        if args.autoregressive:
            frames = predictor.rollout(images, actions, steps=args.steps, seed=args.seed, stats=args.stats)
        else:
            frames = predictor.predict(images, actions[:predictor.action_steps], steps=args.steps, seed=args.seed,
                                       stats=args.stats)
        views = [frames[v] for v in images]
        out = write_side_by_side(args.out, views, fps=args.fps or predictor.fps)
    except (SampleError, PredictError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.save_frames:
        np.savez_compressed(args.save_frames, **{f"view_{v}": f for v, f in zip(images, views)})
    print(f"wrote {out}: {len(views)} views x {views[0].shape[0]} frames of {views[0].shape[1]}x{views[0].shape[2]}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict a video from images and an actions.npz",
                       description=PREDICT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="our checkpoint folder (or model.safetensors) or official .pt")
    p.add_argument("--images", nargs="+", required=True, help="one RGB image (png/jpg) per view")
    p.add_argument("--view-ids", nargs="+", type=int, default=None,
                   help="view id of each image, 0-3 (default: 0, 1, 2, ... in order)")
    p.add_argument("--actions", required=True, help="actions.npz with key `actions` (T >= 20, 14)")
    p.add_argument("--action-format", choices=("auto", "precomputed", "libero-servo"), default="auto",
                   help="auto/precomputed: (T, 14) as is; libero-servo: LIBERO (T, 2, 7) servo actions")
    p.add_argument("--out", required=True, help="output mp4 (views side by side)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the release's 35)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--autoregressive", action="store_true", help="chain all 20-action chunks of --actions")
    p.add_argument("--vae", default=None, help="VAE weights (needed for an official .pt: Wan2.1_VAE.pth)")
    p.add_argument("--stats", default=None, help="dataset whose action statistics normalise the actions "
                                                 "(default: the checkpoint's first dataset)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--fps", type=float, default=None, help="mp4 frame rate (default: the model's, 10)")
    p.add_argument("--save-frames", default=None, help="also save the frames as .npz (view_<id>: (T, H, W, 3))")
    add_threads_option(p)
    p.set_defaults(func=_cmd_predict)


from a2world_ros.cli.worldmodel_sim import add_rollout, add_train_sim  # noqa: E402 (next to the list it extends)

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_inspect, _add_train, _add_train_vae,
                                                                    _add_predict, _add_eval, add_train_sim,
                                                                    add_rollout]
"""Subcommand builders, in the order `--help` lists them."""


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("worldmodel", help=GROUP_HELP, description=GROUP_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    group.set_defaults(func=lambda a: group.print_help() or 0)
    sub = group.add_subparsers(dest="worldmodel_command", metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(sub)
