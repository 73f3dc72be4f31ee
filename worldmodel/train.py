"""Training of the A2World network on our recordings (`a2world worldmodel train`, or `torchrun -m worldmodel.train`).

Configuration is Hydra (`config/worldmodel/train.yaml` plus overrides). One process on CPU for the tiny
model; under `torchrun` (WORLD_SIZE > 1) the process group is set up from the environment and the network
is wrapped in DDP or sharded with FSDP2. The step is the release's: one training sigma per sample
(`worldmodel.diffusion.sample_training_sigma`), frame-replace conditioning on the first latent frame of
every view, loss `worldmodel.diffusion.training_loss`. Latents come from a VAE on the fly or from a cache.

Run directory:
    config.yaml                       resolved training config
    metrics.jsonl                     one JSON object per log/eval event (loss, lr, samples_per_s, ...)
    checkpoints/latest.txt            name of the newest complete checkpoint
    checkpoints/step_0000200/         model.safetensors (EMA weights if EMA is on) + config.yaml (network
                                      config, training metadata, action statistics), vae.safetensors
                                      (random-init VAE only), action_stats/<dataset>.json,
                                      train_state/ (online.safetensors, optimizer.pt, trainer.json, rng.pt)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rig.config import ConfigError, config_dirs
from worldmodel.data.clips import ClipConfig, DataError
from worldmodel.data.dataset import ClipDataset, MixedClipDataset, collate_clips, latent_cache_dir
from worldmodel.data.latents import ensure_latent_cache
from worldmodel.data.sampler import DatasetConsistentBatchSampler
from worldmodel.data.source import RecordingSource
from worldmodel.threads import configure_torch_threads

LOG = logging.getLogger(__name__)
TRAIN_CONFIG_NAME = "train"
CHECKPOINT_PREFIX = "step_"
LATEST = "latest.txt"
STATE_DIR = "train_state"
VAE_WEIGHTS = "vae.safetensors"
STRATEGIES = ("auto", "single", "ddp", "fsdp2")
PRECISIONS = ("auto", "bf16", "fp32")
SCHEDULES = ("constant", "cosine")


class TrainError(RuntimeError):
    """Training cannot start or continue; the message names the config key, file or value at fault."""


# ------------------------------------------------------------------------------------------------ config
def train_config_dir() -> Path:
    """The `config/worldmodel` folder holding the Hydra root `train.yaml` (first of `rig.config.config_dirs`)."""
    for directory in config_dirs():
        if (directory / "worldmodel" / f"{TRAIN_CONFIG_NAME}.yaml").is_file():
            return directory / "worldmodel"
    raise ConfigError(f"worldmodel/{TRAIN_CONFIG_NAME}.yaml not found under {[str(d) for d in config_dirs()]}")


def load_train_config(overrides: Sequence[str] = (), name: str = TRAIN_CONFIG_NAME) -> dict[str, Any]:
    """Compose `config/worldmodel/<name>.yaml` (default `train.yaml`; `train_vae` for the VAE trainer) with
    Hydra overrides (`key=value`, `+train=preset`) into a plain, resolved dict."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(train_config_dir()), version_base=None):
            cfg = compose(name, overrides=list(overrides))
        out = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"training config overrides {list(overrides)}: {exc}") from None
    assert isinstance(out, dict)
    return out


def _choice(cfg: dict[str, Any], section: str, key: str, allowed: Sequence[str]) -> str:
    value = cfg[section][key]
    if value not in allowed:
        raise ConfigError(f"{section}.{key}={value!r}: expected one of {list(allowed)}")
    return str(value)


def validate_config(cfg: dict[str, Any]) -> None:
    """Check the keys the trainer relies on; errors name the key, the value and what is expected."""
    for section in ("data", "optim", "trainer", "net", "vae"):
        if not isinstance(cfg.get(section), dict):
            raise ConfigError(f"training config: missing section {section!r}")
    data, trainer, optim = cfg["data"], cfg["trainer"], cfg["optim"]
    roots = data.get("roots")
    if isinstance(roots, str) and roots:  # `data.roots=DIR` (no brackets): one root
        roots = data["roots"] = [roots]
    if not isinstance(roots, list) or not roots:
        raise ConfigError("data.roots is empty: pass the recordings, e.g. data.roots=[~/a2world_data/lift_sim]")
    for key in ("names", "weights"):
        if data.get(key) is not None and len(data[key]) != len(roots):
            raise ConfigError(f"data.{key} has {len(data[key])} entries for {len(roots)} data.roots")
    res = data.get("resolution")
    if not (isinstance(res, list) and len(res) == 2 and all(isinstance(v, int) and v > 0 and v % 8 == 0
                                                             for v in res)):
        raise ConfigError(f"data.resolution={res!r}: expected [height, width], positive multiples of 8")
    for key in ("max_steps", "batch_size"):
        if not isinstance(trainer.get(key), int) or trainer[key] <= 0:
            raise ConfigError(f"trainer.{key}={trainer.get(key)!r}: expected a positive integer")
    _choice(cfg, "trainer", "strategy", STRATEGIES)
    _choice(cfg, "trainer", "precision", PRECISIONS)
    _choice(cfg, "optim", "schedule", SCHEDULES)
    if not (isinstance(optim.get("lr"), (int, float)) and optim["lr"] > 0):
        raise ConfigError(f"optim.lr={optim.get('lr')!r}: expected a positive number")
    ema = trainer.get("ema_decay")
    if ema is not None and not 0 < ema < 1:
        raise ConfigError(f"trainer.ema_decay={ema!r}: expected a number in (0, 1) or null")


# ------------------------------------------------------------------------------------------- distributed
@dataclass
class DistEnv:
    """Process layout: rank, world size, local rank and the device this process trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str) -> DistEnv:
    """Initialise torch.distributed from torchrun's env vars when WORLD_SIZE > 1 (nccl on CUDA, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = (device == "auto" and torch.cuda.is_available()) or device.startswith("cuda")
    if want_cuda and not torch.cuda.is_available():
        raise TrainError(f"trainer.device={device!r} but CUDA is not available")
    if want_cuda:
        dev = torch.device(device if ":" in device else f"cuda:{local}")
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, world, local, dev)


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that exposes the wrapped network's `dtype` (the diffusion code reads it; DDP sets `device` itself)."""

    @property
    def dtype(self) -> torch.dtype:
        return self.module.dtype


def enable_activation_checkpointing(net: nn.Module) -> None:
    """Recompute each transformer block in the backward pass (state-dict keys unchanged)."""
    from torch.utils.checkpoint import checkpoint

    for block in net.blocks:
        inner = block.forward

        def forward(*args: Any, _inner: Any = inner, **kwargs: Any) -> Any:
            return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

        block.forward = forward


def wrap_network(net: nn.Module, strategy: str, env: DistEnv, bf16: bool) -> nn.Module:
    """Single process: the network itself; `ddp`: DistributedDataParallel; `fsdp2`: `fully_shard` per block."""
    if strategy == "auto":
        strategy = "ddp" if env.distributed else "single"
    if strategy == "single":
        if env.distributed:
            raise TrainError(f"trainer.strategy=single with WORLD_SIZE={env.world_size}; use ddp or fsdp2")
        return net
    if not env.distributed:
        raise TrainError(f"trainer.strategy={strategy} needs torchrun with WORLD_SIZE > 1")
    if strategy == "ddp":
        # the action-only A2World leaves some modules unused (black_to_crossattn_emb without `blacks`)
        return _DDP(net, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                    find_unused_parameters=True)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else \
        MixedPrecisionPolicy()
    for block in net.blocks:
        fully_shard(block, mp_policy=mp)
    fully_shard(net, mp_policy=mp)
    return net


# -------------------------------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of the trainable parameters (fp32 shadow, sharded like the parameters)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.names = [n for n, p in net.named_parameters() if p.requires_grad]
        self.shadow = [p.detach().float().clone() for n, p in net.named_parameters() if p.requires_grad]

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        params = [p.detach().float() for _, p in net.named_parameters() if p.requires_grad]
        torch._foreach_lerp_(self.shadow, params, 1.0 - self.decay)

    def full_state(self) -> dict[str, torch.Tensor]:
        """Full (gathered) EMA tensors on CPU, by parameter name."""
        out = {}
        for name, t in zip(self.names, self.shadow):
            full = t.full_tensor() if hasattr(t, "full_tensor") else t
            out[name] = full.detach().to("cpu")
        return out

    @torch.no_grad()
    def load_full_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, t in zip(self.names, self.shadow):
            if name not in state:
                raise TrainError(f"EMA state lacks {name!r}")
            src = state[name].to(t.device if not hasattr(t, "device_mesh") else "cpu")
            if hasattr(t, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                t.copy_(distribute_tensor(src.float(), t.device_mesh, t.placements))
            else:
                t.copy_(src)


# ---------------------------------------------------------------------------------------------- helpers
def lr_lambda(schedule: str, warmup: int, max_steps: int, min_ratio: float) -> Any:
    """Multiplier of the base LR at a step: linear warm-up, then constant or cosine down to `min_ratio`."""

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def pixels_to_video(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float (N, 3, T, H, W) in [-1, 1]."""
    return pixels.permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)


def pack_views(latents: torch.Tensor) -> torch.Tensor:
    """(B, V, C, T, h, w) per-view latents -> (B, C, V*T, h, w), views packed view-major along time."""
    B, V, C, T, h, w = latents.shape
    return latents.permute(0, 2, 1, 3, 4, 5).reshape(B, C, V * T, h, w)


def unpack_views(latents: torch.Tensor, n_views: int) -> torch.Tensor:
    """Inverse of `pack_views`."""
    B, C, VT, h, w = latents.shape
    return latents.reshape(B, C, n_views, VT // n_views, h, w).permute(0, 2, 1, 3, 4, 5)


def build_vae(cfg: dict[str, Any], device: torch.device) -> nn.Module:
    """The VAE of the run: loaded from `vae_weights`; else the random VAE saved in an `init_from` checkpoint
    of ours (so its latents stay the same); else random from `seed` (tiny tests)."""
    from worldmodel.vae import WanVAE, WanVAEConfig

    vae_cfg = WanVAEConfig.from_dict(dict(cfg["vae"]), source="training config: vae")
    init = Path(cfg["init_from"]).expanduser() if cfg.get("init_from") else None
    inherited = init / VAE_WEIGHTS if init is not None and init.is_dir() else None
    if cfg.get("vae_weights"):
        vae = WanVAE.from_checkpoint(Path(cfg["vae_weights"]).expanduser(), config=vae_cfg)
    elif inherited is not None and inherited.is_file():
        vae = WanVAE.from_checkpoint(inherited, config=vae_cfg)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg["seed"]))
            vae = WanVAE(vae_cfg)
    return vae.to(device).eval().requires_grad_(False)


def build_network(cfg: dict[str, Any]) -> nn.Module:
    """The network from `cfg.net`, initialised from `init_from` (official .pt or our checkpoint) if set."""
    from worldmodel.checkpoint import load_checkpoint, load_official, load_state_dict_into
    from worldmodel.configs import A2WorldNetConfig
    from worldmodel.network.a2world import build_net

    net_cfg = A2WorldNetConfig.from_dict(dict(cfg["net"]), source="training config: net")
    torch.manual_seed(int(cfg["seed"]))
    net = build_net(net_cfg)
    init = cfg.get("init_from")
    if init:
        path = Path(init).expanduser()
        src = load_checkpoint(path)[0] if path.is_dir() or path.suffix == ".safetensors" else \
            load_official(path, config=net_cfg, dtype=torch.float32)[0]
        load_state_dict_into(net, src.state_dict(), str(path), strict=True)
    return net.float()


def build_datasets(cfg: dict[str, Any], vae: nn.Module | None, env: DistEnv,
                   dataset_cls: type[ClipDataset] = ClipDataset, **dataset_kwargs: Any) -> MixedClipDataset:
    """The mix of `data.roots`, with per-dataset action statistics; builds latent caches if configured.
    `dataset_cls` / `dataset_kwargs`: the clip dataset (A2World-sim: `HistoryClipDataset` and its settings)."""
    data = cfg["data"]
    clip = ClipConfig(clip_frames=int(data["clip_frames"]), frame_stride=int(data["frame_stride"]),
                      clip_hop=int(data["clip_hop"]), action_source=str(data["action_source"]))
    names = data.get("names") or [None] * len(data["roots"])
    resolution = (int(data["resolution"][0]), int(data["resolution"][1]))
    sources = [RecordingSource(root, name) for root, name in zip(data["roots"], names)]
    seen = [s.name for s in sources]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"dataset names {seen} repeat; set data.names to tell them apart")
    datasets = []
    for d, src in enumerate(sources):
        src.check_cameras(data["cameras"])
        cache = None
        if data.get("latent_cache"):
            cache = latent_cache_dir(data["latent_cache"], src.name)
            if env.is_main:
                assert vae is not None
                ensure_latent_cache(src, vae, cache, clip, data["cameras"], resolution,
                                    store_dtype=str(data.get("cache_dtype", "float32")))
            if env.distributed:
                torch.distributed.barrier()
        stats = src.fit_stats(clip, str(data["normalization"]))
        datasets.append(dataset_cls(src, clip, data["cameras"], stats, resolution, data.get("view_ids"),
                                    latent_cache=cache, preload=bool(data.get("preload", True)), index=d,
                                    **dataset_kwargs))
    return MixedClipDataset(datasets)


def _precision(cfg: dict[str, Any], device: torch.device) -> bool:
    precision = cfg["trainer"]["precision"]
    if precision == "bf16" and device.type == "cpu":
        LOG.warning("trainer.precision=bf16 on CPU: autocast to bf16 is slow on most CPUs")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


# -------------------------------------------------------------------------------------------- trainer
@dataclass
class TrainResult:
    """What a finished `train` call reports."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    first_eval_loss: float | None
    last_eval_loss: float | None
    samples_per_s: float


class Trainer:
    """Owns the network, optimiser, EMA, data iterator, metrics and checkpoints of one run."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        validate_config(cfg)
        self.cfg = cfg
        tr = cfg["trainer"]
        try:
            configure_torch_threads(tr.get("threads"), source="trainer.threads")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.env = setup_distributed(str(tr["device"]))
        self.device = self.env.device
        self.bf16 = _precision(cfg, self.device)
        self.run_dir = Path(cfg["run_dir"] or Path("runs") / "worldmodel" /
                            datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")).expanduser()
        self.ckpt_dir = self.run_dir / "checkpoints"
        from worldmodel.diffusion import TrainingNoiseConfig

        self.noise = TrainingNoiseConfig.load(cfg.get("diffusion_config"))
        self.uses_cache = bool(cfg["data"].get("latent_cache"))
        self.vae = build_vae(cfg, self.device)
        self.data = self.build_data()
        if self.uses_cache:
            self.vae_for_training: nn.Module | None = None
        else:
            self.vae_for_training = self.vae
        self.raw_net = self.build_model().to(self.device)
        if tr.get("activation_checkpointing"):
            enable_activation_checkpointing(self.raw_net)
        self.net = wrap_network(self.raw_net, str(tr["strategy"]), self.env, self.bf16)
        self.ema = EMA(self.raw_net, float(tr["ema_decay"])) if tr.get("ema_decay") else None
        o = cfg["optim"]
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]),
                                     betas=tuple(o["betas"]), eps=float(o["eps"]))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(str(o["schedule"]), int(o["warmup_steps"]), int(tr["max_steps"]),
                                float(o["min_lr_ratio"])))
        self.sampler = DatasetConsistentBatchSampler(self.data.sizes, int(tr["batch_size"]), cfg["data"].get("weights"),
                                                     seed=int(cfg["seed"]), rank=self.env.rank,
                                                     world_size=self.env.world_size)
        self.step = 0
        self.batches_in_epoch = 0
        self.generator = torch.Generator().manual_seed(int(cfg["seed"]) * 1000 + self.env.rank)
        self.eval_set = self._eval_batches()
        if tr.get("resume"):
            self.resume(str(tr["resume"]))

    # ------------------------------------------------------------------------- variant hooks (A2World-sim)
    collate = staticmethod(collate_clips)

    def build_data(self) -> MixedClipDataset:
        """The training datasets (A2World-sim: clips with history, `worldmodel.train_sim`)."""
        return build_datasets(self.cfg, self.vae, self.env)

    def build_model(self) -> nn.Module:
        """The network to train, initialised from `init_from` if set."""
        return build_network(self.cfg)

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Hook before a training step (A2World-sim: self-forcing replaces frames here)."""
        return batch

    def network_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        """Extra network inputs of a batch (A2World-sim: encoded history and path features)."""
        return None

    def extra_metadata(self) -> dict[str, Any]:
        """Variant-specific entries of the checkpoint's training metadata."""
        return {}

    # ------------------------------------------------------------------------------------------ data
    def _loader(self, sampler: DatasetConsistentBatchSampler, persistent: bool = False) -> torch.utils.data.DataLoader:
        workers = int(self.cfg["data"].get("num_workers", 0))
        return torch.utils.data.DataLoader(self.data, batch_sampler=sampler, collate_fn=self.collate,
                                           num_workers=workers, persistent_workers=persistent and workers > 0,
                                           pin_memory=self.device.type == "cuda")

    def batches(self) -> Iterator[dict[str, Any]]:
        """Endless batches; the epoch and position are tracked for resuming. One loader serves all epochs
        (the sampler is iterated in this process, so `set_epoch` applies; workers keep their decoded frames)."""
        loader = self._loader(self.sampler, persistent=True)
        while True:
            self.sampler.set_epoch(self.sampler.epoch, self.batches_in_epoch)
            for batch in loader:
                self.batches_in_epoch += 1
                yield batch
            self.sampler.epoch += 1
            self.batches_in_epoch = 0

    def _eval_batches(self) -> list[tuple[dict[str, Any], torch.Tensor, torch.Tensor]]:
        """Fixed batches with fixed sigma and noise, so the eval loss is comparable across steps."""
        n = int(self.cfg["trainer"].get("eval_batches", 0))
        if n <= 0:
            return []
        sampler = DatasetConsistentBatchSampler(self.data.sizes, int(self.cfg["trainer"]["batch_size"]),
                                                self.cfg["data"].get("weights"), seed=int(self.cfg["seed"]) + 7919,
                                                rank=self.env.rank, world_size=self.env.world_size,
                                                batches_per_epoch=n)
        gen = torch.Generator().manual_seed(int(self.cfg["seed"]) + 104729)
        out = []
        from worldmodel.diffusion import sample_training_sigma

        for batch in self._loader(sampler):
            x0 = self.latents(batch).cpu()
            sigma = sample_training_sigma(x0.shape[0], self._frames_per_view(batch, x0), self.noise, generator=gen)
            eps = torch.randn(x0.shape, generator=gen)
            extra = self.network_inputs(batch)
            out.append(({"latents": x0, "actions": batch["actions"], "view_ids": batch["view_ids"],
                         "net_inputs": None if extra is None else {k: v.cpu() for k, v in extra.items()}},
                        sigma, eps))
        return out

    @staticmethod
    def _frames_per_view(batch: dict[str, Any], x0: torch.Tensor) -> int:
        return x0.shape[2] // batch["view_ids"].shape[1]

    @torch.no_grad()
    def latents(self, batch: dict[str, Any]) -> torch.Tensor:
        """Packed clean latents (B, C, V*T, h, w) of a batch (from the cache or encoded now)."""
        if "latents" in batch:
            return pack_views(batch["latents"].to(self.device, non_blocking=True).float())
        if self.vae_for_training is None:
            raise TrainError("batch has pixels but no VAE is loaded")
        pixels = batch["pixels"].to(self.device, non_blocking=True)
        B, V = pixels.shape[:2]
        video = pixels_to_video(pixels.flatten(0, 1))
        with self._autocast():
            z = self.vae_for_training.encode(video)
        return pack_views(z.float().reshape(B, V, *z.shape[1:]))

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------------------------------ step
    def loss(self, x0: torch.Tensor, actions: torch.Tensor, view_ids: torch.Tensor, sigma: torch.Tensor,
             eps: torch.Tensor, net_inputs: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        from worldmodel.diffusion import Conditioning, first_frames_mask, training_loss

        B, V = view_ids.shape
        mask = first_frames_mask(B, V, x0.shape[2] // V, 1, device=self.device)
        cond = Conditioning(latents=x0, frame_mask=mask, action=actions.to(self.device),
                            view_ids=view_ids.to(self.device),
                            net_inputs=None if net_inputs is None else
                            {k: v.to(self.device) for k, v in net_inputs.items()})
        with self._autocast():
            return training_loss(self.net, x0, cond, sigma.to(self.device), eps.to(self.device), self.noise.loss_scale)

    def train_step(self, batch: dict[str, Any]) -> tuple[float, float]:
        """One optimiser step; returns (loss, gradient norm)."""
        from worldmodel.diffusion import sample_training_sigma

        batch = self.prepare_batch(batch)
        x0 = self.latents(batch)
        net_inputs = self.network_inputs(batch)
        V = batch["view_ids"].shape[1]
        sigma = sample_training_sigma(x0.shape[0], x0.shape[2] // V, self.noise, generator=self.generator)
        eps = torch.randn(x0.shape, generator=self.generator).to(self.device)
        self.net.train()
        loss = self.loss(x0, batch["actions"], batch["view_ids"], sigma, eps, net_inputs)
        if not torch.isfinite(loss):
            raise TrainError(f"step {self.step}: loss is {loss.item()} (check optim.lr and the data)")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg["optim"].get("grad_clip")
        params = [p for p in self.net.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, float(clip) if clip else float("inf"))
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.raw_net)
        self.step += 1
        loss_value = loss.detach()
        if self.env.distributed:
            torch.distributed.all_reduce(loss_value, op=torch.distributed.ReduceOp.AVG)
        return float(loss_value), float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    @torch.no_grad()
    def eval_loss(self) -> float | None:
        """Mean loss of the online network on the fixed eval batches (fixed sigma and noise)."""
        if not self.eval_set:
            return None
        self.net.eval()
        total = torch.zeros((), device=self.device)
        for batch, sigma, eps in self.eval_set:
            x0 = batch["latents"].to(self.device)
            total += self.loss(x0, batch["actions"], batch["view_ids"], sigma, eps, batch["net_inputs"]).float()
        if self.env.distributed:
            torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.AVG)
        return float(total) / len(self.eval_set)

    # ----------------------------------------------------------------------------------- checkpoints
    def _full_model_state(self) -> dict[str, torch.Tensor]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        if not self.env.distributed:
            return {k: v.detach().to("cpu") for k, v in self.raw_net.state_dict().items()}
        return get_model_state_dict(self.raw_net, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def _full_optim_state(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(self.raw_net, self.opt,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def metadata(self) -> dict[str, Any]:
        """What prediction needs besides the weights: data layout, VAE, action statistics per dataset."""
        data = self.cfg["data"]
        vae_weights = self.cfg.get("vae_weights")
        return {
            "training": {
                "step": self.step,
                "ema": self.ema is not None,
                "resolution": list(data["resolution"]),
                "clip_frames": int(data["clip_frames"]),
                "frame_stride": int(data["frame_stride"]),
                "fps": self.data.datasets[0].source.fps / int(data["frame_stride"]),
                "action_source": data["action_source"],
                "view_ids": dict(data["view_ids"]),
                "cameras": list(data["cameras"]),
                "datasets": [{"name": d.name, "root": str(d.source.root), "clips": len(d),
                              "stats": f"action_stats/{d.name}.json", "tasks": d.source.tasks}
                             for d in self.data.datasets],
                "vae": {"config": dict(self.cfg["vae"]),
                        "weights": VAE_WEIGHTS if not vae_weights else str(Path(vae_weights).expanduser().resolve())},
                "config": self.cfg,
                **self.extra_metadata(),
            },
        }

    def _vae_record(self) -> dict[str, Any]:
        """Training record of the VAE copied into checkpoints: the inherited one's, else "never trained"."""
        from worldmodel.vae.checkpoint import training_record

        init = Path(self.cfg["init_from"]).expanduser() if self.cfg.get("init_from") else None
        inherited = init / VAE_WEIGHTS if init is not None and init.is_dir() else None
        record = training_record(inherited) if inherited is not None and inherited.is_file() else None
        return record or {"trained": False}

    def save(self) -> Path:
        """Write a checkpoint of the current step (collective under torchrun; rank 0 writes)."""
        from safetensors.torch import save_file

        from worldmodel.checkpoint import save_checkpoint

        online = self._full_model_state()
        optim_state = self._full_optim_state()
        rng = [{"torch": torch.get_rng_state(), "generator": self.generator.get_state()}]
        if self.env.distributed:  # every rank's noise generator, so a resumed run draws the same noise
            gathered: list[Any] = [None] * self.env.world_size
            torch.distributed.all_gather_object(gathered, rng[0])
            rng = gathered
        ema = self.ema.full_state() if self.ema is not None else None
        name = f"{CHECKPOINT_PREFIX}{self.step:07d}"
        final = self.ckpt_dir / name
        if self.env.is_main:
            tmp = self.ckpt_dir / f".{name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            from worldmodel.network.a2world import build_net

            export = build_net(self.raw_net.config, device="meta")
            weights = dict(online)
            if ema is not None:
                weights.update(ema)
            export.load_state_dict(weights, assign=True)
            save_checkpoint(tmp, export, self.metadata())
            (tmp / "action_stats").mkdir()
            for d in self.data.datasets:
                d.stats.save(tmp / "action_stats" / f"{d.name}.json")
            if not self.cfg.get("vae_weights"):
                self.vae.save_checkpoint(tmp / VAE_WEIGHTS, self._vae_record())
            state = tmp / STATE_DIR
            state.mkdir()
            save_file({k: v.contiguous() for k, v in online.items()}, str(state / "online.safetensors"))
            if ema is not None:
                save_file({k: v.contiguous() for k, v in ema.items()}, str(state / "ema.safetensors"))
            torch.save(optim_state, state / "optimizer.pt")
            torch.save({"ranks": rng}, state / "rng.pt")
            (state / "trainer.json").write_text(json.dumps({
                "step": self.step, "epoch": self.sampler.epoch, "batches_in_epoch": self.batches_in_epoch,
                "scheduler": self.sched.state_dict()}, indent=1))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            (self.ckpt_dir / LATEST).write_text(name + "\n")
            self._prune()
        if self.env.distributed:
            torch.distributed.barrier()
        return final

    def _prune(self) -> None:
        keep = int(self.cfg["trainer"].get("keep_last") or 0)
        if keep <= 0:
            return
        found = sorted(p for p in self.ckpt_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())
        for old in found[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def resume(self, where: str) -> None:
        """Continue from `auto` (latest in run_dir; a fresh start if none) or a checkpoint folder."""
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        if where == "auto":
            latest = self.ckpt_dir / LATEST
            if not latest.is_file():
                LOG.info("trainer.resume=auto: no checkpoint in %s, starting fresh", self.ckpt_dir)
                return
            path = self.ckpt_dir / latest.read_text().strip()
        else:
            path = Path(where).expanduser()
        state = path / STATE_DIR
        needed = [state / f for f in ("online.safetensors", "optimizer.pt", "trainer.json", "rng.pt")]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise TrainError(f"trainer.resume={where!r}: {path} is not a resumable checkpoint (missing {missing})")
        opts = StateDictOptions(full_state_dict=True)
        set_model_state_dict(self.raw_net, load_file(str(state / "online.safetensors")), options=opts)
        optim_state = torch.load(state / "optimizer.pt", map_location="cpu", weights_only=True)
        # strict=False: parameters that never received a gradient (unused context branch) have no Adam state
        set_optimizer_state_dict(self.raw_net, self.opt, optim_state_dict=optim_state,
                                 options=StateDictOptions(full_state_dict=True, strict=False))
        if self.ema is not None:
            ema_file = state / "ema.safetensors"
            self.ema.load_full_state(load_file(str(ema_file)) if ema_file.is_file() else
                                     load_file(str(state / "online.safetensors")))
        info = json.loads((state / "trainer.json").read_text())
        self.step, self.batches_in_epoch = int(info["step"]), int(info["batches_in_epoch"])
        self.sampler.epoch = int(info["epoch"])
        self.sched.load_state_dict(info["scheduler"])
        ranks = torch.load(state / "rng.pt", weights_only=True)["ranks"]
        mine = ranks[self.env.rank] if self.env.rank < len(ranks) else ranks[0]
        torch.set_rng_state(mine["torch"])
        self.generator.set_state(mine["generator"])
        LOG.info("resumed from %s at step %d", path, self.step)

    # ------------------------------------------------------------------------------------------- fit
    def fit(self) -> TrainResult:
        """Train to `trainer.max_steps`, logging, evaluating and checkpointing on the way."""
        from tqdm import tqdm

        tr = self.cfg["trainer"]
        max_steps, batch_size = int(tr["max_steps"]), int(tr["batch_size"])
        log_every, eval_every, ckpt_every = int(tr["log_every"]), int(tr["eval_every"] or 0), int(tr["ckpt_every"] or 0)
        main = self.env.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            import yaml

            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.cfg, sort_keys=False))
        metrics = (self.run_dir / "metrics.jsonl").open("a") if main else None

        def log(entry: dict[str, Any]) -> None:
            if metrics is not None:
                metrics.write(json.dumps({"step": self.step, "time": round(time.time(), 3), **entry}) + "\n")
                metrics.flush()

        first_eval = self.eval_loss()
        log({"eval_loss": first_eval})
        last_eval = first_eval
        bar = tqdm(total=max_steps, initial=self.step, disable=not (main and tr.get("progress", True)),
                   desc="train", dynamic_ncols=True, file=sys.stderr)
        it = self.batches()
        window: list[float] = []
        t_window, samples = time.perf_counter(), 0
        total_time, total_samples = 0.0, 0
        checkpoint: Path | None = None
        try:
            while self.step < max_steps:
                batch = next(it)
                loss, gnorm = self.train_step(batch)
                window.append(loss)
                samples += batch_size * self.env.world_size
                bar.update(1)
                if self.step % log_every == 0 or self.step == max_steps:
                    dt = time.perf_counter() - t_window
                    rate = samples / dt if dt > 0 else 0.0
                    total_time, total_samples = total_time + dt, total_samples + samples
                    entry = {"loss": sum(window) / len(window), "lr": self.sched.get_last_lr()[0],
                             "grad_norm": gnorm, "samples_per_s": rate, "dataset": int(batch["dataset"])}
                    log(entry)
                    bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}", sps=f"{rate:.1f}")
                    window, t_window, samples = [], time.perf_counter(), 0
                if eval_every and self.step % eval_every == 0 and self.step < max_steps:
                    last_eval = self.eval_loss()
                    log({"eval_loss": last_eval})
                    t_window = time.perf_counter()
                if ckpt_every and self.step % ckpt_every == 0 and self.step < max_steps:
                    checkpoint = self.save()
                    t_window = time.perf_counter()
            if self.eval_set:
                last_eval = self.eval_loss()
                log({"eval_loss": last_eval})
            checkpoint = self.save()
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
        return TrainResult(self.run_dir, self.step, checkpoint, first_eval, last_eval,
                           total_samples / total_time if total_time > 0 else 0.0)


def train(cfg: dict[str, Any]) -> TrainResult:
    """Build a `Trainer` from a composed config and run it to `trainer.max_steps`."""
    return Trainer(cfg).fit()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m worldmodel.train key=value ...` (what torchrun launches on every rank)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = train(load_train_config(list(sys.argv[1:] if argv is None else argv)))
    except (ConfigError, DataError, TrainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained to step {result.step}: checkpoint {result.checkpoint}"
              + (f", eval loss {result.first_eval_loss:.4f} -> {result.last_eval_loss:.4f}"
                 if result.first_eval_loss is not None and result.last_eval_loss is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["TrainError", "TrainResult", "Trainer", "load_train_config", "main", "train"]
