"""Training of A2World-policy on LeRobot v3.0 datasets: joint video-action denoising loss, AdamW with warmup,
EMA, bf16 autocast on CUDA, DDP under torchrun, checkpoints with resume, held-out action error.

The VAE is frozen, so each clip's latents are computed once and kept (float32, CPU) for the run, and on
disk (`train.latent_cache`, `policy/latent_cache.py`) for the next run on the same clips and VAE; so are
the instruction embeddings when a T5 encoder is used. Our small text encoder trains with the policy.
Initialisation: `train.init_from` (an official A2World `.pt` or our world-model checkpoint) loads the
video branch and copies it into the action branch; `train.cosmos_cross_attn` loads the cross-attention.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policy.action_repr import Normalizer, relative_to_chunk, smooth_chunk
from policy.checkpoint import TRAIN_STATE, build_text_encoder, build_vae, save_policy
from policy.config import PolicyConfig
from policy.data import PolicyClipDataset, check_training_inputs, split_episodes
from policy.diffusion import JointCondition, JointDenoiser, joint_loss, sample_joint, sample_sigmas
from policy.latent_cache import cached_latents, latent_cache_key
from policy.latents import encode_views
from policy.model import PolicyNet, build_policy_net, init_cross_attn_from_cosmos, init_from_a2world
from policy.text import ByteTextEncoder, T5TextEncoder
from worldmodel.data.latents import vae_fingerprint

LOG = logging.getLogger(__name__)


@dataclass
class ClipTensors:
    """Every clip of a dataset as tensors: latents (N, C, VT, h, w), actions (N, Ha, 14) normalised,
    raw relative actions, states (N, 2, 8) raw and (N, 16) normalised, instruction index per clip, and
    each clip's start (seconds into its episode)."""

    latents: torch.Tensor
    actions: torch.Tensor
    actions_raw: np.ndarray
    states_raw: np.ndarray
    states: torch.Tensor
    instruction_ids: torch.Tensor
    instructions: list[str]
    view_ids: torch.Tensor
    start_s: np.ndarray


@dataclass
class TrainResult:
    """What a run produced: checkpoint directory, steps, last losses and held-out metrics."""

    checkpoint: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    eval: dict[str, float] = field(default_factory=dict)


def encode_clips(ds: PolicyClipDataset, vae: Any, batch: int = 32, desc: str = "encode clips") -> torch.Tensor:
    """Latents (N, C, V*T, h, w) of every clip of `ds` (frozen VAE), float32 on the CPU."""
    from tqdm import tqdm

    lat = []
    for start in tqdm(range(0, len(ds), batch), desc=desc, unit="batch", dynamic_ncols=True, leave=False,
                      mininterval=1.0):
        images = np.stack([ds.clip(i).images for i in range(start, min(start + batch, len(ds)))])
        lat.append(encode_views(vae, images).cpu())
    return torch.cat(lat)


def clip_tensors(ds: PolicyClipDataset, latents: torch.Tensor, normalizer: Normalizer) -> ClipTensors:
    """The clips of `ds` with their latents (`encode_clips`), actions and state normalised."""
    if len(latents) != len(ds):
        raise ValueError(f"{len(latents)} latents for {len(ds)} clips")
    acts, states, ins = [], [], []
    names: list[str] = []
    for i in range(len(ds)):
        state, actions, instruction = ds.targets(i)  # the images are in `latents` already
        acts.append(actions)
        states.append(state)
        if instruction not in names:
            names.append(instruction)
        ins.append(names.index(instruction))
    acts_raw, states_raw = np.stack(acts), np.stack(states)
    view_ids = torch.tensor(ds.config.policy.view_ids, dtype=torch.long)
    return ClipTensors(latents, torch.from_numpy(normalizer.norm_actions(acts_raw)), acts_raw, states_raw,
                       torch.from_numpy(normalizer.norm_state(states_raw)), torch.tensor(ins), names, view_ids,
                       ds.start_seconds())


def clip_sampling_weights(start_s: np.ndarray, config: PolicyConfig) -> torch.Tensor | None:
    """(N,) draw weights of clips starting `start_s` seconds into their episodes (`train.early_seconds`,
    `train.early_weight`); None = uniform."""
    t = config.train
    if t.early_weight == 1.0 or t.early_seconds <= 0:
        return None
    return torch.where(torch.from_numpy(start_s < t.early_seconds), t.early_weight, 1.0).double()


def latent_cache_dir(config: PolicyConfig, out_dir: Path) -> Path | None:
    """`train.latent_cache`: "auto" = OUT/latent_cache, a directory (shared between runs), or None (off)."""
    where = config.train.latent_cache
    if where is None or str(where).lower() in ("none", "off", "false"):
        return None
    return out_dir / "latent_cache" if where == "auto" else Path(where).expanduser()


def first_frame_mask(batch: int, n_views: int, frames: int, device: torch.device | str) -> torch.Tensor:
    """(B, V*T) float: 1 on each view's first latent frame (the observation)."""
    m = torch.zeros(n_views, frames, device=device)
    m[:, 0] = 1
    return m.reshape(1, -1).expand(batch, -1).contiguous()


class ContextSource:
    """Instruction embeddings for a batch: our trainable encoder, or cached T5 embeddings."""

    def __init__(self, config: PolicyConfig, text: ByteTextEncoder | None, instructions: Sequence[str],
                 device: torch.device) -> None:
        self.text = text
        self.instructions = list(instructions)
        self.fixed: torch.Tensor | None = None
        if text is None:
            t5 = T5TextEncoder(str(config.text.t5_dir), config.text.max_tokens, device)
            self.fixed = t5.encode(self.instructions).to(device)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if self.text is not None:
            return self.text.encode([self.instructions[i] for i in ids.tolist()])
        assert self.fixed is not None
        return self.fixed[ids.to(self.fixed.device)]


def make_condition(config: PolicyConfig, data: ClipTensors, idx: torch.Tensor, context: torch.Tensor,
                   device: torch.device, prefix_len: torch.Tensor | None = None) -> JointCondition:
    """The JointCondition of clips `idx` (prefix_len (B,) committed steps, None = no prefix)."""
    B = len(idx)
    lat = data.latents[idx].to(device)
    V = data.view_ids.numel()
    acts = data.actions[idx].to(device)
    Ha = acts.shape[1]
    pm = torch.zeros(B, Ha, device=device)
    if prefix_len is not None:
        pm = (torch.arange(Ha, device=device)[None] < prefix_len.to(device)[:, None]).float()
    state = data.states[idx].to(device) if config.policy.use_state else None
    return JointCondition(cond_latents=lat, cond_mask=first_frame_mask(B, V, lat.shape[2] // V, device),
                          view_ids=data.view_ids.to(device)[None].expand(B, -1), context=context,
                          null_context=torch.zeros_like(context), state=state, prefix=acts * pm[..., None],
                          prefix_mask=pm)


def load_init(config: PolicyConfig, net: PolicyNet, log: Callable[[str], None]) -> None:
    """Apply `train.init_from` and `train.cosmos_cross_attn` when set."""
    t = config.train
    if t.init_from:
        from worldmodel.checkpoint import load_checkpoint, read_official

        src = Path(t.init_from)
        state = read_official(src) if src.suffix == ".pt" else load_checkpoint(src)[0].state_dict()
        report = init_from_a2world(net, state, str(src))
        log(f"init from A2World {src}: {len(report['loaded'])} tensors loaded, {len(report['skipped'])} "
            f"world-model-only skipped, {len(report['fresh'])} fresh")
    if t.cosmos_cross_attn:
        from worldmodel.checkpoint import read_official

        keys = init_cross_attn_from_cosmos(net, read_official(t.cosmos_cross_attn), t.cosmos_cross_attn)
        log(f"cross-attention from Cosmos-Predict2 {t.cosmos_cross_attn}: {len(keys)} tensors")


@torch.no_grad()
def sample_actions(config: PolicyConfig, net: PolicyNet, text_ctx: ContextSource, data: ClipTensors,
                   device: torch.device, seed: int = 0, batch: int = 32) -> np.ndarray:
    """Sampled (normalised) action chunks (N, Ha, 14) for every clip of `data`, no committed prefix."""
    denoiser = JointDenoiser(net, config.diffusion)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(data.actions), batch):
        idx = torch.arange(start, min(start + batch, len(data.actions)))
        cond = make_condition(config, data, idx, text_ctx(data.instruction_ids[idx]).to(device), device)
        nv = torch.randn(tuple(cond.cond_latents.shape), generator=gen).to(device)
        na = torch.randn(tuple(data.actions[idx].shape), generator=gen).to(device)
        _, x0a = sample_joint(denoiser, cond, nv, na, config.sampler,
                              1 + config.sampler.gamma_v, 1 + config.sampler.gamma_a)
        out.append(x0a.float().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def evaluate(config: PolicyConfig, net: PolicyNet, text_ctx: ContextSource, data: ClipTensors,
             normalizer: Normalizer, baselines: dict[str, np.ndarray], device: torch.device,
             seed: int = 0) -> dict[str, float]:
    """Held-out action error of sampled chunks and of observation-independent baselines ((Ha, 14) raw
    relative chunks, e.g. the constant mean action): MSE in normalised units and mean position error (m)
    of the absolute targets over both arms and all steps, over all clips and over the clips that start in
    an episode's first second (`first_s_*`: where only the images say where the object is)."""
    sampled = sample_actions(config, net, text_ctx, data, device, seed)
    se: list[np.ndarray] = []
    pos: list[float] = []
    se_b: dict[str, list[np.ndarray]] = {k: [] for k in baselines}
    pos_b: dict[str, list[float]] = {k: [] for k in baselines}
    for start in range(0, len(data.actions), 32):
        idx = torch.arange(start, min(start + 32, len(data.actions)))
        pred = sampled[start:start + len(idx)]
        truth = data.actions[idx].numpy()
        se.append(((pred - truth) ** 2).mean(axis=(1, 2)))
        for name, chunk in baselines.items():
            se_b[name].append(((normalizer.norm_actions(chunk)[None] - truth) ** 2).mean(axis=(1, 2)))
        for j, i in enumerate(idx.tolist()):
            state = data.states_raw[i]
            gt = relative_to_chunk(state, data.actions_raw[i])[..., :3]
            rel = smooth_chunk(normalizer.denorm_actions(pred[j]), config.sampler.smooth_window)  # as executed
            pos.append(float(np.linalg.norm(relative_to_chunk(state, rel)[..., :3] - gt, axis=-1).mean()))
            for name, chunk in baselines.items():
                bl = relative_to_chunk(state, chunk)[..., :3]
                pos_b[name].append(float(np.linalg.norm(bl - gt, axis=-1).mean()))
    early = data.start_s < 1.0
    out = {"action_mse": float(np.concatenate(se).mean()), "position_error_m": float(np.mean(pos))}
    if early.any():
        out["first_s_position_error_m"] = float(np.asarray(pos)[early].mean())
    for name in baselines:
        out[f"{name}_action_mse"] = float(np.concatenate(se_b[name]).mean())
        out[f"{name}_position_error_m"] = float(np.mean(pos_b[name]))
        if early.any():
            out[f"{name}_first_s_position_error_m"] = float(np.asarray(pos_b[name])[early].mean())
    return out


def _lr(step: int, cfg: PolicyConfig) -> float:
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    frac = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def train(config: PolicyConfig, datasets: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
          resume: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume) a policy; writes `out_dir/checkpoint` (EMA weights) and `out_dir/train_state.pt`."""
    from tqdm import tqdm

    from worldmodel.threads import configure_torch_threads

    t = config.train
    threads = configure_torch_threads(t.threads, source="train.threads")
    rank, world, local = _distributed()
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(t.seed + rank)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    train_eps, val_eps = split_episodes(datasets, t.val_episodes)
    t0 = time.perf_counter()
    train_ds = PolicyClipDataset(datasets, config, train_eps)
    acts, states = train_ds.all_relative_actions()
    normalizer = Normalizer.fit(acts, states, action_min_std=config.policy.action_min_std,
                                  state_min_std=config.policy.state_min_std)
    per_step = acts.reshape(len(train_ds), config.policy.action_horizon, -1)
    baselines = {"constant": np.broadcast_to(acts.mean(axis=0), per_step.shape[1:]).copy(),
                 "mean_chunk": per_step.mean(axis=0)}
    vae = build_vae(config.vae).to(device)
    cache = latent_cache_dir(config, out)
    vae_id = vae_fingerprint(vae) if cache is not None else ""

    def latents_of(ds: PolicyClipDataset, episodes: list[tuple[int, int]], name: str) -> torch.Tensor:
        key = latent_cache_key(config, datasets, episodes, t.sample_stride, vae_id)
        return cached_latents(cache, key, name, lambda: encode_clips(ds, vae, desc=f"encode {name}"), log)

    train_data = clip_tensors(train_ds, latents_of(train_ds, train_eps, "train"), normalizer)
    val_data = None
    if val_eps:
        val_ds = PolicyClipDataset(datasets, config, val_eps)
        val_data = clip_tensors(val_ds, latents_of(val_ds, val_eps, "held-out"), normalizer)
    log(f"data: {len(train_ds)} training clips from {len(train_eps)} episodes, "
        f"{0 if val_data is None else len(val_data.actions)} held-out clips ({time.perf_counter() - t0:.1f} s); "
        f"torch threads {threads}")

    draw_weights = clip_sampling_weights(train_data.start_s, config)
    net = build_policy_net(config).to(device)
    text = build_text_encoder(config)
    if text is not None:
        text = text.to(device)
    load_init(config, net, log)
    params = list(net.parameters()) + ([] if text is None else list(text.parameters()))
    optim = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, betas=(0.9, 0.99), foreach=True)
    ema = [p.detach().clone() for p in params]
    step = 0
    state_file = out / TRAIN_STATE
    if resume and state_file.is_file():
        saved = torch.load(state_file, map_location=device, weights_only=True)
        net.load_state_dict(saved["net"])
        if text is not None:
            text.load_state_dict(saved["text"])
        optim.load_state_dict(saved["optim"])
        ema = [e.to(device) for e in saved["ema"]]
        step = int(saved["step"])
        log(f"resumed from {state_file} at step {step}")
    model: torch.nn.Module = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[local] if device.type == "cuda" else None)
    denoiser = JointDenoiser(model, config.diffusion)
    train_ctx = ContextSource(config, text, train_data.instructions, device)
    gen = torch.Generator().manual_seed(t.seed * 1000 + rank)
    use_bf16 = t.bf16 and device.type == "cuda"
    p = config.policy
    losses: list[float] = []

    def save(final: bool) -> Path:
        with torch.no_grad():
            live = [q.detach().clone() for q in params]
            for q, e in zip(params, ema):
                q.copy_(e)
            ckpt = save_policy(out / "checkpoint", config, normalizer, net, text, vae,
                               {"step": step, "datasets": [str(d) for d in datasets], "final": final})
            for q, v in zip(params, live):
                q.copy_(v)
        torch.save({"net": net.state_dict(), "text": None if text is None else text.state_dict(),
                    "optim": optim.state_dict(), "ema": ema, "step": step}, state_file)
        return ckpt

    net.train()
    t_start = time.perf_counter()
    start_step = step
    bar = tqdm(total=t.steps, initial=step, desc="train", unit="step", dynamic_ncols=True, mininterval=1.0,
               disable=rank != 0)
    while step < t.steps:
        if draw_weights is None:
            idx = torch.randint(len(train_data.actions), (t.batch_size,), generator=gen)
        else:
            idx = torch.multinomial(draw_weights, t.batch_size, replacement=True, generator=gen)
        B = len(idx)
        prefix_len = None
        if p.max_prefix > 0:
            prefix_len = torch.randint(1, p.max_prefix + 1, (B,), generator=gen)
            prefix_len = torch.where(torch.rand(B, generator=gen) < p.prefix_prob, prefix_len, 0)
        context = train_ctx(train_data.instruction_ids[idx]).to(device)
        drop = (torch.rand(B, generator=gen) < config.diffusion.instruction_dropout).to(device)
        context = torch.where(drop[:, None, None], torch.zeros_like(context), context)
        cond = make_condition(config, train_data, idx, context, device, prefix_len)
        _, sv, sa = sample_sigmas(B, config.diffusion, gen)
        eps_v = torch.randn(tuple(cond.cond_latents.shape), generator=gen).to(device)
        eps_a = torch.randn(tuple(train_data.actions[idx].shape), generator=gen).to(device)
        for group in optim.param_groups:
            group["lr"] = _lr(step, config)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss, parts = joint_loss(denoiser, cond.cond_latents, train_data.actions[idx].to(device), cond,
                                     sv.to(device), sa.to(device), eps_v, eps_a)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        optim.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [q.detach() for q in params], 1.0 - t.ema_decay)
        step += 1
        losses.append(float(loss.detach()))
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}", refresh=False)
        if rank == 0 and (step % t.log_every == 0 or step == t.steps):
            rate = (step - start_step) / (time.perf_counter() - t_start)
            log(f"step {step}/{t.steps} loss {np.mean(losses[-t.log_every:]):.4f} (video {parts['video']:.4f}, "
                f"action {parts['action']:.4f}) lr {_lr(step - 1, config):.2e} {rate:.1f} it/s")
        if rank == 0 and t.ckpt_every and step % t.ckpt_every == 0 and step < t.steps:
            save(final=False)
    bar.close()
    result = TrainResult(out / "checkpoint", step, losses)
    if rank == 0:
        result.checkpoint = save(final=True)
        if val_data is not None:
            with torch.no_grad():
                for q, e in zip(params, ema):
                    q.copy_(e)
            net.eval()
            val_ctx = ContextSource(config, text, val_data.instructions, device)
            result.eval = evaluate(config, net, val_ctx, val_data, normalizer, baselines, device)
            log("held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in result.eval.items()))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m policy.train --config tiny --data DIR [--data DIR2] --out DIR [KEY=VALUE ...]` (torchrun-able)."""
    import argparse

    from rig.config import ConfigError
    from rig.dataformats.lerobot_v3 import DatasetError

    parser = argparse.ArgumentParser(prog="policy.train", description="Train A2World-policy.")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = check_training_inputs(args.config, args.overrides, args.data)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = train(config, args.data, args.out, resume=not args.no_resume, log=LOG.info)
    LOG.info("checkpoint: %s (%d steps)", result.checkpoint, result.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
