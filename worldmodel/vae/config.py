"""Hyper-parameters of the Wan2.1 causal video VAE and their loading from `config/worldmodel/vae/*.yaml`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rig.config import ConfigError, config_dirs, load_yaml

VAE_CONFIG_SUBDIR = Path("worldmodel") / "vae"
_INT_KEYS = ("dim", "z_dim", "num_res_blocks", "encode_chunk_frames", "decode_chunk_latents")


@dataclass(frozen=True)
class WanVAEConfig:
    """Architecture and chunking settings; the defaults are the full-size public Wan2.1 VAE."""

    dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temporal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0
    latent_stats: str = "wan2.1"
    encode_chunk_frames: int = 4
    decode_chunk_latents: int = 1
    source: str = field(default="<defaults>", compare=False)

    def __post_init__(self) -> None:
        where = self.source
        if self.dim <= 0 or self.z_dim <= 0 or self.num_res_blocks <= 0:
            raise ConfigError(f"{where}: dim, z_dim and num_res_blocks must be positive "
                              f"(got {self.dim}, {self.z_dim}, {self.num_res_blocks})")
        if len(self.dim_mult) < 2 or any(m <= 0 for m in self.dim_mult):
            raise ConfigError(f"{where}: dim_mult {list(self.dim_mult)} must list >= 2 positive factors")
        if len(self.temporal_downsample) != len(self.dim_mult) - 1:
            raise ConfigError(f"{where}: temporal_downsample has {len(self.temporal_downsample)} entries, "
                              f"expected len(dim_mult) - 1 = {len(self.dim_mult) - 1}")
        if self.encode_chunk_frames <= 0 or self.encode_chunk_frames % self.temporal_factor:
            raise ConfigError(f"{where}: encode_chunk_frames={self.encode_chunk_frames} must be a positive "
                              f"multiple of the temporal factor {self.temporal_factor}")
        if self.decode_chunk_latents <= 0:
            raise ConfigError(f"{where}: decode_chunk_latents={self.decode_chunk_latents} must be positive")
        if any((self.dim * m) % 2 for m in self.dim_mult):
            raise ConfigError(f"{where}: stage widths {[self.dim * m for m in self.dim_mult]} must be even "
                              "(each decoder upsampler halves its width)")

    @property
    def spatial_factor(self) -> int:
        """Pixels per latent cell along height and width (8 for Wan2.1)."""
        return 2 ** (len(self.dim_mult) - 1)

    @property
    def temporal_factor(self) -> int:
        """Pixel frames per latent frame after the first (4 for Wan2.1)."""
        return 2 ** sum(bool(t) for t in self.temporal_downsample)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (lists, not tuples) for YAML/JSON metadata; `source` left out."""
        out = asdict(self)
        out.pop("source")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> WanVAEConfig:
        """Build from a mapping; unknown or mistyped keys raise ConfigError naming `source`."""
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown VAE config keys {unknown} (known: {sorted(known)})")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("dim_mult", "attn_scales", "temporal_downsample"):
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{source}: {key}={value!r} must be a list")
                value = tuple(value)
            elif key in _INT_KEYS and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError(f"{source}: {key}={value!r} must be an integer")
            kwargs[key] = value
        return cls(**kwargs, source=source)


def vae_config_path(name: str | os.PathLike[str]) -> Path:
    """Resolve `name` as a file path, or as a bare name (`wan2.1`, `tiny`) under config/worldmodel/vae/."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    file_name = candidate.name if candidate.suffix == ".yaml" else f"{candidate.name}.yaml"
    for directory in config_dirs():
        path = directory / VAE_CONFIG_SUBDIR / file_name
        if path.is_file():
            return path
    searched = ", ".join(str(d / VAE_CONFIG_SUBDIR) for d in config_dirs())
    raise ConfigError(f"VAE config {str(name)!r}: not a file and not found in {searched}")


def load_vae_config(name: str | os.PathLike[str] = "wan2.1") -> WanVAEConfig:
    """Load a VAE config by bare name or path."""
    path = vae_config_path(name)
    return WanVAEConfig.from_dict(load_yaml(path), source=str(path))
