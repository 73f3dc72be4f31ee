"""On-disk cache of the policy's clip latents, so a second run on the same data and VAE skips encoding.

Encoding every clip once with the frozen VAE is the slowest part of a small policy run on CPU (76 ms per
5-frame view clip on one thread: 11-13 min for 100 twin episodes). The latents depend only on the clips
(datasets, episodes, cameras, image size, frames, stride) and on the VAE weights, so they are stored
under a key hashed from exactly those (the VAE by the fingerprint of its loaded weights, as the world
model's latent cache does); anything else (network, diffusion, steps, initialisation) can change and the
cache still applies. A changed dataset (its `meta/info.json` or data files) or VAE gives a new key, never
stale latents.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from policy.config import PolicyConfig

CACHE_VERSION = 1


def _dataset_fingerprint(root: Path) -> dict[str, object]:
    """Path plus name, size and mtime of every file under `meta/` and `data/` (videos follow from them)."""
    files = []
    for sub in ("meta", "data"):
        for f in sorted((root / sub).rglob("*")):
            if f.is_file():
                st = f.stat()
                files.append([str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
    return {"root": str(root.resolve()), "files": files}


def latent_cache_key(config: PolicyConfig, roots: Sequence[str | os.PathLike[str]],
                     episodes: Sequence[tuple[int, int]], sample_stride: int, vae: str) -> str:
    """Hex key of what the clip latents depend on; `vae` is the loaded VAE's
    `worldmodel.data.latents.vae_fingerprint` (its weights and fitted statistics, wherever they came from)."""
    p = config.policy
    blob = {"version": CACHE_VERSION, "datasets": [_dataset_fingerprint(Path(r)) for r in roots],
            "episodes": [list(e) for e in episodes], "cameras": list(p.cameras), "image_size": list(p.image_size),
            "pixel_frames": p.pixel_frames, "video_fps": p.video_fps, "action_hz": p.action_hz,
            "sample_stride": sample_stride, "vae": vae}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def cached_latents(cache_dir: str | os.PathLike[str] | None, key: str, name: str,
                   encode: Callable[[], torch.Tensor], log: Callable[[str], None] = print) -> torch.Tensor:
    """The latents stored under `cache_dir/<name>-<key[:16]>.pt`, or `encode()` stored there (no cache
    when `cache_dir` is None). A file that does not load or holds another key is re-encoded."""
    if cache_dir is None:
        return encode()
    path = Path(cache_dir) / f"{name}-{key[:16]}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("key") == key:
                log(f"{name}: {len(saved['latents'])} clip latents from the cache {path}")
                return saved["latents"]
            log(f"{path}: holds another key; encoding again")
        except (OSError, RuntimeError, EOFError, KeyError, AttributeError, ValueError, pickle.UnpicklingError) as exc:
            log(f"{path}: unreadable ({type(exc).__name__}: {exc}); encoding again")
    latents = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # per process: two runs may encode the same clips at once
    torch.save({"key": key, "latents": latents}, tmp)
    os.replace(tmp, path)  # atomic: a run killed mid-write leaves no half file under the real name
    return latents
