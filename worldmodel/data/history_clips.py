"""Training clips for A2World-sim: a target clip plus the history the rollout would have at that point,
and the shifted "forcing" window self-forcing generates from.

History buffer of a clip whose conditioning frame is strided episode node n (node j = source frame
j * frame_stride): `budget` copies of node 0 with zero actions, then nodes 1..n with their actions — the
buffer `worldmodel.rollout` builds when it starts at the episode's first frame, so training and inference
sample history the same way (the release's training sampler differs from its rollout; docs/worldmodel_sim.md).

Self-forcing (release): gap g ~ U{min_gap..max_gap}, clamped to n; the forcing window starts g nodes
before the clip (node n - g, with its own history and actions); window frame g predicts the clip's
conditioning frame, window frames 1..g also stand in for the history nodes n-g+1..n they predict.

Item keys (besides `ClipDataset`'s `pixels` or cached `latents`, `actions`, `view_ids`, `dataset`):
- `history_pixels` uint8 (V, m, H, W, 3), `history_nodes` int64 (m,) episode node of each slot,
  `state` float32 (20, m, 22) path features (absent with the `none` sampler);
- `gap` int64 (0 = no forcing window), `forcing_pixels` uint8 (V, 21, H, W, 3), `forcing_actions` float32
  (20, 14) normalised, `forcing_history_pixels`, `forcing_state`, `forcing_start` int64 (node n - g).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, POSE_DIM
from worldmodel.actions import actions_to_poses
from worldmodel.data.clips import DataError
from worldmodel.data.dataset import ClipDataset, resize_frames
from worldmodel.history import HistoryConfig, action_path_features, select_history


def collate_tensors(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack every tensor key of items from ONE dataset; `dataset` stays an int."""
    datasets = {int(it["dataset"]) for it in items}
    if len(datasets) != 1:
        raise DataError(f"batch mixes datasets {sorted(datasets)}; use DatasetConsistentBatchSampler")
    out: dict[str, Any] = {"dataset": datasets.pop()}
    for key, value in items[0].items():
        if isinstance(value, torch.Tensor):
            out[key] = torch.stack([it[key] for it in items])
    return out


class HistoryClipDataset(ClipDataset):
    """`ClipDataset` (pixel mode, preloaded episodes) with history and self-forcing windows."""

    def __init__(self, *args: Any, history: HistoryConfig, min_gap: int = 2, max_gap: int = 10,
                 **kwargs: Any) -> None:
        kwargs["preload"] = True  # history frames come from the decoded episodes (also with a latent cache)
        super().__init__(*args, **kwargs)
        if not 1 <= min_gap <= max_gap:
            raise DataError(f"self_forcing gaps min={min_gap}, max={max_gap}: expected 1 <= min <= max")
        self.history, self.min_gap, self.max_gap = history, min_gap, max_gap
        self._episode_actions: dict[int, NDArray[np.float64]] = {}

    def _nodes(self, ep: int) -> dict[str, NDArray[np.uint8]]:
        if ep not in self._frames:
            decoded = self.source.episode_frames(ep, self.cameras, self.clip.frame_stride)
            self._frames[ep] = {c: resize_frames(v, self.resolution) for c, v in decoded.items()}
        return self._frames[ep]

    def _actions_of(self, ep: int) -> NDArray[np.float64]:
        if ep not in self._episode_actions:
            self._episode_actions[ep] = self.source.episode_actions(ep, self.clip.frame_stride, self.clip.action_source)
        return self._episode_actions[ep]

    def history_at(self, ep: int, node: int, future: NDArray[np.float64]
                   ) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.float32]] | None:
        """History (pixels (V, m, ...), episode nodes (m,), features (F, m, 22)) for conditioning node `node`."""
        if not self.history.uses_history:
            return None
        m = self.history.budget
        ep_actions = self._actions_of(ep)
        actions = np.concatenate([np.zeros((m - 1, ep_actions.shape[1])), ep_actions[:node]])
        start = np.zeros((len(ARM_NAMES), POSE_DIM))
        start[:, 6] = 1.0
        poses, _ = actions_to_poses(start, actions, n_arms=len(ARM_NAMES))
        idx = select_history(self.history, actions, poses=poses)
        assert idx is not None
        nodes = np.maximum(np.asarray(idx, dtype=np.int64) - (m - 1), 0)
        frames = self._nodes(ep)
        pixels = np.stack([frames[c][nodes] for c in self.cameras])
        return pixels, nodes, action_path_features(actions, future, idx)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        ref = self.refs[i]
        n = ref.start // self.clip.frame_stride
        future = self.raw_actions[i]
        hist = self.history_at(ref.episode, n, future)
        if hist is not None:
            item["history_pixels"] = torch.from_numpy(hist[0])
            item["history_nodes"] = torch.from_numpy(hist[1])
            item["state"] = torch.from_numpy(hist[2])
        gap = min(int(torch.randint(self.min_gap, self.max_gap + 1, ()).item()), n)
        s = n - gap
        ep_actions = self._actions_of(ref.episode)
        raw = ep_actions[s:s + self.clip.num_actions]
        frames = self._nodes(ref.episode)
        item["gap"] = torch.tensor(gap, dtype=torch.long)
        item["forcing_start"] = torch.tensor(s, dtype=torch.long)
        item["forcing_pixels"] = torch.from_numpy(np.stack([frames[c][s:s + self.clip.clip_frames]
                                                            for c in self.cameras]))
        item["forcing_actions"] = torch.from_numpy(self.stats.normalize(raw).astype(np.float32))
        forcing = self.history_at(ref.episode, s, raw)
        if forcing is not None:
            item["forcing_history_pixels"] = torch.from_numpy(forcing[0])
            item["forcing_state"] = torch.from_numpy(forcing[2])
        return item
