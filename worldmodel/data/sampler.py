"""Dataset-consistent batching: every batch is drawn from a single dataset of the mix, the dataset chosen
with configurable weights (the A2World paper's data mixing). Deterministic in (seed, epoch), rank-aware."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from worldmodel.data.clips import DataError


class DatasetConsistentBatchSampler:
    """Yields lists of global indices into a `MixedClipDataset`, all from one dataset per batch.

    sizes: clips per dataset (the mix's `sizes`); offsets are their running sums. Each epoch has
    `batches_per_epoch` batches per rank (default: total clips // (batch_size * world_size), at least 1).
    For each batch a dataset is drawn with probability proportional to `weights` (default: its size);
    within a dataset indices come from a shuffled permutation, reshuffled when used up, so a small
    dataset cycles and a large one is not exhausted. Rank r of `world_size` takes batches r, r + W, ...
    of the same global sequence, so ranks never share a batch.
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, weights: Sequence[float] | None = None,
                 seed: int = 0, rank: int = 0, world_size: int = 1, batches_per_epoch: int | None = None) -> None:
        if batch_size <= 0:
            raise DataError(f"batch_size={batch_size}: expected a positive integer")
        if not sizes or any(int(s) <= 0 for s in sizes):
            raise DataError(f"dataset sizes {list(sizes)}: every dataset needs at least one clip")
        w = np.asarray([float(s) for s in sizes] if weights is None else list(weights), dtype=np.float64)
        if w.shape != (len(sizes),) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise DataError(f"data.weights={None if weights is None else list(weights)}: expected "
                            f"{len(sizes)} non-negative numbers with a positive sum (one per dataset)")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} outside world size {world_size}")
        self.sizes = [int(s) for s in sizes]
        self.offsets = np.cumsum([0, *self.sizes]).tolist()
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.probs = w / w.sum()
        total = sum(self.sizes) // (batch_size * world_size)
        self.batches_per_epoch = max(1, total) if batches_per_epoch is None else int(batches_per_epoch)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch (changes the order) and skip its first `skip` batches (resume mid-epoch)."""
        self.epoch, self.skip = int(epoch), int(skip)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        perms = [rng.permutation(n) for n in self.sizes]
        pos = [0] * len(self.sizes)
        for b in range(self.batches_per_epoch * self.world_size):
            d = int(rng.choice(len(self.sizes), p=self.probs))
            picked: list[int] = []
            while len(picked) < self.batch_size:
                if pos[d] == len(perms[d]):
                    perms[d], pos[d] = rng.permutation(self.sizes[d]), 0
                take = min(self.batch_size - len(picked), len(perms[d]) - pos[d])
                picked.extend(int(self.offsets[d] + i) for i in perms[d][pos[d]:pos[d] + take])
                pos[d] += take
            if b % self.world_size == self.rank and b // self.world_size >= self.skip:
                yield picked
