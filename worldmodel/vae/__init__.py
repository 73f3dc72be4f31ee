"""Wan2.1 causal video VAE in plain PyTorch: model, checkpoint I/O, latent statistics, latent cache."""

from worldmodel.vae.config import WanVAEConfig, load_vae_config
from worldmodel.vae.model import (
    DecodeStream,
    EncodeStream,
    FrameCountError,
    WanVAE,
    latent_frame_count,
    video_frame_count,
)

__all__ = [
    "DecodeStream",
    "EncodeStream",
    "FrameCountError",
    "WanVAE",
    "WanVAEConfig",
    "latent_frame_count",
    "load_vae_config",
    "video_frame_count",
]
