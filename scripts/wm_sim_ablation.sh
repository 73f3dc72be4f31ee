#!/bin/bash
# A2World-sim history ablation at CPU scale (docs/worldmodel_sim.md): three fine-tunes from the same tiny base, then
# rollouts on held-out episodes of >= 10 s.
set -e
cd "$(dirname "$0")/.."
STEPS=${STEPS:-150}
BASE=${BASE:-/tmp/i10x/base/checkpoints/step_0001500}
for S in arc_dual sliding_window none; do
  .venv/bin/a2world worldmodel train-sim data.roots=[/tmp/i10x/train] vae=embedded vae_weights=/tmp/i10x/vae.safetensors \
    data.resolution=[48,64] data.latent_cache=/tmp/i10x/cache init_from=$BASE history.sampler=$S \
    self_forcing.mode=release self_forcing.warmup_steps=$((STEPS / 3)) self_forcing.probability=0.4 self_forcing.max_steps=3 \
    trainer.max_steps=$STEPS trainer.batch_size=4 trainer.threads=1 trainer.ckpt_every=0 trainer.eval_batches=0 \
    trainer.ema_decay=null optim.lr=5e-4 optim.warmup_steps=10 run_dir=/tmp/i10x/sim_$S
done
.venv/bin/python -m worldmodel.sim_ablation --data /tmp/i10x/heldout --seconds 10 --last-seconds 3 --steps ${EVAL_STEPS:-6} \
  --threads 1 --episodes ${EPISODES:-2 6 8} \
  --entry pose-guided:/tmp/i10x/sim_arc_dual/checkpoints/step_$(printf %07d $STEPS):arc_dual \
  --entry sliding-window:/tmp/i10x/sim_sliding_window/checkpoints/step_$(printf %07d $STEPS):sliding_window \
  --entry no-history:/tmp/i10x/sim_none/checkpoints/step_$(printf %07d $STEPS):none \
  --out /tmp/i10x/ablation.json
