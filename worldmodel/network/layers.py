"""Small building blocks shared by the world model and the policy: norms, MLPs, AdaLN-LoRA modulation.

Numerics follow the official release (Cosmos-Predict2 code as used by A2World):
- `RMSNorm` matches Transformer Engine's RMSNorm: statistics, normalisation and weight in fp32, cast back.
- `modulate` is `LN(x) * (1 + scale) + shift` in the activation dtype (bf16 at inference).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype for numerically sensitive math: fp32 for half types (the release), else the input dtype."""
    return torch.promote_types(dtype, torch.float32)


class RMSNorm(nn.Module):
    """RMS normalisation over the last dim with a learned weight, computed in fp32 (TE semantics), or in
    the input dtype with `upcast=False` (the release's plain RMSNorm inside A2World-sim's history attention)."""

    def __init__(self, dim: int, eps: float = 1e-6, upcast: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.upcast = upcast
        self.weight = nn.Parameter(torch.ones(dim))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cd = compute_dtype(x.dtype) if self.upcast else x.dtype
        xf = x.to(cd)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(cd)).to(x.dtype)


def modulate(normed: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN modulation `normed * (1 + scale) + shift` (the release's operation order)."""
    return normed * (1 + scale) + shift


def trunc_normal_(weight: torch.Tensor, fan_in: int) -> None:
    """Truncated normal init with std 1/sqrt(fan_in), cut at 3 std (the release's default for linears)."""
    std = 1.0 / math.sqrt(fan_in)
    nn.init.trunc_normal_(weight, std=std, a=-3 * std, b=3 * std)


class FeedForward(nn.Module):
    """Block MLP `layer2(GELU(layer1(x)))` without biases, exact GELU (`GPT2FeedForward` in the release)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layer1 = nn.Linear(dim, hidden, bias=False)
        self.layer2 = nn.Linear(hidden, dim, bias=False)

    def init_weights(self) -> None:
        trunc_normal_(self.layer1.weight, self.layer1.in_features)
        trunc_normal_(self.layer2.weight, self.layer2.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(F.gelu(self.layer1(x)))


class Mlp(nn.Module):
    """Two-layer MLP with biases and tanh-approximated GELU (the release's action embedders)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def adaln_lora_modulation(dim: int, lora_dim: int, n_chunks: int) -> nn.Sequential:
    """`Sequential(SiLU, Linear(dim, lora), Linear(lora, n_chunks * dim))`: state-dict keys `.1.*`, `.2.*`."""
    return nn.Sequential(
        nn.SiLU(),
        nn.Linear(dim, lora_dim, bias=False),
        nn.Linear(lora_dim, n_chunks * dim, bias=False),
    )


def init_adaln_lora(module: nn.Sequential) -> None:
    """AdaLN-Zero init: first LoRA linear truncated normal, second zero, so a fresh block is the identity."""
    trunc_normal_(module[1].weight, module[1].in_features)
    nn.init.zeros_(module[2].weight)
