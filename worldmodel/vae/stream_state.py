"""Memory that lets the causal VAE run a video chunk by chunk and give the same result as one pass.

Every temporal convolution keeps the last frames of its input (as many as its kernel looks back, 2 for
the Wan2.1 3x3x3 convolutions, i.e. the reference CACHE_T); every temporal resampler remembers whether it
has already seen the stream's first frame, which it treats specially (see `blocks.Resample`).
One `StreamState` belongs to one stream (one batch of videos being encoded, or of latents being decoded).
"""

from __future__ import annotations

import torch
from torch import nn


class StreamState:
    """Per-layer tail frames and first-frame flags of one encode or decode stream."""

    def __init__(self) -> None:
        self._tails: dict[nn.Module, torch.Tensor] = {}
        self._started: set[nn.Module] = set()
        # Set only for a final chunk whose length is not a multiple of the temporal factor (the Cosmos
        # `temporal_window` remainder); temporal downsamplers then take odd continuation chunks.
        self.ragged_tail = False

    def tail(self, layer: nn.Module) -> torch.Tensor | None:
        """The frames `layer` stored at its previous call, or None at the start of the stream."""
        return self._tails.get(layer)

    def store_tail(self, layer: nn.Module, frames: torch.Tensor) -> None:
        """Remember `frames` (B, C, n, H, W) for `layer`'s next call.

        Without autograd the frames are copied into the buffer kept from the previous call (same shape
        every call), so a long stream allocates each layer's buffer once. With autograd the tensor is kept
        as is so gradients flow across chunks.
        """
        buffer = self._tails.get(layer)
        if (buffer is not None and buffer.shape == frames.shape and buffer.dtype == frames.dtype
                and not (torch.is_grad_enabled() and frames.requires_grad)):
            buffer.copy_(frames)
        elif torch.is_grad_enabled() and frames.requires_grad:
            self._tails[layer] = frames
        else:
            self._tails[layer] = frames.clone()

    def started(self, layer: nn.Module) -> bool:
        """Whether `layer` has already processed the first frame of this stream."""
        return layer in self._started

    def mark_started(self, layer: nn.Module) -> None:
        self._started.add(layer)

    def reset(self) -> None:
        """Forget everything: the next chunk is the start of a new stream."""
        self._tails.clear()
        self._started.clear()
        self.ragged_tail = False

    def __len__(self) -> int:
        return len(self._tails)
