"""Rectified-flow diffusion of A2World in sigma form: preconditioning, conditioning frames, training noise
and loss, and the released sampler (Karras grid, Euler then 2nd-order Adams-Bashforth, final clean call).

Conventions (release, sigma_data = 1): x_sigma = x0 + sigma * eps, t = sigma / (1 + sigma),
c_in = c_skip = 1 - t, c_out = -t, c_noise = t, x0_hat = c_skip * x_sigma + c_out * F(c_in * x_sigma, t).
Conditioning latent frames enter the network clean with t = sigma_cond / (1 + sigma_cond) and are copied
into x0_hat. Entry points: `Denoiser`, `sample(...)`, `training_loss(...)`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from rig.config import ConfigError
from worldmodel.configs import load_diffusion_config, load_sampler_presets

LOG = logging.getLogger(__name__)
SIGMA_CONDITIONAL = 1e-4
"""Sigma of the conditioning frames in the release (their timestep is 1e-4 / (1 + 1e-4))."""


# ------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class SamplerConfig:
    """Sampler grid and solver. Defaults are the release (`release` preset): 35 steps, 36 network calls."""

    num_steps: int = 35
    sigma_min: float = 0.01
    sigma_max: float = 200.0
    rho: float = 7.0
    order: int = 2
    final_clean: bool = True

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ConfigError(f"sampler: num_steps={self.num_steps} must be >= 1")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ConfigError(f"sampler: need 0 < sigma_min < sigma_max (got {self.sigma_min}, {self.sigma_max})")
        if self.order not in (1, 2):
            raise ConfigError(f"sampler: order={self.order}, expected 1 (Euler) or 2 (Euler then AB2)")
        if self.rho <= 0:
            raise ConfigError(f"sampler: rho={self.rho} must be positive")

    @property
    def network_calls(self) -> int:
        """Network evaluations per sample at guidance that needs one call per step."""
        return self.num_steps + int(self.final_clean)

    @classmethod
    def preset(cls, name: str, path: str | None = None) -> SamplerConfig:
        """A preset from `config/worldmodel/diffusion.yaml` (`release`, `fast_10`, `fast_4`)."""
        presets = load_sampler_presets(path)
        if name not in presets:
            raise ConfigError(f"sampler preset {name!r} not found (available: {sorted(presets)})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(presets[name]) - known)
        if unknown:
            raise ConfigError(f"sampler preset {name!r}: unknown keys {unknown} (known: {sorted(known)})")
        return cls(**presets[name])


@dataclass(frozen=True)
class TrainingNoiseConfig:
    """Training sigma distribution and loss scale (release defaults; `training` in diffusion.yaml)."""

    p_mean: float = 0.0
    p_std: float = 1.0
    video_noise_multiplier: float | None = None
    high_sigma_ratio: float = 0.05
    high_sigma_min: float = 200.0
    high_sigma_max: float = 1e5
    loss_scale: float = 10.0

    @classmethod
    def load(cls, path: str | None = None) -> TrainingNoiseConfig:
        file, data = load_diffusion_config(path)
        section = data.get("training", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{file}: 'training' must be a mapping")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"{file}: training: unknown keys {unknown} (known: {sorted(known)})")
        return cls(**section)


# ------------------------------------------------------------------------------------ preconditioning
def rf_scaling(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rectified-flow preconditioning (sigma_data = 1): (c_skip, c_out, c_in, c_noise)."""
    t = sigma / (sigma + 1)
    return 1.0 - t, -t, 1.0 - t, t


def loss_weight(sigma: torch.Tensor) -> torch.Tensor:
    """Per-sigma loss weight of the release's training: (sigma^2 + 1) / sigma^2."""
    return (sigma**2 + 1.0) / sigma**2


def first_frames_mask(batch: int, n_views: int, frames_per_view: int, n_cond: int = 1,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """(B, V*T) bool mask marking the first `n_cond` latent frames of every view (the release uses 1)."""
    per_view = torch.zeros(frames_per_view, dtype=torch.bool, device=device)
    per_view[:n_cond] = True
    return per_view.repeat(n_views)[None].expand(batch, -1)


@dataclass
class Conditioning:
    """What the denoiser conditions on.

    latents: (B, C, V*T, H, W) ground-truth latents (only the conditioning frames are read);
    frame_mask: (B, V*T) bool, True on conditioning frames; action: (B, steps, 14); view_ids: (B, V);
    view_mask: (B, V) bool or None; fps: RoPE frame rate or None (network default);
    null_action: action the model was trained to treat as "no condition" (enables real CFG) or None;
    net_inputs: extra keyword inputs of the network (A2World-sim: `history`, `state`), batch-first, or None.
    """

    latents: torch.Tensor
    frame_mask: torch.Tensor
    action: torch.Tensor
    view_ids: torch.Tensor
    view_mask: torch.Tensor | None = None
    fps: float | None = None
    null_action: torch.Tensor | None = None
    net_inputs: dict[str, torch.Tensor] | None = None


class Denoiser:
    """x0 prediction around a network with the release's preconditioning and frame-replace conditioning."""

    def __init__(self, net: torch.nn.Module, sigma_conditional: float = SIGMA_CONDITIONAL) -> None:
        self.net = net
        self.sigma_conditional = sigma_conditional
        self._warned_guidance = False

    def _call_net(self, x_sigma: torch.Tensor, sigma: torch.Tensor, cond: Conditioning,
                  action: torch.Tensor) -> torch.Tensor:
        sigma5 = sigma.float().reshape(-1, 1, 1, 1, 1)
        c_skip, c_out, c_in, c_noise = rf_scaling(sigma5)
        net_in = x_sigma * c_in
        gt = cond.latents.to(net_in.dtype)
        mask_t = cond.frame_mask.to(net_in.dtype)[:, None, :, None, None]  # (B, 1, VT, 1, 1)
        net_in = gt * mask_t + net_in * (1 - mask_t)
        c_noise_cond = rf_scaling(torch.ones_like(sigma5) * self.sigma_conditional)[3]
        c_noise = c_noise_cond * mask_t + c_noise * (1 - mask_t)
        dtype = self.net.dtype
        out = self.net(
            net_in.to(dtype),
            c_noise.reshape(c_noise.shape[0], -1).to(dtype),
            action,
            cond.view_ids,
            mask_t.expand(-1, 1, -1, *x_sigma.shape[-2:]).to(dtype),
            fps=cond.fps,
            view_mask=cond.view_mask,
            **(cond.net_inputs or {}),
        ).float()
        x0 = c_skip * x_sigma + c_out * out
        return gt * mask_t + x0 * (1 - mask_t)

    def x0(self, x_sigma: torch.Tensor, sigma: torch.Tensor, cond: Conditioning,
           guidance: float = 0.0) -> torch.Tensor:
        """Clean-latent prediction (fp32). sigma: (B,). guidance g: x0 = cond + g * (cond - uncond).

        With `cond.null_action` set and g != 0, the conditional and null-condition passes run as one
        batched call. Without a null condition guidance is a no-op, as in the release (its "uncond"
        equals "cond"), and a single call is made.
        """
        if guidance == 0.0:
            return self._call_net(x_sigma, sigma, cond, cond.action)
        if cond.null_action is None:
            if not self._warned_guidance:
                LOG.warning("guidance=%s ignored: no null condition (the released models were trained "
                            "without one, so their guidance is a no-op)", guidance)
                self._warned_guidance = True
            return self._call_net(x_sigma, sigma, cond, cond.action)
        B = x_sigma.shape[0]
        null = cond.null_action.to(cond.action).expand_as(cond.action)
        doubled = Conditioning(
            latents=torch.cat([cond.latents, cond.latents]),
            frame_mask=torch.cat([cond.frame_mask, cond.frame_mask]),
            action=torch.cat([cond.action, null]),
            view_ids=torch.cat([cond.view_ids, cond.view_ids]),
            view_mask=None if cond.view_mask is None else torch.cat([cond.view_mask, cond.view_mask]),
            fps=cond.fps,
            net_inputs=None if cond.net_inputs is None else {k: torch.cat([v, v]) for k, v in cond.net_inputs.items()},
        )
        both = self._call_net(torch.cat([x_sigma, x_sigma]), torch.cat([sigma, sigma]), doubled, doubled.action)
        x_cond, x_uncond = both[:B], both[B:]
        return x_cond + guidance * (x_cond - x_uncond)


# -------------------------------------------------------------------------------------------- sampler
def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """(num_steps + 1,) float64 grid sigma_i = (smax^(1/rho) + i/N (smin^(1/rho) - smax^(1/rho)))^rho."""
    i = torch.arange(num_steps + 1, dtype=torch.float64)
    ramp = sigma_max ** (1 / rho) + i / num_steps * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return ramp**rho


def initial_noise(shape: tuple[int, ...], seed: int, sigma_max: float) -> torch.Tensor:
    """The release's seeded start: numpy RandomState(seed).standard_normal as float32, times sigma_max."""
    rng = np.random.RandomState(seed)
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * sigma_max


def solver_step(x: torch.Tensor, x0: torch.Tensor, i: int, sigmas: torch.Tensor,
                x0_prev: torch.Tensor | None) -> torch.Tensor:
    """One step from sigmas[i] to sigmas[i+1] in float64, returned as float32.

    First step (or x0_prev None): Euler in x0 form. Later: 2nd-order Adams-Bashforth in log-sigma
    (the release's `res_x0_rk2_step`) using the previous x0 prediction.
    """
    xt, x0t = x.double(), x0.double()
    s_t, s_next = sigmas[i].item(), sigmas[i + 1].item()
    if x0_prev is None:
        return ((s_t - s_next) / s_t * x0t + s_next / s_t * xt).float()
    lam, lam_next, lam_prev = -math.log(s_t), -math.log(s_next), -math.log(sigmas[i - 1].item())
    h = lam_next - lam
    c2 = (lam_prev - lam) / h
    phi1 = math.expm1(-h) / (-h)
    phi2 = (phi1 - 1.0) / (-h)
    b2 = phi2 / c2
    b1 = phi1 - b2
    return (math.exp(-h) * xt + h * (b1 * x0t + b2 * x0_prev.double())).float()


@torch.no_grad()
def sample(
    net: torch.nn.Module,
    cond_latents: torch.Tensor,
    actions: torch.Tensor,
    view_ids: torch.Tensor,
    *,
    num_cond_frames: int = 1,
    frame_mask: torch.Tensor | None = None,
    seed: int = 0,
    sampler: SamplerConfig | str = "release",
    guidance: float = 0.0,
    null_action: torch.Tensor | None = None,
    view_mask: torch.Tensor | None = None,
    fps: float | None = None,
    sigma_conditional: float = SIGMA_CONDITIONAL,
    noise: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], Any] | None = None,
    net_inputs: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Generate latents (B, C, V*T, H, W), fp32, conditioned on the first frame(s) of each view.

    cond_latents: (B, C, V*T, H, W) latents whose conditioning frames hold the encoded observation
    (other frames are ignored); actions: (B, 20, 14); view_ids: (B, V). The conditioning frames are
    the first `num_cond_frames` latent frames of each view unless `frame_mask` (B, V*T) is given.
    Starting noise: `noise` if given, else numpy RandomState(seed) normal * sigma_max (the release).
    `callback(i, x, x0_hat)` runs after each solver step. `net_inputs`: extra network inputs (A2World-sim
    `history` latents and `state` features), passed to every network call.
    """
    cfg = SamplerConfig.preset(sampler) if isinstance(sampler, str) else sampler
    if hasattr(net, "check_view_ids"):
        net.check_view_ids(view_ids)
    device = net.device
    B, _, VT, _, _ = cond_latents.shape
    V = view_ids.shape[1]
    if frame_mask is None:
        frame_mask = first_frames_mask(B, V, VT // V, num_cond_frames, device=device)
    cond = Conditioning(latents=cond_latents.to(device).float(), frame_mask=frame_mask.to(device),
                        action=actions.to(device), view_ids=view_ids.to(device),
                        view_mask=None if view_mask is None else view_mask.to(device), fps=fps,
                        null_action=None if null_action is None else null_action.to(device),
                        net_inputs=None if net_inputs is None else {k: v.to(device) for k, v in net_inputs.items()})
    denoiser = Denoiser(net, sigma_conditional)
    sigmas = karras_sigmas(cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)
    x = (initial_noise(tuple(cond_latents.shape), seed, cfg.sigma_max) if noise is None else noise.float())
    x = x.to(device)
    x0_prev: torch.Tensor | None = None
    for i in range(cfg.num_steps):
        sigma = torch.full((B,), sigmas[i].item(), dtype=torch.float32, device=device)
        x0 = denoiser.x0(x, sigma, cond, guidance)
        x = solver_step(x, x0, i, sigmas, x0_prev if cfg.order == 2 else None)
        x0_prev = x0
        if callback is not None:
            callback(i, x, x0)
    if not cfg.final_clean:
        return x
    sigma = torch.full((B,), sigmas[-1].item(), dtype=torch.float32, device=device)
    return denoiser.x0(x, sigma, cond, guidance)


# ------------------------------------------------------------------------------------------- training
def sample_training_sigma(batch: int, state_t: int, cfg: TrainingNoiseConfig | None = None,
                          generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 1) training sigmas: exp(N(p_mean, p_std)) * multiplier, some redrawn log-uniform (release)."""
    cfg = cfg or TrainingNoiseConfig()
    mult = math.sqrt(state_t) if cfg.video_noise_multiplier is None else cfg.video_noise_multiplier
    normal = torch.randn(batch, 1, generator=generator, dtype=torch.float64)
    sigma = torch.exp(cfg.p_mean + cfg.p_std * normal) * mult
    if cfg.high_sigma_ratio > 0:
        pick = torch.rand(batch, 1, generator=generator, dtype=torch.float64) < cfg.high_sigma_ratio
        lo, hi = math.log(cfg.high_sigma_min), math.log(cfg.high_sigma_max)
        high = torch.exp(torch.rand(batch, 1, generator=generator, dtype=torch.float64) * (hi - lo) + lo)
        sigma = torch.where(pick, high, sigma)
    return sigma.float().to(device)


def training_loss(net: torch.nn.Module, x0: torch.Tensor, cond: Conditioning, sigma: torch.Tensor,
                  eps: torch.Tensor, loss_scale: float = 10.0) -> torch.Tensor:
    """Release loss: loss_scale * mean(w(sigma) * (x0 - x0_hat)^2); conditioning frames contribute 0.

    x0: (B, C, V*T, H, W) clean latents (also used as `cond.latents`); sigma: (B, 1); eps like x0.
    """
    x0 = x0.float()
    x_sigma = x0 + sigma.float().reshape(-1, 1, 1, 1, 1) * eps.float()
    x0_hat = Denoiser(net)._call_net(x_sigma, sigma.reshape(-1), cond, cond.action)
    w = loss_weight(sigma.float()).reshape(-1, 1, 1, 1, 1)
    return (w * (x0 - x0_hat) ** 2).mean() * loss_scale
