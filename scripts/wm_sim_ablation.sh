#!/bin/bash
# A2World-sim history ablation at CPU scale (docs/worldmodel_sim.md): three fine-tunes from the same tiny base,
# differing only in history.sampler, then 10 s rollouts on held-out episodes. Paths come from the environment:
#   TRAIN   comma-separated training datasets (hydra list body)     HELDOUT  one held-out dataset (episodes >= 10 s)
#   VAE     embedded VAE weights                                    BASE     tiny A2World checkpoint folder to start from
#   CACHE   latent-cache folder                                     OUT      output folder (runs, ablation.json)
#   RES     view size H,W (default 96,128)    STEPS fine-tune steps (150)    EVAL_STEPS sampler steps (6)
#   CLIP_HOP strided frames between training clips (20, as +train=embedded, so its latent cache is reused)
#   EPISODES held-out episode indices (default: all long enough)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TRAIN:?}" "${HELDOUT:?}" "${BASE:?}" "${OUT:?}"
VAE=${VAE:-checkpoints/embedded/vae/vae.safetensors}
CACHE=${CACHE:-$OUT/cache}
RES=${RES:-96,128}
STEPS=${STEPS:-150}
for S in arc_dual sliding_window none; do
  .venv/bin/a2world worldmodel train-sim data.roots=[$TRAIN] vae=embedded vae_weights=$VAE \
    data.resolution=[$RES] data.clip_hop=${CLIP_HOP:-20} data.latent_cache=$CACHE init_from=$BASE history.sampler=$S \
    self_forcing.mode=release self_forcing.warmup_steps=$((STEPS / 3)) self_forcing.probability=0.4 self_forcing.max_steps=3 \
    trainer.max_steps=$STEPS trainer.batch_size=4 trainer.threads=1 trainer.ckpt_every=0 trainer.eval_batches=0 \
    trainer.ema_decay=null optim.lr=5e-4 optim.warmup_steps=10 run_dir=$OUT/sim_$S
done
ckpt() { echo "$OUT/sim_$1/checkpoints/step_$(printf %07d "$STEPS")"; }
.venv/bin/python -m worldmodel.sim_ablation --data "$HELDOUT" --seconds 10 --last-seconds 3 --steps "${EVAL_STEPS:-6}" \
  --threads 1 ${EPISODES:+--episodes $EPISODES} \
  --entry "pose-guided:$(ckpt arc_dual):arc_dual" \
  --entry "sliding-window:$(ckpt sliding_window):sliding_window" \
  --entry "no-history:$(ckpt none):none" \
  --out "$OUT/ablation.json"
