"""Shape and dtype checks shared by every metric: clear errors that name the array and what was expected."""

from __future__ import annotations

import numpy as np


def check_video(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as a (T, H, W, 3) uint8 video, or a ValueError naming ``name``, the shape and the dtype."""
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array of shape (T, H, W, 3) uint8, got {type(array).__name__}")
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{name}: shape {array.shape}, expected (T, H, W, 3) RGB video")
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: dtype {array.dtype}, expected uint8 RGB")
    if array.shape[0] < 1 or array.shape[1] < 1 or array.shape[2] < 1:
        raise ValueError(f"{name}: shape {array.shape} has an empty axis")
    return array


def check_pair(predicted: np.ndarray, real: np.ndarray, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Both videos checked and of equal shape."""
    prefix = f"{what}: " if what else ""
    check_video(predicted, f"{prefix}predicted")
    check_video(real, f"{prefix}real")
    if predicted.shape != real.shape:
        raise ValueError(f"{prefix}predicted shape {predicted.shape} != real shape {real.shape}")
    return predicted, real
