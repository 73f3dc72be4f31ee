"""`A2WorldPolicy`: the `policy.interface.Policy` implementation around a trained checkpoint.

One call: resize the configured cameras' images, encode them (frozen VAE, observation frame only), look
up the cached instruction embedding, convert the committed prefix to the policy's relative
representation, run the few-step joint sampler, and convert the action chunk back to absolute rig
targets. Only the action chunk leaves the call (the predicted video latents are kept in
`last_video_latents` when `sampler.predict_video` is set).

Every tensor the sampler touches is allocated once in `__init__` and updated in place per call; on a
CUDA device the network runs in bf16 and, with `compile=True`, through `torch.compile` in
"reduce-overhead" mode (CUDA graphs).

Returned chunk: with a committed prefix of K steps the model's 60-step window (starting at the
observation) begins with those K steps; the result is the remaining 60 - K steps, whose step 0 is due at
t_obs + K / 30 s (the `PolicyResult` contract).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policy.action_repr import chunk_to_relative, relative_to_chunk, smooth_chunk
from policy.checkpoint import LoadedPolicy, load_policy
from policy.data import resize
from policy.diffusion import JointCondition, JointDenoiser, step_coefficients
from policy.interface import PolicyRequest, PolicyResult
from policy.latents import encode_views
from policy.text import CachedContext, T5TextEncoder
from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.schema import SchemaError
from worldmodel.actions import GRIPPER_COLUMNS


class A2WorldPolicy:
    """Serve a policy checkpoint directory; `infer(request) -> PolicyResult` with an absolute chunk."""

    def __init__(self, checkpoint: str | Path, device: str | None = None, num_steps: int | None = None,
                 gamma_v: float | None = None, gamma_a: float | None = None, seed: int = 0,
                 compile: bool = False, t5_dir: str | None = None) -> None:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        self.loaded: LoadedPolicy = load_policy(checkpoint, device=dev, dtype=dtype)
        self.checkpoint = Path(checkpoint)
        cfg = self.loaded.config
        self.config = cfg
        self.device = dev
        self.sampler = replace(cfg.sampler, **{k: v for k, v in (("num_steps", num_steps),) if v is not None})
        self.s_v = 1.0 + (cfg.sampler.gamma_v if gamma_v is None else gamma_v)
        self.s_a = 1.0 + (cfg.sampler.gamma_a if gamma_a is None else gamma_a)
        self.sigmas, self.coeffs = step_coefficients(self.sampler)
        if self.loaded.text is not None:
            self.context = CachedContext(self.loaded.text)
        else:
            self.context = CachedContext(T5TextEncoder(t5_dir or str(cfg.text.t5_dir), cfg.text.max_tokens, dev))
        net = self.loaded.net
        if compile and dev.type == "cuda":
            net = torch.compile(net, mode="reduce-overhead", fullgraph=False)  # type: ignore[assignment]
        self.denoiser = JointDenoiser(net, cfg.diffusion)
        self.generator = torch.Generator(device=dev).manual_seed(seed)
        self.last_video_latents: torch.Tensor | None = None
        self._allocate()

    # --------------------------------------------------------------------------------------- buffers
    def _allocate(self) -> None:
        cfg, dev = self.config, self.device
        p, c = cfg.policy, cfg.net
        V, T = len(p.cameras), p.latent_frames
        h, w = p.image_size[0] // 8, p.image_size[1] // 8
        Ha = p.action_horizon
        f32 = torch.float32
        self.shape_v = (1, c.in_channels, V * T, h, w)
        self.shape_a = (1, Ha, 14)
        self.xv, self.prev_v, self.noise_v = (torch.zeros(self.shape_v, device=dev, dtype=f32) for _ in range(3))
        self.xa, self.prev_a, self.noise_a = (torch.zeros(self.shape_a, device=dev, dtype=f32) for _ in range(3))
        mask = torch.zeros(V, T, device=dev)
        mask[:, 0] = 1
        ctx = self.context.get("")
        self.cond = JointCondition(
            cond_latents=torch.zeros(self.shape_v, device=dev, dtype=f32),
            cond_mask=mask.reshape(1, -1),
            view_ids=torch.tensor([p.view_ids], device=dev, dtype=torch.long),
            context=torch.zeros_like(ctx, device=dev),
            null_context=torch.zeros_like(ctx, device=dev),
            state=torch.zeros(1, 16, device=dev, dtype=f32) if p.use_state else None,
            prefix=torch.zeros(self.shape_a, device=dev, dtype=f32),
            prefix_mask=torch.zeros(1, Ha, device=dev, dtype=f32),
        )
        self.sigma_v = [torch.full((1,), s * cfg.diffusion.sigma_v_scale, device=dev) for s in self.sigmas]
        self.sigma_a = [torch.full((1,), s * cfg.diffusion.sigma_a_scale, device=dev) for s in self.sigmas]

    # ------------------------------------------------------------------------------------ interface
    def metadata(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "policy": "a2world-policy",
            "config_name": cfg.name,
            "config": cfg.to_dict(),
            "checkpoint": str(self.checkpoint),
            "model_hash": str(self.loaded.meta.get("model_hash", "")),
            "step": int(self.loaded.meta.get("step", 0)),
            "cameras": list(cfg.policy.cameras),
            "image_size": list(cfg.policy.image_size),
            "action_layout": {"shape": [cfg.policy.action_horizon, len(ARM_NAMES), COMMAND_DIM],
                              "arms": list(ARM_NAMES), "per_arm": ["x", "y", "z", "qx", "qy", "qz", "qw", "gripper"],
                              "frame": "each arm's base frame, absolute targets",
                              "model_representation": "per step relative to the EE pose at observation time"},
            "rates": {"action_hz": cfg.policy.action_hz, "video_fps": cfg.policy.video_fps},
            "sampler": {"num_steps": self.sampler.num_steps, "s_v": self.s_v, "s_a": self.s_a},
            "device": str(self.device),
        }

    def _images(self, request: PolicyRequest) -> np.ndarray:
        p = self.config.policy
        missing = [c for c in p.cameras if c not in request.images]
        if missing:
            raise SchemaError(f"request.images: cameras {missing} missing (policy needs {list(p.cameras)}, "
                              f"got {sorted(request.images)})")
        views = [resize(request.images[c], tuple(p.image_size)) for c in p.cameras]
        return np.stack(views)[None, :, None]  # (1, V, 1, H, W, 3)

    def _x0(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x0 predictions at sampler call i (network or, in subclasses, another runtime)."""
        return self.denoiser.guided_x0(self.xv, self.xa, self.sigma_v[i], self.sigma_a[i], self.cond,
                                       self.s_v, self.s_a)

    @torch.no_grad()
    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sampler on the current condition buffers; returns (x0_v, x0_a) of the last call."""
        cfg = self.config
        self.xv.copy_(self.noise_v).mul_(self.sigmas[0] * cfg.diffusion.sigma_v_scale)
        self.xa.copy_(self.noise_a).mul_(self.sigmas[0] * cfg.diffusion.sigma_a_scale)
        for i, (cx, c0, cp) in enumerate(self.coeffs):
            x0v, x0a = self._x0(i)
            self.xv.mul_(cx).add_(x0v, alpha=c0)
            self.xa.mul_(cx).add_(x0a, alpha=c0)
            if cp:
                self.xv.add_(self.prev_v, alpha=cp)
                self.xa.add_(self.prev_a, alpha=cp)
            self.prev_v.copy_(x0v)
            self.prev_a.copy_(x0a)
        return self._x0(len(self.coeffs))

    @torch.no_grad()
    def prepare(self, request: PolicyRequest) -> tuple[np.ndarray, int, dict[str, float]]:
        """Fill the condition buffers from a request; returns (state (2, 8), prefix length, timing)."""
        t0 = time.perf_counter()
        request.validate()
        p, norm = self.config.policy, self.loaded.normalizer
        images = self._images(request)
        state = np.asarray(request.state, dtype=np.float64)
        K = int(request.prefix.shape[0])
        if p.action_horizon <= K:
            raise SchemaError(f"request.prefix: {K} committed steps, expected fewer than the horizon "
                              f"{p.action_horizon}")
        t1 = time.perf_counter()
        z = encode_views(self.loaded.vae, images)  # (1, C, V, h, w)
        V, T = len(p.cameras), p.latent_frames
        self.cond.cond_latents.view(1, -1, V, T, *z.shape[-2:])[:, :, :, 0].copy_(z)
        t2 = time.perf_counter()
        self.cond.context.copy_(self.context.get(request.instruction))
        if self.cond.state is not None:
            self.cond.state.copy_(torch.from_numpy(norm.norm_state(state[None])))
        self.cond.prefix_mask.zero_()
        self.cond.prefix.zero_()
        if K:
            rel = norm.norm_actions(chunk_to_relative(state, request.prefix))
            self.cond.prefix[0, :K].copy_(torch.from_numpy(rel))
            self.cond.prefix_mask[0, :K] = 1.0
        self.noise_v.normal_(generator=self.generator)
        self.noise_a.normal_(generator=self.generator)
        t3 = time.perf_counter()
        return state, K, {"preprocess_ms": (t1 - t0 + t3 - t2) * 1e3, "encode_ms": (t2 - t1) * 1e3}

    def infer(self, request: PolicyRequest) -> PolicyResult:
        state, K, timing = self.prepare(request)
        t0 = time.perf_counter()
        x0v, x0a = self.sample()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t1 = time.perf_counter()
        if self.config.sampler.predict_video:
            self.last_video_latents = x0v.detach().clone()
        rel = self.loaded.normalizer.denorm_actions(x0a[0].float().cpu().numpy())
        rel = smooth_chunk(rel, self.sampler.smooth_window, keep=K)
        rel[:, list(GRIPPER_COLUMNS)] = np.clip(rel[:, list(GRIPPER_COLUMNS)], 0.0, 1.0)
        chunk = relative_to_chunk(state, rel)[K:]
        timing.update({"sample_ms": (t1 - t0) * 1e3, "postprocess_ms": (time.perf_counter() - t1) * 1e3})
        return PolicyResult(chunk=chunk, dt=1.0 / self.config.policy.action_hz, timing=timing)
