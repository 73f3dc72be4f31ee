"""Configuration of the A2World-policy: one YAML per size in `config/policy/` (`tiny`, `full`), read with
hydra's compose API so command-line overrides (`train.steps=100`) work, and checked into dataclasses.

Sections: `net` (the A2World video-branch network, `worldmodel.configs.A2WorldNetConfig` fields),
`policy` (views, image size, horizons, rates), `text`, `vae`, `diffusion`, `sampler`, `train`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rig.config import ConfigError, config_dirs
from rig.conventions import VIEW_IDS
from worldmodel.configs import A2WorldNetConfig

POLICY_CONFIG_SUBDIR = Path("policy")


def _typed(value: Any, default: Any, where: str) -> Any:
    """`value` checked against the type of the field's default (int, float, bool, tuple, str or None)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}={value!r}: expected true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}={value!r}: expected an integer")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}={value!r}: expected a number")
        return float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}={value!r}: expected a list, e.g. [{', '.join(map(str, default))}]")
        if default and isinstance(default[0], int):
            for v in value:
                _typed(v, default[0], where)
        return tuple(value)
    elif value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}={value!r}: expected a string or null")
    return value


def _section(cls: type, data: Mapping[str, Any] | None, where: str) -> Any:
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    defaults = cls()
    for f in fields(cls):
        if f.name in data and f.name not in _UNTYPED:
            data[f.name] = _typed(data[f.name], getattr(defaults, f.name), f"{where}.{f.name}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


_UNTYPED = {"threads"}
"""Fields with their own check (`worldmodel.threads.resolve_threads`: an integer or 'auto')."""


@dataclass(frozen=True)
class ModelSection:
    """Views, image size, horizons and branch options."""

    cameras: tuple[str, ...] = ("front", "wrist_left", "wrist_right")
    image_size: tuple[int, int] = (32, 32)
    latent_frames: int = 2
    action_horizon: int = 60
    action_hz: int = 30
    video_fps: int = 10
    use_state: bool = True
    video_attends_actions: bool = False
    action_reads_position: bool = False
    max_prefix: int = 15
    prefix_prob: float = 0.5
    action_min_std: float = 0.005
    state_min_std: float = 0.02

    def check(self, where: str) -> None:
        bad = [c for c in self.cameras if c not in VIEW_IDS]
        if bad or not self.cameras:
            raise ConfigError(f"{where}: policy.cameras {list(self.cameras)}, expected names from {sorted(VIEW_IDS)}")
        if len(self.image_size) != 2 or any(s % 8 for s in self.image_size):
            raise ConfigError(f"{where}: policy.image_size {list(self.image_size)}, expected [H, W] multiples of 8")
        if self.latent_frames < 1 or self.action_horizon < 1:
            raise ConfigError(f"{where}: policy.latent_frames / action_horizon must be >= 1")
        if self.action_hz % self.video_fps:
            raise ConfigError(f"{where}: policy.action_hz {self.action_hz} is not a multiple of video_fps "
                              f"{self.video_fps}")
        if not 0 <= self.max_prefix < self.action_horizon:
            raise ConfigError(f"{where}: policy.max_prefix {self.max_prefix}, expected 0..{self.action_horizon - 1}")

    @property
    def view_ids(self) -> list[int]:
        return [VIEW_IDS[c] for c in self.cameras]

    @property
    def pixel_frames(self) -> int:
        """Pixel frames per view behind `latent_frames` (Wan VAE: 1 + 4 (n - 1))."""
        return 1 + 4 * (self.latent_frames - 1)


@dataclass(frozen=True)
class TextSection:
    """Instruction encoder: `trained` (ours, byte-level) or `t5` (local directory, never downloaded)."""

    kind: str = "trained"
    t5_dir: str | None = None
    max_tokens: int = 24
    width: int = 32
    layers: int = 1
    heads: int = 2


@dataclass(frozen=True)
class VaeSection:
    """The frozen Wan2.1 VAE: a config name and optional weights file."""

    config: str = "tiny"
    checkpoint: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class DiffusionSection:
    """Per-modality noise, loss weights and instruction dropout (paper section 3.3 / appendix 6.2)."""

    sigma_v_scale: float = 6 ** 0.5
    sigma_a_scale: float = 0.5
    p_mean: float = 0.0
    p_std: float = 1.0
    high_sigma_ratio: float = 0.05
    high_sigma_min: float = 200.0
    high_sigma_max: float = 1e5
    sigma_data: float = 1.0
    lambda_a: float = 1.0
    loss_scale: float = 10.0
    instruction_dropout: float = 0.1
    sigma_conditional: float = 1e-4


@dataclass(frozen=True)
class SamplerSection:
    """Few-step sampler on a base-sigma Karras grid; guidance s = 1 + gamma per modality."""

    num_steps: int = 5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    order: int = 2
    gamma_v: float = 0.0
    gamma_a: float = 0.0
    predict_video: bool = False
    smooth_window: int = 0
    """Centred moving average over this many steps on the sampled chunk (0/1: none); see action_repr."""


@dataclass(frozen=True)
class TrainSection:
    """Optimiser, EMA, precision, checkpointing and initialisation."""

    steps: int = 400
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    bf16: bool = False
    seed: int = 0
    sample_stride: int = 3
    val_episodes: int = 1
    log_every: int = 50
    ckpt_every: int = 200
    eval_every: int = 0
    init_from: str | None = None
    cosmos_cross_attn: str | None = None
    threads: int | str | None = "auto"
    latent_cache: str | None = "auto"
    """Clip-latent cache: "auto" = OUT/latent_cache, a directory (share it between runs), null = off."""
    early_seconds: float = 0.0
    early_weight: float = 1.0
    """Clips starting in an episode's first `early_seconds` are drawn `early_weight` times as often: the
    start of an episode is where only the images say where the object is (docs/policy.md)."""

    def check(self, where: str) -> None:
        positive = {"steps": self.steps, "batch_size": self.batch_size, "sample_stride": self.sample_stride,
                    "log_every": self.log_every}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{where}: train.{key}={value}, expected a positive integer")
        for key, value in {"warmup_steps": self.warmup_steps, "val_episodes": self.val_episodes,
                           "ckpt_every": self.ckpt_every, "eval_every": self.eval_every}.items():
            if value < 0:
                raise ConfigError(f"{where}: train.{key}={value}, expected an integer >= 0")
        if not self.lr > 0 or not self.grad_clip > 0:
            raise ConfigError(f"{where}: train.lr={self.lr}, train.grad_clip={self.grad_clip}: expected positive")
        if not self.early_seconds >= 0 or not self.early_weight > 0:
            raise ConfigError(f"{where}: train.early_seconds={self.early_seconds}, train.early_weight="
                              f"{self.early_weight}: expected seconds >= 0 and a positive weight")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"{where}: train.ema_decay={self.ema_decay}, expected a number in [0, 1)")
        from worldmodel.threads import resolve_threads

        try:
            resolve_threads(self.threads, source="train.threads")
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class PolicyConfig:
    """The whole policy configuration (one YAML file of `config/policy/`)."""

    name: str
    net: A2WorldNetConfig
    policy: ModelSection = field(default_factory=ModelSection)
    text: TextSection = field(default_factory=TextSection)
    vae: VaeSection = field(default_factory=VaeSection)
    diffusion: DiffusionSection = field(default_factory=DiffusionSection)
    sampler: SamplerSection = field(default_factory=SamplerSection)
    train: TrainSection = field(default_factory=TrainSection)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> PolicyConfig:
        known = {"name", "net", "policy", "text", "vae", "diffusion", "sampler", "train"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown sections {unknown} (known: {sorted(known)})")
        if not isinstance(data.get("net"), Mapping):
            raise ConfigError(f"{source}: missing mapping 'net'")
        cfg = cls(
            name=str(data.get("name", Path(source).stem)),
            net=A2WorldNetConfig.from_dict(dict(data["net"]), source=f"{source}: net"),
            policy=_section(ModelSection, data.get("policy"), f"{source}: policy"),
            text=_section(TextSection, data.get("text"), f"{source}: text"),
            vae=_section(VaeSection, data.get("vae"), f"{source}: vae"),
            diffusion=_section(DiffusionSection, data.get("diffusion"), f"{source}: diffusion"),
            sampler=_section(SamplerSection, data.get("sampler"), f"{source}: sampler"),
            train=_section(TrainSection, data.get("train"), f"{source}: train"),
        )
        cfg.policy.check(source)
        cfg.train.check(source)
        if cfg.text.kind not in ("trained", "t5"):
            raise ConfigError(f"{source}: text.kind {cfg.text.kind!r}, expected 'trained' or 't5'")
        if len(cfg.policy.cameras) > cfg.net.max_views:
            raise ConfigError(f"{source}: {len(cfg.policy.cameras)} cameras > net.max_views {cfg.net.max_views}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "net": self.net.to_dict()}
        for key in ("policy", "text", "vae", "diffusion", "sampler", "train"):
            out[key] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(getattr(self, key)).items()}
        return out


def policy_config_path(name: str | os.PathLike[str]) -> Path:
    """A YAML path as given, or a bare name (`tiny`, `full`) in `config/policy/`."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    file_name = candidate.name if candidate.suffix else f"{candidate.name}.yaml"
    for directory in config_dirs():
        if (directory / POLICY_CONFIG_SUBDIR / file_name).is_file():
            return directory / POLICY_CONFIG_SUBDIR / file_name
    raise ConfigError(f"policy config {str(name)!r} not found (looked for {POLICY_CONFIG_SUBDIR / file_name} "
                      f"under {', '.join(str(d) for d in config_dirs())})")


def load_policy_config(name: str | os.PathLike[str] = "tiny", overrides: Sequence[str] = ()) -> PolicyConfig:
    """Compose `config/policy/<name>.yaml` with hydra overrides (`train.steps=50`) into a PolicyConfig."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    path = policy_config_path(name).resolve()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(path.parent), version_base=None):
            composed = compose(config_name=path.stem, overrides=list(overrides))
    except HydraException as exc:
        raise ConfigError(f"{path}: overrides {list(overrides)}: {exc}") from None
    data = OmegaConf.to_container(composed, resolve=True)
    assert isinstance(data, dict)
    return PolicyConfig.from_dict(data, source=str(path))
