"""Joint video-action diffusion of A2World-policy: per-modality noise levels around one base sigma, the
weighted joint loss, modality-wise classifier-free guidance, the clean committed prefix, and a
few-step sampler with precomputed, allocation-free update coefficients.

Conventions (as the world model, `worldmodel.diffusion`; rectified flow in sigma form, sigma_data = 1):
x_sigma = x0 + sigma * eps; c_skip = c_in = 1 - t, c_out = -t, c_noise = t = sigma / (1 + sigma);
x0_hat = c_skip * x_sigma + c_out * F(c_in * x_sigma, c_noise).
Per modality: sigma_v = sigma_v_scale * sigma_base (sqrt(6)), sigma_a = sigma_a_scale * sigma_base (0.5).
Conditioning (observation latent frames, committed action prefix) enters clean with sigma_conditional and
is copied into x0_hat, so it is respected exactly.

Committed prefix (real-time chunking): we train with a clean prefix (random length on a fraction of the
samples, loss masked there) instead of inpainting guidance. Inpainting guidance (RTC) needs a
vector-Jacobian product through the network at every step, which doubles the cost, breaks CUDA graphs
and cannot be exported to ONNX; a clean prefix is just an input, costs nothing at inference and works
with any solver and step count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from policy.config import DiffusionSection, SamplerSection
from worldmodel.diffusion import karras_sigmas, rf_scaling


def loss_weight(sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """w(s) = (s^2 + sd^2) / (s sd)^2."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


@dataclass
class JointCondition:
    """What the joint denoiser conditions on (all tensors on the network device).

    cond_latents (B, C, V*T, H, W): latents whose conditioning frames hold the encoded observation;
    cond_mask (B, V*T) float, 1 on conditioning frames; view_ids (B, V); context (B, M, Dc) instruction
    embeddings; null_context like context (the dropped-instruction embedding, zeros); state (B, 16) or
    None; prefix (B, Ha, 14) normalised committed actions and prefix_mask (B, Ha) float, 1 where committed.
    """

    cond_latents: torch.Tensor
    cond_mask: torch.Tensor
    view_ids: torch.Tensor
    context: torch.Tensor
    null_context: torch.Tensor
    state: torch.Tensor | None
    prefix: torch.Tensor
    prefix_mask: torch.Tensor

    def doubled(self) -> JointCondition:
        """[conditional; unconditional] batch for one guided network call."""
        def cat(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else torch.cat([t, t])
        return JointCondition(cat(self.cond_latents), cat(self.cond_mask), cat(self.view_ids),  # type: ignore[arg-type]
                              torch.cat([self.context, self.null_context]), cat(self.null_context),  # type: ignore[arg-type]
                              cat(self.state), cat(self.prefix), cat(self.prefix_mask))  # type: ignore[arg-type]


class JointDenoiser:
    """x0 predictions of both modalities around a `PolicyNet`."""

    def __init__(self, net: torch.nn.Module, cfg: DiffusionSection) -> None:
        if cfg.sigma_data != 1.0:
            raise ValueError(f"diffusion.sigma_data={cfg.sigma_data}: the rectified-flow preconditioning "
                             "shared with A2World assumes 1.0")
        self.net = net
        self.cfg = cfg

    def modality_sigmas(self, sigma_base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sigma_v, sigma_a) for base sigmas (B,)."""
        return sigma_base * self.cfg.sigma_v_scale, sigma_base * self.cfg.sigma_a_scale

    def x0(self, xv: torch.Tensor, xa: torch.Tensor, sigma_v: torch.Tensor, sigma_a: torch.Tensor,
           cond: JointCondition) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional x0 predictions (fp32). xv (B, C, VT, H, W), xa (B, Ha, 14); sigmas (B,)."""
        sv = sigma_v.float().reshape(-1, 1, 1, 1, 1)
        sa = sigma_a.float().reshape(-1, 1, 1)
        skip_v, out_v, in_v, noise_v = rf_scaling(sv)
        skip_a, out_a, in_a, noise_a = rf_scaling(sa)
        t_cond = self.cfg.sigma_conditional / (1.0 + self.cfg.sigma_conditional)
        mv = cond.cond_mask.float()[:, None, :, None, None]
        ma = cond.prefix_mask.float()[..., None]
        gt_v, gt_a = cond.cond_latents.float(), cond.prefix.float()
        net_v = gt_v * mv + (xv * in_v) * (1 - mv)
        net_a = gt_a * ma + (xa * in_a) * (1 - ma)
        tv = t_cond * cond.cond_mask.float() + noise_v.reshape(-1, 1) * (1 - cond.cond_mask.float())
        ta = t_cond * cond.prefix_mask.float() + noise_a.reshape(-1, 1) * (1 - cond.prefix_mask.float())
        f_v, f_a = self.net(net_v, tv, cond.cond_mask, cond.view_ids, net_a, ta, cond.context, cond.state)
        x0v = skip_v * xv + out_v * f_v.float()
        x0a = skip_a * xa + out_a * f_a.float()
        return gt_v * mv + x0v * (1 - mv), gt_a * ma + x0a * (1 - ma)

    def guided_x0(self, xv: torch.Tensor, xa: torch.Tensor, sigma_v: torch.Tensor, sigma_a: torch.Tensor,
                  cond: JointCondition, s_v: float = 1.0, s_a: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality-wise guidance x0 = uncond + s (cond - uncond), s_v for video, s_a for actions.

        With s_v = s_a = 1 this is exactly the conditional prediction (one network call).
        """
        if s_v == 1.0 and s_a == 1.0:
            return self.x0(xv, xa, sigma_v, sigma_a, cond)
        B = xv.shape[0]
        both_v, both_a = self.x0(torch.cat([xv, xv]), torch.cat([xa, xa]), torch.cat([sigma_v, sigma_v]),
                                 torch.cat([sigma_a, sigma_a]), cond.doubled())
        cv, uv = both_v[:B], both_v[B:]
        ca, ua = both_a[:B], both_a[B:]
        return uv + s_v * (cv - uv), ua + s_a * (ca - ua)


# ------------------------------------------------------------------------------------------ training
def sample_sigmas(batch: int, cfg: DiffusionSection, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sigma_base, sigma_v, sigma_a), each (B,): log-normal base, per-modality scaling, and with
    probability `high_sigma_ratio` the video sigma redrawn log-uniformly in [high_sigma_min, high_sigma_max]."""
    base = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(batch, generator=generator, dtype=torch.float64))
    sigma_v = base * cfg.sigma_v_scale
    sigma_a = base * cfg.sigma_a_scale
    if cfg.high_sigma_ratio > 0:
        pick = torch.rand(batch, generator=generator, dtype=torch.float64) < cfg.high_sigma_ratio
        lo, hi = math.log(cfg.high_sigma_min), math.log(cfg.high_sigma_max)
        high = torch.exp(torch.rand(batch, generator=generator, dtype=torch.float64) * (hi - lo) + lo)
        sigma_v = torch.where(pick, high, sigma_v)
    return base.float(), sigma_v.float(), sigma_a.float()


def joint_loss(denoiser: JointDenoiser, x0v: torch.Tensor, x0a: torch.Tensor, cond: JointCondition,
               sigma_v: torch.Tensor, sigma_a: torch.Tensor, eps_v: torch.Tensor, eps_a: torch.Tensor
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """loss_scale * (mean w(sigma_v)|x0v - x0v_hat|^2 + lambda_a mean w(sigma_a)|x0a - x0a_hat|^2).

    Means run over the generated elements only (conditioning frames and committed prefix excluded).
    Returns (loss, {"video": ..., "action": ...}) with the unscaled per-modality terms.
    """
    cfg = denoiser.cfg
    xv = x0v + sigma_v.reshape(-1, 1, 1, 1, 1) * eps_v
    xa = x0a + sigma_a.reshape(-1, 1, 1) * eps_a
    hat_v, hat_a = denoiser.x0(xv, xa, sigma_v, sigma_a, cond)
    wv = loss_weight(sigma_v, cfg.sigma_data).reshape(-1, 1, 1, 1, 1)
    wa = loss_weight(sigma_a, cfg.sigma_data).reshape(-1, 1, 1)
    free_v = (1 - cond.cond_mask.float())[:, None, :, None, None].expand_as(x0v)
    free_a = (1 - cond.prefix_mask.float())[..., None].expand_as(x0a)
    lv = (wv * (x0v - hat_v) ** 2 * free_v).sum() / free_v.sum().clamp(min=1)
    la = (wa * (x0a - hat_a) ** 2 * free_a).sum() / free_a.sum().clamp(min=1)
    loss = cfg.loss_scale * (lv + cfg.lambda_a * la)
    return loss, {"video": float(lv.detach()), "action": float(la.detach())}


# ------------------------------------------------------------------------------------------- sampling
def step_coefficients(cfg: SamplerSection) -> tuple[list[float], list[tuple[float, float, float]]]:
    """Base sigmas of every network call and per step (c_x, c_x0, c_x0_prev) with
    x_next = c_x x + c_x0 x0 + c_x0_prev x0_prev: Euler first, then 2nd-order Adams-Bashforth in log sigma
    (the world model's solver). The ratios are scale-free, so one table serves both modalities."""
    sig = karras_sigmas(cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho).tolist()
    coeffs = []
    for i in range(cfg.num_steps):
        s, s_next = sig[i], sig[i + 1]
        if i == 0 or cfg.order == 1:
            coeffs.append((s_next / s, (s - s_next) / s, 0.0))
            continue
        lam, lam_next, lam_prev = -math.log(s), -math.log(s_next), -math.log(sig[i - 1])
        h = lam_next - lam
        c2 = (lam_prev - lam) / h
        phi1 = math.expm1(-h) / (-h)
        phi2 = (phi1 - 1.0) / (-h)
        b2 = phi2 / c2
        coeffs.append((math.exp(-h), h * (phi1 - b2), h * b2))
    return sig, coeffs


@torch.no_grad()
def sample_joint(denoiser: JointDenoiser, cond: JointCondition, noise_v: torch.Tensor, noise_a: torch.Tensor,
                 cfg: SamplerSection, s_v: float = 1.0, s_a: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Few-step joint sampling from unit noise (B, C, VT, H, W) and (B, Ha, 14); returns (x0_v, x0_a)."""
    sig, coeffs = step_coefficients(cfg)
    B = noise_v.shape[0]
    dcfg = denoiser.cfg
    xv = noise_v.float() * (sig[0] * dcfg.sigma_v_scale)
    xa = noise_a.float() * (sig[0] * dcfg.sigma_a_scale)
    prev_v = prev_a = None
    for i, (cx, c0, cp) in enumerate(coeffs):
        base = torch.full((B,), sig[i], device=xv.device)
        x0v, x0a = denoiser.guided_x0(xv, xa, base * dcfg.sigma_v_scale, base * dcfg.sigma_a_scale, cond, s_v, s_a)
        xv = cx * xv + c0 * x0v + (cp * prev_v if prev_v is not None and cp else 0.0)
        xa = cx * xa + c0 * x0a + (cp * prev_a if prev_a is not None and cp else 0.0)
        prev_v, prev_a = x0v, x0a
    base = torch.full((B,), sig[-1], device=xv.device)
    return denoiser.guided_x0(xv, xa, base * dcfg.sigma_v_scale, base * dcfg.sigma_a_scale, cond, s_v, s_a)
