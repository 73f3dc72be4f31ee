"""Chunk-wise autoregressive rollout of A2World / A2World-sim, of any length, as the release runs it.

Per chunk k (20 actions): the conditioning frame of each view is the last predicted frame of chunk k-1
(pixel space, re-encoded by the VAE; chunk 0 uses the observation); A2World-sim also sees `budget` frames
picked from the history buffer by the configured sampler (`worldmodel.history`), VAE-encoded as one clip of
V * budget frames with temporal window 16 and split evenly over the views (the release's encoding), and the
action-path features of those frames; the sampler's noise is seeded with seed + k. The buffer starts as
`budget` copies of the observation with zero actions (release) and grows by the 20 generated frames and
their actions every chunk.

Library use (also what policy evaluation inside the world model drives):

    session = RolloutSession(predictor, {"front": img, ...}, history=HistoryConfig("arc_dual"))
    chunk = session.step(actions_20x14)          # RolloutChunk: frames per view (20, H, W, 3)
    result = rollout(predictor, images, actions_Tx14, history="arc_dual", progress=True)

Actions are *physical* model actions (T, 14) (`worldmodel.actions` convention); the predictor applies the
checkpoint's normalisation for the network, the history sampler and path features use them as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from rig.conventions import ARM_NAMES, MODEL_ACTION_DIM, POSE_DIM
from worldmodel.actions import actions_to_poses
from worldmodel.history import HistoryConfig, action_path_features, select_history
from worldmodel.predict import PredictError, ViewKey, WorldModelPredictor

HISTORY_TEMPORAL_WINDOW = 16
"""The release tokenizer's temporal window for the concatenated history clip."""


@dataclass
class RolloutChunk:
    """One predicted chunk: its index, noise seed, generated frames per view (20, H, W, 3) (frames 1..20),
    the conditioning frame per view and the history buffer nodes the network saw (None: no history)."""

    index: int
    seed: int
    frames: dict[ViewKey, NDArray[np.uint8]]
    condition: dict[ViewKey, NDArray[np.uint8]]
    history_indices: list[int] | None


@dataclass
class RolloutResult:
    """A whole rollout: frames per view (1 + 20k, H, W, 3), frame 0 the decoded observation, and the chunks."""

    frames: dict[ViewKey, NDArray[np.uint8]]
    chunks: list[RolloutChunk] = field(default_factory=list)


def history_config(history: HistoryConfig | str | None) -> HistoryConfig:
    """A HistoryConfig from a config, a sampler name, or None (the released sampler)."""
    if history is None:
        return HistoryConfig("release")
    return HistoryConfig(history) if isinstance(history, str) else history


@torch.no_grad()
def encode_history(vae: torch.nn.Module, frames: NDArray[np.uint8] | torch.Tensor,
                   temporal_window: int = HISTORY_TEMPORAL_WINDOW) -> torch.Tensor:
    """History frames uint8 (V, m, H, W, 3) or a batch (B, V, m, H, W, 3) -> latents (B, C, V * Th, h, w)
    (B = 1 for unbatched input), views packed view-major.

    As released: the V * m frames form one clip (view after view), encoded with the tokenizer's temporal
    window, and the latents are split evenly over the views (so the first latent of a view may mix frames
    of the previous view, like the release).
    """
    pix = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if pix.ndim == 5:
        pix = pix[None]
    B, V, m = pix.shape[:3]
    clip = pix.reshape(B, V * m, *pix.shape[3:])
    video = clip.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (B, 3, V*m, H, W)
    from worldmodel.vae.model import FrameCountError

    try:
        z = vae.encode_windowed(video, temporal_window)
    except FrameCountError as exc:
        raise PredictError(f"history: {V} views x {m} frames as one clip: {exc}") from None
    if z.shape[2] % V:
        raise PredictError(f"history: {V} views x {m} frames encode to {z.shape[2]} latents, not divisible by "
                           f"the views; pick a history budget whose V * budget clip splits evenly (release: 20)")
    return z


class HistoryBuffer:
    """Frames per view, the physical actions between them and absolute poses of both arms (N nodes)."""

    def __init__(self, images: Mapping[ViewKey, NDArray[np.uint8]], initial_copies: int,
                 start_poses: ArrayLike | None = None) -> None:
        n = max(int(initial_copies), 1)
        self.frames: dict[ViewKey, list[NDArray[np.uint8]]] = {k: [np.asarray(v)] * n for k, v in images.items()}
        self.actions = np.zeros((n - 1, MODEL_ACTION_DIM))
        if start_poses is None:
            start = np.zeros((len(ARM_NAMES), POSE_DIM))
            start[:, 6] = 1.0  # identity orientation: arc lengths do not depend on the start pose
        else:
            start = np.asarray(start_poses, dtype=np.float64).reshape(len(ARM_NAMES), POSE_DIM)
        self.poses = np.repeat(start[None], n, axis=0)

    def __len__(self) -> int:
        return len(next(iter(self.frames.values())))

    def append(self, frames: Mapping[ViewKey, NDArray[np.uint8]], actions: NDArray[np.float64]) -> None:
        """Add generated frames (k, H, W, 3) per view reached by `actions` (k, 14)."""
        poses, _ = actions_to_poses(self.poses[-1], actions, n_arms=len(ARM_NAMES))
        for key, view in frames.items():
            self.frames[key].extend(list(view))
        self.actions = np.concatenate([self.actions, actions])
        self.poses = np.concatenate([self.poses, poses[1:]])

    def gather(self, indices: list[int], keys: list[ViewKey]) -> NDArray[np.uint8]:
        """Frames at buffer nodes `indices` for views `keys`: uint8 (V, m, H, W, 3)."""
        return np.stack([np.stack([self.frames[k][i] for i in indices]) for k in keys])


class RolloutSession:
    """Closed-loop rollout state: call `step(actions)` once per 20-step chunk; `current` holds the frames
    the next chunk starts from (what a policy would observe)."""

    def __init__(self, predictor: WorldModelPredictor, images: Mapping[ViewKey, ArrayLike], *,
                 history: HistoryConfig | str | None = None, seed: int = 0, steps: int | None = None,
                 stats: str | None = None, start_poses: ArrayLike | None = None) -> None:
        self.predictor = predictor
        self.history = history_config(history)
        self.uses_history = getattr(predictor.net.config, "variant", "a2world") == "a2world_sim" \
            and self.history.uses_history
        self.seed, self.steps, self.stats = int(seed), steps, stats
        keys, ids, frames = predictor._images(images)
        self.keys, self.view_ids = keys, ids
        self.current: dict[ViewKey, NDArray[np.uint8]] = {k: frames[i].numpy() for i, k in enumerate(keys)}
        self.buffer = HistoryBuffer(self.current, self.history.budget, start_poses)
        self.chunk_index = 0

    @property
    def chunk_steps(self) -> int:
        return self.predictor.action_steps

    def _history_inputs(self, actions: NDArray[np.float64]) -> tuple[dict[str, torch.Tensor] | None, list[int] | None]:
        if not self.uses_history:
            return None, None
        buf = self.buffer
        idx = select_history(self.history, buf.actions, poses=buf.poses)
        assert idx is not None  # uses_history excludes the `none` sampler
        latents = encode_history(self.predictor.vae, buf.gather(idx, self.keys))
        state = torch.from_numpy(action_path_features(buf.actions, actions, idx))[None]
        return {"history": latents, "state": state}, idx

    @torch.no_grad()
    def step(self, actions: ArrayLike, include_condition: bool = False) -> RolloutChunk:
        """Predict the next chunk from physical model actions (20, 14); advances the session.

        With `include_condition` the returned frames start with the decoded conditioning frame (21 frames).
        """
        from worldmodel.diffusion import SamplerConfig, sample

        p = self.predictor
        n = self.chunk_steps
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (n, MODEL_ACTION_DIM) or not np.isfinite(a).all():
            raise PredictError(f"actions: shape {a.shape}, expected finite ({n}, {MODEL_ACTION_DIM}) model actions")
        cfg = SamplerConfig.preset(p.sampler)
        if self.steps is not None:
            cfg = replace(cfg, num_steps=int(self.steps))
        net_inputs, idx = self._history_inputs(a)
        frames = torch.from_numpy(np.stack([self.current[k] for k in self.keys]))
        cond = p.encode_condition(frames)
        act = torch.from_numpy(p.action_stats(self.stats).normalize(a).astype(np.float32))[None]
        seed = self.seed + self.chunk_index
        out = sample(p.net, cond, act, torch.tensor([self.view_ids]), seed=seed, sampler=cfg, fps=p.fps,
                     net_inputs=net_inputs)
        video = p.decode(out, len(self.keys))  # (V, 21, H, W, 3)
        generated = {k: video[v, 1:] for v, k in enumerate(self.keys)}
        chunk = RolloutChunk(self.chunk_index, seed,
                             {k: video[v] if include_condition else video[v, 1:] for v, k in enumerate(self.keys)},
                             dict(self.current), idx)
        self.buffer.append(generated, a)
        self.current = {k: v[-1] for k, v in generated.items()}
        self.chunk_index += 1
        return chunk


def rollout(predictor: WorldModelPredictor, images: Mapping[ViewKey, ArrayLike], actions: ArrayLike, *,
            history: HistoryConfig | str | None = None, seed: int = 0, steps: int | None = None,
            stats: str | None = None, start_poses: ArrayLike | None = None, progress: bool = False,
            on_chunk: Callable[[RolloutChunk], None] | None = None) -> RolloutResult:
    """Roll out physical model actions (T, 14), T >= 20, from one image per view; a trailing partial chunk
    is dropped (as released). Returns frames (1 + 20 * (T // 20), H, W, 3) per view."""
    a = np.asarray(actions, dtype=np.float64)
    session = RolloutSession(predictor, images, history=history, seed=seed, steps=steps, stats=stats,
                             start_poses=start_poses)
    n = session.chunk_steps
    if a.ndim != 2 or a.shape[1] != MODEL_ACTION_DIM or a.shape[0] < n:
        raise PredictError(f"actions: shape {a.shape}, expected (T, {MODEL_ACTION_DIM}) with T >= {n}")
    n_chunks = a.shape[0] // n
    chunks: list[RolloutChunk] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_chunks, unit="chunk", desc="rollout")
    try:
        for k in range(n_chunks):
            chunk = session.step(a[k * n:(k + 1) * n], include_condition=k == 0)
            chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    frames = {key: np.concatenate([c.frames[key] for c in chunks]) for key in session.keys}
    return RolloutResult(frames, chunks)
