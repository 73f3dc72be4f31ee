"""3D convolution that is causal in time: all temporal padding is on the past side."""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.vae.stream_state import StreamState


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else (int(v[0]), int(v[1]), int(v[2]))


class CausalConv3d(nn.Conv3d):
    """Conv3d over (B, C, T, H, W) whose output frame t sees input frames <= t only.

    `padding=(pt, ph, pw)` follows the Wan2.1 convention: space is zero-padded by ph/pw on both sides as
    usual, time by 2*pt frames, all before the first frame. With a `StreamState` the 2*pt frames come from
    the end of the previous chunk instead of zeros, so a chunked pass equals a one-shot pass.
    Parameters are `weight` (out, in, kt, kh, kw) and `bias`, like nn.Conv3d, so checkpoints load as is.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple[int, int, int] = 0) -> None:
        pad = _triple(padding)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=(0, pad[1], pad[2]))
        self.time_pad = 2 * pad[0]

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        if self.time_pad == 0:
            return super().forward(x)
        past = state.tail(self) if state is not None else None
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], self.time_pad, x.shape[3], x.shape[4])
        padded = torch.cat([past.to(dtype=x.dtype), x], dim=2)
        if state is not None:
            state.store_tail(self, padded[:, :, -self.time_pad:])
        return super().forward(padded)
