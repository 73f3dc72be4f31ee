"""Attention layers on torch SDPA: self/cross attention with q/k RMSNorm, per-view cross-attention and
cross-view attention. Parameter names match the release (`q_proj, q_norm, k_proj, k_norm, v_proj,
output_proj`, no biases, RMSNorm over the head dim).

Layouts: tokens are (B, N, D); per-view tensors are (B, V, T, L, D) with L = tokens per latent frame.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from worldmodel.network.layers import RMSNorm, trunc_normal_
from worldmodel.network.rope import apply_rope


class Attention(nn.Module):
    """Multi-head attention with q/k RMSNorm (eps 1e-6) and optional RoPE on q and k (self-attention only).

    `forward(x, context=None, rope=None, key_mask=None, k_mem=None, v_mem=None)`:
    x (B, Nq, D); context (B, Nk, Dc) or None for self-attention; rope = (cos, sin) tables (P, head_dim)
    repeating over Nq; key_mask (B, Nk_total) bool, True = attend; k_mem/v_mem (B, M, D) extra keys/values
    (A2World-sim memory), projected by this layer's k/v projections (k normed, no RoPE) and put before
    the regular keys.
    """

    def __init__(self, query_dim: int, context_dim: int | None, n_heads: int, head_dim: int,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.is_selfattn = context_dim is None
        context_dim = query_dim if context_dim is None else context_dim
        inner = n_heads * head_dim
        self.n_heads, self.head_dim = n_heads, head_dim
        self.q_proj = nn.Linear(query_dim, inner, bias=False)
        self.q_norm = RMSNorm(head_dim, eps)
        self.k_proj = nn.Linear(context_dim, inner, bias=False)
        self.k_norm = RMSNorm(head_dim, eps)
        self.v_proj = nn.Linear(context_dim, inner, bias=False)
        self.output_proj = nn.Linear(inner, query_dim, bias=False)

    def init_weights(self) -> None:
        trunc_normal_(self.q_proj.weight, self.q_proj.in_features)
        trunc_normal_(self.k_proj.weight, self.k_proj.in_features)
        trunc_normal_(self.v_proj.weight, self.v_proj.in_features)
        trunc_normal_(self.output_proj.weight, self.output_proj.in_features)
        self.q_norm.reset_parameters()
        self.k_norm.reset_parameters()

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.n_heads, self.head_dim))

    def project_q(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> normed queries (..., heads, head_dim)."""
        return self.q_norm(self._heads(self.q_proj(x)))

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., Dc) -> normed keys and values (..., heads, head_dim)."""
        return self.k_norm(self._heads(self.k_proj(context))), self._heads(self.v_proj(context))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        key_mask: torch.Tensor | None = None,
        k_mem: torch.Tensor | None = None,
        v_mem: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = self.project_q(x)
        k, v = self.project_kv(x if context is None else context)
        if rope is not None and self.is_selfattn:
            q = apply_rope(q, *rope)
            k = apply_rope(k, *rope)
        if k_mem is not None and v_mem is not None:
            k_m, v_m = self.k_norm(self._heads(self.k_proj(k_mem))), self._heads(self.v_proj(v_mem))
            k = torch.cat([k_m, k], dim=1)
            v = torch.cat([v_m, v], dim=1)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask)
        return self.output_proj(out.transpose(1, 2).flatten(2))


class PerViewCrossAttention(Attention):
    """Cross-attention where each view's queries see only that view's slice of the context.

    `forward(x, context)`: x (B, V, S, D); context (B, Vc, M, Dc) with Vc = V (one slice per view) or 1
    (shared by all views). Returns (B, V, S, D), or (B, Vc, 1, D) when M == 1: attention over a single
    key (or over identical keys, as in the release's action context of 512 repeated tokens) is exactly
    that key's value, so the projection of the value is returned for the caller to broadcast.
    """

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        B, V, S, _ = x.shape
        Vc, M = context.shape[1], context.shape[2]
        if Vc not in (1, V):
            raise ValueError(f"cross-attention context has {Vc} view slices, expected 1 or {V}")
        if M == 1:
            return self.output_proj(self.v_proj(context))
        q = self.project_q(x).reshape(B * V, S, self.n_heads, self.head_dim)
        k, v = self.project_kv(context)
        k = k.expand(B, V, M, self.n_heads, self.head_dim).reshape(B * V, M, self.n_heads, self.head_dim)
        v = v.expand(B, V, M, self.n_heads, self.head_dim).reshape(B * V, M, self.n_heads, self.head_dim)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.output_proj(out.transpose(1, 2).flatten(2)).view(B, V, S, -1)


class CrossViewAttention(Attention):
    """Each view's tokens at latent frame t attend to the tokens at frame t of every *other* present view.

    The release's map (`{0: [1, 2, 3], 1: [0, 2, 3], ...}`) connects every view id to every other one, so
    the neighbours of a view are exactly the other views in the sample; key order does not matter (no
    RoPE). `forward(x, view_mask=None)`: x (B, V, T, L, D) already layer-normed; view_mask (B, V) bool,
    True = present. Returns (B, V, T, L, D), or None when V == 1 (no neighbour: nothing to add, as with
    the release's all-padding key mask). A view whose neighbours are all absent gets a zero output.
    """

    def __init__(self, dim: int, n_heads: int, head_dim: int, eps: float = 1e-6) -> None:
        super().__init__(dim, dim, n_heads, head_dim, eps)
        self._others: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _other_views(self, V: int, device: torch.device) -> torch.Tensor:
        key = (V, device)
        if key not in self._others:
            self._others[key] = torch.tensor(
                [[j for j in range(V) if j != i] for i in range(V)], dtype=torch.long, device=device
            )
        return self._others[key]

    def forward(self, x: torch.Tensor, view_mask: torch.Tensor | None = None) -> torch.Tensor | None:  # type: ignore[override]
        B, V, T, L, _D = x.shape
        if V == 1:
            return None
        h, d = self.n_heads, self.head_dim
        others = self._other_views(V, x.device)  # (V, V-1)
        q = self.project_q(x)  # (B, V, T, L, h, d)
        k, v = self.project_kv(x)
        # neighbours: (B, V, V-1, T, L, h, d) -> (B, V, T, h, (V-1) * L, d)
        k_nb = k[:, others].permute(0, 1, 3, 5, 2, 4, 6).reshape(B * V * T, h, (V - 1) * L, d)
        v_nb = v[:, others].permute(0, 1, 3, 5, 2, 4, 6).reshape(B * V * T, h, (V - 1) * L, d)
        q = q.permute(0, 1, 2, 4, 3, 5).reshape(B * V * T, h, L, d)
        mask = None
        has_neighbour = None
        if view_mask is not None:
            present = view_mask.to(torch.bool)
            nb_present = present[:, others]  # (B, V, V-1)
            has_neighbour = nb_present.any(-1)  # (B, V)
            # rows without any neighbour attend to everything (avoids NaN) and are zeroed below
            nb_present = nb_present | ~has_neighbour[..., None]
            mask = nb_present[:, :, None, :, None].expand(B, V, T, V - 1, L).reshape(B * V * T, 1, 1, (V - 1) * L)
        out = F.scaled_dot_product_attention(q, k_nb, v_nb, attn_mask=mask)
        out = out.view(B, V, T, h, L, d).permute(0, 1, 2, 4, 3, 5).reshape(B, V, T, L, h * d)
        out = self.output_proj(out)
        if has_neighbour is not None:
            out = out * has_neighbour[:, :, None, None, None].to(out.dtype)
        return out
