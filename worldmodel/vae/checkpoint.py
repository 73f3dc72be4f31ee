"""Loading and saving VAE weights: the public `Wan2.1_VAE.pth` as it is, and our safetensors files.

Nothing is unpickled: `.pth` files go through `torch.load(weights_only=True, mmap=True)`. A state dict
that does not match the model raises `VAECheckpointError` naming the missing, unexpected and wrongly
shaped keys. Weights we trained (`latent_stats: data`) carry their fitted latent statistics as two extra
tensors (`latent_mean`, `latent_std`) and a training record (metadata `vae_training`: steps, held-out
PSNR); a file without that record is not known to be trained (`training_record`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from worldmodel.vae.config import WanVAEConfig, load_vae_config
from worldmodel.vae.latent_stats import FITTED
from worldmodel.vae.model import WanVAE

SAFETENSORS_SUFFIX = ".safetensors"
CONFIG_METADATA_KEY = "wan_vae_config"
TRAINING_METADATA_KEY = "vae_training"
STATS_KEYS = ("latent_mean", "latent_std")
_SHOWN = 8  # keys listed per category in an error message


class VAECheckpointError(ValueError):
    """A checkpoint file is unreadable or its state dict does not match the VAE architecture."""


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
    # legacy (non-zip) files cannot be memory-mapped; read them into memory
    return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` file or a torch zip/legacy file, on CPU, without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise VAECheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        data = _torch_load(path)
    except Exception as exc:
        raise VAECheckpointError(f"{path}: cannot read as a torch checkpoint ({exc})") from None
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise VAECheckpointError(f"{path}: expected a mapping of parameter names to tensors")
    return dict(data)


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise VAECheckpointError listing missing / unexpected / wrongly shaped keys, if any."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(found) if tuple(found[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or shapes):
        return

    def listing(name: str, items: list[str]) -> str:
        more = f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
        return f"{len(items)} {name} [{', '.join(items[:_SHOWN])}{more}]"

    parts = [listing(n, i) for n, i in (("missing", missing), ("unexpected", unexpected),
                                        ("wrongly shaped", shapes)) if i]
    raise VAECheckpointError(f"{where}: state dict does not match the VAE ({len(expected)} tensors expected): "
                             + "; ".join(parts))


def _file_metadata(path: Path) -> dict[str, str]:
    """The string metadata of one of our safetensors files ({} for other files)."""
    if path.suffix != SAFETENSORS_SUFFIX or not path.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _file_config(path: Path) -> WanVAEConfig | None:
    """The architecture stored in one of our safetensors files, if any."""
    meta = _file_metadata(path).get(CONFIG_METADATA_KEY)
    return None if meta is None else WanVAEConfig.from_dict(json.loads(meta), source=f"{path} metadata")


def training_record(path: str | os.PathLike[str]) -> dict | None:
    """The training record stored with VAE weights we trained, or None.

    A `.pth` file (the public release) is trained by definition and reported as `{"source": "release"}`;
    our safetensors files carry the record written by `worldmodel.vae.train`, or `{"trained": False}`
    when a trainer saved a randomly initialised VAE; None means the file says nothing either way.
    """
    p = Path(path)
    if p.suffix != SAFETENSORS_SUFFIX:
        return {"source": "release"}
    raw = _file_metadata(p).get(TRAINING_METADATA_KEY)
    return None if raw is None else json.loads(raw)


def is_trained(path: str | os.PathLike[str]) -> bool:
    """True unless the weights file is known (or not known) to hold a randomly initialised VAE."""
    record = training_record(path)
    return record is not None and record.get("trained", True) is not False


def _resolve_config(config: WanVAEConfig | str | os.PathLike[str], path: Path) -> WanVAEConfig:
    if isinstance(config, WanVAEConfig):
        return config
    if str(config) == "auto":
        return _file_config(path) or load_vae_config("wan2.1")
    return load_vae_config(config)


def load_vae(path: str | os.PathLike[str], dtype: torch.dtype = torch.float32,
             config: WanVAEConfig | str | os.PathLike[str] = "wan2.1",
             device: str | torch.device = "cpu") -> WanVAE:
    """Build a `WanVAE` from `config` (a config, a config name/path, or `auto` = the file's own metadata
    for our safetensors, else `wan2.1`) and load the weights from `path`, cast to `dtype`, on `device`.

    The model is built on the meta device and takes the loaded tensors over (`assign=True`), so no random
    initialisation is computed and a memory-mapped fp32 file on CPU is not copied.
    """
    path = Path(path)
    cfg = _resolve_config(config, path)
    with torch.device("meta"):
        model = WanVAE(cfg)
    state = read_state_dict(path)
    fitted = {k: state.pop(k) for k in STATS_KEYS if k in state}
    if cfg.latent_stats == FITTED and len(fitted) != len(STATS_KEYS):
        raise VAECheckpointError(f"{path}: config says latent_stats 'data' but the file holds no fitted latent "
                                 f"statistics ({', '.join(STATS_KEYS)}); train it with `a2world worldmodel train-vae`")
    if fitted and cfg.latent_stats != FITTED:
        raise VAECheckpointError(f"{path}: the file holds fitted latent statistics but the config says "
                                 f"latent_stats {cfg.latent_stats!r}; load it with config='auto' "
                                 "(or a config with latent_stats: data)")
    try:
        check_state_dict(model.state_dict(), state, str(path))
    except VAECheckpointError as exc:
        saved = _file_config(path)
        if saved is not None and saved != cfg:
            raise VAECheckpointError(f"{exc}. The file was saved with config {saved.to_dict()}; "
                                     "load it with config='auto'") from None
        raise
    state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.reset_latent_stats()
    if fitted and cfg.latent_stats == FITTED:
        model.set_latent_stats(fitted["latent_mean"], fitted["latent_std"])
    return model.to(device).eval()


def save_vae(model: WanVAE, path: str | os.PathLike[str], training: Mapping | None = None) -> Path:
    """Save the weights: safetensors (with the config as metadata) for `*.safetensors`, else `torch.save`.

    `training` (safetensors only) is the training record (`training_record`); fitted latent statistics
    (`latent_stats: data`) are saved as the tensors `latent_mean`, `latent_std`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import save_file

        if model.config.latent_stats == FITTED:
            state["latent_mean"] = model.latent_mean.detach().float().cpu().contiguous()
            state["latent_std"] = model.latent_std.detach().float().cpu().contiguous()
        metadata = {CONFIG_METADATA_KEY: json.dumps(model.config.to_dict())}
        if training is not None:
            metadata[TRAINING_METADATA_KEY] = json.dumps(dict(training))
        save_file(state, str(tmp), metadata=metadata)
    else:
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path
