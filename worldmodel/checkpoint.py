"""Checkpoint I/O for the A2World network.

- Official release files (`a2world-pretrained.pt`, `a2world-libero.pt`) load as they are:
  `torch.load(weights_only=True, mmap=True)`, keys `net.<name>`, all tensors bf16.
- Cosmos-Predict2-2B-Video2World checkpoints can initialise a fresh A2World network (`init_from_cosmos`).
- Our own checkpoints: `model.safetensors` with `config.yaml` beside it (network config + metadata).
Every mismatch is reported by name: missing keys, unexpected keys, wrongly shaped keys.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from worldmodel.configs import A2WorldNetConfig, known_net_configs, load_net_config
from worldmodel.network.a2world import A2WorldNet, build_net

OFFICIAL_PREFIXES = ("net.", "net_ema.")
TRAINING_METADATA = ("accum_video_sample_counter", "accum_image_sample_counter", "accum_iteration",
                     "accum_train_in_hours")
OWN_FORMAT = "a2world-ros/worldmodel-net"
OWN_FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.yaml"
DEFAULT_CONFIG_FOR_VARIANT = {"a2world": "a2world_2b", "a2world_sim": "a2world_sim_2b"}


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the network; the message names file and keys."""


Shape = tuple[int, ...]


@dataclass
class LoadReport:
    """Differences between a state dict and a network: missing, unexpected and wrongly shaped keys."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, Shape, Shape]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 12) -> str:
        def head(items: list[Any]) -> str:
            more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(str(i) for i in items[:limit]) + more

        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing keys: {head(self.missing)}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected keys: {head(self.unexpected)}")
        if self.mismatched:
            shown = [f"{k} (file {list(got)}, network {list(want)})" for k, want, got in self.mismatched]
            parts.append(f"{len(self.mismatched)} wrongly shaped keys: {head(shown)}")
        return "; ".join(parts) if parts else "state dict matches"


def compare_shapes(expected: Mapping[str, Shape], found: Mapping[str, Shape]) -> LoadReport:
    """Compare name->shape maps (expected = network, found = file)."""
    report = LoadReport(
        missing=[k for k in expected if k not in found],
        unexpected=[k for k in found if k not in expected],
    )
    report.mismatched = [(k, tuple(expected[k]), tuple(found[k])) for k in expected
                         if k in found and tuple(expected[k]) != tuple(found[k])]
    return report


def net_shapes(net: torch.nn.Module) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


# ------------------------------------------------------------------------------------ official files
def strip_official(state: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """Drop the `net.` (or `net_ema.`) prefix and training-only entries; reject non-tensor values."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: top level is {type(state).__name__}, expected a mapping of tensors")
    keys = list(state)
    prefix = next((p for p in OFFICIAL_PREFIXES if any(k.startswith(p) for k in keys)), "")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if prefix and not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name in TRAINING_METADATA or name.endswith("._extra_state"):
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {key!r} is {type(value).__name__}, expected a tensor")
        out[name] = value
    if not out:
        raise CheckpointError(f"{source}: no network tensors found (keys start with {keys[:3]})")
    return out


def read_official(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of an official `.pt` (memory-mapped, no unpickling of arbitrary objects), prefix stripped."""
    source = str(path)
    if not Path(path).is_file():
        raise CheckpointError(f"{source}: no such file")
    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-torch files
        raise CheckpointError(f"{source}: cannot load with torch.load(weights_only=True) ({exc})") from None
    return strip_official(state, source)


def detect_variant(keys: list[str] | Mapping[str, Any]) -> str:
    """`a2world_sim` when the history tokenizer is present (libero release), else `a2world`."""
    return "a2world_sim" if any(k.startswith("history_tokenizer.") for k in keys) else "a2world"


def load_state_dict_into(net: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str,
                         strict: bool = True, assign: bool | None = None) -> LoadReport:
    """Load `state` into `net`; with `strict`, any missing/unexpected/mis-shaped key raises naming them.

    On a meta-device network the tensors are assigned (no copy, mmap stays lazy); otherwise copied
    with dtype conversion.
    """
    report = compare_shapes(net_shapes(net), {k: tuple(v.shape) for k, v in state.items()})
    if strict and not report.ok:
        raise CheckpointError(f"{source}: does not fit the network: {report.describe()}")
    if report.mismatched:
        bad = {k for k, _, _ in report.mismatched}
        state = {k: v for k, v in state.items() if k not in bad}
    if assign is None:
        assign = any(p.is_meta for p in net.parameters())
    net.load_state_dict(dict(state), strict=False, assign=assign)
    return report


def load_official(path: str | os.PathLike[str], config: A2WorldNetConfig | str | None = None,
                  device: torch.device | str = "cpu", dtype: torch.dtype | None = torch.bfloat16,
                  strict: bool = True) -> tuple[A2WorldNet, LoadReport]:
    """Build the network for an official release file and load it (bf16 by default, like the release)."""
    state = read_official(path)
    variant = detect_variant(state)
    if config is None:
        if variant not in DEFAULT_CONFIG_FOR_VARIANT:
            raise CheckpointError(f"{path}: variant {variant!r} (libero / A2World-sim) has no network "
                                  "implementation yet")
        config = DEFAULT_CONFIG_FOR_VARIANT[variant]
    cfg = load_net_config(config) if isinstance(config, (str, os.PathLike)) else config
    net = build_net(cfg, device="meta")
    report = load_state_dict_into(net, state, str(path), strict=strict, assign=True)
    _materialise_missing(net)
    net = net.to(device=device, dtype=dtype) if dtype is not None else net.to(device=device)
    return net.eval(), report


def _materialise_missing(net: torch.nn.Module) -> None:
    """Give still-meta tensors (keys absent with strict=False) real storage and the release's init."""
    if any(p.is_meta for p in net.parameters()) or any(b.is_meta for b in net.buffers()):
        fresh = build_net(net.config, device="cpu")
        fresh_state = fresh.state_dict()
        missing = {k: fresh_state[k] for k, v in net.state_dict().items() if v.is_meta}
        net.load_state_dict(missing, strict=False, assign=True)


# ----------------------------------------------------------------------------- Cosmos-Predict2 init
def cosmos_to_a2world(cosmos: Mapping[str, torch.Tensor], net: A2WorldNet
                      ) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """Map a Cosmos-Predict2 Video2World state dict onto A2World names; returns (state, fresh, ignored).

    Blocks, timestep MLP, final layer and RoPE buffers carry over; the patch embedding gains the 7
    view-embedding input channels as zero columns (Cosmos: 18 channels x 4 = 72 inputs; A2World 100).
    Keys with no Cosmos counterpart (cross-view attention, action MLPs, view embeddings, black tokenizer)
    keep the network's own initialisation and are listed as fresh; Cosmos keys with no A2World
    counterpart are listed as ignored.
    """
    target = net.state_dict()
    src = strip_official(cosmos, "cosmos checkpoint")
    out: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in src.items():
        if key == "x_embedder.proj.1.weight":
            want = target["x_embedder_multiview.proj.1.weight"]
            if value.shape[0] != want.shape[0] or value.shape[1] > want.shape[1]:
                raise CheckpointError(f"cosmos x_embedder.proj.1.weight {list(value.shape)} cannot extend to "
                                      f"{list(want.shape)}")
            wide = torch.zeros(want.shape, dtype=value.dtype)
            wide[:, : value.shape[1]] = value
            out["x_embedder_multiview.proj.1.weight"] = wide
        elif key.startswith("pos_embedder."):
            for name in target:
                if name.startswith("pos_embedder_options.") and name.endswith(key[len("pos_embedder"):]):
                    out[name] = value
        elif key in target:
            out[key] = value
        else:
            ignored.append(key)
    fresh = [k for k in target if k not in out]
    return out, fresh, ignored


def init_from_cosmos(net: A2WorldNet, cosmos_path: str | os.PathLike[str]) -> tuple[LoadReport, list[str]]:
    """Initialise `net` in place from a Cosmos-Predict2-2B-Video2World `.pt`; returns (report, fresh keys).

    Wrongly shaped carried-over keys raise; keys only in A2World keep their initialisation (`fresh`);
    Cosmos keys without an A2World counterpart are listed in `report.unexpected`.
    """
    mapped, fresh, ignored = cosmos_to_a2world(read_official(cosmos_path), net)
    report = compare_shapes({k: v for k, v in net_shapes(net).items() if k in mapped},
                            {k: tuple(v.shape) for k, v in mapped.items()})
    report.unexpected = ignored
    if report.mismatched:
        raise CheckpointError(f"{cosmos_path}: {report.describe()}")
    net.load_state_dict(mapped, strict=False)
    return report, fresh


# ----------------------------------------------------------------------------------- own checkpoints
def save_checkpoint(directory: str | os.PathLike[str], net: A2WorldNet,
                    metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `model.safetensors` and `config.yaml` into `directory`; returns the weights path."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    dtypes = Counter(str(v.dtype).removeprefix("torch.") for v in tensors.values())
    save_file(tensors, str(out / WEIGHTS_NAME), metadata={"format": OWN_FORMAT})
    info = {
        "format": OWN_FORMAT,
        "format_version": OWN_FORMAT_VERSION,
        "weights": WEIGHTS_NAME,
        "dtype": dtypes.most_common(1)[0][0],
        "net": net.config.to_dict(),
        "metadata": dict(metadata or {}),
    }
    (out / CONFIG_NAME).write_text(yaml.safe_dump(info, sort_keys=False))
    return out / WEIGHTS_NAME


def _own_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    weights = p / WEIGHTS_NAME if p.is_dir() else p
    config = weights.parent / CONFIG_NAME
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no such file")
    if not config.is_file():
        raise CheckpointError(f"{config}: missing (our checkpoints keep the network config beside the weights)")
    return weights, config


def read_own_config(path: str | os.PathLike[str]) -> tuple[A2WorldNetConfig, dict[str, Any]]:
    _, config_path = _own_paths(path)
    info = yaml.safe_load(config_path.read_text())
    if not isinstance(info, dict) or info.get("format") != OWN_FORMAT:
        raise CheckpointError(f"{config_path}: 'format' is not {OWN_FORMAT!r}")
    if not isinstance(info.get("net"), dict):
        raise CheckpointError(f"{config_path}: missing mapping 'net'")
    return A2WorldNetConfig.from_dict(info["net"], source=f"{config_path}:net"), info


def load_checkpoint(path: str | os.PathLike[str], device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None) -> tuple[A2WorldNet, dict[str, Any]]:
    """Load one of our checkpoints (directory or `model.safetensors`); returns (network, config.yaml info)."""
    from safetensors.torch import load_file

    weights, _ = _own_paths(path)
    cfg, info = read_own_config(path)
    state = load_file(str(weights), device="cpu")
    net = build_net(cfg, device="meta")
    load_state_dict_into(net, state, str(weights), strict=True, assign=True)
    net = net.to(device=device, dtype=dtype) if dtype is not None else net.to(device=device)
    return net, info


# ------------------------------------------------------------------------------------------ inspect
@dataclass
class InspectReport:
    """Summary of a checkpoint file for `a2world worldmodel inspect`."""

    path: str
    format: str
    variant: str
    n_keys: int
    dtypes: dict[str, int]
    n_parameters: int
    n_buffer_elements: int
    matches: list[str]
    closest: str | None = None
    closest_diff: str | None = None


_SAFETENSORS_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
                       "I64": "int64", "I32": "int32", "BOOL": "bool"}


def _file_shapes(path: Path) -> tuple[str, dict[str, Shape], dict[str, str]]:
    if path.is_dir() or path.suffix == ".safetensors":
        from safetensors import safe_open

        weights = path / WEIGHTS_NAME if path.is_dir() else path
        if not weights.is_file():
            raise CheckpointError(f"{weights}: no such file")
        shapes, dtypes = {}, {}
        with safe_open(str(weights), framework="pt") as f:
            for k in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                sl = f.get_slice(k)
                shapes[k] = tuple(sl.get_shape())
                code = sl.get_dtype()
                dtypes[k] = _SAFETENSORS_DTYPES.get(code, code.lower())
        ours = (weights.parent / CONFIG_NAME).is_file()
        return ("safetensors (a2world-ros, config.yaml beside it)" if ours else "safetensors"), shapes, dtypes
    state = read_official(path)
    return ("torch .pt (official layout)", {k: tuple(v.shape) for k, v in state.items()},
            {k: str(v.dtype).removeprefix("torch.") for k, v in state.items()})


def inspect_checkpoint(path: str | os.PathLike[str]) -> InspectReport:
    """Read names, shapes and dtypes (no tensor data for safetensors; mmap for .pt) and match known configs."""
    p = Path(path)
    fmt, shapes, dtypes = _file_shapes(p)
    variant = detect_variant(shapes)
    matches: list[str] = []
    best: tuple[int, str, LoadReport] | None = None
    buffers: set[str] = set()
    for name, cfg in known_net_configs().items():
        if cfg.variant != variant:
            continue
        net = build_net(cfg, device="meta")
        report = compare_shapes(net_shapes(net), shapes)
        if report.ok:
            matches.append(name)
            buffers = {k for k, _ in net.named_buffers()}
        size = len(report.missing) + len(report.unexpected) + len(report.mismatched)
        if best is None or size < best[0]:
            best = (size, name, report)
    if not matches:
        buffers = {k for k in shapes if k.startswith("pos_embedder")}

    def numel(s: Shape) -> int:
        n = 1
        for d in s:
            n *= d
        return n

    report = InspectReport(
        path=str(p), format=fmt, variant=variant, n_keys=len(shapes),
        dtypes=dict(Counter(dtypes.values())),
        n_parameters=sum(numel(s) for k, s in shapes.items() if k not in buffers),
        n_buffer_elements=sum(numel(s) for k, s in shapes.items() if k in buffers),
        matches=matches,
    )
    if not matches and best is not None:
        report.closest, report.closest_diff = best[1], best[2].describe(limit=5)
    return report
