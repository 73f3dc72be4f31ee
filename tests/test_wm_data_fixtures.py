"""Shared, session-memoised data for the world-model data/train/predict tests (no tests in here).

- `synthetic_recording`: recorded with the real `EpisodeRecorder` from `recording_data` (known poses/images).
- `twin_recording`: `a2world collect` on the MuJoCo twin (scripted expert, 32x32 renders).
- `trained_run`: a tiny network trained on the twin recording from cached tiny-VAE latents.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recording_data import command, observation

_MEMO: dict[str, Any] = {}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread (tiny models: no OpenMP contention on a busy 2-core machine), then restore."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
TWIN_SIZE = 32
TRAIN_STEPS = 30
CKPT_EVERY = 15


def synthetic_recording(root: Path, lengths: tuple[int, ...] = (70, 64), cameras: tuple[str, ...] | None = None,
                        height: int = 32, width: int = 32) -> Path:
    """Record episodes of `lengths` frames with the real recorder; returns the LeRobot dataset root."""
    from rig.conventions import CAMERA_NAMES
    from teleop.recorder import EpisodeRecorder, RecorderSettings

    cams = tuple(cameras or CAMERA_NAMES)
    settings = RecorderSettings(min_free_bytes=1, overflow="block", block_timeout_s=30.0)  # never drop frames
    with EpisodeRecorder(root, cameras=cams, formats=("lerobot",), settings=settings) as rec:
        offset = 0
        for n in lengths:
            rec.start_episode("synthetic")
            for i in range(offset, offset + n):
                rec.add(observation(i, height=height, width=width, cameras=cams), command(i))
            rec.end_episode(success=True)
            offset += n
        rec.wait()
    return root / "lerobot"


def twin_recording(base: Path) -> Path:
    """Two scripted lift_box_high episodes (4.2 s each) on the twin at 32x32 (memoised for the session)."""
    if "twin" not in _MEMO:
        out = base / "twin"
        subprocess.run([sys.executable, "-m", "a2world_ros.cli.main", "collect", "--task", "lift_box_high",
                        "--episodes", "2", "--out", str(out), "--size", f"{TWIN_SIZE}x{TWIN_SIZE}",
                        "--formats", "lerobot", "--max-seconds", "4.2"], check=True, capture_output=True, timeout=300)
        _MEMO["twin"] = out
    return _MEMO["twin"]


def train_overrides(data_root: Path, run_dir: Path, cache: Path, steps: int = TRAIN_STEPS) -> list[str]:
    return [f"data.roots=[{data_root}]", f"run_dir={run_dir}", f"data.latent_cache={cache}", "+train=smoke",
            f"data.resolution=[{TWIN_SIZE},{TWIN_SIZE}]", "data.clip_hop=20", f"trainer.max_steps={steps}",
            f"trainer.ckpt_every={CKPT_EVERY}",
            "trainer.eval_batches=2", "trainer.progress=false", "trainer.keep_last=0"]


def trained_run(base: Path) -> dict[str, Any]:
    """Train the tiny model for TRAIN_STEPS steps (checkpoints every CKPT_EVERY steps); memoised for the session."""
    if "run" not in _MEMO:
        import torch

        from worldmodel.train import Trainer, load_train_config

        data = twin_recording(base)
        cfg = load_train_config(train_overrides(data, base / "run", base / "cache"))
        threads = torch.get_num_threads()  # the smoke preset sets 1 thread process-wide; restore it after
        t0 = time.perf_counter()
        try:
            trainer = Trainer(cfg)
            setup_s = time.perf_counter() - t0
            result = trainer.fit()
        finally:
            torch.set_num_threads(threads)
        _MEMO["run"] = {"result": result, "cfg": cfg, "seconds": time.perf_counter() - t0, "setup_s": setup_s,
                        "data": data, "base": base}
    return _MEMO["run"]
