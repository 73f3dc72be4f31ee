"""A2World-sim training (`a2world worldmodel train-sim`, Hydra root `config/worldmodel/train_sim.yaml`).

The `worldmodel.train.Trainer` loop (optimiser, EMA, checkpoints, resume, metrics) with the sim pieces:
- data: `HistoryClipDataset` clips with the history the rollout would have (sampler `history.*`);
- network: `a2world_sim` initialised from a base A2World checkpoint (ours or `a2world-pretrained.pt`): the
  shared trunk is copied, base-only keys (`cross_attn`, `black_to_crossattn_emb`) are dropped and the
  history modules start fresh, as the release's libero fine-tune (`load_state_dict(strict=False)`);
- inputs: history VAE-encoded as one V * m clip (temporal window 16), path features as `state`;
- self-forcing (`self_forcing.mode`):
  * `release`: after `warmup_steps`, with `probability` per step: the online network generates the
    shifted forcing window with U{min_steps..max_steps} sampler steps (guidance 0) from the ground-truth
    frame `gap` nodes earlier; its frame `gap` replaces the clip's conditioning frame and its frames
    replace the history frames they stand for; then the ordinary diffusion loss on the modified inputs;
  * `teacher_free`: our reading of the paper's simplification: no sampler run from noise; the forcing
    window's ground truth is noised to a training sigma and denoised by ONE online-network call, and that
    estimate stands in as above (one extra forward instead of up to 6);
  * `off`: ground-truth conditioning and history only (teacher forcing).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rig.config import ConfigError
from worldmodel.data.clips import DataError
from worldmodel.data.dataset import MixedClipDataset
from worldmodel.data.history_clips import collate_tensors
from worldmodel.history import HistoryConfig
from worldmodel.train import Trainer, TrainError, TrainResult, build_datasets, load_train_config

LOG = logging.getLogger(__name__)
TRAIN_SIM_CONFIG_NAME = "train_sim"
SELF_FORCING_MODES = ("off", "release", "teacher_free")


@dataclass(frozen=True)
class SelfForcingConfig:
    """Self-forcing schedule (release: p = 0 before 2000 steps, then 0.4; gaps 2..10; 1..5 sampler steps)."""

    mode: str = "release"
    probability: float = 0.4
    warmup_steps: int = 2000
    min_gap: int = 2
    max_gap: int = 10
    min_steps: int = 1
    max_steps: int = 5

    def __post_init__(self) -> None:
        if self.mode not in SELF_FORCING_MODES:
            raise ConfigError(f"self_forcing.mode={self.mode!r}: expected one of {SELF_FORCING_MODES}")
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(f"self_forcing.probability={self.probability}: expected a value in [0, 1]")
        if not 1 <= self.min_gap <= self.max_gap or not 1 <= self.min_steps <= self.max_steps:
            raise ConfigError(f"self_forcing gaps {self.min_gap}..{self.max_gap}, steps {self.min_steps}.."
                              f"{self.max_steps}: expected 1 <= min <= max")
        if self.warmup_steps < 0:
            raise ConfigError(f"self_forcing.warmup_steps={self.warmup_steps}: expected >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelfForcingConfig:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown self_forcing keys {unknown} (known: {sorted(cls.__dataclass_fields__)})")
        return cls(**data)

    def active(self, step: int, draw: float) -> bool:
        return self.mode != "off" and step >= self.warmup_steps and draw < self.probability


def init_sim_from_base(net: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Copy the base checkpoint's tensors into the sim network where name and shape agree.

    Returns (fresh keys of the sim network, base keys dropped). Shared keys with another shape raise.
    """
    from worldmodel.checkpoint import load_checkpoint, read_official

    p = Path(path).expanduser()
    state = load_checkpoint(p)[0].state_dict() if p.is_dir() or p.suffix == ".safetensors" else read_official(p)
    target = net.state_dict()
    bad = [f"{k} (file {list(v.shape)}, network {list(target[k].shape)})" for k, v in state.items()
           if k in target and tuple(v.shape) != tuple(target[k].shape)]
    if bad:
        raise TrainError(f"init_from={path}: shared keys differ in shape: {bad[:5]} (net config must match the "
                         "base model's trunk)")
    shared = {k: v for k, v in state.items() if k in target}
    net.load_state_dict(shared, strict=False)
    return [k for k in target if k not in shared], [k for k in state if k not in target]


class SimTrainer(Trainer):
    """`Trainer` for A2World-sim: history inputs and self-forcing."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        for section in ("history", "self_forcing"):
            if not isinstance(cfg.get(section), dict):
                raise ConfigError(f"training config: missing section {section!r}")
        self.history = HistoryConfig.from_dict(dict(cfg["history"]), source="training config: history")
        self.self_forcing = SelfForcingConfig.from_dict(dict(cfg["self_forcing"]))
        if cfg["net"].get("variant") != "a2world_sim":
            raise ConfigError(f"net.variant={cfg['net'].get('variant')!r}: train-sim needs an a2world_sim net "
                              "(net=tiny_sim or net=a2world_sim_2b)")
        self.forcing_steps = 0
        super().__init__(cfg)

    collate = staticmethod(collate_tensors)

    # ------------------------------------------------------------------------------------ build hooks
    def build_data(self) -> MixedClipDataset:
        from worldmodel.data.history_clips import HistoryClipDataset

        return build_datasets(self.cfg, self.vae, self.env, HistoryClipDataset, history=self.history,
                              min_gap=self.self_forcing.min_gap, max_gap=self.self_forcing.max_gap)

    def build_model(self) -> nn.Module:
        from worldmodel.configs import A2WorldNetConfig
        from worldmodel.network.a2world import build_net

        net_cfg = A2WorldNetConfig.from_dict(dict(self.cfg["net"]), source="training config: net")
        torch.manual_seed(int(self.cfg["seed"]))
        net = build_net(net_cfg)
        if self.cfg.get("init_from"):
            fresh, dropped = init_sim_from_base(net, self.cfg["init_from"])
            LOG.info("init_from %s: %d keys fresh (%s ...), %d base keys dropped", self.cfg["init_from"],
                     len(fresh), ", ".join(fresh[:3]), len(dropped))
        return net.float()

    def extra_metadata(self) -> dict[str, Any]:
        return {"history": asdict(self.history), "self_forcing": asdict(self.self_forcing)}

    # ------------------------------------------------------------------------------------ inputs
    def _encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (B, V, T, H, W, 3) -> packed latents (B, C, V * n, h, w)."""
        from worldmodel.train import pack_views, pixels_to_video

        B, V = pixels.shape[:2]
        with self._autocast():
            z = self.vae.encode(pixels_to_video(pixels.flatten(0, 1).to(self.device)))
        return pack_views(z.float().reshape(B, V, *z.shape[1:]))

    def _history_inputs(self, pixels: torch.Tensor | None, state: torch.Tensor | None
                        ) -> dict[str, torch.Tensor] | None:
        from worldmodel.rollout import encode_history

        if pixels is None or state is None:
            return None
        return {"history": encode_history(self.vae, pixels.to(self.device)).float(), "state": state.to(self.device)}

    def network_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        return self._history_inputs(batch.get("history_pixels"), batch.get("state"))

    # ------------------------------------------------------------------------------------ self-forcing
    @torch.no_grad()
    def _generate_forcing(self, batch: dict[str, Any]) -> torch.Tensor:
        """uint8 (B, V, 21, H, W, 3): the online network's version of each sample's forcing window."""
        from worldmodel.diffusion import (
            Conditioning,
            Denoiser,
            SamplerConfig,
            first_frames_mask,
            sample,
            sample_training_sigma,
        )
        from worldmodel.predict import frames_to_uint8
        from worldmodel.train import unpack_views

        window = self._encode_frames(batch["forcing_pixels"])  # (B, C, V*T, h, w)
        view_ids = batch["view_ids"].to(self.device)
        actions = batch["forcing_actions"].to(self.device)
        inputs = self._history_inputs(batch.get("forcing_history_pixels"), batch.get("forcing_state"))
        B, V = view_ids.shape
        self.raw_net.eval()
        with self._autocast():
            if self.self_forcing.mode == "teacher_free":
                sigma = sample_training_sigma(B, window.shape[2] // V, self.noise, generator=self.generator)
                eps = torch.randn(window.shape, generator=self.generator).to(self.device)
                cond = Conditioning(latents=window, frame_mask=first_frames_mask(B, V, window.shape[2] // V,
                                                                                 device=self.device),
                                    action=actions, view_ids=view_ids, net_inputs=inputs)
                sig = sigma.to(self.device).reshape(-1)
                out = Denoiser(self.raw_net).x0(window + sig.reshape(-1, 1, 1, 1, 1) * eps, sig, cond)
            else:
                steps = int(torch.randint(self.self_forcing.min_steps, self.self_forcing.max_steps + 1, (),
                                          generator=self.generator))
                cfg = replace(SamplerConfig.preset("release"), num_steps=steps)
                seed = int(torch.randint(0, 2**31 - 1, (), generator=self.generator))
                out = sample(self.raw_net, window, actions, view_ids, seed=seed, sampler=cfg, net_inputs=inputs)
        self.raw_net.train()
        per_view = unpack_views(out.float(), V).flatten(0, 1)  # (B*V, C, T, h, w)
        video = frames_to_uint8(self.vae.decode(per_view))  # (B*V, 21, H, W, 3)
        return torch.from_numpy(video).reshape(B, V, *video.shape[1:])

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Self-forcing: replace the conditioning frame (and the history frames it stands for) by the
        online network's own prediction on some steps (`self_forcing`)."""
        gaps = batch["gap"]
        draw = float(torch.rand((), generator=self.generator))
        if not self.self_forcing.active(self.step, draw) or not bool((gaps > 0).any()):
            return batch
        generated = self._generate_forcing(batch)
        batch = dict(batch)
        B = gaps.shape[0]
        condition = generated[torch.arange(B), :, gaps.clamp(min=0)]  # (B, V, H, W, 3): window frame `gap`
        hist = batch.get("history_pixels")
        hist = None if hist is None else hist.clone()
        for b in range(B):
            g = int(gaps[b])
            if g and hist is not None:
                k = batch["history_nodes"][b] - batch["forcing_start"][b]  # window index of each slot's node
                for j in torch.nonzero((k >= 1) & (k <= g)).flatten().tolist():
                    hist[b, :, j] = generated[b, :, int(k[j])]
        active = gaps > 0
        if "pixels" in batch:
            pixels = batch["pixels"].clone()
            pixels[active, :, 0] = condition[active]
            batch["pixels"] = pixels
        else:  # cached clip latents: only the conditioning latent is re-encoded (latent 0 depends on frame 0 only)
            batch["condition_pixels"], batch["condition_active"] = condition, active
        if hist is not None:
            batch["history_pixels"] = hist
        self.forcing_steps += 1
        return batch

    def latents(self, batch: dict[str, Any]) -> torch.Tensor:
        """Clip latents; with a latent cache, self-forced conditioning latents are swapped in."""
        x0 = super().latents(batch)
        if "condition_pixels" not in batch:
            return x0
        V = batch["view_ids"].shape[1]
        T = x0.shape[2] // V
        z = self._encode_frames(batch["condition_pixels"][:, :, None])  # (B, C, V, h, w)
        active = batch["condition_active"].to(x0.device)
        x0 = x0.clone()
        x0[active.nonzero().flatten()[:, None], :, torch.arange(V, device=x0.device) * T] = \
            z[active].permute(0, 2, 1, 3, 4)
        return x0


def train_sim(cfg: dict[str, Any]) -> TrainResult:
    """Build a `SimTrainer` from a composed config and run it."""
    return SimTrainer(cfg).fit()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m worldmodel.train_sim key=value ...`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_train_config(list(sys.argv[1:] if argv is None else argv), name=TRAIN_SIM_CONFIG_NAME)
        result = train_sim(cfg)
    except (ConfigError, DataError, TrainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trained to step {result.step}: checkpoint {result.checkpoint}"
          + (f", eval loss {result.first_eval_loss:.4f} -> {result.last_eval_loss:.4f}"
             if result.first_eval_loss is not None and result.last_eval_loss is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
