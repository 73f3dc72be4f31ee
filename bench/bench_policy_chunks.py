"""How a trained policy's sampled action chunks compare with the expert's on held-out episodes: position
error of the absolute targets, and how fast and how jerkily they move (speed and acceleration of the
30 Hz targets against the safety guard's limits). A policy whose chunks are accurate on average but
jitter from step to step gets clamped by the guard on most ticks and lags the motion it meant.

Usage: python3 bench/bench_policy_chunks.py --checkpoint RUN/checkpoint --data DATASET [--episodes 3]
       [--threads 1] [--smooth 0 5 9]   (moving-average windows applied to the sampled chunks)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def motion(targets: np.ndarray, hz: float) -> dict[str, float]:
    """Speed (m/s) and acceleration (m/s^2) of absolute targets (N, T, 2, 8): p95 and max over arms."""
    p = targets[..., :3]
    v = np.linalg.norm(np.diff(p, axis=1), axis=-1) * hz
    a = np.linalg.norm(np.diff(p, 2, axis=1), axis=-1) * hz * hz
    return {"speed_p95": float(np.percentile(v, 95)), "speed_max": float(v.max()),
            "acc_p95": float(np.percentile(a, 95)), "acc_max": float(a.max()),
            "frac_speed_over_0.25": float((v > 0.25).mean()), "frac_acc_over_1.0": float((a > 1.0).mean())}


def smooth(chunks: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along the chunk (edges padded with the end values)."""
    if window <= 1:
        return chunks
    pad = window // 2
    padded = np.concatenate([np.repeat(chunks[:, :1], pad, 1), chunks, np.repeat(chunks[:, -1:], pad, 1)], axis=1)
    kernel = np.ones(window) / window
    return np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="valid"), 1, padded)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True, help="LeRobot v3.0 dataset (the held-out episodes are its last ones)")
    ap.add_argument("--episodes", type=int, default=3, help="last N episodes of --data (default: 3)")
    ap.add_argument("--threads", default=None)
    ap.add_argument("--smooth", type=int, nargs="*", default=[0, 5, 9])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from policy.action_repr import relative_to_chunk
    from policy.checkpoint import load_policy
    from policy.data import PolicyClipDataset
    from policy.train import ContextSource, clip_tensors, encode_clips, sample_actions
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset
    from worldmodel.threads import configure_torch_threads

    threads = configure_torch_threads(args.threads, source="--threads")
    loaded = load_policy(args.checkpoint)
    cfg, norm = loaded.config, loaded.normalizer
    n = LeRobotV3Dataset(args.data).num_episodes
    eps = [(0, e) for e in range(max(0, n - args.episodes), n)]
    t0 = time.perf_counter()
    ds = PolicyClipDataset([args.data], cfg, eps)
    data = clip_tensors(ds, encode_clips(ds, loaded.vae), norm)
    ctx = ContextSource(cfg, loaded.text, data.instructions, torch.device("cpu"))
    pred = sample_actions(cfg, loaded.net, ctx, data, torch.device("cpu"))
    hz = float(cfg.policy.action_hz)
    truth = np.stack([relative_to_chunk(data.states_raw[i], data.actions_raw[i]) for i in range(len(pred))])
    report = {"checkpoint": args.checkpoint, "step": loaded.meta.get("step"), "clips": len(pred),
              "episodes": [e for _, e in eps], "threads": threads, "expert": motion(truth, hz)}
    rel = np.stack([norm.denorm_actions(p) for p in pred])
    for w in args.smooth:
        targets = np.stack([relative_to_chunk(data.states_raw[i], smooth(rel[i:i + 1], w)[0]) for i in range(len(rel))])
        err = np.linalg.norm(targets[..., :3] - truth[..., :3], axis=-1).mean()
        report[f"policy_smooth{w}"] = {"position_error_m": float(err), **motion(targets, hz)}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
