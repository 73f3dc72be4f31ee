"""Success rate of the scripted experts: N seeded episodes per task, on the twin and/or floating grippers.

Runs without rendering (the experts read privileged state only). Prints, per rig and task: successes,
success rate, mean final and best progress, mean episode length and wall time per episode.

    python3 bench/bench_experts.py --episodes 50 --rig twin floating --jobs 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def make_env(rig: str, task):
    if rig == "twin":
        from rig.sim.twin import Twin

        return Twin(task=task, render_size=(48, 64))
    from rig.sim.experts.floating import FloatingGrippers

    return FloatingGrippers(task)


def run(rig: str, name: str, episodes: int, seed0: int) -> dict:
    from rig.sim.experts import get_expert
    from rig.sim.experts.runner import episode_limit, run_episode
    from rig.sim.tasks import get_task

    task = get_task(name)
    env = make_env(rig, task)
    t0 = time.monotonic()
    results = [run_episode(env, get_expert(task), seed0 + i, episode_limit(task)) for i in range(episodes)]
    wall = time.monotonic() - t0
    n = len(results)
    return {
        "rig": rig, "task": name, "n": n, "ok": sum(r.success for r in results),
        "progress": sum(r.progress for r in results) / n, "best": sum(r.best_progress for r in results) / n,
        "sim_s": sum(r.sim_seconds for r in results) / n, "wall_s": wall / n,
        "failed_seeds": [r.seed for r in results if not r.success],
    }


def main() -> int:
    from rig.sim.tasks import TASK_NAMES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--rig", nargs="+", default=["twin"], choices=("twin", "floating"))
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one task per process)")
    args = parser.parse_args()
    jobs = [(rig, name, args.episodes, args.seed) for rig in args.rig for name in args.tasks]
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(run, *zip(*jobs)))
    print(f"{'rig':<9} {'task':<15} {'success':>9} {'rate':>6} {'progress':>9} {'best':>6} "
          f"{'sim s/ep':>9} {'wall s/ep':>10}  failed seeds")
    for r in rows:
        print(f"{r['rig']:<9} {r['task']:<15} {r['ok']:>4}/{r['n']:<4} {100 * r['ok'] / r['n']:>5.0f}% "
              f"{r['progress']:>9.2f} {r['best']:>6.2f} {r['sim_s']:>9.1f} {r['wall_s']:>10.2f}  "
              f"{r['failed_seeds'][:12]}")
    print(f"total wall {time.monotonic() - t0:.0f} s with {args.jobs} job(s), {args.episodes} episodes per row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
