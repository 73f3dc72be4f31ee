"""Embedded-VAE training speed and quality on CPU, measured on a real `train-vae` run.

Runs `worldmodel.vae.train.VAETrainer` (the `train-vae` command's trainer) on a recording for --steps
steps and reports: wall steps/s, the process CPU seconds per step (`time.process_time`, all threads), the
1-minute load average before and after, and the held-out PSNR/SSIM before and after. On a shared machine
the wall rate depends on the other jobs; CPU seconds per step do much less, so `steps x CPU-s/step /
threads` is the honest estimate of the run's length on idle cores (memory-bandwidth contention aside).

Usage: python3 bench/bench_vae_train.py --data DIR [--heldout DIR] [--steps 100] [--threads 1] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worldmodel.vae.train import VAETrainer, load_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="LeRobot recording to train on")
    ap.add_argument("--heldout", type=Path, default=None, help="held-out recording (default: every 5th episode)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("overrides", nargs="*", help="extra train_vae.yaml overrides")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_vae_train_") as tmp:
        overrides = [f"data.roots=[{args.data}]", f"run_dir={tmp}/run", f"trainer.max_steps={args.steps}",
                     f"trainer.threads={args.threads}", "trainer.progress=false", "trainer.eval_every=0",
                     "trainer.ckpt_every=0", *args.overrides]
        if args.heldout is not None:
            overrides.append(f"data.heldout_roots=[{args.heldout}]")
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        trainer = VAETrainer(load_config(overrides))
        setup_s = time.perf_counter() - t0
        first = trainer.evaluate()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        last = trainer.evaluate()
        report = {
            "steps": args.steps, "threads": trainer.threads, "setup_s": round(setup_s, 1),
            "wall_steps_per_s": round(args.steps / wall, 3), "cpu_s_per_step": round(cpu / args.steps, 4),
            "idle_core_estimate_s_per_1000_steps": round(1000 * cpu / args.steps / trainer.threads, 1),
            "load_avg_1min_before": round(load_before, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2),
            "heldout_psnr": [round(first["psnr"], 2), round(last["psnr"], 2)],
            "heldout_ssim": [round(first["ssim"], 3), round(last["ssim"], 3)],
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
