"""History-sampling ablation of A2World-sim on held-out episodes (the paper's Table 8 at our scale).

For each (name, checkpoint, sampler) entry, every held-out episode of at least `seconds` is rolled out from
its first frame for `seconds`, and the metrics of the last `last_seconds` (PSNR, SSIM, temporal SSIM, flow
EPE / cosine, mean over views and episodes) are tabulated. Each entry may be its own fine-tuned checkpoint
(trained with that sampler) or the same checkpoint evaluated with different samplers.

    python -m worldmodel.sim_ablation --data DIR --seconds 10 --last-seconds 3 --steps 4 \\
        --entry pose-guided:runs/sim_arc/checkpoints/step_0000300:arc_dual \\
        --entry sliding-window:runs/sim_sw/checkpoints/step_0000300:sliding_window \\
        --entry no-history:runs/sim_none/checkpoints/step_0000300:none --out ablation.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.metrics import METRIC_NAMES

TABLE_METRICS = ("psnr", "ssim", "tssim", "flow_epe", "flow_cos")


def long_episodes(root: str | Path, seconds: float) -> list[int]:
    """Episodes of `root` lasting at least `seconds` (first to last frame)."""
    from worldmodel.data.source import RecordingSource

    src = RecordingSource(root)
    return [ep for ep in range(src.num_episodes) if (src.episode_length(ep) - 1) / src.fps >= seconds]


def evaluate_entry(checkpoint: str, sampler: str, root: str | Path, episodes: list[int], seconds: float,
                   last_seconds: float, steps: int | None, seed: int = 0) -> dict[str, Any]:
    """Mean tail metrics over episodes for one checkpoint and history sampler."""
    from worldmodel.episode_rollout import SegmentSettings, load_segment, rollout_episode, tail_metrics
    from worldmodel.history import HistoryConfig
    from worldmodel.predict import WorldModelPredictor

    predictor = WorldModelPredictor.from_checkpoint(checkpoint)
    settings = SegmentSettings.of_checkpoint(checkpoint)
    trained = settings.history or HistoryConfig("release")
    history = replace(trained, sampler=sampler)
    per_episode = []
    for ep in episodes:
        seg = load_segment(root, ep, seconds, predictor, settings)
        result = rollout_episode(predictor, seg, history=history, seed=seed, steps=steps, progress=True)
        per_episode.append(tail_metrics(seg.real, result.frames, seg.fps, last_seconds)["summary"]["all"])
    mean = {m: float(np.nanmean([e[m] for e in per_episode])) for m in METRIC_NAMES}
    return {"checkpoint": checkpoint, "sampler": sampler, "episodes": episodes, "per_episode": per_episode,
            "mean": mean}


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """Rows per entry: PSNR / SSIM / tSSIM / EPE / cos of the last seconds."""
    lines = ["| history | PSNR (dB) | SSIM | tSSIM | flow EPE (px) | flow cos |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        m = r["mean"]
        lines.append(f"| {name} ({r['sampler']}) | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['tssim']:.4f} | "
                     f"{m['flow_epe']:.4f} | {m['flow_cos']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="held-out LeRobot v3 dataset")
    ap.add_argument("--entry", action="append", required=True, metavar="NAME:CHECKPOINT:SAMPLER")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--last-seconds", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: 35)")
    ap.add_argument("--episodes", type=int, nargs="+", default=None, help="default: all long enough")
    ap.add_argument("--threads", default=None)
    ap.add_argument("--out", default=None, help="write the results as JSON")
    args = ap.parse_args(argv)
    from worldmodel.threads import configure_torch_threads

    configure_torch_threads(args.threads, source="--threads")
    episodes = args.episodes if args.episodes is not None else long_episodes(args.data, args.seconds)
    if not episodes:
        print(f"error: no episode of {args.data} lasts {args.seconds} s", file=sys.stderr)
        return 2
    results = {}
    for spec in args.entry:
        name, _, rest = spec.partition(":")
        checkpoint, _, sampler = rest.rpartition(":")
        if not name or not checkpoint or not sampler:
            print(f"error: --entry {spec!r}: expected NAME:CHECKPOINT:SAMPLER", file=sys.stderr)
            return 2
        results[name] = evaluate_entry(checkpoint, sampler, args.data, episodes, args.seconds,
                                       args.last_seconds, args.steps)
        print(f"{name}: {results[name]['mean']}", flush=True)
    print(markdown_table(results))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
