"""`a2world shadow ...`: the shadow predictor outside a policy run (serve, offline report, calibration).

Live use is `a2world run policy ... --shadow CHECKPOINT` (or `shadow:=true` in the ROS launch), which
starts `a2world shadow serve` as its own process. Handlers import torch lazily.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

HELP = """\
The shadow predictor: while a policy runs, the world model predicts each executed chunk and the
prediction is scored against the real frames when they arrive (PSNR, SSIM, temporal SSIM, flow
EPE/cosine per camera and frame; docs/shadow.md).

  serve      run the shadow predictor process (ZeroMQ; loopback unless CURVE keys are configured)
  report     replay a recorded episode (LeRobot v3 dataset or rosbag2 MCAP bag) through the world model
             and write metrics.png, side_by_side.mp4, summary.json (and shadow.rrd with --rerun)
  calibrate  the divergence threshold from held-out episodes where the prediction is known good

Examples:
  a2world shadow report ~/data/lift/lerobot --episode 3 --checkpoint ~/ckpt/wm_tiny --out /tmp/shadow
  a2world shadow report ~/data/lift/bags/episode_000003 --checkpoint ~/ckpt/wm_tiny --out /tmp/shadow
  a2world shadow calibrate ~/data/heldout --episodes 0 1 2 --checkpoint ~/ckpt/wm_tiny
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("shadow", help="shadow predictor: predicted vs live cameras, reports",
                                   description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=lambda _a: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="shadow_command", metavar="SUBCOMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--checkpoint", required=True, help="world-model checkpoint (ours or an official .pt)")
        p.add_argument("--vae", default=None, help="VAE weights (official checkpoints; ours carry their own)")
        p.add_argument("--config", default="shadow.yaml", help="shadow settings (default: config/shadow.yaml)")
        p.add_argument("--steps", type=int, default=None, help="sampler steps (default: shadow.sampler_steps)")
        p.add_argument("--threshold", type=float, default=None, help="divergence threshold (overrides the config)")

    p = sub.add_parser("serve", help="run the shadow predictor process")
    common(p)
    p.add_argument("--address", default=None, help="bind address (default: shadow.server.address); "
                   "tcp://127.0.0.1:* picks a free port and prints it")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("report", help="replay a recorded episode and write the shadow report")
    p.add_argument("recording", type=Path, help="LeRobot v3 dataset (or recorder root) or a rosbag2 bag directory")
    common(p)
    p.add_argument("--episode", type=int, default=0, help="episode index in a LeRobot dataset (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--every", type=float, default=2.0, help="seconds between chunk starts (default 2.0)")
    p.add_argument("--wrong-actions", action="store_true",
                   help="predict with the motion mirrored (a deliberately wrong stream, to see divergence fire)")
    p.add_argument("--rerun", action="store_true", help="also write a Rerun recording shadow.rrd")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("calibrate", help="divergence threshold from known-good held-out episodes")
    p.add_argument("recording", type=Path, help="LeRobot v3 dataset (or recorder root)")
    common(p)
    p.add_argument("--episodes", type=int, nargs="+", default=[0], help="episode indices (default 0)")
    p.add_argument("--every", type=float, default=2.0, help="seconds between chunk starts (default 2.0)")
    p.add_argument("--quantile", type=float, default=0.99, help="quantile in the bad direction (default 0.99)")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    p.set_defaults(func=cmd_calibrate)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _setup(args: argparse.Namespace):  # -> (config, engine)
    from worldmodel.shadow.config import load_shadow_config
    from worldmodel.shadow.engine import ShadowEngine
    from worldmodel.shadow.model import load_predictor

    overrides = {} if args.steps is None else {"sampler_steps": args.steps}
    config = load_shadow_config(args.config, overrides)
    if args.threshold is not None:
        config = config.with_threshold(args.threshold)
    predictor = load_predictor(args.checkpoint, args.vae, threads=config.threads, history=config.history)
    return config, ShadowEngine(predictor, config)


def cmd_serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rig.config import ConfigError
    from worldmodel.predict import PredictError
    from worldmodel.shadow.service import ShadowServer
    from worldmodel.shadow.worker import ShadowWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s shadow %(levelname)s %(message)s")
    try:
        config, engine = _setup(args)
    except (ConfigError, PredictError) as exc:
        return _error(str(exc))
    if config.nice and hasattr(os, "nice"):
        os.nice(config.nice)  # on a shared machine the control process wins the CPU
    settings = config.server if args.address is None else replace(config.server, address=args.address)
    worker = ShadowWorker(engine).start()
    try:
        server = ShadowServer(worker, settings, {"checkpoint": str(args.checkpoint)})
    except (ValueError, OSError) as exc:
        worker.stop()
        return _error(str(exc))
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(f"shadow server listening on {server.address}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rig.config import ConfigError
    from worldmodel.predict import PredictError
    from worldmodel.shadow.offline import mirror_motion, replay_episode
    from worldmodel.shadow.replay import ReplayError, read_recording
    from worldmodel.shadow.report import write_report
    from worldmodel.shadow.service import result_to_wire

    if args.every <= 0:
        return _error(f"--every {args.every}: expected a positive number of seconds")
    try:
        config, engine = _setup(args)
        episode = read_recording(args.recording, args.episode, config.cameras, engine.resolution)
        results = replay_episode(engine, episode, args.every, mirror_motion if args.wrong_actions else None)
    except (ConfigError, PredictError, ReplayError) as exc:
        return _error(str(exc))
    wire = [result_to_wire(r, panels=True) for r in results]
    summary = write_report(wire, args.out, fps=engine.fps, divergence=config.divergence.__dict__,
                           settings={"checkpoint": str(args.checkpoint), "recording": str(args.recording),
                                     "episode": args.episode, "every_s": args.every,
                                     "wrong_actions": args.wrong_actions, "sampler_steps": config.sampler_steps},
                           rerun=args.rerun, title=f"{episode.source}: shadow {args.checkpoint}")
    overall = summary["summary"].get("all", {})
    print(f"{len(results)} chunks from {episode.source}: " + ", ".join(
        f"{k} {v:.4g}" for k, v in overall.items() if v is not None))
    print(f"divergence events: {len(summary['divergence']['events'])}")
    print(f"wrote {args.out}/summary.json, " + ", ".join(summary["files"].values()))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import numpy as np

    from rig.config import ConfigError
    from worldmodel.predict import PredictError
    from worldmodel.shadow.divergence import calibrate_threshold
    from worldmodel.shadow.offline import replay_episode
    from worldmodel.shadow.replay import ReplayError, read_recording

    try:
        config, engine = _setup(args)
        metric = config.divergence.metric
        values = []
        for ep in args.episodes:
            episode = read_recording(args.recording, ep, config.cameras, engine.resolution)
            values += [v for r in replay_episode(engine, episode, args.every) for v in r.series_mean(metric)[1]]
        threshold = calibrate_threshold(values, config.divergence.higher_is_worse, args.quantile)
    except (ConfigError, PredictError, ReplayError, ValueError) as exc:
        return _error(str(exc))
    arr = np.asarray(values, dtype=np.float64)
    result = {"metric": metric, "threshold": threshold, "quantile": args.quantile, "values": int(arr.size),
              "mean": float(np.nanmean(arr)), "episodes": args.episodes, "recording": str(args.recording)}
    print(f"{metric}: threshold {threshold:.5g} ({args.quantile} quantile in the bad direction of {arr.size} "
          f"per-frame values, mean {result['mean']:.5g})")
    print(f"set it in config/shadow.yaml:  divergence: {{threshold: {threshold:.5g}}}  or pass --threshold")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
