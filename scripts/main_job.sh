#!/usr/bin/env bash
# The main job on the embedded default, end to end on the MuJoCo twin (no GPU, no robot):
#   1. the scripted expert demonstrates lift_box_high (LeRobot v3 + rosbag2 MCAP),
#   2. a tiny A2World-policy is trained on those demonstrations (CPU),
#   3. the trained policy runs on the twin through the policy loop, executor and safety guard,
#      and each episode's success and progress score are printed.
# Usage: scripts/main_job.sh [OUT_DIR]   (default runs/main_job; rerunning resumes training)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/main_job}
TASK=lift_box_high
SIZE=120x160   # twin render size for demonstrations and rollouts; the tiny policy resizes to 32x32

export MUJOCO_GL=${MUJOCO_GL:-osmesa}
# Use the environment scripts/setup.sh made, when there is one.
if [ -x .venv/bin/a2world ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
if [ ! -d "$OUT/demos/lerobot" ]; then
  a2world collect --task "$TASK" --episodes 6 --out "$OUT/demos" --size "$SIZE" --formats lerobot mcap
fi
a2world data info "$OUT/demos"
# 3000 steps (about 2 min on 2 idle cores): at 300 the sampled chunks are still mostly per-step noise
# (held-out error = the constant-action baseline, commanded speeds of metres per second on the twin).
a2world policy train --data "$OUT/demos/lerobot" --out "$OUT/policy" train.steps=3000 train.log_every=500
a2world run policy --rig sim --task "$TASK" --policy "$OUT/policy/checkpoint" --episodes 2 --size "$SIZE" \
  --json "$OUT/results.json"
