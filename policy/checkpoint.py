"""Policy checkpoints: a directory with `model.safetensors` (network `net.*`, trained instruction encoder
`text.*`, and the VAE `vae.*` when it has no weights file of its own) and `policy.yaml` (the full config,
the normalisation statistics, the step, the model hash). Training state for resuming sits beside it in
`train_state.pt` (optimizer, EMA, step; loaded with `weights_only=True`). Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from policy.action_repr import Normalizer
from policy.config import PolicyConfig, VaeSection
from policy.model import PolicyNet, build_policy_net
from policy.text import ByteTextEncoder

WEIGHTS = "model.safetensors"
META = "policy.yaml"
TRAIN_STATE = "train_state.pt"
FORMAT = "a2world-ros/policy"


class PolicyCheckpointError(ValueError):
    """A policy checkpoint is missing or does not fit its config; the message names file and keys."""


def build_text_encoder(config: PolicyConfig) -> ByteTextEncoder | None:
    """Our trained byte-level encoder for `text.kind: trained`, else None (T5 is loaded at inference)."""
    t = config.text
    if t.kind != "trained":
        return None
    return ByteTextEncoder(t.width, t.layers, t.heads, t.max_tokens, config.net.crossattn_emb_channels)


def embeds_vae(section: VaeSection) -> bool:
    """Does the policy file hold its VAE's weights? Yes, except for the full Wan2.1 VAE (508 MB, shared by
    every full-size model and referenced by path): a small trained VAE travels with the policy, so a
    checkpoint folder runs wherever it is copied."""
    return not section.checkpoint or section.config != "wan2.1"


def build_vae(section: VaeSection, state: dict[str, torch.Tensor] | None = None) -> Any:
    """The frozen Wan2.1 VAE: from its weights file, from `state`, or seeded random init (tiny configs)."""
    from worldmodel.vae.model import WanVAE

    if section.checkpoint and not state:
        config = "wan2.1" if section.config == "wan2.1" else "auto"  # our safetensors carry their architecture
        return WanVAE.from_checkpoint(section.checkpoint, config=config).eval().requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(section.seed)
        vae = WanVAE.from_config(section.config)
    if state:
        from worldmodel.vae.checkpoint import STATS_KEYS

        state = dict(state)
        fitted = [state.pop(k) for k in STATS_KEYS if k in state]
        vae.load_state_dict(state)
        if fitted:
            vae.set_latent_stats(*fitted)
    return vae.eval().requires_grad_(False)


@dataclass
class LoadedPolicy:
    """Everything a checkpoint holds, ready to run."""

    config: PolicyConfig
    normalizer: Normalizer
    net: PolicyNet
    text: ByteTextEncoder | None
    vae: Any
    meta: dict[str, Any] = field(default_factory=dict)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def save_policy(directory: str | os.PathLike[str], config: PolicyConfig, normalizer: Normalizer,
                net: PolicyNet, text: ByteTextEncoder | None, vae: Any, extra: dict[str, Any] | None = None) -> Path:
    """Write weights then metadata (atomic renames); returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if text is not None:
        tensors.update({f"text.{k}": v.detach().cpu().contiguous() for k, v in text.state_dict().items()})
    if embeds_vae(config.vae):
        tensors.update({f"vae.{k}": v.detach().cpu().contiguous() for k, v in vae.state_dict().items()})
        if vae.config.latent_stats == "data":  # fitted statistics are buffers outside the state dict
            tensors.update({"vae.latent_mean": vae.latent_mean.detach().cpu().contiguous(),
                            "vae.latent_std": vae.latent_std.detach().cpu().contiguous()})
    tmp = out / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, out / WEIGHTS)
    meta = {"format": FORMAT, "config": config.to_dict(), "normalizer": normalizer.to_dict(),
            "model_hash": file_hash(out / WEIGHTS), **(extra or {})}
    tmp_meta = out / (META + ".tmp")
    tmp_meta.write_text(yaml.safe_dump(meta, sort_keys=False))
    os.replace(tmp_meta, out / META)
    return out


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / META
    if not path.is_file():
        raise PolicyCheckpointError(f"{directory}: no {META} (not a policy checkpoint directory)")
    try:
        meta = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise PolicyCheckpointError(f"{path}: malformed YAML{line} ({getattr(exc, 'problem', exc)}); the "
                                    "checkpoint's metadata is damaged, re-save or re-train it") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PolicyCheckpointError(f"{path}: format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                                    f"expected {FORMAT!r}")
    return meta


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PolicyCheckpointError(f"{path}: missing (the checkpoint has no weights)")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError (truncated, bad header)
        raise PolicyCheckpointError(f"{path}: not a readable safetensors file ({exc}; {path.stat().st_size} "
                                    "bytes): truncated or damaged, copy it again") from None


def load_policy(directory: str | os.PathLike[str], device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> LoadedPolicy:
    """Load a checkpoint directory written by `save_policy` (strict: every key must fit)."""
    root = Path(directory)
    meta = read_meta(root)
    config = PolicyConfig.from_dict(meta["config"], source=str(root / META))
    normalizer = Normalizer.from_dict(meta["normalizer"])
    tensors = _load_weights(root / WEIGHTS)
    groups: dict[str, dict[str, torch.Tensor]] = {"net": {}, "text": {}, "vae": {}}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head not in groups:
            raise PolicyCheckpointError(f"{root / WEIGHTS}: unexpected key {key!r}")
        groups[head][rest] = value
    net = build_policy_net(config)
    result = net.load_state_dict(groups["net"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise PolicyCheckpointError(f"{root / WEIGHTS}: network keys do not fit the config: missing "
                                    f"{result.missing_keys[:8]}, unexpected {result.unexpected_keys[:8]}")
    text = build_text_encoder(config)
    if text is not None:
        text.load_state_dict(groups["text"])
        text = text.to(device).eval()
    vae = build_vae(config.vae, groups["vae"] or None).to(device)
    return LoadedPolicy(config, normalizer, net.to(device=device, dtype=dtype).eval(), text, vae, meta)
