"""Encode a dataset's camera videos once with the VAE and keep the latents on disk for training.

Reader interface (duck-typed; `rig.dataformats.lerobot_v3.LeRobotV3Dataset` provides it):

    reader.episode_frames(ep: int, cameras: Sequence[str], stride: int) -> Mapping[str, np.ndarray]

returning, for each requested camera, a uint8 array (T, H, W, 3) RGB whose frame i is the episode's
source frame i * stride. Nothing else of the reader is used; episodes and cameras are passed explicitly.

On-disk layout under `out_dir`:
- `episode_{ep:06d}.safetensors`: one tensor per clip, key `"{camera}/{start:06d}"`, value the normalised
  latents (z_dim, 1 + (clip_frames - 1)/4, H/8, W/8) of the clip whose first frame is source frame
  `start`; the clip covers source frames start, start + stride, ..., start + (clip_frames - 1) * stride.
  Each clip is encoded on its own, so its first latent frame is the image latent of its first frame.
- `manifest.json`: VAE config, cache settings, and per episode the clip starts and any skipped cameras.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from rig.config import ConfigError, load_yaml
from worldmodel.vae.config import vae_config_path
from worldmodel.vae.model import WanVAE, latent_frame_count

LOG = logging.getLogger(__name__)
MANIFEST = "manifest.json"
STORE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class EpisodeFrameReader(Protocol):
    """What `encode_dataset_to_cache` needs from a dataset reader."""

    def episode_frames(self, ep: int, cameras: Sequence[str], stride: int) -> Mapping[str, np.ndarray]:
        """Per camera a uint8 (T, H, W, 3) RGB array; frame i is source frame i * stride."""
        ...


@dataclass(frozen=True)
class LatentCacheConfig:
    """How clips are cut from episodes and stored (see config/worldmodel/vae/latent_cache.yaml)."""

    clip_frames: int = 21
    frame_stride: int = 3
    clip_hop: int = 20
    resize: tuple[int, int] | None = (256, 256)
    batch_size: int = 2
    store_dtype: str = "bfloat16"
    source: str = field(default="<defaults>", compare=False)

    def __post_init__(self) -> None:
        where = self.source
        try:
            latent_frame_count(self.clip_frames)
        except ValueError as exc:
            raise ConfigError(f"{where}: clip_frames={self.clip_frames}: {exc}") from None
        for name in ("frame_stride", "clip_hop", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{where}: {name}={value!r} must be a positive integer")
        if self.store_dtype not in STORE_DTYPES:
            raise ConfigError(f"{where}: store_dtype={self.store_dtype!r}, expected one of {list(STORE_DTYPES)}")
        if self.resize is not None and (len(self.resize) != 2 or any(v <= 0 or v % 8 for v in self.resize)):
            raise ConfigError(f"{where}: resize={self.resize!r} must be [height, width], multiples of 8, or null")

    @classmethod
    def load(cls, name: str | os.PathLike[str] = "latent_cache") -> LatentCacheConfig:
        """Read from a YAML path or a bare name under config/worldmodel/vae/."""
        path = vae_config_path(name)
        data = dict(load_yaml(path))
        known = {"clip_frames", "frame_stride", "clip_hop", "resize", "batch_size", "store_dtype"}
        if unknown := sorted(set(data) - known):
            raise ConfigError(f"{path}: unknown keys {unknown} (known: {sorted(known)})")
        if data.get("resize") is not None:
            data["resize"] = tuple(data["resize"])
        return cls(**data, source=str(path))


@dataclass
class CacheSummary:
    """What one `encode_dataset_to_cache` call did."""

    encoded_episodes: list[int] = field(default_factory=list)
    skipped_existing: list[int] = field(default_factory=list)
    clips: int = 0
    seconds: float = 0.0


def clip_starts(num_frames: int, clip_frames: int, hop: int) -> list[int]:
    """Start indices (in strided frames) of the full clips that fit; a shorter tail is not used."""
    return list(range(0, num_frames - clip_frames + 1, hop)) if num_frames >= clip_frames else []


def frames_to_video(frames: np.ndarray, resize: tuple[int, int] | None) -> torch.Tensor:
    """uint8 (T, H, W, 3) RGB -> float32 (3, T, H', W') in [-1, 1], resized with INTER_AREA if asked."""
    if resize is not None and frames.shape[1:3] != tuple(resize):
        height, width = resize
        frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()
    return video.div_(127.5).sub_(1.0)


def _check_frames(frames: Any, ep: int, camera: str) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        desc = f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        raise ValueError(f"episode {ep} camera {camera!r}: frames are {desc}; expected uint8 (T, H, W, 3)")
    return frames


def _episode_path(out_dir: Path, ep: int) -> Path:
    return out_dir / f"episode_{ep:06d}.safetensors"


def _encode_episode(reader: EpisodeFrameReader, vae: WanVAE, ep: int, cameras: Sequence[str],
                    cfg: LatentCacheConfig) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    frames_by_camera = reader.episode_frames(ep, list(cameras), cfg.frame_stride)
    missing = [c for c in cameras if c not in frames_by_camera]
    if missing:
        raise ValueError(f"episode {ep}: reader returned no frames for cameras {missing} "
                         f"(got {sorted(frames_by_camera)})")
    store = STORE_DTYPES[cfg.store_dtype]
    tensors: dict[str, torch.Tensor] = {}
    info: dict[str, Any] = {"clips": {}, "too_short": {}}
    for camera in cameras:
        frames = _check_frames(frames_by_camera[camera], ep, camera)
        starts = clip_starts(len(frames), cfg.clip_frames, cfg.clip_hop)
        if not starts:
            info["too_short"][camera] = len(frames)
            continue
        for i in range(0, len(starts), cfg.batch_size):
            batch_starts = starts[i:i + cfg.batch_size]
            video = torch.stack([frames_to_video(frames[s:s + cfg.clip_frames], cfg.resize) for s in batch_starts])
            latents = vae.encode(video).to(store).cpu()
            for s, z in zip(batch_starts, latents):
                tensors[f"{camera}/{s * cfg.frame_stride:06d}"] = z.contiguous()
        info["clips"][camera] = [s * cfg.frame_stride for s in starts]
    return tensors, info


def encode_dataset_to_cache(dataset_reader: EpisodeFrameReader, vae: WanVAE, out_dir: str | os.PathLike[str],
                            episodes: Iterable[int], cameras: Sequence[str],
                            config: LatentCacheConfig | None = None, overwrite: bool = False) -> CacheSummary:
    """Encode every full clip of each episode and camera; one safetensors file per episode.

    Existing episode files are kept unless `overwrite` (so an interrupted run resumes); each file is
    written to a temporary name first and renamed, so a file on disk is always complete. A cache built
    with a different VAE or settings is refused (ConfigError) instead of being mixed.
    """
    cfg = config or LatentCacheConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    settings = json.loads(json.dumps({  # JSON round trip so it compares equal to a re-read manifest
        "vae": vae.config.to_dict(), "cache": {k: v for k, v in asdict(cfg).items() if k != "source"},
        "cameras": list(cameras), "normalized": True}))
    manifest_path = out / MANIFEST
    manifest: dict[str, Any] = {"settings": settings, "episodes": {}}
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        if previous.get("settings") == settings:
            manifest["episodes"] = previous.get("episodes", {})
        elif not overwrite:
            raise ConfigError(f"{manifest_path}: cache was built with other settings {previous.get('settings')}; "
                              f"now {settings}. Use another out_dir or overwrite=True.")
    summary = CacheSummary()
    start_time = time.perf_counter()
    was_training = vae.training
    vae.eval()
    from tqdm import tqdm

    episodes = list(episodes)
    try:
        with torch.inference_mode():
            for ep in tqdm(episodes, desc="latent cache", unit="ep", dynamic_ncols=True, mininterval=1.0):
                path = _episode_path(out, int(ep))
                if path.is_file() and not overwrite and str(ep) in manifest["episodes"]:
                    summary.skipped_existing.append(int(ep))
                    continue
                tensors, info = _encode_episode(dataset_reader, vae, int(ep), cameras, cfg)
                tmp = path.with_name(path.name + ".tmp")
                save_file(tensors, str(tmp), metadata={"episode": str(ep), "info": json.dumps(info)})
                os.replace(tmp, path)
                manifest["episodes"][str(ep)] = {"file": path.name, **info}
                manifest_path.write_text(json.dumps(manifest, indent=1))
                summary.encoded_episodes.append(int(ep))
                summary.clips += len(tensors)
                LOG.info("episode %d: %d clips -> %s", ep, len(tensors), path)
    finally:
        vae.train(was_training)
    manifest_path.write_text(json.dumps(manifest, indent=1))
    summary.seconds = time.perf_counter() - start_time
    return summary


class LatentCache:
    """Read access to a cache written by `encode_dataset_to_cache`."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.root = Path(out_dir)
        path = self.root / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no latent cache manifest here")
        self.manifest: dict[str, Any] = json.loads(path.read_text())

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    def episodes(self) -> list[int]:
        return sorted(int(ep) for ep in self.manifest["episodes"])

    def clip_starts(self, ep: int, camera: str) -> list[int]:
        """Source-frame indices of the first frame of each cached clip."""
        return list(self.manifest["episodes"][str(ep)]["clips"].get(camera, []))

    def load_episode(self, ep: int) -> dict[str, dict[int, torch.Tensor]]:
        """{camera: {start_frame: latents (z_dim, n, h, w)}} for one episode."""
        from safetensors.torch import load_file

        entry = self.manifest["episodes"].get(str(ep))
        if entry is None:
            raise KeyError(f"{self.root}: episode {ep} not in the cache (have {self.episodes()})")
        out: dict[str, dict[int, torch.Tensor]] = {}
        for key, value in load_file(str(self.root / entry["file"])).items():
            camera, start = key.rsplit("/", 1)
            out.setdefault(camera, {})[int(start)] = value
        return out
