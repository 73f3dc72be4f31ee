"""Training of the (tiny, embedded) Wan-layout VAE on frames of our recordings (`a2world worldmodel train-vae`).

Configuration is Hydra (`config/worldmodel/train_vae.yaml` plus overrides; the architecture is the `vae`
group, `config/worldmodel/vae/*.yaml`). The model is the one `worldmodel.vae.WanVAE` (causal 3D, 1 + 4k
frames); a training step runs the one-shot path (`chunked=False`, numerically the chunked one) on clips of
`data.clip_frames` frames at the world model's 10 fps, through the encoder mean (no sampling: the world
model and the policy use the mean too).

Loss: L1 on pixels plus `loss.edge_weight` times L1 on the horizontal and vertical pixel differences (a
gradient-difference term), plus `loss.mse_weight` times the pixel MSE. L1 alone is content with a slightly
blurred small object (a 4-pixel cube moves L1 little); the gradient term charges every blurred edge
directly, costs two subtractions per pixel and needs no pretrained network (LPIPS/VGG weights are neither
available offline nor cheap on CPU). The MSE term is there because L1's constant-size gradient left the
randomly initialised VAE stuck at the flat median image (L1 0.47 for 150+ steps on twin frames); the
error-proportional MSE gradient leaves that plateau within ~30 steps, and it is what PSNR measures.

After the last step the per-channel latent mean/std are measured on training clips and stored in the
weights file (`latent_stats: data`), together with a training record (steps, held-out PSNR/SSIM).

Run directory:
    config.yaml                  resolved config
    metrics.jsonl                one JSON object per log/eval event
    vae.safetensors              final weights + fitted latent statistics + training record
    report.json                  held-out PSNR / SSIM per camera and overall, latent statistics, timing
    checkpoints/latest.txt       newest complete checkpoint; checkpoints/step_N/ (vae.safetensors,
                                 optimizer.pt, trainer.json, rng.pt) for `trainer.resume`
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rig.config import ConfigError
from worldmodel.data.clips import DataError
from worldmodel.data.source import RecordingSource
from worldmodel.vae.config import WanVAEConfig
from worldmodel.vae.frames import FrameClips, load_videos
from worldmodel.vae.model import WanVAE

LOG = logging.getLogger(__name__)
CONFIG_NAME = "train_vae"
WEIGHTS = "vae.safetensors"
REPORT = "report.json"
CHECKPOINT_PREFIX = "step_"
LATEST = "latest.txt"


class VAETrainError(RuntimeError):
    """VAE training cannot start or continue; the message names the key, file or value at fault."""


# ------------------------------------------------------------------------------------------------ config
def load_config(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose `config/worldmodel/train_vae.yaml` with Hydra overrides into a plain, resolved dict."""
    from worldmodel.train import load_train_config

    return load_train_config(overrides, name=CONFIG_NAME)


def _size(value: Any, key: str, allow_null: bool = False) -> tuple[int, int] | None:
    if value is None and allow_null:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 and v > 0 and v % 8 == 0 for v in value)):
        raise ConfigError(f"{key}={value!r}: expected [height, width], positive multiples of 8"
                          + (", or null" if allow_null else ""))
    return int(value[0]), int(value[1])


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check every key the trainer reads before anything is loaded; errors name key, value and expectation."""
    for section in ("data", "loss", "optim", "trainer", "vae"):
        if not isinstance(cfg.get(section), Mapping):
            raise ConfigError(f"VAE training config: missing section {section!r}")
    data, tr, optim = cfg["data"], cfg["trainer"], cfg["optim"]
    if not isinstance(data.get("roots"), list) or not data["roots"]:
        raise ConfigError("data.roots is empty: pass the recordings, e.g. data.roots=[/work/data/multitask/train]")
    if not isinstance(data.get("heldout_roots"), list):
        raise ConfigError(f"data.heldout_roots={data.get('heldout_roots')!r}: expected a list (may be empty)")
    size = _size(data.get("resolution"), "data.resolution")
    crop = _size(data.get("crop"), "data.crop", allow_null=True)
    if crop is not None and size is not None and (crop[0] > size[0] or crop[1] > size[1]):
        raise ConfigError(f"data.crop={list(crop)} is larger than data.resolution={list(size)}")
    cf = data.get("clip_frames")
    if not isinstance(cf, int) or cf < 1 or (cf - 1) % 4:
        raise ConfigError(f"data.clip_frames={cf!r}: expected 1 + 4k (1, 5, 9, ...)")
    ef = data.get("eval_clip_frames", cf)
    if not isinstance(ef, int) or isinstance(ef, bool) or ef < 1 or (ef - 1) % 4:
        raise ConfigError(f"data.eval_clip_frames={ef!r}: expected 1 + 4k (1, 5, 9, ..., 21 = the world model's clip)")
    for section, key in (("data", "frame_stride"), ("data", "heldout_every"), ("trainer", "max_steps"),
                         ("trainer", "batch_size"), ("trainer", "eval_clips"), ("trainer", "stats_clips")):
        value = cfg[section].get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{section}.{key}={value!r}: expected a positive integer")
    for key in ("log_every", "eval_every", "ckpt_every", "keep_last"):
        value = tr.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"trainer.{key}={value!r}: expected a non-negative integer")
    for key in ("lr", "weight_decay", "min_lr_ratio"):
        if not isinstance(optim.get(key), (int, float)) or optim[key] < 0 or (key == "lr" and optim[key] == 0):
            kind = "positive" if key == "lr" else "non-negative"
            raise ConfigError(f"optim.{key}={optim.get(key)!r}: expected a {kind} number")
    if optim.get("schedule") not in ("constant", "cosine"):
        raise ConfigError(f"optim.schedule={optim.get('schedule')!r}: expected one of ['constant', 'cosine']")
    for key in ("edge_weight", "mse_weight"):
        weight = cfg["loss"].get(key)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ConfigError(f"loss.{key}={weight!r}: expected a non-negative number")
    vae = WanVAEConfig.from_dict(dict(cfg["vae"]), source="VAE training config: vae")
    if vae.latent_stats != "data":
        raise ConfigError(f"vae.latent_stats={vae.latent_stats!r}: a trained VAE stores statistics fitted on its data; "
                          "set vae.latent_stats=data")
    if (crop or size)[0] % vae.spatial_factor or (crop or size)[1] % vae.spatial_factor:
        raise ConfigError(f"data.crop / data.resolution must be multiples of the VAE's {vae.spatial_factor}x factor")


# ----------------------------------------------------------------------------------------------- pieces
def uint8_to_video(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float32 (B, 3, T, H, W) in [-1, 1]."""
    from worldmodel.train import pixels_to_video

    return pixels_to_video(torch.from_numpy(np.ascontiguousarray(clips)))


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, edge_weight: float,
                        mse_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """L1 on pixels + `mse_weight` * MSE + `edge_weight` * L1 on horizontal and vertical pixel differences
    (module docstring)."""
    err = recon - target
    l1 = err.abs().mean()
    parts = {"l1": float(l1.detach())}
    loss = l1
    if mse_weight > 0:
        mse = (err * err).mean()
        loss = loss + mse_weight * mse
        parts["mse"] = float(mse.detach())
    if edge_weight > 0:
        edge = (recon.diff(dim=-1) - target.diff(dim=-1)).abs().mean() + \
            (recon.diff(dim=-2) - target.diff(dim=-2)).abs().mean()
        loss = loss + edge_weight * edge
        parts["edge"] = float(edge.detach())
    return loss, parts


@torch.no_grad()
def reconstruct(vae: WanVAE, clips: np.ndarray, batch: int = 4) -> np.ndarray:
    """uint8 clips (N, T, H, W, 3) -> their reconstructions through the encoder mean, uint8, same shape."""
    from worldmodel.predict import frames_to_uint8

    out = []
    for i in range(0, len(clips), batch):
        video = uint8_to_video(clips[i:i + batch])
        out.append(frames_to_uint8(vae.decode(vae.encode(video, chunked=False), chunked=False)))
    return np.concatenate(out)


def heldout_report(vae: WanVAE, clips: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Held-out reconstruction quality: PSNR (dB) and SSIM per camera and over all frames of all cameras."""
    from worldmodel.metrics.image import psnr, ssim

    per_camera: dict[str, dict[str, float]] = {}
    all_psnr, all_ssim = [], []
    was_training = vae.training
    vae.eval()
    try:
        for cam, real in clips.items():
            recon = reconstruct(vae, real)
            p = np.concatenate([psnr(r, x) for r, x in zip(recon, real)])
            s = np.concatenate([ssim(r, x) for r, x in zip(recon, real)])
            p = np.minimum(p, 100.0)  # an exact frame scores +inf; cap it so means stay finite
            per_camera[cam] = {"psnr": float(p.mean()), "ssim": float(s.mean()), "frames": int(p.size)}
            all_psnr.append(p)
            all_ssim.append(s)
    finally:
        vae.train(was_training)
    return {"psnr": float(np.concatenate(all_psnr).mean()), "ssim": float(np.concatenate(all_ssim).mean()),
            "cameras": per_camera}


@torch.no_grad()
def fit_latent_stats(vae: WanVAE, clips: np.ndarray, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the raw encoder means of `clips` (uint8 (N, T, H, W, 3)), over every
    latent frame and position."""
    total = None
    for i in range(0, len(clips), batch):
        mu, _ = vae.encode_moments(uint8_to_video(clips[i:i + batch]), chunked=False)
        flat = mu.double().transpose(0, 1).reshape(mu.shape[1], -1)
        part = torch.stack([flat.sum(1), (flat * flat).sum(1), torch.full_like(flat[:, 0], flat.shape[1])])
        total = part if total is None else total + part
    assert total is not None
    mean = total[0] / total[2]
    std = (total[1] / total[2] - mean * mean).clamp_min(1e-12).sqrt()
    return mean.float(), std.float().clamp_min(1e-4)


def split_episodes(sources: Sequence[RecordingSource], every: int) -> tuple[list[list[int]], list[list[int]]]:
    """(train, held-out) episode lists per source: every `every`-th episode (1-based) held out."""
    train, held = [], []
    for s in sources:
        eps = list(range(s.num_episodes))
        held.append([e for e in eps if (e + 1) % every == 0])
        train.append([e for e in eps if (e + 1) % every != 0])
    return train, held


# ----------------------------------------------------------------------------------------------- trainer
@dataclass
class VAETrainResult:
    """What a finished `train` call reports."""

    run_dir: Path
    step: int
    weights: Path
    first_eval: dict[str, Any]
    last_eval: dict[str, Any]
    steps_per_s: float


class VAETrainer:
    """Owns the VAE, optimiser, data, metrics and checkpoints of one VAE training run."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        from worldmodel.threads import configure_torch_threads
        from worldmodel.train import lr_lambda

        validate_config(cfg)
        self.cfg = cfg
        data, tr, o = cfg["data"], cfg["trainer"], cfg["optim"]
        self.threads = configure_torch_threads(tr.get("threads"), source="trainer.threads")
        self.run_dir = Path(cfg["run_dir"] or Path("runs") / "vae" /
                            datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")).expanduser()
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resolution = _size(data["resolution"], "data.resolution")
        self.crop = _size(data.get("crop"), "data.crop", allow_null=True)
        self.progress = bool(tr.get("progress", True))
        sources = [RecordingSource(r) for r in data["roots"]]
        if data["heldout_roots"]:
            held_sources = [RecordingSource(r) for r in data["heldout_roots"]]
            train_eps, held_eps = None, None
        else:
            held_sources = sources
            train_eps, held_eps = split_episodes(sources, int(data["heldout_every"]))
            if not any(held_eps):
                raise DataError(f"data.heldout_every={data['heldout_every']}: no episode held out of "
                                f"{[s.num_episodes for s in sources]} episodes; set data.heldout_roots or lower it")
        cams, stride, cf = list(data["cameras"]), int(data["frame_stride"]), int(data["clip_frames"])
        self.train_clips = FrameClips(load_videos(sources, cams, self.resolution, stride, train_eps,
                                                  self.progress, "train frames"), cf, "data.roots")
        # Held-out clips are as long as the world model's (eval_clip_frames): later 4-frame latents lean on
        # the causal caches of earlier ones, which a 5-frame clip never exercises.
        self.heldout = FrameClips(load_videos(held_sources, cams, self.resolution, stride, held_eps,
                                              self.progress, "held-out frames"), int(data.get("eval_clip_frames", cf)),
                                  "data.heldout_roots" if data["heldout_roots"] else "held-out episodes")
        self.eval_clips = self.heldout.fixed(int(tr["eval_clips"]))
        torch.manual_seed(int(cfg["seed"]))
        vae_cfg = WanVAEConfig.from_dict(dict(cfg["vae"]), source="VAE training config: vae")
        if cfg.get("init_from"):
            self.vae = WanVAE.from_checkpoint(Path(cfg["init_from"]).expanduser(), config=vae_cfg)
        else:
            self.vae = WanVAE(vae_cfg)
        self.vae.train().requires_grad_(True)
        self.opt = torch.optim.AdamW(self.vae.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]),
                                     betas=tuple(o.get("betas", (0.9, 0.99))))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(str(o["schedule"]), int(o.get("warmup_steps", 0)), int(tr["max_steps"]),
                                float(o["min_lr_ratio"])))
        self.rng = np.random.default_rng(int(cfg["seed"]))
        self.step = 0
        if tr.get("resume"):
            self.resume(str(tr["resume"]))

    # ------------------------------------------------------------------------------------------ step
    def train_step(self) -> dict[str, float]:
        """One optimiser step on a fresh random batch; returns the loss parts."""
        tr, o = self.cfg["trainer"], self.cfg["optim"]
        video = uint8_to_video(self.train_clips.sample(int(tr["batch_size"]), self.rng, self.crop))
        mu, _ = self.vae.encode_moments(video, chunked=False)
        recon = self.vae.decode(mu, chunked=False, normalized=False, clamp=False)
        loss, parts = reconstruction_loss(recon, video, float(self.cfg["loss"]["edge_weight"]),
                                          float(self.cfg["loss"].get("mse_weight") or 0.0))
        if not torch.isfinite(loss):
            raise VAETrainError(f"step {self.step}: loss is {float(loss)} (check optim.lr and the data)")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = o.get("grad_clip")
        torch.nn.utils.clip_grad_norm_(self.vae.parameters(), float(clip) if clip else float("inf"))
        self.opt.step()
        self.sched.step()
        self.step += 1
        return {"loss": float(loss.detach()), **parts}

    def evaluate(self) -> dict[str, Any]:
        return heldout_report(self.vae, self.eval_clips)

    # ----------------------------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Write a resumable checkpoint of the current step (atomically: temporary folder, then rename)."""
        name = f"{CHECKPOINT_PREFIX}{self.step:07d}"
        final, tmp = self.ckpt_dir / name, self.ckpt_dir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.vae.save_checkpoint(tmp / WEIGHTS, {"trained": True, "steps": self.step, "complete": False})
        torch.save(self.opt.state_dict(), tmp / "optimizer.pt")
        torch.save({"torch": torch.get_rng_state()}, tmp / "rng.pt")
        (tmp / "trainer.json").write_text(json.dumps({"step": self.step, "scheduler": self.sched.state_dict(),
                                                      "numpy_rng": self.rng.bit_generator.state}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        (self.ckpt_dir / LATEST).write_text(name + "\n")
        keep = int(self.cfg["trainer"].get("keep_last") or 0)
        if keep > 0:
            for old in sorted(p for p in self.ckpt_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def resume(self, where: str) -> None:
        """Continue from `auto` (latest checkpoint in run_dir; fresh start if none) or a checkpoint folder."""
        from safetensors.torch import load_file

        from worldmodel.vae.checkpoint import STATS_KEYS, check_state_dict

        if where == "auto":
            latest = self.ckpt_dir / LATEST
            if not latest.is_file():
                LOG.info("trainer.resume=auto: no checkpoint in %s, starting fresh", self.ckpt_dir)
                return
            path = self.ckpt_dir / latest.read_text().strip()
        else:
            path = Path(where).expanduser()
        needed = [path / f for f in (WEIGHTS, "optimizer.pt", "trainer.json", "rng.pt")]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise VAETrainError(f"trainer.resume={where!r}: {path} is not a resumable VAE checkpoint "
                                f"(missing {missing})")
        state = {k: v for k, v in load_file(str(path / WEIGHTS)).items() if k not in STATS_KEYS}
        check_state_dict(self.vae.state_dict(), state, str(path / WEIGHTS))
        self.vae.load_state_dict(state)
        self.opt.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
        info = json.loads((path / "trainer.json").read_text())
        self.step = int(info["step"])
        self.sched.load_state_dict(info["scheduler"])
        self.rng.bit_generator.state = info["numpy_rng"]
        torch.set_rng_state(torch.load(path / "rng.pt", weights_only=True)["torch"])
        LOG.info("resumed from %s at step %d", path, self.step)

    # ------------------------------------------------------------------------------------------- fit
    def fit(self) -> VAETrainResult:
        """Train to `trainer.max_steps` (logging, evaluating, checkpointing), fit the latent statistics,
        write vae.safetensors and report.json."""
        import yaml
        from tqdm import tqdm

        tr = self.cfg["trainer"]
        max_steps = int(tr["max_steps"])
        log_every, eval_every, ckpt_every = (int(tr.get(k) or 0) for k in ("log_every", "eval_every", "ckpt_every"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.cfg, sort_keys=False))
        metrics = (self.run_dir / "metrics.jsonl").open("a")

        def log(entry: dict[str, Any]) -> None:
            metrics.write(json.dumps({"step": self.step, "time": round(time.time(), 3), **entry}) + "\n")
            metrics.flush()

        first_eval = self.evaluate()
        log({"eval": first_eval})
        last_eval = first_eval
        bar = tqdm(total=max_steps, initial=self.step, desc="train-vae", unit="step", dynamic_ncols=True,
                   file=sys.stderr, disable=not self.progress)
        bar.set_postfix(heldout_psnr=f"{first_eval['psnr']:.2f}")
        window: list[dict[str, float]] = []
        t0, train_time, steps_timed = time.perf_counter(), 0.0, 0
        try:
            while self.step < max_steps:
                window.append(self.train_step())
                bar.update(1)
                if (log_every and self.step % log_every == 0) or self.step == max_steps:
                    dt = time.perf_counter() - t0
                    train_time, steps_timed = train_time + dt, steps_timed + len(window)
                    entry = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                    entry.update(lr=self.sched.get_last_lr()[0], steps_per_s=len(window) / dt if dt > 0 else 0.0)
                    log(entry)
                    bar.set_postfix(loss=f"{entry['loss']:.4f}", heldout_psnr=f"{last_eval['psnr']:.2f}")
                    window, t0 = [], time.perf_counter()
                if eval_every and self.step % eval_every == 0 and self.step < max_steps:
                    last_eval = self.evaluate()
                    log({"eval": last_eval})
                    bar.set_postfix(heldout_psnr=f"{last_eval['psnr']:.2f}")
                    t0 = time.perf_counter()
                if ckpt_every and self.step % ckpt_every == 0 and self.step < max_steps:
                    self.save()
                    t0 = time.perf_counter()
        finally:
            bar.close()
        self.save()  # resumable: `trainer.resume=auto trainer.max_steps=<more>` continues from here
        last_eval = self.evaluate()
        log({"eval": last_eval})
        stats_clips = self.train_clips.fixed(max(1, int(tr["stats_clips"]) // max(1, len(self.train_clips.cameras))))
        mean, std = fit_latent_stats(self.vae.eval(), np.concatenate(list(stats_clips.values())))
        self.vae.set_latent_stats(mean, std)
        rate = steps_timed / train_time if train_time > 0 else 0.0
        record = {"trained": True, "complete": True, "steps": self.step, "heldout_psnr": last_eval["psnr"],
                  "heldout_ssim": last_eval["ssim"], "resolution": list(self.resolution),
                  "clip_frames": int(self.cfg["data"]["clip_frames"]),
                  "eval_clip_frames": int(self.cfg["data"].get("eval_clip_frames", self.cfg["data"]["clip_frames"])),
                  "frame_stride": int(self.cfg["data"]["frame_stride"]), "cameras": list(self.cfg["data"]["cameras"])}
        weights = self.vae.save_checkpoint(self.run_dir / WEIGHTS, record)
        report = {"step": self.step, "heldout": last_eval, "initial_heldout": first_eval,
                  "latent_mean": mean.tolist(), "latent_std": std.tolist(), "steps_per_s": rate,
                  "threads": self.threads, "train_clips": self.train_clips.num_clips,
                  "heldout_clips": self.heldout.num_clips, "weights": str(weights)}
        (self.run_dir / REPORT).write_text(json.dumps(report, indent=1))
        log({"final": True, "steps_per_s": rate})
        metrics.close()
        return VAETrainResult(self.run_dir, self.step, weights, first_eval, last_eval, rate)


def train(cfg: dict[str, Any]) -> VAETrainResult:
    """Build a `VAETrainer` from a composed config and run it."""
    return VAETrainer(cfg).fit()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m worldmodel.vae.train key=value ...`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = train(load_config(list(sys.argv[1:] if argv is None else argv)))
    except (ConfigError, DataError, VAETrainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    first, last = result.first_eval, result.last_eval
    print(f"trained the VAE to step {result.step} ({result.steps_per_s:.2f} steps/s): {result.weights}\n"
          f"held-out PSNR {first['psnr']:.2f} -> {last['psnr']:.2f} dB, SSIM {first['ssim']:.3f} -> {last['ssim']:.3f} "
          f"(per camera: " + ", ".join(f"{c} {v['psnr']:.2f} dB" for c, v in last["cameras"].items()) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["VAETrainError", "VAETrainResult", "VAETrainer", "load_config", "main", "train"]
