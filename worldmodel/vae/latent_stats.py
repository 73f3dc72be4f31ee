"""Per-channel latent statistics used to normalise VAE latents: z = (mu - mean) / std, and back.

The Wan2.1 values are the constants the public Wan2.1 code (and Cosmos-Predict2 / A2World, which reuse
the same tokenizer) applies to the encoder mean of `Wan2.1_VAE.pth`; they belong to those weights only.
`data` names statistics measured on training data for weights we trained (`worldmodel.vae.train`): they
are stored in the weights file itself (tensors `latent_mean`, `latent_std`) and read back with it; a model
built from config alone starts with identity values until they are fitted.
"""

from __future__ import annotations

import torch

WAN21_LATENT_MEAN: tuple[float, ...] = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)
WAN21_LATENT_STD: tuple[float, ...] = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)

KNOWN_STATS = ("wan2.1", "identity", "data")
FITTED = "data"
"""Stats name whose values live in the weights file (fitted from data)."""


def latent_stats(name: str, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) float32 tensors of shape (z_dim,) for a stats name: `wan2.1`, `identity` or `data` (identity
    values until the fitted ones are loaded from the weights file)."""
    if name == "wan2.1":
        if z_dim != len(WAN21_LATENT_MEAN):
            raise ValueError(f"latent_stats 'wan2.1' has {len(WAN21_LATENT_MEAN)} channels, model z_dim={z_dim}")
        return (torch.tensor(WAN21_LATENT_MEAN, dtype=torch.float32, device="cpu"),
                torch.tensor(WAN21_LATENT_STD, dtype=torch.float32, device="cpu"))
    if name in ("identity", FITTED):
        return (torch.zeros(z_dim, dtype=torch.float32, device="cpu"),
                torch.ones(z_dim, dtype=torch.float32, device="cpu"))
    raise ValueError(f"latent_stats {name!r} unknown; expected one of {list(KNOWN_STATS)}")


def _per_channel(v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Shape (C,) -> (1, C, 1, 1, 1) on z's device, float32."""
    return v.to(device=z.device, dtype=torch.float32).view(1, -1, *([1] * (z.dim() - 2)))


def normalize_latents(mu: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(mu - mean) / std per channel (dim 1), computed in float32."""
    return (mu.float() - _per_channel(mean, mu)) / _per_channel(std, mu)


def denormalize_latents(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_latents`: z * std + mean, in float32."""
    return z.float() * _per_channel(std, z) + _per_channel(mean, z)
