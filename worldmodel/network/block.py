"""The A2World transformer block (`MultiViewCrossBlock` in the release), built from composable parts.

Order (release): gated self-attention over all views jointly (RoPE) -> ungated cross-view attention
(affine LayerNorm) -> gated per-view cross-attention on the context -> gated MLP. Each gated branch has
its own AdaLN-LoRA modulation: (shift, scale, gate) = chunk3(adaln_X(emb) + adaln_lora), per latent frame.

Tensor layout inside the block: x (B, V, T, L, D); per-frame modulation (B, V*T, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from worldmodel.network.attention import Attention, CrossViewAttention, PerViewCrossAttention
from worldmodel.network.layers import FeedForward, adaln_lora_modulation, init_adaln_lora, modulate


@dataclass
class BlockInputs:
    """Per-forward tensors shared by every block (built once by the network).

    emb (B, V*T, D): normed timestep+action embedding; adaln_lora (B, V*T, 3D); rope (cos, sin) tables for
    one view; context (B, Vc, M, Dc) for the cross-attention, or None to skip the cross-attention branch
    (A2World-sim without history); view_mask (B, V) bool or None; key_mask (B, N) bool self-attention key
    mask or None; k_mem/v_mem (B, M, D) memory or None; context_bias (B, S, M) additive cross-attention
    logit bias shared by the views (A2World-sim view-pair bias) or None.
    """

    emb: torch.Tensor
    adaln_lora: torch.Tensor
    rope: tuple[torch.Tensor, torch.Tensor] | None
    context: torch.Tensor | None
    view_mask: torch.Tensor | None = None
    key_mask: torch.Tensor | None = None
    k_mem: torch.Tensor | None = None
    v_mem: torch.Tensor | None = None
    context_bias: torch.Tensor | None = None


class A2WorldBlock(nn.Module):
    """One DiT block; submodule names and registration order match the release's state dict.

    Variants swap the context attention by overriding `context_attn_name` (the state-dict name; the
    release's A2World-sim uses `cross_biased_attn`) and `build_cross_attn`, and `apply_context`.
    """

    context_attn_name = "cross_attn"

    def __init__(self, dim: int, context_dim: int, n_heads: int, mlp_hidden: int, lora_dim: int,
                 eps: float = 1e-6, cross_view: bool = True) -> None:
        super().__init__()
        head_dim = dim // n_heads
        self.dim = dim
        self.layer_norm_self_attn = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.self_attn = Attention(dim, None, n_heads, head_dim, eps)
        self.layer_norm_cross_attn = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.layer_norm_mlp = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.mlp = FeedForward(dim, mlp_hidden)
        self.adaln_modulation_self_attn = adaln_lora_modulation(dim, lora_dim, 3)
        self.adaln_modulation_cross_attn = adaln_lora_modulation(dim, lora_dim, 3)
        self.adaln_modulation_mlp = adaln_lora_modulation(dim, lora_dim, 3)
        setattr(self, self.context_attn_name, self.build_cross_attn(dim, context_dim, n_heads, head_dim, eps))
        self.cross_view = cross_view
        if cross_view:
            self.cross_view_attn = CrossViewAttention(dim, n_heads, head_dim, eps)
            self.layer_norm_cross_view_attn = nn.LayerNorm(dim, elementwise_affine=True, eps=eps)

    def build_cross_attn(self, dim: int, context_dim: int, n_heads: int, head_dim: int, eps: float) -> nn.Module:
        """The context attention; A2World-sim overrides this with its biased history attention."""
        return PerViewCrossAttention(dim, context_dim, n_heads, head_dim, eps)

    @property
    def context_attn(self) -> nn.Module:
        return getattr(self, self.context_attn_name)

    def init_weights(self) -> None:
        self.self_attn.init_weights()
        self.context_attn.init_weights()
        self.mlp.init_weights()
        for mod in (self.adaln_modulation_self_attn, self.adaln_modulation_cross_attn, self.adaln_modulation_mlp):
            init_adaln_lora(mod)
        if self.cross_view:
            self.cross_view_attn.init_weights()
            nn.init.zeros_(self.cross_view_attn.output_proj.weight)
            self.layer_norm_cross_view_attn.reset_parameters()

    def modulation(self, adaln: nn.Module, inputs: BlockInputs,
                   shape: tuple[int, int, int]) -> tuple[torch.Tensor, ...]:
        """(shift, scale, gate), each (B, V, T, 1, D), from this branch's AdaLN-LoRA."""
        B, V, T = shape
        mod = adaln(inputs.emb) + inputs.adaln_lora
        return mod.view(B, V, T, 1, 3 * self.dim).chunk(3, dim=-1)

    def apply_context(self, x: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        """Cross-attention output for normed x (B, V, T, L, D): (B, V, T, L, D) or a broadcastable shape."""
        B, V, T, L, D = x.shape
        out = self.context_attn(x.reshape(B, V, T * L, D), inputs.context)
        if out.shape[2] == 1:  # single-key context: one vector per view (or shared)
            return out[:, :, None]  # (B, Vc, 1, 1, D)
        return out.view(B, V, T, L, D)

    def forward(self, x: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        B, V, T, L, D = x.shape
        shift_sa, scale_sa, gate_sa = self.modulation(self.adaln_modulation_self_attn, inputs, (B, V, T))
        shift_ca, scale_ca, gate_ca = self.modulation(self.adaln_modulation_cross_attn, inputs, (B, V, T))
        shift_mlp, scale_mlp, gate_mlp = self.modulation(self.adaln_modulation_mlp, inputs, (B, V, T))

        h = modulate(self.layer_norm_self_attn(x), shift_sa, scale_sa)
        sa = self.self_attn(h.reshape(B, V * T * L, D), rope=inputs.rope, key_mask=inputs.key_mask,
                            k_mem=inputs.k_mem, v_mem=inputs.v_mem)
        x = x + gate_sa * sa.view(B, V, T, L, D)

        if self.cross_view:
            cv = self.cross_view_attn(self.layer_norm_cross_view_attn(x), inputs.view_mask)
            if cv is not None:
                x = x + cv

        if inputs.context is None:  # no context (A2World-sim without history): the branch adds nothing
            pass
        elif inputs.context.shape[2] == 1:  # output does not depend on the queries: skip their computation
            x = self.apply_context(x, inputs) * gate_ca + x
        else:
            h = modulate(self.layer_norm_cross_attn(x), shift_ca, scale_ca)
            x = self.apply_context(h, inputs) * gate_ca + x

        h = modulate(self.layer_norm_mlp(x), shift_mlp, scale_mlp)
        return x + gate_mlp * self.mlp(h)
