"""History selection for A2World-sim: which frames of a long history buffer the network sees.

A buffer holds N frames (nodes 0..N-1, the last is the current conditioning frame) and the N-1 model
actions between them (14-D, `worldmodel.actions` convention: per arm dp in the previous EE frame, euler
drot, gripper). Every sampler returns `budget` node indices in chronological order (repeats allowed).

Samplers (`HistoryConfig.sampler`):
- `release` — the released rollout's `sample_history_indices`: both arms, step length
  sqrt(|dp_L|^2 + |dp_R|^2 + 0.25 (|dr_L|^2 + |dr_R|^2)), targets linspace(0, arc_end, m), the first node
  whose arc is nearest each target, first = 0 and last = N-1 forced, no motion -> [0] * (m-1) + [N-1].
- `release_training` — the released dataset's "effort_uniform" sampler: arm 0 only, sqrt(|dp|^2 + 0.3 |dr|^2),
  starts at the first node whose frame id is 0 (padding-aware), middle picks de-duplicated, a shortfall
  filled with the lowest unused nodes, then front-padded with the start node.
- `arc_single` — the paper's Algorithm 1 (single arm, weights w_t, w_r): anchors r_s, r_e kept, each of the
  m-2 interior targets picks the node strictly between the anchors whose arc is closest; picks form a set,
  so a shortfall (few nodes, large steps) is front-padded with r_s.
- `arc_dual` — the paper's Algorithm 2 over absolute poses of both arms (`arc_dual_indices`): frame ids
  decide r_s, rotation steps scaled by s_r, no motion (< eps) -> r_s repeated m-1 times then r_e.
- `sliding_window` — the m most recent nodes (front-padded with node 0 when N < m); `none` — no history.

`action_path_features` builds the (future step, history slot, 22) features of the view-pair bias as the
released rollout does (`a2world/history.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig.config import ConfigError
from rig.conventions import MODEL_ACTION_DIM

SAMPLERS = ("release", "release_training", "arc_single", "arc_dual", "sliding_window", "none")
PATH_FEATURES = 22
TRANSLATION_SCALE = 0.05   # tanh(mean translation / 0.05) in the path features (release)
ROTATION_SCALE = 0.25      # tanh(mean rotation / 0.25)


class HistoryError(ValueError):
    """Bad history-sampling input; the message names the argument, what it got and what was expected."""


@dataclass(frozen=True)
class HistoryConfig:
    """Which sampler, how many frames (budget m) and the arc-length weights (paper: w_t = 1.0, w_r = 0.3)."""

    sampler: str = "arc_dual"
    budget: int = 20
    w_t: float = 1.0
    w_r: float = 0.3
    rotation_scale: float = 1.0
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"history.sampler={self.sampler!r}, expected one of {SAMPLERS}")
        if self.budget < 1:
            raise ConfigError(f"history.budget={self.budget} must be >= 1")
        if self.w_t < 0 or self.w_r < 0 or self.rotation_scale <= 0 or self.eps <= 0:
            raise ConfigError(f"history weights w_t={self.w_t}, w_r={self.w_r}, rotation_scale="
                              f"{self.rotation_scale}, eps={self.eps}: need w >= 0, scale > 0, eps > 0")

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> HistoryConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown history keys {unknown} (known: {sorted(known)})")
        return cls(**{k: (v if k == "sampler" else (int(v) if k == "budget" else float(v))) for k, v in data.items()})

    @property
    def uses_history(self) -> bool:
        return self.sampler != "none"


# ------------------------------------------------------------------------------------------- helpers
def _actions(actions: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != MODEL_ACTION_DIM:
        raise HistoryError(f"actions: shape {a.shape}, expected (N-1, {MODEL_ACTION_DIM}) model actions")
    if not np.isfinite(a).all():
        raise HistoryError("actions: contain non-finite values")
    return a


def _budget(budget: int) -> int:
    if int(budget) < 1:
        raise HistoryError(f"budget={budget}: expected >= 1")
    return int(budget)


def _cumulative(steps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.concatenate([[0.0], np.cumsum(steps)])


def _arc_picks(arc: NDArray[np.float64], start: int, end: int, budget: int) -> list[int]:
    """Algorithm 1 steps 4-5 on arc (per node): anchors kept, interior picks a set, front-padded with start."""
    if budget == 1:
        return [end]
    a_s, a_e = arc[start], arc[end]
    interior = np.arange(start + 1, end)
    picks = {start, end}
    for s in range(1, budget - 1):
        if interior.size == 0:
            break
        target = a_s + s / (budget - 1) * (a_e - a_s)
        picks.add(int(interior[np.argmin(np.abs(arc[interior] - target))]))
    ordered = sorted(picks)
    return [start] * (budget - len(ordered)) + ordered


# ------------------------------------------------------------------------------------------ samplers
def release_indices(actions: ArrayLike, budget: int) -> list[int]:
    """The released rollout's sampler over N-1 actions (N nodes); see the module docstring."""
    a = _actions(actions)
    m = _budget(budget)
    T = a.shape[0]
    if T == 0:
        return [0] * m
    step = np.sqrt((a[:, 0:3] ** 2).sum(1) + (a[:, 7:10] ** 2).sum(1)
                   + 0.25 * ((a[:, 3:6] ** 2).sum(1) + (a[:, 10:13] ** 2).sum(1)))
    arc = _cumulative(step)
    if m == 1:
        return [T]
    if arc[-1] <= 1e-8:
        return [0] * (m - 1) + [T]
    targets = np.linspace(0.0, arc[-1], m)
    idx = [int(np.argmin(np.abs(arc - t))) for t in targets]
    idx[0], idx[-1] = 0, T
    return idx


def release_training_indices(actions: ArrayLike, budget: int, frame_ids: ArrayLike | None = None) -> list[int]:
    """The released training sampler ("effort_uniform", arm 0, w_r = 0.3) over N-1 actions (N nodes)."""
    a = _actions(actions)
    m = _budget(budget)
    n = a.shape[0] + 1
    ids = np.arange(n) if frame_ids is None else np.asarray(frame_ids)
    if ids.shape != (n,):
        raise HistoryError(f"frame_ids: shape {ids.shape}, expected ({n},) one id per node")
    zeros = np.flatnonzero(ids == 0)
    start, end = (int(zeros[0]) if zeros.size else 0), n - 1
    if m == 1 or end == start:
        return [start] * (m - 1) + [end]
    step = np.sqrt((a[:, 0:3] ** 2).sum(1) + 0.3 * (a[:, 3:6] ** 2).sum(1))
    arc = _cumulative(step)
    targets = np.linspace(arc[start], arc[end], m)[1:-1]
    middle: list[int] = []
    interior = np.arange(start + 1, end)
    for t in targets:
        if interior.size:
            pick = int(interior[np.argmin(np.abs(arc[interior] - t))])
            if pick not in middle:
                middle.append(pick)
    unused = [int(i) for i in interior if int(i) not in middle]
    middle += unused[: max(0, m - 2 - len(middle))]
    picks = sorted([start, *middle, end])
    return [start] * (m - len(picks)) + picks


def arc_single_indices(actions: ArrayLike, budget: int, w_t: float = 1.0, w_r: float = 0.3,
                       start: int = 0) -> list[int]:
    """Paper Algorithm 1: arm 0 relative actions [dp, dtheta], d = sqrt(w_t |dp|^2 + w_r |dtheta|^2)."""
    a = _actions(actions)
    m = _budget(budget)
    n = a.shape[0] + 1
    if not 0 <= start < n:
        raise HistoryError(f"start={start}: expected a node in 0..{n - 1}")
    step = np.sqrt(w_t * (a[:, 0:3] ** 2).sum(1) + w_r * (a[:, 3:6] ** 2).sum(1))
    return _arc_picks(_cumulative(step), start, n - 1, m)


def _rotation_steps(quats: NDArray[np.float64]) -> NDArray[np.float64]:
    """Geodesic angle (rad) between consecutive unit quaternions (N, 4) xyzw -> (N-1,)."""
    from scipy.spatial.transform import Rotation

    r = Rotation.from_quat(quats)
    return (r[:-1].inv() * r[1:]).magnitude()


def arc_dual_indices(poses: ArrayLike, budget: int, frame_ids: ArrayLike | None = None, w_t: float = 1.0,
                     w_r: float = 0.3, rotation_scale: float = 1.0, eps: float = 1e-8) -> list[int]:
    """Paper Algorithm 2 over absolute poses (N, arms, 7) [xyz, quaternion xyzw] of one or two arms.

    r_s = first node whose frame id is 0 (padding frames carry id 0; without ids, node 0); r_e = N-1.
    The rotation step is the geodesic angle between consecutive orientations (equal to |dtheta| of the
    paper for small steps, no wrap-around at +-pi).
    """
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim == 2:
        p = p[:, None]
    if p.ndim != 3 or p.shape[-1] != 7 or p.shape[0] < 1:
        raise HistoryError(f"poses: shape {np.shape(poses)}, expected (N, arms, 7) [x y z qx qy qz qw]")
    m = _budget(budget)
    n = p.shape[0]
    ids = np.arange(n) if frame_ids is None else np.asarray(frame_ids)
    if ids.shape != (n,):
        raise HistoryError(f"frame_ids: shape {ids.shape}, expected ({n},)")
    zeros = np.flatnonzero(ids == 0)
    start, end = (int(zeros[0]) if zeros.size else 0), n - 1
    sq = np.zeros(n - 1)
    for arm in range(p.shape[1]):
        sq += w_t * (np.diff(p[:, arm, :3], axis=0) ** 2).sum(1)
        sq += w_r * (rotation_scale * _rotation_steps(p[:, arm, 3:7])) ** 2
    arc = _cumulative(np.sqrt(sq))
    if arc[end] - arc[start] < eps:
        return [start] * (m - 1) + [end]
    return _arc_picks(arc, start, end, m)


def sliding_window_indices(n_nodes: int, budget: int) -> list[int]:
    """The `budget` most recent nodes of an N-node buffer, front-padded with node 0 when N < budget."""
    m = _budget(budget)
    if n_nodes < 1:
        raise HistoryError(f"n_nodes={n_nodes}: the buffer needs at least the current frame")
    recent = list(range(max(0, n_nodes - m), n_nodes))
    return [0] * (m - len(recent)) + recent


def select_history(cfg: HistoryConfig, actions: ArrayLike, poses: ArrayLike | None = None,
                   frame_ids: ArrayLike | None = None) -> list[int] | None:
    """Node indices for `cfg.sampler` (None for `none`). actions (N-1, 14); poses (N, arms, 7) for arc_dual."""
    a = _actions(actions)
    n = a.shape[0] + 1
    if cfg.sampler == "none":
        return None
    if cfg.sampler == "release":
        return release_indices(a, cfg.budget)
    if cfg.sampler == "release_training":
        return release_training_indices(a, cfg.budget, frame_ids)
    if cfg.sampler == "arc_single":
        return arc_single_indices(a, cfg.budget, cfg.w_t, cfg.w_r)
    if cfg.sampler == "sliding_window":
        return sliding_window_indices(n, cfg.budget)
    if poses is None:
        raise HistoryError("history sampler arc_dual needs the absolute poses of the buffer (N, arms, 7)")
    if np.shape(poses)[0] != n:
        raise HistoryError(f"poses: {np.shape(poses)[0]} nodes, actions imply {n}")
    return arc_dual_indices(poses, cfg.budget, frame_ids, cfg.w_t, cfg.w_r, cfg.rotation_scale, cfg.eps)


# ------------------------------------------------------------------------------------ path features
def action_path_features(history_actions: ArrayLike, future_actions: ArrayLike,
                         indices: list[int]) -> NDArray[np.float32]:
    """(F, S, 22) features of the path from each history slot to each generated frame (released rollout).

    history_actions (H, 14) lead to the current frame (node H); future_actions (F, 14) to generated frames
    1..F (nodes H+1..H+F); indices: S history nodes. Per (f, slot) with start = min(idx, H), target =
    H+1+f, L = max(target - start, 1), over arm 0's dims 0-5: [tanh(mean xyz / 0.05), tanh(mean rpy / 0.25),
    mean |u| (6), rms (6), L / (H + F), gripper at start, gripper at target, toggles on the way / all toggles].
    """
    h = _actions(history_actions) if np.size(history_actions) else np.zeros((0, MODEL_ACTION_DIM))
    fut = _actions(future_actions)
    H, Fn = h.shape[0], fut.shape[0]
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() > H:
        raise HistoryError(f"indices {list(indices)}: expected history nodes in 0..{H}")
    edges = np.concatenate([h, fut])  # (H+F, 14)
    g = np.concatenate([edges[:1, 6], edges[:, 6]])  # gripper per node (node 0 takes the first edge's)
    u = edges[:, :6]
    s1, s_abs, s2 = (_cumulative_rows(x) for x in (u, np.abs(u), u * u))
    toggles = np.concatenate([[0], np.cumsum(g[1:] != g[:-1])])
    total = max(int(toggles[-1]), 1)
    start = np.minimum(idx, H)[None, :]  # (1, S)
    target = (H + 1 + np.arange(Fn))[:, None]  # (F, 1)
    L = np.maximum(target - start, 1)
    length = L[..., None].astype(np.float64)
    mean = (s1[target] - s1[start]) / length
    mean_abs = (s_abs[target] - s_abs[start]) / length
    rms = np.sqrt(np.maximum(s2[target] - s2[start], 0.0) / length)
    out = np.concatenate([
        np.tanh(mean[..., :3] / TRANSLATION_SCALE), np.tanh(mean[..., 3:] / ROTATION_SCALE), mean_abs, rms,
        (L / max(H + Fn, 1))[..., None],
        np.broadcast_to(g[start], L.shape)[..., None], np.broadcast_to(g[target], L.shape)[..., None],
        ((toggles[target] - toggles[start]) / total)[..., None],
    ], axis=-1)
    return out.astype(np.float32)


def _cumulative_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
