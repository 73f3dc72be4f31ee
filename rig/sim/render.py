"""Renders the rig's three camera views with one reused `mujoco.Renderer` (one GL context).

OSMesa/EGL contexts are bound to a thread, so one renderer is created lazily per rendering thread (in
practice one: the caller's in lockstep, the stepping thread in realtime) and reused for every frame.
"""

from __future__ import annotations

import threading

import mujoco
import numpy as np
from numpy.typing import NDArray

from rig.conventions import CAMERA_NAMES
from rig.sim import names


class MultiViewRenderer:
    """Colour images (H, W, 3) uint8 of every rig camera at a fixed size."""

    def __init__(self, model: mujoco.MjModel, size: tuple[int, int]) -> None:
        self.model = model
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] > model.vis.global_.offheight or self.size[1] > model.vis.global_.offwidth:
            raise ValueError(
                f"render size {self.size} exceeds the model's offscreen buffer "
                f"({model.vis.global_.offheight}, {model.vis.global_.offwidth}); raise render.height/width"
            )
        self.camera_ids = {cam: model.camera(names.camera(cam)).id for cam in CAMERA_NAMES}
        self._renderers: dict[int, mujoco.Renderer] = {}

    def _get(self) -> mujoco.Renderer:
        key = threading.get_ident()
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = mujoco.Renderer(self.model, height=self.size[0], width=self.size[1])
            self._renderers[key] = renderer
        return renderer

    def render(self, data: mujoco.MjData, cameras: tuple[str, ...] = CAMERA_NAMES) -> dict[str, NDArray[np.uint8]]:
        renderer = self._get()
        out: dict[str, NDArray[np.uint8]] = {}
        for cam in cameras:
            renderer.update_scene(data, camera=self.camera_ids[cam])
            image = np.empty((self.size[0], self.size[1], 3), dtype=np.uint8)
            renderer.render(out=image)
            out[cam] = image
        return out

    def close(self) -> None:
        """Release the calling thread's GL context (other threads release theirs when they close)."""
        renderer = self._renderers.pop(threading.get_ident(), None)
        if renderer is not None:
            renderer.close()
