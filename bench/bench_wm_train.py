"""World-model training throughput of the tiny config on CPU, measured on a real training run.

Records (or reuses) scripted twin episodes, builds the tiny-VAE latent cache, then runs the trainer
(`worldmodel.train.Trainer`) and reports: cache build time, steady-state samples/s and step time
(first logging window dropped as warm-up), and the eval-loss drop. `--pixels` trains from pixels with the
VAE encoding every batch instead of cached latents.

Usage: python3 bench/bench_wm_train.py [--data DIR] [--steps 60] [--batch 4] [--size 64] [--pixels]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from worldmodel.train import Trainer, load_train_config  # noqa: E402


def record(out: Path, size: int, episodes: int) -> None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa")}
    subprocess.run([sys.executable, "-m", "a2world_ros.cli.main", "collect", "--task", "lift_box_high",
                    "--episodes", str(episodes), "--out", str(out), "--size", f"{size}x{size}", "--formats", "lerobot"],
                   check=True, capture_output=True, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="existing recording (default: record 2 twin episodes)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="model resolution (square, multiple of 8)")
    ap.add_argument("--pixels", action="store_true", help="encode with the VAE every step (no latent cache)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_wm_train_") as tmp:
        work = Path(tmp)
        data = args.data
        if data is None:
            data = work / "twin"
            t0 = time.perf_counter()
            record(data, args.size, 2)
            print(f"recorded 2 twin episodes at {args.size}x{args.size} in {time.perf_counter() - t0:.1f} s")
        overrides = [f"data.roots=[{data}]", f"run_dir={work / 'run'}", f"data.resolution=[{args.size},{args.size}]",
                     "+train=smoke", f"trainer.max_steps={args.steps}", f"trainer.batch_size={args.batch}",
                     "trainer.progress=false", "trainer.log_every=10", "trainer.eval_batches=2"]
        if not args.pixels:
            overrides.append(f"data.latent_cache={work / 'cache'}")
        if args.threads:
            overrides.append(f"trainer.threads={args.threads}")
        cfg = load_train_config(overrides)
        t0 = time.perf_counter()
        trainer = Trainer(cfg)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = trainer.fit()
        fit = time.perf_counter() - t0
        lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        rates = [x["samples_per_s"] for x in lines if "samples_per_s" in x][1:]
        steady = sum(rates) / len(rates) if rates else result.samples_per_s
        n_params = sum(p.numel() for p in trainer.raw_net.parameters())
        print(f"mode: {'pixels (VAE encode per step)' if args.pixels else 'cached latents'}; "
              f"{trainer.data.sizes[0]} clips x {len(cfg['data']['cameras'])} views at {args.size}x{args.size}; "
              f"net {n_params / 1e6:.2f} M parameters; batch {args.batch}; torch threads {torch.get_num_threads()}")
        print(f"setup (data, {'cache build, ' if not args.pixels else ''}model): {setup:.1f} s")
        print(f"train {args.steps} steps: {fit:.1f} s (incl. 2 evals, 1 checkpoint)")
        print(f"steady samples/s: {steady:.2f}  (step {args.batch / steady * 1000:.0f} ms)")
        print(f"eval loss: {result.first_eval_loss:.3f} -> {result.last_eval_loss:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
