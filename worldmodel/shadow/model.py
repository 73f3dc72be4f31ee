"""Loading the world model the shadow predicts with: our checkpoint or an official `.pt` (with its VAE).

A2World-sim checkpoints (history-aware) load through the same `WorldModelPredictor` call shape; the
engine only needs `predict`, `resolution` and `fps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_predictor(checkpoint: str | Path, vae: str | Path | None = None, device: str = "cpu",
                   threads: int | str | None = "auto") -> Any:
    """A `WorldModelPredictor` for `checkpoint`, torch threads set by the one rule (worldmodel/threads.py)."""
    from worldmodel.predict import WorldModelPredictor
    from worldmodel.threads import configure_torch_threads

    configure_torch_threads(threads, source="shadow.threads")
    return WorldModelPredictor.from_checkpoint(checkpoint, device=device, vae_weights=vae)
