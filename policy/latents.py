"""Camera images to the packed multi-view latents the policy network reads (frozen Wan2.1 VAE).

Views are packed along time, view-major, as in A2World: (B, C, V*T, h, w) with view v at frames
v*T .. v*T+T-1. Each view's clip (observation frame first) is encoded on its own.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray


def images_to_video(images: NDArray[np.uint8] | torch.Tensor) -> torch.Tensor:
    """(B, V, F, H, W, 3) uint8 -> (B*V, 3, F, H, W) float32 in [-1, 1]."""
    x = torch.as_tensor(images)
    B, V, F, H, W, _ = x.shape
    return x.permute(0, 1, 5, 2, 3, 4).reshape(B * V, 3, F, H, W).float().div_(127.5).sub_(1.0)


@torch.no_grad()
def encode_views(vae: torch.nn.Module, images: NDArray[np.uint8] | torch.Tensor) -> torch.Tensor:
    """(B, V, F, H, W, 3) uint8 (F = 1 + 4k) -> normalised latents (B, C, V*T, H/8, W/8), float32."""
    x = torch.as_tensor(images)
    B, V = x.shape[:2]
    param = next(vae.parameters())
    z = vae.encode(images_to_video(x).to(device=param.device, dtype=param.dtype)).float()  # (B*V, C, T, h, w)
    _, C, T, h, w = z.shape
    return z.view(B, V, C, T, h, w).permute(0, 2, 1, 3, 4, 5).reshape(B, C, V * T, h, w)
