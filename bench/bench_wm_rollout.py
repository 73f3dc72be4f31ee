"""Benchmark of the chunk-wise A2World-sim rollout: wall seconds per predicted second.

CPU (always): the tiny sim network (`tiny_sim`) with the embedded-size VAE layout (`vae/embedded.yaml`,
random weights) at 96x128, three views, history sampler arc_dual (budget 20), a few-step sampler and the
release's 35 steps; reports the time per chunk split into history encoding, network sampling and decoding.
GPU (when CUDA is available): the full `a2world_sim_2b` network with random bf16 weights, 2 views at the
release's 256x256 latent layout (32x32), one 2 s chunk with the `fast_4` preset and 35 steps, against the
goal "a 2 s chunk faster than real time" (the VAE is not part of the GPU figure).

    python3 bench/bench_wm_rollout.py --chunks 3 --steps 4 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import worldmodel.rollout as rollout_mod
from worldmodel.configs import load_net_config
from worldmodel.network import build_net
from worldmodel.predict import WorldModelPredictor
from worldmodel.rollout import rollout
from worldmodel.threads import configure_torch_threads
from worldmodel.vae import WanVAE


def cpu_rollout(chunks: int, steps: int, size: tuple[int, int], sampler: str) -> dict[str, float]:
    torch.manual_seed(0)
    vae = WanVAE.from_config("embedded")
    cfg = replace(load_net_config("tiny_sim"), in_channels=vae.config.z_dim, out_channels=vae.config.z_dim)
    predictor = WorldModelPredictor(build_net(cfg).eval(), vae, size)
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for cam in ("wrist_left", "front", "wrist_right")}
    actions = rng.normal(0.0, 0.01, (20 * chunks, 14))
    timings = {"history": 0.0, "decode": 0.0}
    encode, decode = rollout_mod.encode_history, predictor.decode

    def timed_encode(*args, **kwargs):
        t0 = time.perf_counter()
        out = encode(*args, **kwargs)
        timings["history"] += time.perf_counter() - t0
        return out

    def timed_decode(*args, **kwargs):
        t0 = time.perf_counter()
        out = decode(*args, **kwargs)
        timings["decode"] += time.perf_counter() - t0
        return out

    rollout_mod.encode_history = timed_encode
    predictor.decode = timed_decode  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        rollout(predictor, images, actions, history=sampler, steps=steps, progress=True)
        total = time.perf_counter() - t0
    finally:
        rollout_mod.encode_history = encode
    predicted = chunks * 20 / predictor.fps
    return {"total_s": total, "predicted_s": predicted, "s_per_predicted_s": total / predicted,
            "history_s_per_chunk": timings["history"] / chunks, "decode_s_per_chunk": timings["decode"] / chunks,
            "other_s_per_chunk": (total - timings["history"] - timings["decode"]) / chunks}


def gpu_chunk(preset: str) -> float:
    from worldmodel.diffusion import sample

    dev = torch.device("cuda")
    net = build_net(load_net_config("a2world_sim_2b"), device=dev, dtype=torch.bfloat16).eval()
    V = 2
    cond = torch.randn(1, 16, V * 6, 32, 32, device=dev)
    hist = torch.randn(1, 16, V * 5, 32, 32, device=dev)
    state = torch.randn(1, 20, 20, 22, device=dev) * 0.1
    act = torch.randn(1, 20, 14, device=dev) * 0.05
    ids = torch.tensor([[2, 0]], device=dev)
    inputs = {"history": hist, "state": state}
    sample(net, cond, act, ids, sampler="fast_4", net_inputs=inputs)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    sample(net, cond, act, ids, sampler=preset, net_inputs=inputs)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 35])
    ap.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    ap.add_argument("--history", default="arc_dual")
    ap.add_argument("--threads", default=None)
    args = ap.parse_args()
    threads = configure_torch_threads(args.threads, source="--threads")
    print(f"CPU, torch threads {threads}, tiny_sim + embedded VAE layout (random weights), "
          f"{args.size[0]}x{args.size[1]}, 3 views, history {args.history}, {args.chunks} chunks")
    for steps in args.steps:
        r = cpu_rollout(args.chunks, steps, tuple(args.size), args.history)
        print(f"  {steps:3d} steps: {r['s_per_predicted_s']:.2f} s per predicted s ({r['total_s']:.1f} s for "
              f"{r['predicted_s']:.0f} s); per chunk: history encode {r['history_s_per_chunk']:.2f} s, decode "
              f"{r['decode_s_per_chunk']:.2f} s, condition encode + sampling {r['other_s_per_chunk']:.2f} s")
    if torch.cuda.is_available():
        for preset in ("fast_4", "release"):
            dt = gpu_chunk(preset)
            print(f"GPU a2world_sim_2b bf16, 2 views, one 2 s chunk, {preset}: {dt:.2f} s "
                  f"({'faster' if dt < 2.0 else 'slower'} than real time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
