"""A2World-sim: the history-aware variant of `A2WorldNet` (the release's `ActionConditionedMultiViewStatePredDiT`,
weights `a2world-libero.pt`). Same trunk, three additions, state-dict names as released:

- `history_tokenizer` (`PoseAwareHistoryTokenizer`): each history latent frame -> Conv3x3 s2 -> SiLU -> Conv1x1
  -> one token per 2x2 latent patch, plus a projected 2-D sin-cos position; tokens ordered (view, frame, h, w).
- memory: `mem_to_k` / `mem_to_v` project the history tokens to model width; every block's self-attention
  projects them once more with its own k/v projections (k RMS-normed, no RoPE) and uses them as extra
  keys/values in front of the video tokens (all views' memory is visible to every query).
- `cross_biased_attn` in every block: each view's queries attend to that view's history tokens, with the
  view-pair bias `vpb` (an MLP over the action-path features, resized to (target latent, history latent),
  clamped) added to the logits.

Release quirks kept: the bias grid's first axis comes from the state's *history-slot* axis and the second
from the *future-step* axis (the release permutes before resizing); `pose_mlp` and `gate` exist in the weights
but the released forward calls the tokenizer without a pose, so they never act. One deliberate difference:
the release repeats a 3-D bias over views in (b v) order while its queries are (v b), which mixes samples for
batch > 1; here every sample gets its own bias (identical for batch 1, the released inference).
Without history (`history=None`) memory and cross-attention are skipped: our no-history baseline (the
release cannot run without history).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from worldmodel.network.a2world import A2WorldNet, VariantContext
from worldmodel.network.block import A2WorldBlock, BlockInputs
from worldmodel.network.layers import RMSNorm, compute_dtype, trunc_normal_


class BiasedAttentionCore(nn.Module):
    """q/k/v projections, q/k norms and output projection of the biased cross-attention (release order)."""

    def __init__(self, query_dim: int, context_dim: int, n_heads: int, head_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        inner = n_heads * head_dim
        self.n_heads, self.head_dim = n_heads, head_dim
        self.q_proj = nn.Linear(query_dim, inner, bias=False)
        self.k_proj = nn.Linear(context_dim, inner, bias=False)
        self.v_proj = nn.Linear(context_dim, inner, bias=False)
        self.q_norm = RMSNorm(head_dim, eps, upcast=False)  # the release: no fp32 upcast here
        self.k_norm = RMSNorm(head_dim, eps, upcast=False)
        self.out_proj = nn.Linear(inner, query_dim, bias=False)


class BiasedCrossAttention(nn.Module):
    """Per-view cross-attention on history tokens with an additive logit bias (`cross_biased_attn.core.*`).

    `forward(x, context, bias=None)`: x (B, V, S, D) queries; context (B, V, M, Dc), view v's queries see only
    slice v; bias (B, S, M) added to every view's and head's logits. Returns (B, V, S, D).
    """

    def __init__(self, query_dim: int, context_dim: int, n_heads: int, head_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.core = BiasedAttentionCore(query_dim, context_dim, n_heads, head_dim, eps)

    def init_weights(self) -> None:
        c = self.core
        for lin in (c.q_proj, c.k_proj, c.v_proj, c.out_proj):
            trunc_normal_(lin.weight, lin.in_features)
        c.q_norm.reset_parameters()
        c.k_norm.reset_parameters()

    def forward(self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        c = self.core
        B, V, S, _ = x.shape
        if context.shape[:2] != (B, V):
            raise ValueError(f"history context {tuple(context.shape)}: expected ({B}, {V}, M, Dc)")
        M = context.shape[2]
        h, d = c.n_heads, c.head_dim
        q = c.q_norm(c.q_proj(x).view(B * V, S, h, d)).transpose(1, 2)
        k = c.k_norm(c.k_proj(context).view(B * V, M, h, d)).transpose(1, 2)
        v = c.v_proj(context).view(B * V, M, h, d).transpose(1, 2)
        mask = None if bias is None else bias.to(q.dtype).repeat_interleave(V, dim=0)[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return c.out_proj(out.transpose(1, 2).reshape(B, V, S, h * d))


def sincos_2d(height: int, width: int, dim: int, device: torch.device | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(height * width, dim) position features [sin(y w), cos(y w), sin(x w), cos(x w)], y, x in
    linspace(-1, 1), w_k = 10000^(-k / (dim / 4)); tokens row-major (h, w). Computed in fp32 (fp64 for
    fp64), returned in `dtype` (the release casts to the network dtype)."""
    quarter = dim // 4
    cd = compute_dtype(dtype)
    omega = 10000.0 ** (-torch.arange(quarter, dtype=cd, device=device) / quarter)
    y = torch.linspace(-1.0, 1.0, height, dtype=cd, device=device)[:, None] * omega  # (h, q)
    x = torch.linspace(-1.0, 1.0, width, dtype=cd, device=device)[:, None] * omega  # (w, q)
    pe_y = torch.cat([y.sin(), y.cos()], dim=-1)[:, None, :].expand(height, width, 2 * quarter)
    pe_x = torch.cat([x.sin(), x.cos()], dim=-1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([pe_y, pe_x], dim=-1).reshape(height * width, dim).to(dtype)


class HistoryTokenizer(nn.Module):
    """The release's `PoseAwareHistoryTokenizer` (conv downsampling; `pose_mlp`/`gate` registered, unused).

    `forward(history, n_views)`: (B, C, V*Th, H, W) latents packed view-major -> (B, V, Th * h * w, D)
    tokens, order (frame, h, w) inside a view, h, w = H/2, W/2.
    """

    def __init__(self, in_channels: int, dim: int, mid_channels: int, pe_dim: int, pose_dim: int,
                 pose_freqs: int, pose_hidden: int) -> None:
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(mid_channels, dim, kernel_size=1),
        )
        self.latent_proj = nn.Identity()
        fourier = pose_dim * (2 * pose_freqs + 1)
        self.pose_mlp = nn.Sequential(nn.Linear(fourier, pose_hidden), nn.SiLU(), nn.Linear(pose_hidden, dim))
        self.gate = nn.Sequential(nn.Linear(pose_dim, dim), nn.SiLU(), nn.Linear(dim, dim), nn.Sigmoid())
        self.pe2d_proj = nn.Linear(pe_dim, dim)
        self.pe_dim = pe_dim

    def forward(self, history: torch.Tensor, n_views: int) -> torch.Tensor:
        B, C, VT, H, W = history.shape
        if VT % n_views:
            raise ValueError(f"history has {VT} latent frames, not divisible into {n_views} views")
        Th = VT // n_views
        frames = history.view(B, C, n_views, Th, H, W).permute(0, 2, 3, 1, 4, 5).reshape(B * VT, C, H, W)
        feats = self.latent_proj(self.down(frames))  # (B*V*Th, D, h, w)
        D, h, w = feats.shape[1:]
        tokens = feats.flatten(2).transpose(1, 2)  # (B*V*Th, h*w, D)
        pe = sincos_2d(h, w, self.pe_dim, device=tokens.device, dtype=tokens.dtype)
        tokens = tokens + self.pe2d_proj(pe)
        return tokens.reshape(B, n_views, Th * h * w, D)


class ViewPairBias(nn.Module):
    """`vpb`: logit bias between target and history latent frames from the action-path features.

    `forward(state, grid_q, grid_k, tokens_q, tokens_k)`: state (B, F, S, feat) with F future steps and S
    history slots -> (B, grid_q * tokens_q, grid_k * tokens_k). The release resizes the (slot, future) plane
    bilinearly (align_corners False) to (grid_q, grid_k), i.e. slots -> target latents, future -> history
    latents, runs the MLP per cell, clamps to +-clamp, scales and repeats every cell over the tokens.
    """

    def __init__(self, feat_dim: int, hidden: int, clamp: float, scale: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(feat_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.clamp, self.scale = clamp, scale

    def cells(self, state: torch.Tensor, grid_q: int, grid_k: int) -> torch.Tensor:
        """(B, F, S, feat) -> (B, grid_q, grid_k) bias per (target latent, history latent) pair."""
        s = state.permute(0, 3, 2, 1)  # (B, feat, S, F)
        s = F.interpolate(s, size=(grid_q, grid_k), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
        return self.mlp(s)[..., 0].clamp(-self.clamp, self.clamp) * self.scale

    def forward(self, state: torch.Tensor, grid_q: int, grid_k: int, tokens_q: int, tokens_k: int) -> torch.Tensor:
        b = self.cells(state, grid_q, grid_k)
        return b.repeat_interleave(tokens_q, dim=1).repeat_interleave(tokens_k, dim=2)


class A2WorldSimBlock(A2WorldBlock):
    """Block with the history cross-attention `cross_biased_attn` in place of `cross_attn`."""

    context_attn_name = "cross_biased_attn"

    def build_cross_attn(self, dim: int, context_dim: int, n_heads: int, head_dim: int, eps: float) -> nn.Module:
        return BiasedCrossAttention(dim, context_dim, n_heads, head_dim, eps)

    def apply_context(self, x: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        B, V, T, L, D = x.shape
        out = self.context_attn(x.reshape(B, V, T * L, D), inputs.context, inputs.context_bias)
        return out.view(B, V, T, L, D)


class A2WorldSimNet(A2WorldNet):
    """A2World-sim. `forward(..., history=(B, C, V*Th, H, W), state=(B, F, S, 22))`, see `A2WorldNet.forward`."""

    block_cls = A2WorldSimBlock

    def build_variant_modules(self) -> None:
        c = self.config
        Dc = c.crossattn_emb_channels
        self.history_tokenizer = HistoryTokenizer(c.in_channels, Dc, c.history_mid_channels, c.history_pe_dim,
                                                  c.history_pose_dim, c.history_pose_freqs, c.history_pose_hidden)
        self.mem_to_k = nn.Linear(Dc, c.model_channels, bias=False)
        self.mem_to_v = nn.Linear(Dc, c.model_channels, bias=False)
        self.vpb = ViewPairBias(c.path_feature_dim, c.vpb_hidden, c.vpb_clamp, c.vpb_scale)

    def init_weights(self) -> None:
        super().init_weights()
        for lin in (self.mem_to_k, self.mem_to_v):
            trunc_normal_(lin.weight, lin.in_features)

    def build_context_and_memory(
        self, action_flat: torch.Tensor, n_views: int, grid: tuple[int, int, int], *,
        blacks: torch.Tensor | None = None, history: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> VariantContext:
        """History tokens as per-view context, memory keys/values and the view-pair bias.

        history None: no context and no memory (no-history baseline). With history, `state` is required
        (the release's bias needs it).
        """
        if blacks is not None:
            raise ValueError("A2World-sim has no black context; pass history instead")
        if history is None:
            return VariantContext(None)
        c = self.config
        B = action_flat.shape[0]
        if history.ndim != 5 or history.shape[0] != B or history.shape[1] != c.in_channels:
            raise ValueError(f"history: shape {tuple(history.shape)}, expected ({B}, {c.in_channels}, V*Th, H, W)")
        if state is None:
            raise ValueError("history given without state: the view-pair bias needs the action-path features "
                             "(worldmodel.history.action_path_features)")
        if state.ndim != 4 or state.shape[0] != B or state.shape[-1] != c.path_feature_dim:
            raise ValueError(f"state: shape {tuple(state.shape)}, expected ({B}, F, S, {c.path_feature_dim})")
        dtype = action_flat.dtype
        tokens = self.history_tokenizer(history.to(dtype), n_views)  # (B, V, Th*Lh, Dc)
        Th = history.shape[2] // n_views
        Lh = tokens.shape[2] // Th
        T, Hp, Wp = grid
        bias = self.vpb(state.to(dtype), T, Th, Hp * Wp, Lh)
        flat = tokens.reshape(B, -1, tokens.shape[-1])
        return VariantContext(tokens, self.mem_to_k(flat), self.mem_to_v(flat), bias)


__all__ = ["A2WorldSimBlock", "A2WorldSimNet", "BiasedCrossAttention", "HistoryTokenizer", "ViewPairBias",
           "sincos_2d"]
