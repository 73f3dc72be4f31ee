"""ONNX export of the policy's denoiser step: one conditional x0 prediction of both modalities.

The exported graph is `JointDenoiser.x0` with the network inside (preconditioning, clean observation
frames and committed prefix included), at the checkpoint's fixed shapes (batch 1 unless told otherwise):

inputs   xv (B, C, V*T, h, w) f32, xa (B, 60, 14) f32, sigma_v (B,) f32, sigma_a (B,) f32,
         cond_latents (B, C, V*T, h, w) f32, cond_mask (B, V*T) f32, view_ids (B, V) i64,
         context (B, M, Dc) f32, state (B, 16) f32, prefix (B, 60, 14) f32, prefix_mask (B, 60) f32
outputs  x0v, x0a

The sampler loop, guidance (a second call with the null context), VAE encoding and text encoding stay
outside (`policy/onnx_runner.py`). RoPE tables are folded in as constants for the exported view count.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from policy.checkpoint import load_policy
from policy.config import PolicyConfig
from policy.diffusion import JointCondition, JointDenoiser

INPUTS = ("xv", "xa", "sigma_v", "sigma_a", "cond_latents", "cond_mask", "view_ids", "context", "state",
          "prefix", "prefix_mask")
OUTPUTS = ("x0v", "x0a")


class DenoiserStep(nn.Module):
    """`forward(*INPUTS) -> (x0v, x0a)`: the exportable conditional x0 step."""

    def __init__(self, net: nn.Module, config: PolicyConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.denoiser = JointDenoiser(net, config.diffusion)

    def forward(self, xv: torch.Tensor, xa: torch.Tensor, sigma_v: torch.Tensor, sigma_a: torch.Tensor,
                cond_latents: torch.Tensor, cond_mask: torch.Tensor, view_ids: torch.Tensor, context: torch.Tensor,
                state: torch.Tensor, prefix: torch.Tensor, prefix_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        cond = JointCondition(cond_latents, cond_mask, view_ids, context, context, state if self.config.policy.use_state
                              else None, prefix, prefix_mask)
        return self.denoiser.x0(xv, xa, sigma_v, sigma_a, cond)


def example_inputs(config: PolicyConfig, context_tokens: int, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Random inputs with the checkpoint's shapes (order of INPUTS)."""
    p, c = config.policy, config.net
    V, T = len(p.cameras), p.latent_frames
    h, w = p.image_size[0] // 8, p.image_size[1] // 8
    Ha = p.action_horizon
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, V, T)
    mask[:, :, 0] = 1
    pm = torch.zeros(batch, Ha)
    pm[:, :5] = 1
    return (torch.randn(batch, c.in_channels, V * T, h, w, generator=g) * 3, torch.randn(batch, Ha, 14, generator=g),
            torch.full((batch,), 3.0), torch.full((batch,), 0.6),
            torch.randn(batch, c.in_channels, V * T, h, w, generator=g), mask.reshape(batch, -1),
            torch.tensor([p.view_ids] * batch, dtype=torch.long),
            torch.randn(batch, context_tokens, c.crossattn_emb_channels, generator=g),
            torch.randn(batch, 16, generator=g), torch.randn(batch, Ha, 14, generator=g), pm)


def export_onnx(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], opset: int = 17,
                batch: int = 1) -> Path:
    """Export the denoiser step of a checkpoint to `out` (an .onnx file); returns the path."""
    loaded = load_policy(checkpoint)
    config = loaded.config
    tokens = config.text.max_tokens
    step = DenoiserStep(loaded.net.float().eval(), config).eval()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # shape-dependent Python branches (view count, context length) are fixed at export on purpose
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(step, example_inputs(config, tokens, batch), str(path), input_names=list(INPUTS),
                          output_names=list(OUTPUTS), opset_version=opset, dynamo=False)
    return path
