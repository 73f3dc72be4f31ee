"""Action-conditioned video prediction with a trained (or released) A2World network.

`WorldModelPredictor.from_checkpoint(path)` loads one of our training checkpoints (network, VAE, action
statistics, resolution from its config.yaml) or an official `.pt` (with the Wan2.1 VAE weights given).
`predict(images, actions)` takes one RGB image per view and a 20-step action chunk (model actions (20, 14),
or absolute poses converted with `worldmodel.actions`) and returns the predicted frames per view, as the
release's rollout does: each view's conditioning latent is the VAE latent of its image (frame 0 of the clip),
the sampler generates the other latent frames, decoded frames are truncated to uint8.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, MODEL_ACTION_DIM, VIEW_IDS
from worldmodel.actions import ActionError, ActionStats, command_chunk_to_actions

LOG = logging.getLogger(__name__)
ViewKey = str | int


class PredictError(ValueError):
    """Bad prediction input or checkpoint; the message names the argument/file, what was found and expected."""


class UntrainedVAEWarning(UserWarning):
    """The VAE decoding the predictions was never trained: every decoded frame will be colour noise."""


def untrained_vae_message(weights: str | os.PathLike[str]) -> str | None:
    """Why the VAE weights file cannot be trusted to decode images, or None if it is a trained VAE."""
    from worldmodel.vae.checkpoint import is_trained, training_record

    if is_trained(weights):
        return None
    said = "is a randomly initialised VAE" if training_record(weights) is not None else \
        "carries no training record (a randomly initialised VAE saved by an older trainer?)"
    return (f"the VAE {weights} {said}: every decoded frame, frame 0 (the observation) included, will be colour "
            "noise. Train one with `a2world worldmodel train-vae` and train the world model with "
            "`vae=embedded vae_weights=<run>/vae.safetensors`, or pass a trained VAE with --vae")


def frames_to_uint8(video: torch.Tensor) -> NDArray[np.uint8]:
    """(N, 3, T, H, W) in [-1, 1] -> uint8 (N, T, H, W, 3), truncating like the release ((x + 1) * 127.5)."""
    x = ((video.float() + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def resize_image(image: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """RGB uint8 (H, W, 3) -> (h, w, 3) with cv2 INTER_AREA (the release's rollout resize)."""
    import cv2

    h, w = size
    return image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


class WorldModelPredictor:
    """Observation (one image per view) + action chunk in, predicted frames per view out."""

    def __init__(self, net: torch.nn.Module, vae: torch.nn.Module, resolution: tuple[int, int] = (256, 256),
                 stats: Mapping[str, ActionStats] | None = None, view_ids: Mapping[str, int] | None = None,
                 fps: float = 10.0, clip_frames: int = 21, sampler: str = "release",
                 task_stats: Mapping[str, str] | None = None) -> None:
        self.net, self.vae = net.eval(), vae.eval()
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.stats = dict(stats or {"identity": ActionStats.identity()})
        self.task_stats = dict(task_stats or {})
        """task instruction -> name of the statistics of the training dataset that recorded it"""
        if unknown := sorted(set(self.task_stats.values()) - set(self.stats)):
            raise PredictError(f"task_stats name statistics {unknown} the model does not have ({sorted(self.stats)})")
        self.view_ids = dict(view_ids or VIEW_IDS)
        self.fps, self.clip_frames, self.sampler = float(fps), int(clip_frames), sampler
        self.action_steps = int(net.config.action_steps)
        self.vae_warning: str | None = None

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None, vae_weights: str | os.PathLike[str] | None = None,
                        sampler: str = "release", net_config: Any = None,
                        vae_config: Any = "wan2.1") -> WorldModelPredictor:
        """Load our checkpoint folder (or its model.safetensors), or an official `.pt` (then `vae_weights`,
        the Wan2.1 VAE file, is required; actions are used unnormalised at 256x256 as released).

        `net_config` / `vae_config` (name, path or config object) only apply to official files; defaults are
        the released 2B network and the Wan2.1 VAE."""
        from worldmodel.checkpoint import CheckpointError, load_checkpoint, load_official
        from worldmodel.vae import WanVAE

        p = Path(path).expanduser()
        if not p.exists():
            raise PredictError(f"{p}: no such checkpoint")
        try:
            if p.is_dir() or p.suffix == ".safetensors":
                net, info = load_checkpoint(p, device=device, dtype=dtype)
                return cls._from_own(net, info, p if p.is_dir() else p.parent, device, vae_weights, sampler)
            net, _ = load_official(p, config=net_config, device=device, dtype=dtype or torch.float32)
        except CheckpointError as exc:
            raise PredictError(str(exc)) from None
        if vae_weights is None:
            raise PredictError(f"{p}: an official checkpoint needs the Wan2.1 VAE weights (vae_weights / --vae)")
        vae = WanVAE.from_checkpoint(Path(vae_weights).expanduser(), config=vae_config, device=device)
        return cls(net, vae, (256, 256), None, VIEW_IDS, 10.0, 21, sampler)._check_vae(Path(vae_weights).expanduser())

    def _check_vae(self, weights: Path) -> WorldModelPredictor:
        """Warn loudly (log + UntrainedVAEWarning; `vae_warning` keeps the text) if the VAE is untrained."""
        import warnings

        self.vae_warning = untrained_vae_message(weights)
        if self.vae_warning:
            LOG.warning("UNTRAINED VAE: %s", self.vae_warning)
            warnings.warn(self.vae_warning, UntrainedVAEWarning, stacklevel=3)
        return self

    @classmethod
    def _from_own(cls, net: torch.nn.Module, info: dict[str, Any], folder: Path, device: str | torch.device,
                  vae_weights: str | os.PathLike[str] | None, sampler: str) -> WorldModelPredictor:
        from worldmodel.vae import WanVAE, WanVAEConfig

        meta = (info.get("metadata") or {}).get("training")
        if not isinstance(meta, dict):
            raise PredictError(f"{folder}/config.yaml: no metadata.training section (not a training checkpoint); "
                               "build WorldModelPredictor(net, vae, ...) directly")
        vae_cfg = WanVAEConfig.from_dict(dict(meta["vae"]["config"]), source=f"{folder}/config.yaml:vae")
        weights = Path(vae_weights).expanduser() if vae_weights else Path(meta["vae"]["weights"])
        weights = weights if weights.is_absolute() else folder / weights
        if not weights.is_file():
            raise PredictError(f"{folder}: VAE weights {weights} not found (pass vae_weights / --vae)")
        vae = WanVAE.from_checkpoint(weights, config=vae_cfg, device=device)
        stats = {d["name"]: ActionStats.load(folder / d["stats"]) for d in meta["datasets"]}
        task_stats = {task: d["name"] for d in meta["datasets"] for task in d.get("tasks") or []}
        return cls(net, vae, tuple(meta["resolution"]), stats, meta.get("view_ids"), float(meta.get("fps", 10.0)),
                   int(meta.get("clip_frames", 21)), sampler, task_stats)._check_vae(weights)

    @property
    def device(self) -> torch.device:
        return self.net.device

    # ------------------------------------------------------------------------------------------- inputs
    def view_id(self, key: ViewKey) -> int:
        """Model view id of a view given by camera name (`front`) or id (0-3)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            vid = int(key)
        elif isinstance(key, str) and key in self.view_ids:
            vid = int(self.view_ids[key])
        elif isinstance(key, str) and key.isdigit():
            vid = int(key)
        else:
            raise PredictError(f"images: view {key!r} is neither a camera name {sorted(self.view_ids)} nor an id")
        if not 0 <= vid < self.net.config.max_views:
            raise PredictError(f"images: view {key!r} has id {vid}, expected 0..{self.net.config.max_views - 1}")
        return vid

    def model_actions(self, actions: ArrayLike, current: ArrayLike | None = None, stats: str | None = None,
                      steps: int | None = None) -> NDArray[np.float32]:
        """Normalised model actions (steps, 14) from model actions (steps, 14), an absolute command sequence
        (steps + 1, 2, 8) whose row 0 is the current state, or a chunk (steps, 2, 8) plus `current` (2, 8)."""
        n = self.action_steps if steps is None else steps
        a = np.asarray(actions, dtype=np.float64)
        arms = (len(ARM_NAMES), COMMAND_DIM)
        try:
            if a.shape == (n, MODEL_ACTION_DIM):
                model = a
            elif a.shape == (n + 1, *arms):
                model = command_chunk_to_actions(a[0], a[1:])
            elif a.shape == (n, *arms):
                if current is None:
                    raise PredictError(f"actions: shape {a.shape} is an absolute chunk; pass current=(2, 8) state")
                model = command_chunk_to_actions(current, a)
            else:
                raise PredictError(f"actions: shape {a.shape}, expected ({n}, {MODEL_ACTION_DIM}) model actions, "
                                   f"({n + 1}, 2, 8) absolute poses+gripper starting at the current state, or "
                                   f"({n}, 2, 8) with current=")
        except ActionError as exc:
            raise PredictError(f"actions: {exc}") from None
        if not np.isfinite(model).all():
            raise PredictError("actions: contain non-finite values")
        return self.action_stats(stats).normalize(model).astype(np.float32)

    def stats_for_task(self, task: str | None) -> str | None:
        """The statistics a clip of `task` was normalised with in training (a model trained on one dataset per
        task normalises each task's actions by its own dataset); None (the first dataset's) when unknown."""
        return self.task_stats.get(task) if task is not None else None

    def action_stats(self, name: str | None) -> ActionStats:
        if name is None:
            return next(iter(self.stats.values()))
        if name not in self.stats:
            raise PredictError(f"stats {name!r}: checkpoint has action statistics for {sorted(self.stats)}")
        return self.stats[name]

    def _images(self, images: Mapping[ViewKey, ArrayLike]) -> tuple[list[ViewKey], list[int], torch.Tensor]:
        if not images:
            raise PredictError("images: empty; give one RGB image per view")
        keys = list(images)
        ids = [self.view_id(k) for k in keys]
        if len(set(ids)) != len(ids):
            raise PredictError(f"images: views {keys} map to repeated ids {ids}")
        if len(ids) > self.net.config.max_views:
            raise PredictError(f"images: {len(ids)} views, the network takes at most {self.net.config.max_views}")
        frames = []
        for k in keys:
            img = np.asarray(images[k])
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise PredictError(f"images[{k!r}]: {img.dtype} {img.shape}, expected uint8 (H, W, 3) RGB")
            frames.append(resize_image(img, self.resolution))
        return keys, ids, torch.from_numpy(np.stack(frames))

    # -------------------------------------------------------------------------------------------- model
    def _chunked(self) -> bool:
        return self.vae._param.device.type == "cuda"

    @torch.no_grad()
    def encode_condition(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (V, H, W, 3) first frames -> packed latents (1, C, V*n, h, w) with the image latent in frame 0.

        The release encodes image + 20 black frames and keeps only latent 0 (the sampler ignores the rest);
        the VAE is causal, so encoding the image alone gives that latent exactly, 21x cheaper. Latent
        frames 1..n-1 are zeros.
        """
        V = frames.shape[0]
        image = frames.permute(0, 3, 1, 2).float()[:, :, None] / 127.5 - 1.0  # (V, 3, 1, H, W)
        z0 = self.vae.encode(image.to(self.vae._param.device), chunked=False)  # (V, C, 1, h, w)
        n = 1 + (self.clip_frames - 1) // self.vae.config.temporal_factor
        z = torch.zeros(V, z0.shape[1], n, *z0.shape[3:], device=z0.device)
        z[:, :, :1] = z0
        return z.permute(1, 0, 2, 3, 4).reshape(1, z.shape[1], V * n, *z.shape[3:])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, n_views: int) -> NDArray[np.uint8]:
        """Packed latents (1, C, V*n, h, w) -> uint8 frames (V, T, H, W, 3)."""
        C, VT = latents.shape[1], latents.shape[2]
        per_view = latents[0].reshape(C, n_views, VT // n_views, *latents.shape[3:]).permute(1, 0, 2, 3, 4)
        return frames_to_uint8(self.vae.decode(per_view.to(self.vae._param.device), chunked=self._chunked()))

    def predict(self, images: Mapping[ViewKey, ArrayLike], actions: ArrayLike, *, steps: int | None = None,
                seed: int = 0, current: ArrayLike | None = None, stats: str | None = None,
                guidance: float = 0.0, include_condition: bool = True) -> dict[ViewKey, NDArray[np.uint8]]:
        """Predict one chunk. images: {camera name or view id: uint8 (H, W, 3)}; actions: see `model_actions`.

        Returns {same key: uint8 (T, h, w, 3)} at the model resolution, T = 21 (frame 0 is the decoded
        observation) or 20 with `include_condition=False`. `steps` overrides the sampler's step count
        (release: 35); `seed` seeds the initial noise (release: numpy RandomState).
        """
        from worldmodel.diffusion import SamplerConfig, sample

        keys, ids, frames = self._images(images)
        act = torch.from_numpy(self.model_actions(actions, current, stats))[None]
        cfg = SamplerConfig.preset(self.sampler)
        if steps is not None:
            if steps < 1:
                raise PredictError(f"steps={steps}: expected a positive number of sampler steps")
            cfg = replace(cfg, num_steps=int(steps))
        cond = self.encode_condition(frames)
        view_ids = torch.tensor([ids], dtype=torch.long)
        out = sample(self.net, cond, act, view_ids, seed=seed, sampler=cfg, guidance=guidance, fps=self.fps)
        video = self.decode(out, len(ids))
        first = 0 if include_condition else 1
        return {k: video[v, first:] for v, k in enumerate(keys)}

    def rollout(self, images: Mapping[ViewKey, ArrayLike], actions: ArrayLike, *, steps: int | None = None,
                seed: int = 0, stats: str | None = None) -> dict[ViewKey, NDArray[np.uint8]]:
        """Autoregressive prediction over model actions (20k, 14): chunk i starts from the last frame of
        chunk i - 1 (pixel space, re-encoded) and uses seed + i, as the release does.
        Returns {key: uint8 (1 + 20k, h, w, 3)}."""
        a = np.asarray(actions)
        n = self.action_steps
        if a.ndim != 2 or a.shape[1] != MODEL_ACTION_DIM or a.shape[0] < n:
            raise PredictError(f"actions: shape {a.shape}, expected (T, {MODEL_ACTION_DIM}) with T >= {n}")
        current = dict(images)
        out: dict[ViewKey, list[NDArray[np.uint8]]] = {k: [] for k in current}
        for i in range(a.shape[0] // n):
            chunk = self.predict(current, a[i * n:(i + 1) * n], steps=steps, seed=seed + i, stats=stats,
                                 include_condition=i == 0)
            for k, frames in chunk.items():
                out[k].append(frames)
                current[k] = frames[-1]
        return {k: np.concatenate(v) for k, v in out.items()}


def write_side_by_side(path: str | os.PathLike[str], views: Sequence[NDArray[np.uint8]], fps: float = 10.0) -> Path:
    """Write views (each uint8 (T, H, W, 3), equal T and H) next to each other as an H.264 mp4 (PyAV)."""
    from rig.dataformats.video import VideoEncoder, VideoSettings

    if not views:
        raise PredictError("no views to write")
    lengths = {v.shape[0] for v in views}
    heights = {v.shape[1] for v in views}
    if len(lengths) != 1 or len(heights) != 1:
        raise PredictError(f"views differ in frame count {sorted(lengths)} or height {sorted(heights)}")
    strip = np.concatenate(list(views), axis=2)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    enc = VideoEncoder(out, strip.shape[2], strip.shape[1], round(fps), VideoSettings(crf=18))
    try:
        for frame in strip:
            enc.encode(frame)
    finally:
        enc.close()
    return out
