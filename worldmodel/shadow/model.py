"""Loading the world model the shadow predicts with: our checkpoint or an official `.pt` (with its VAE).

A2World-sim checkpoints (history-aware) are wrapped by `HistoryShadowPredictor` (the real past frames as
history); the engine only needs `predict`, `resolution` and `fps` (and calls `observe` when present).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_predictor(checkpoint: str | Path, vae: str | Path | None = None, device: str = "cpu",
                   threads: int | str | None = "auto", history: str | None = None) -> Any:
    """A `WorldModelPredictor` for `checkpoint`, torch threads set by the one rule (worldmodel/threads.py).

    With `history` (a sampler name, e.g. arc_dual) an A2World-sim checkpoint is wrapped so its history is
    the real past frames (worldmodel/shadow/history.py)."""
    from worldmodel.predict import WorldModelPredictor
    from worldmodel.shadow.history import HistoryShadowPredictor, is_history_model
    from worldmodel.threads import configure_torch_threads

    configure_torch_threads(threads, source="shadow.threads")
    predictor = WorldModelPredictor.from_checkpoint(checkpoint, device=device, vae_weights=vae)
    if history and is_history_model(predictor):
        return HistoryShadowPredictor(predictor, history)
    return predictor
