"""Network hyper-parameters of A2World (and, later, A2World-sim) and their loading from YAML.

One dataclass, `A2WorldNetConfig`, describes every size; the named sizes live in
`config/worldmodel/net/<name>.yaml` (`a2world_2b` is the released 2B network, `tiny` a CPU test size).
Sampler presets and training-noise settings live in `config/worldmodel/diffusion.yaml` (`worldmodel.diffusion`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rig.config import ConfigError, config_dirs, load_yaml

NET_CONFIG_SUBDIR = Path("worldmodel") / "net"
DIFFUSION_CONFIG = Path("worldmodel") / "diffusion.yaml"
VARIANTS = ("a2world", "a2world_sim")
"""`a2world`: the base model (`a2world-pretrained.pt`); `a2world_sim`: the history-aware variant (libero)."""

_TUPLE_FIELDS = {"black_pool"}
_FLOAT_FIELDS = {"mlp_ratio", "rope_h_extrapolation", "rope_w_extrapolation", "rope_t_extrapolation",
                 "rope_base_fps", "default_fps", "norm_eps", "vpb_clamp", "vpb_scale"}
_BOOL_FIELDS = {"concat_padding_mask", "rope_fps_modulation", "use_black", "enable_cross_view_attn"}


SIM_ONLY_FIELDS = ("history_latent_frames", "history_slots", "history_mid_channels", "history_pe_dim",
                   "history_pose_dim", "history_pose_freqs", "history_pose_hidden", "path_feature_dim",
                   "vpb_hidden", "vpb_clamp", "vpb_scale")
"""A2WorldNetConfig fields that only the history-aware variant (`a2world_sim`) uses."""


@dataclass(frozen=True)
class A2WorldNetConfig:
    """Architecture of the A2World DiT. Defaults are the released 2B network (`a2world-pretrained.pt`)."""

    variant: str = "a2world"
    model_channels: int = 2048
    num_blocks: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    in_channels: int = 16
    out_channels: int = 16
    patch_spatial: int = 2
    patch_temporal: int = 1
    adaln_lora_dim: int = 256
    crossattn_emb_channels: int = 1024
    action_steps: int = 20
    action_per_step: int = 14
    view_condition_dim: int = 7
    num_view_embeddings: int = 4
    max_views: int = 4
    state_t: int = 6
    max_img_h: int = 240
    max_img_w: int = 240
    max_frames: int = 128
    concat_padding_mask: bool = True
    rope_h_extrapolation: float = 3.0
    rope_w_extrapolation: float = 3.0
    rope_t_extrapolation: float = 0.25
    rope_base_fps: float = 24.0
    rope_fps_modulation: bool = True
    default_fps: float = 10.0
    norm_eps: float = 1e-6
    use_black: bool = True
    black_mid_channels: int = 512
    black_pool: tuple[int, int, int] = (16, 12, 8)
    enable_cross_view_attn: bool = True
    # A2World-sim only (variant a2world_sim; `a2world-libero.pt`). History tokens are
    # crossattn_emb_channels wide (1024 = model_channels / 2 in the release).
    history_latent_frames: int = 5    # history latents per view (20 frames per view, encoded with window 16)
    history_slots: int = 20           # frames picked from the history buffer (the state's slot axis)
    history_mid_channels: int = 128   # history tokenizer: Conv3x3 s2 (in -> mid), SiLU, Conv1x1 (mid -> D)
    history_pe_dim: int = 128         # 2-D sin-cos position features of the history tokens (divisible by 4)
    history_pose_dim: int = 6         # pose_mlp / gate inputs (registered, unused by the released forward)
    history_pose_freqs: int = 8
    history_pose_hidden: int = 256
    path_feature_dim: int = 22        # action-path features per (future step, history slot)
    vpb_hidden: int = 128             # view-pair bias MLP 22 -> hidden -> 1
    vpb_clamp: float = 10.0
    vpb_scale: float = 1.0
    source: str = field(default="<defaults>", compare=False)

    def __post_init__(self) -> None:
        where = self.source
        if self.variant not in VARIANTS:
            raise ConfigError(f"{where}: variant={self.variant!r}, expected one of {VARIANTS}")
        positive = ("model_channels", "num_blocks", "num_heads", "in_channels", "out_channels", "patch_spatial",
                    "patch_temporal", "adaln_lora_dim", "crossattn_emb_channels", "action_steps",
                    "action_per_step", "view_condition_dim", "num_view_embeddings", "max_views", "state_t",
                    "max_img_h", "max_img_w", "max_frames", "black_mid_channels", "history_latent_frames",
                    "history_slots", "history_mid_channels", "history_pe_dim", "history_pose_dim",
                    "history_pose_freqs", "history_pose_hidden", "path_feature_dim", "vpb_hidden")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}: {name}={getattr(self, name)} must be positive")
        if self.model_channels % self.num_heads:
            raise ConfigError(f"{where}: model_channels={self.model_channels} is not divisible by "
                              f"num_heads={self.num_heads}")
        if self.head_dim % 2 or self.head_dim // 6 * 2 <= 2:
            raise ConfigError(f"{where}: head_dim={self.head_dim} too small or odd for 3D RoPE (needs >= 12, even)")
        if self.max_views > 4:
            raise ConfigError(f"{where}: max_views={self.max_views}; the release's cross-view map covers 4 views")
        if self.history_pe_dim % 4:
            raise ConfigError(f"{where}: history_pe_dim={self.history_pe_dim} must be divisible by 4 (sin/cos of y, x)")
        if self.variant == "a2world_sim" and self.use_black:
            raise ConfigError(f"{where}: variant a2world_sim has no black_to_crossattn_emb; set use_black: false")
        if len(self.black_pool) != 3 or any(p <= 0 for p in self.black_pool):
            raise ConfigError(f"{where}: black_pool={list(self.black_pool)} must be 3 positive sizes (t, h, w)")

    @property
    def head_dim(self) -> int:
        return self.model_channels // self.num_heads

    @property
    def action_dim(self) -> int:
        """Flattened action chunk length (280 for 20 steps x 14)."""
        return self.action_steps * self.action_per_step

    @property
    def patch_in_channels(self) -> int:
        """Channels entering the patch embedding: latent + cond mask + padding mask + view embedding (25)."""
        return self.in_channels + 1 + int(self.concat_padding_mask) + self.view_condition_dim

    @property
    def mlp_hidden(self) -> int:
        return int(self.model_channels * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for YAML/JSON metadata (`source` left out, tuples as lists; the base variant leaves
        out the A2World-sim fields, which do not apply to it, so base configs saved before they existed
        round-trip unchanged)."""
        out = asdict(self)
        out.pop("source")
        if self.variant != "a2world_sim":
            for name in SIM_ONLY_FIELDS:
                out.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> A2WorldNetConfig:
        """Build from a mapping; unknown or mistyped keys raise ConfigError naming `source` and the key."""
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown network config keys {unknown} (known: {sorted(known)})")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _TUPLE_FIELDS:
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
                    raise ConfigError(f"{source}: {key}={value!r}, expected a list of integers")
                value = tuple(value)
            elif key in _BOOL_FIELDS:
                if not isinstance(value, bool):
                    raise ConfigError(f"{source}: {key}={value!r}, expected true or false")
            elif key in _FLOAT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{source}: {key}={value!r}, expected a number")
                value = float(value)
            elif key != "variant" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{source}: {key}={value!r}, expected an integer")
            kwargs[key] = value
        return cls(**kwargs, source=source)


def _find(relative: Path) -> Path:
    for directory in config_dirs():
        if (directory / relative).is_file():
            return directory / relative
    searched = ", ".join(str(d) for d in config_dirs())
    raise ConfigError(f"config {str(relative)!r} not found under {searched}")


def net_config_path(name: str | os.PathLike[str]) -> Path:
    """Resolve a network config given as a file path or a bare name in `config/worldmodel/net/`."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    file_name = candidate.name if candidate.suffix else f"{candidate.name}.yaml"
    return _find(NET_CONFIG_SUBDIR / file_name)


def load_net_config(name: str | os.PathLike[str]) -> A2WorldNetConfig:
    """Load a named size (`a2world_2b`, `tiny`) or a YAML file into an `A2WorldNetConfig`."""
    path = net_config_path(name)
    return A2WorldNetConfig.from_dict(load_yaml(path), source=str(path))


def known_net_configs() -> dict[str, A2WorldNetConfig]:
    """Every network config shipped in `config/worldmodel/net/`, by name (first directory wins)."""
    found: dict[str, A2WorldNetConfig] = {}
    for directory in config_dirs():
        folder = directory / NET_CONFIG_SUBDIR
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found.setdefault(path.stem, load_net_config(path))
    return found


def load_diffusion_config(path: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """(file, mapping) of `config/worldmodel/diffusion.yaml` or of `path`."""
    file = Path(path) if path is not None else _find(DIFFUSION_CONFIG)
    return file, load_yaml(file)


def load_sampler_presets(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """Sampler presets (`release`, few-step ones) from `config/worldmodel/diffusion.yaml` or `path`."""
    file, data = load_diffusion_config(path)
    presets = data.get("presets")
    if not isinstance(presets, dict) or not presets:
        raise ConfigError(f"{file}: missing mapping 'presets' with at least one preset")
    for name, preset in presets.items():
        if not isinstance(preset, dict):
            raise ConfigError(f"{file}: presets.{name} is {type(preset).__name__}, expected a mapping")
    return presets
