#!/usr/bin/env bash
# The main job on the embedded default (MuJoCo twin, CPU only, no robot, no GPU):
#   1. the shipped tiny A2World-policy (checkpoints/embedded/policy) runs lift_box_high on the twin for
#      10 seeded lockstep episodes (seeds 0-9; training used seeds 1000 and up) through the policy loop,
#      chunk executor and safety guard, and each episode's success and progress are printed;
#   2. when a world model is shipped (checkpoints/embedded/worldmodel), it predicts held-out scripted
#      episodes (seeds 500+) and its PSNR is set against copying the last observed frame;
#   3. both, with the wall time of each step, go to OUT/results.json.
# The shipped checkpoints are regenerated from scratch on the twin by `a2world demo train` (README).
# Usage: scripts/main_job.sh [OUT_DIR]   (default runs/main_job; EPISODES=N overrides the episode count)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/main_job}
EMB=${A2WORLD_EMBEDDED:-checkpoints/embedded}
EPISODES=${EPISODES:-10}
SIZE=96x128   # twin render size: what the demonstrations were recorded at (the policy resizes to its own)

export MUJOCO_GL=${MUJOCO_GL:-osmesa}
# Use the environment scripts/setup.sh made, when there is one.
if [ -x .venv/bin/a2world ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
mkdir -p "$OUT"
timings=()

start=$(date +%s)
a2world run policy --rig sim --task lift_box_high --policy "$EMB/policy" --episodes "$EPISODES" --seed 0 \
  --size "$SIZE" --json "$OUT/policy_episodes.json"
timings+=("policy_rollouts=$(( $(date +%s) - start ))")

wm_args=()
if [ -d "$EMB/worldmodel" ]; then
  start=$(date +%s)
  if [ ! -d "$OUT/heldout/lerobot" ]; then
    a2world collect --task lift_box_high --episodes 2 --seed 500 --size "$SIZE" --formats lerobot --out "$OUT/heldout"
  fi
  a2world worldmodel eval --checkpoint "$EMB/worldmodel" --data "$OUT/heldout/lerobot" --json "$OUT/worldmodel_eval.json"
  timings+=("worldmodel_eval=$(( $(date +%s) - start ))")
  wm_args=(--worldmodel-json "$OUT/worldmodel_eval.json")
else
  echo "no $EMB/worldmodel shipped: the world-model comparison is skipped"
fi

a2world demo report --policy-json "$OUT/policy_episodes.json" "${wm_args[@]}" --timing "${timings[@]}" \
  --out "$OUT/results.json"
