"""The policy's MoE-like transformer block: the A2World block (video branch, unchanged names) plus an
action branch with its own AdaLN-LoRA modulations and MLP, sharing self-attention and cross-attention.

- Self-attention: one set of q/k/v/output projections for both modalities. Video queries attend to the
  video tokens (RoPE as in A2World); action queries attend to video *and* action tokens. With
  `video_attends_actions` the video queries see the action tokens too (off by default: the video branch
  then computes exactly what the pretrained world model computes, which keeps its prior intact).
- Optional (`policy.action_reads_position`): the video values the action queries read carry each
  token's absolute place (`value_pos_action`, zero-initialised), since RoPE alone gives values no place.
- Cross-view attention: video only (it relates views at the same latent frame).
- Cross-attention on the instruction context: shared weights, per-modality AdaLN.
- MLP: `mlp` for video, `mlp_action` for actions.

Action-branch parameters are named `<video name>_action` so `copy_video_to_action` can initialise them
from the video branch tensor by tensor.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from worldmodel.network.block import A2WorldBlock, BlockInputs
from worldmodel.network.layers import FeedForward, adaln_lora_modulation, modulate
from worldmodel.network.rope import apply_rope

ACTION_MODULES = ("adaln_modulation_self_attn", "adaln_modulation_cross_attn", "adaln_modulation_mlp", "mlp")
"""Video-branch modules of a block that have an action twin named `<name>_action`."""


class JointBlock(A2WorldBlock):
    """One joint video-action block; `forward(xv, xa, inputs, act)` returns the updated (xv, xa)."""

    def __init__(self, dim: int, context_dim: int, n_heads: int, mlp_hidden: int, lora_dim: int,
                 eps: float = 1e-6, cross_view: bool = True, video_attends_actions: bool = False,
                 action_reads_position: bool = False) -> None:
        super().__init__(dim, context_dim, n_heads, mlp_hidden, lora_dim, eps, cross_view)
        self.video_attends_actions = video_attends_actions
        if action_reads_position:
            # zero-initialised, so a network initialised from A2World computes what it did before
            self.value_pos_action = nn.Linear(dim, dim, bias=False)
        self.adaln_modulation_self_attn_action = adaln_lora_modulation(dim, lora_dim, 3)
        self.adaln_modulation_cross_attn_action = adaln_lora_modulation(dim, lora_dim, 3)
        self.adaln_modulation_mlp_action = adaln_lora_modulation(dim, lora_dim, 3)
        self.mlp_action = FeedForward(dim, mlp_hidden)

    def init_weights(self) -> None:
        super().init_weights()
        self.copy_video_to_action()
        if hasattr(self, "value_pos_action"):
            nn.init.zeros_(self.value_pos_action.weight)

    @torch.no_grad()
    def copy_video_to_action(self) -> None:
        """Set every action-branch tensor to a copy of its video-branch counterpart."""
        for name in ACTION_MODULES:
            src, dst = getattr(self, name), getattr(self, f"{name}_action")
            dst.load_state_dict(copy.deepcopy(src.state_dict()))

    def _action_mod(self, adaln: nn.Module, emb: torch.Tensor, lora: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (adaln(emb) + lora).chunk(3, dim=-1)  # each (B, Ha, D)

    def _joint_self_attention(self, hv: torch.Tensor, ha: torch.Tensor, inputs: BlockInputs,
                              video_pos: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        attn = self.self_attn
        Nv = hv.shape[1]
        qv, (kv, vv) = attn.project_q(hv), attn.project_kv(hv)
        if inputs.rope is not None:
            qv, kv = apply_rope(qv, *inputs.rope), apply_rope(kv, *inputs.rope)
        qa, (ka, va) = attn.project_q(ha), attn.project_kv(ha)
        vv_for_actions = vv
        if video_pos is not None and hasattr(self, "value_pos_action"):
            # RoPE puts positions into attention scores only; this puts each video token's absolute place
            # (view, frame, row, column) into the values the action queries read: an attention-weighted
            # average of places, i.e. a spatial-softmax keypoint readout.
            vv_for_actions = vv + self.value_pos_action(video_pos).view(vv.shape)
        k_all = torch.cat([kv, ka], dim=1).transpose(1, 2)
        v_all = torch.cat([vv_for_actions, va], dim=1).transpose(1, 2)
        if self.video_attends_actions:
            q_all = torch.cat([qv, qa], dim=1).transpose(1, 2)
            out = F.scaled_dot_product_attention(q_all, k_all, v_all).transpose(1, 2).flatten(2)
            out = attn.output_proj(out)
            return out[:, :Nv], out[:, Nv:]
        out_v = F.scaled_dot_product_attention(qv.transpose(1, 2), kv.transpose(1, 2), vv.transpose(1, 2))
        out_a = F.scaled_dot_product_attention(qa.transpose(1, 2), k_all, v_all)
        return (attn.output_proj(out_v.transpose(1, 2).flatten(2)),
                attn.output_proj(out_a.transpose(1, 2).flatten(2)))

    def forward(self, xv: torch.Tensor, xa: torch.Tensor, inputs: BlockInputs,  # type: ignore[override]
                act: BlockInputs, video_pos: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """xv (B, V, T, L, D) video tokens, xa (B, Ha, D) action tokens; `act.emb` (B, Ha, D) and
        `act.adaln_lora` (B, Ha, 3D) modulate the action branch; `inputs.context` (B, 1, M, Dc);
        `video_pos` (B, V*T*L, D) absolute token places for the action readout (`action_reads_position`)."""
        B, V, T, L, D = xv.shape
        shift_sa, scale_sa, gate_sa = self.modulation(self.adaln_modulation_self_attn, inputs, (B, V, T))
        shift_ca, scale_ca, gate_ca = self.modulation(self.adaln_modulation_cross_attn, inputs, (B, V, T))
        shift_mlp, scale_mlp, gate_mlp = self.modulation(self.adaln_modulation_mlp, inputs, (B, V, T))
        a_shift_sa, a_scale_sa, a_gate_sa = self._action_mod(self.adaln_modulation_self_attn_action, act.emb,
                                                             act.adaln_lora)
        a_shift_ca, a_scale_ca, a_gate_ca = self._action_mod(self.adaln_modulation_cross_attn_action, act.emb,
                                                             act.adaln_lora)
        a_shift_mlp, a_scale_mlp, a_gate_mlp = self._action_mod(self.adaln_modulation_mlp_action, act.emb,
                                                                act.adaln_lora)

        hv = modulate(self.layer_norm_self_attn(xv), shift_sa, scale_sa).reshape(B, V * T * L, D)
        ha = modulate(self.layer_norm_self_attn(xa), a_shift_sa, a_scale_sa)
        sa_v, sa_a = self._joint_self_attention(hv, ha, inputs, video_pos)
        xv = xv + gate_sa * sa_v.view(B, V, T, L, D)
        xa = xa + a_gate_sa * sa_a

        if self.cross_view:
            cv = self.cross_view_attn(self.layer_norm_cross_view_attn(xv), inputs.view_mask)
            if cv is not None:
                xv = xv + cv

        hv = modulate(self.layer_norm_cross_attn(xv), shift_ca, scale_ca)
        xv = self.apply_context(hv, inputs) * gate_ca + xv
        ha = modulate(self.layer_norm_cross_attn(xa), a_shift_ca, a_scale_ca)
        xa = self.context_attn(ha[:, None], inputs.context)[:, 0] * a_gate_ca + xa

        hv = modulate(self.layer_norm_mlp(xv), shift_mlp, scale_mlp)
        xv = xv + gate_mlp * self.mlp(hv)
        ha = modulate(self.layer_norm_mlp(xa), a_shift_mlp, a_scale_mlp)
        xa = xa + a_gate_mlp * self.mlp_action(ha)
        return xv, xa
