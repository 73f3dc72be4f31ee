"""Building the per-dataset VAE latent cache for training (`data.latent_cache`), tied to the exact VAE
weights: a cache made with other weights (e.g. another random tiny VAE) is refused, not mixed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from worldmodel.data.clips import ClipConfig, DataError
from worldmodel.data.source import RecordingSource

FINGERPRINT_FILE = "vae_fingerprint.txt"


def vae_fingerprint(vae: torch.nn.Module) -> str:
    """sha256 over the VAE's parameter names, dtypes, shapes and values (16 hex digits)."""
    h = hashlib.sha256()
    for name, tensor in sorted(vae.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def ensure_latent_cache(source: RecordingSource, vae: torch.nn.Module, cache_dir: str | os.PathLike[str],
                        clip: ClipConfig, cameras: Sequence[str], resolution: tuple[int, int],
                        batch_size: int = 2, store_dtype: str = "float32") -> Path:
    """Encode every full clip of `source` (missing episodes only) into `cache_dir`; returns the directory."""
    from worldmodel.vae.cache import LatentCacheConfig, encode_dataset_to_cache

    out = Path(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = vae_fingerprint(vae)
    stamp = out / FINGERPRINT_FILE
    if stamp.is_file() and stamp.read_text().strip() != fingerprint:
        raise DataError(f"latent cache {out}: made with VAE weights {stamp.read_text().strip()}, the training "
                        f"VAE is {fingerprint}; delete the cache or point data.latent_cache elsewhere")
    stamp.write_text(fingerprint + "\n")
    cfg = LatentCacheConfig(clip_frames=clip.clip_frames, frame_stride=clip.frame_stride, clip_hop=clip.clip_hop,
                            resize=(int(resolution[0]), int(resolution[1])), batch_size=batch_size,
                            store_dtype=store_dtype, source="data.latent_cache")
    encode_dataset_to_cache(source, vae, out, range(source.num_episodes), list(cameras), cfg)
    return out
