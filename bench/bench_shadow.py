"""Shadow predictor benchmarks.

1. `predict`: shadow predictions per second (predict one 2 s chunk for every view + score it against real
   frames), with a checkpoint (`--checkpoint`) or, without one, the tiny network config randomly
   initialised at `--size` (the compute is the same as a trained one of that size). On a GPU pass
   `--device cuda`.
2. `jitter`: executor tick jitter of the real-time twin graph (scripted expert, 100 Hz executor) without
   and with the shadow process attached (`--checkpoint` required), alternating `--repeats` times.

    MUJOCO_GL=osmesa python3 bench/bench_shadow.py predict --size 96x128 --steps 4
    MUJOCO_GL=osmesa python3 bench/bench_shadow.py jitter --checkpoint CKPT --seconds 10 --size 96x128
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")

CAMERAS = ("front", "wrist_left", "wrist_right")


def _tiny_predictor(size: tuple[int, int], device: str):
    import torch

    from worldmodel.configs import load_net_config
    from worldmodel.network.a2world import build_net
    from worldmodel.predict import WorldModelPredictor
    from worldmodel.vae import WanVAE
    from worldmodel.vae.config import load_vae_config

    vae_cfg = load_vae_config("tiny")
    net_cfg = replace(load_net_config("tiny"), in_channels=vae_cfg.z_dim, out_channels=vae_cfg.z_dim)
    net_cfg = replace(net_cfg, max_img_h=max(net_cfg.max_img_h, size[0] // 8), max_img_w=max(net_cfg.max_img_w,
                                                                                            size[1] // 8))
    torch.manual_seed(0)
    net = build_net(net_cfg, device)
    vae = WanVAE(vae_cfg).to(device)
    return WorldModelPredictor(net, vae, size)


def bench_predict(args: argparse.Namespace) -> None:
    from worldmodel.shadow.config import ShadowConfig
    from worldmodel.shadow.engine import ShadowEngine
    from worldmodel.shadow.frames import RealFrameBuffer
    from worldmodel.shadow.model import load_predictor
    from worldmodel.shadow.work import ShadowWork
    from worldmodel.threads import configure_torch_threads

    threads = configure_torch_threads(args.threads)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    predictor = load_predictor(args.checkpoint, device=args.device, threads=args.threads) if args.checkpoint \
        else _tiny_predictor(size, args.device)  # type: ignore[arg-type]
    config = ShadowConfig.from_mapping({"sampler_steps": args.steps})
    engine = ShadowEngine(predictor, config)
    h, w = engine.resolution
    rng = np.random.default_rng(0)
    current = np.tile(np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0, 1.0]), (2, 1))
    targets = np.repeat(current[None], 60, axis=0)
    targets[:, :, 0] += np.linspace(0.001, 0.06, 60)[:, None]
    buffer = RealFrameBuffer(keep_s=1e9)
    for j in range(70):
        for cam in CAMERAS:
            buffer.add(cam, j / 30, rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    images = {c: rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for c in CAMERAS}
    predict_s, score_s = [], []
    for i in range(args.repeats + 1):
        work = ShadowWork(i, 0.0, images, current, targets, 0.0, 1 / 30)
        t0 = time.perf_counter()
        pred = engine.predict(work)
        t1 = time.perf_counter()
        engine.score(pred, buffer)
        t2 = time.perf_counter()
        if i:  # the first call warms up
            predict_s.append(t1 - t0)
            score_s.append(t2 - t1)
    p, s = float(np.median(predict_s)), float(np.median(score_s))
    what = args.checkpoint or f"tiny net (random init) at {h}x{w}"
    print(f"{what}, {len(CAMERAS)} views, {config.horizon_frames} frames (2.0 s), {args.steps} sampler steps, "
          f"{args.device}, {threads} torch thread(s):")
    print(f"  predict {p:.3f} s, score {s:.3f} s (median of {args.repeats}) -> {1 / (p + s):.3f} predictions/s, "
          f"{(p + s) / 2.0:.2f} s per predicted second")


def _episode(seconds: float, size: tuple[int, int], shadow_ckpt: str | None, shadow_config: str) -> dict:
    from a2world_ros.run_policy import PolicyRunner, build_sim_rig, load_graph_config, task_instruction
    from a2world_ros.runtime.expert_policy import ExpertPolicy
    from a2world_ros.shadow_session import ShadowSession
    from worldmodel.shadow.config import load_shadow_config

    rig = build_sim_rig("lift_box_high", seed=0, clock="realtime", render_size=size)
    twin = rig.arms["left"].twin  # type: ignore[attr-defined]
    expert = ExpertPolicy(twin)
    config = load_graph_config()
    config = replace(config, run=replace(config.run, stop_on_success=False))
    shadow = None
    if shadow_ckpt:
        shadow = ShadowSession.start(shadow_ckpt, load_shadow_config(shadow_config), shadow_config,
                                     printer=lambda _line: None)
    rig.connect()
    runner = PolicyRunner(rig, expert, config, task_instruction("lift_box_high"), on_episode_start=expert.reset,
                          on_observation=shadow.on_observation if shadow else None,
                          on_chunk=shadow.on_chunk if shadow else None)
    runner.run_episode(0, 0, seconds)
    jitter = runner.jitter
    runner.close()
    rig.disconnect()
    out = {"p50": jitter.p50 * 1e3, "p99": jitter.p99 * 1e3, "max": jitter.max * 1e3, "ticks": jitter.ticks,
           "overruns": jitter.overruns}
    if shadow is not None:
        shadow.close(drain_s=2.0)
        out["shadow"] = {k: shadow.status.get(k) for k in ("predicted", "scored", "dropped", "predictions_per_s",
                                                          "lag_s")}
    return out


def bench_jitter(args: argparse.Namespace) -> None:
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "shadow.yaml"
        cfg.write_text(f"shadow:\n  sampler_steps: {args.steps}\n  threads: {args.threads}\n")
        for r in range(args.repeats):
            for ckpt in (None, args.checkpoint):
                res = _episode(args.seconds, size, ckpt, str(cfg))  # type: ignore[arg-type]
                label = "with shadow   " if ckpt else "without shadow"
                print(f"run {r} {label}: executor jitter p50 {res['p50']:.3f} ms, p99 {res['p99']:.3f} ms, "
                      f"max {res['max']:.3f} ms over {res['ticks']} ticks ({res['overruns']} overruns)"
                      + (f"; shadow {res['shadow']}" if ckpt else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("predict", "jitter"):
        p = sub.add_parser(name)
        p.add_argument("--checkpoint", default=None, required=name == "jitter")
        p.add_argument("--size", default="96x128", help="HxW: model size (predict, no checkpoint) / camera size")
        p.add_argument("--steps", type=int, default=4, help="sampler steps (default 4)")
        p.add_argument("--threads", default="auto")
        p.add_argument("--repeats", type=int, default=3 if name == "predict" else 2)
        p.add_argument("--device", default="cpu")
        p.add_argument("--seconds", type=float, default=10.0, help="jitter: seconds per run")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min) at start")
    bench_predict(args) if args.mode == "predict" else bench_jitter(args)


if __name__ == "__main__":
    main()
