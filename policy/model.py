"""`PolicyNet`: the joint video-action diffusion transformer of A2World-policy.

Models p(o_{t+1:t+k}, a_{t+1:t+k} | o_t, l). The video branch is the A2World network (same module names,
so an A2World checkpoint loads into it as is, minus the world model's action-conditioning MLPs); the
action branch adds, per block, modality-specific AdaLN-LoRA modulations and an MLP (`policy/blocks.py`),
action-token input/position embeddings and a final AdaLN + linear head on the last layer's action tokens.
The instruction embeddings (B, M, crossattn_emb_channels) are every block's cross-attention context.

The network takes preconditioned inputs and per-token timesteps c_noise = sigma / (1 + sigma) for both
modalities (`policy/diffusion.py` does the preconditioning); per-token action timesteps are what makes a
clean committed prefix possible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from policy.blocks import ACTION_MODULES, JointBlock
from policy.config import PolicyConfig
from worldmodel.network.a2world import init_video_trunk
from worldmodel.network.block import BlockInputs
from worldmodel.network.embeddings import FinalLayer, PatchEmbed, TimestepEmbedding, Timesteps, unpatchify
from worldmodel.network.layers import Mlp, RMSNorm, modulate, trunc_normal_
from worldmodel.network.rope import RopePosition3D

ACTION_DIM = 14
STATE_DIM = 16
ACTION_ONLY_PREFIXES = ("action_in.", "action_pos", "state_embedder", "final_layer_action.")
"""Parameters with no video-branch counterpart (fresh at initialisation from A2World)."""


class PolicyNet(nn.Module):
    """Joint denoiser network. `forward(...)` is documented there; build with `PolicyNet(config)`."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        c, p = config.net, config.policy
        D = c.model_channels
        self.x_embedder_multiview = PatchEmbed(c.patch_spatial, c.patch_temporal, c.patch_in_channels, D)
        self.pos_embedder_options = nn.ModuleDict({
            f"n_cameras_{n}": RopePosition3D(
                head_dim=c.head_dim, len_h=c.max_img_h // c.patch_spatial, len_w=c.max_img_w // c.patch_spatial,
                len_t=c.max_frames // c.patch_temporal, h_extrapolation=c.rope_h_extrapolation,
                w_extrapolation=c.rope_w_extrapolation, t_extrapolation=c.rope_t_extrapolation,
                base_fps=c.rope_base_fps, fps_modulation=c.rope_fps_modulation)
            for n in range(1, c.max_views + 1)
        })
        self.t_embedder = nn.Sequential(Timesteps(D), TimestepEmbedding(D))
        self.final_layer = FinalLayer(D, c.patch_spatial, c.patch_temporal, c.out_channels, c.adaln_lora_dim,
                                      c.norm_eps)
        self.t_embedding_norm = RMSNorm(D, c.norm_eps)
        self.view_embeddings = nn.Embedding(c.num_view_embeddings, c.view_condition_dim)
        self.blocks = nn.ModuleList([
            JointBlock(D, c.crossattn_emb_channels, c.num_heads, c.mlp_hidden, c.adaln_lora_dim, c.norm_eps,
                       c.enable_cross_view_attn, p.video_attends_actions, p.action_reads_position)
            for _ in range(c.num_blocks)
        ])
        # action branch (no video counterpart)
        self.action_in = nn.Linear(ACTION_DIM, D)
        self.action_pos = nn.Parameter(torch.zeros(p.action_horizon, D))
        if p.action_reads_position:  # learned per-axis places of the video tokens (view, frame, row, column)
            self.action_pos_view = nn.Parameter(torch.zeros(c.num_view_embeddings, D))
            self.action_pos_t = nn.Parameter(torch.zeros(c.max_frames // c.patch_temporal, D))
            self.action_pos_h = nn.Parameter(torch.zeros(c.max_img_h // c.patch_spatial, D))
            self.action_pos_w = nn.Parameter(torch.zeros(c.max_img_w // c.patch_spatial, D))
        # final AdaLN (copied from the video final layer) + the linear action head
        self.final_layer_action = FinalLayer(D, 1, 1, ACTION_DIM, c.adaln_lora_dim, c.norm_eps)
        if p.use_state:
            self.state_embedder_B_D = Mlp(STATE_DIM, 4 * D, D)
            self.state_embedder_B_3D = Mlp(STATE_DIM, 4 * D, 3 * D)
        if not any(t.is_meta for t in self.parameters()):
            self.init_weights()

    # ------------------------------------------------------------------------------------------- init
    def init_weights(self) -> None:
        """A2World's initialisation for the video branch; the action branch copies it where it can."""
        init_video_trunk(self)
        D = self.config.net.model_channels
        trunc_normal_(self.action_in.weight, ACTION_DIM)
        nn.init.zeros_(self.action_in.bias)
        with torch.no_grad():  # sinusoidal step positions, scaled like the token embeddings
            pos = torch.arange(self.action_pos.shape[0], dtype=torch.float32)[:, None]
            freq = torch.exp(-math.log(10000.0) * torch.arange(0, D, 2, dtype=torch.float32) / D)
            table = torch.zeros_like(self.action_pos, dtype=torch.float32)
            table[:, 0::2] = torch.sin(pos * freq)
            table[:, 1::2] = torch.cos(pos * freq[: D // 2])
            self.action_pos.copy_(table)
        if self.config.policy.action_reads_position:
            for table in (self.action_pos_view, self.action_pos_t, self.action_pos_h, self.action_pos_w):
                nn.init.normal_(table, std=0.5)  # summed over 4 axes: unit-scale places
        self.final_layer_action.init_weights()
        self.final_layer_action.adaln_modulation.load_state_dict(self.final_layer.adaln_modulation.state_dict())
        if self.config.policy.use_state:
            for mlp in (self.state_embedder_B_D, self.state_embedder_B_3D):
                trunc_normal_(mlp.fc1.weight, STATE_DIM)
                nn.init.zeros_(mlp.fc1.bias)
                nn.init.zeros_(mlp.fc2.weight)  # zero: a fresh state input leaves the A2World prior unchanged
                nn.init.zeros_(mlp.fc2.bias)

    @torch.no_grad()
    def copy_video_to_action(self) -> None:
        """Action-branch modules := copies of their video-branch counterparts (after loading A2World)."""
        for block in self.blocks:
            block.copy_video_to_action()
        self.final_layer_action.adaln_modulation.load_state_dict(self.final_layer.adaln_modulation.state_dict())

    def action_branch_pairs(self) -> list[tuple[str, str]]:
        """(action parameter name, video parameter name) of every copied tensor."""
        pairs = []
        for i, block in enumerate(self.blocks):
            for name in ACTION_MODULES:
                for sub, _ in getattr(block, name).named_parameters():
                    pairs.append((f"blocks.{i}.{name}_action.{sub}", f"blocks.{i}.{name}.{sub}"))
        for sub, _ in self.final_layer.adaln_modulation.named_parameters():
            pairs.append((f"final_layer_action.adaln_modulation.{sub}", f"final_layer.adaln_modulation.{sub}"))
        return pairs

    @property
    def dtype(self) -> torch.dtype:
        return self.action_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.action_in.weight.device

    # ---------------------------------------------------------------------------------------- forward
    def _video_tokens(self, xv: torch.Tensor, cond_mask: torch.Tensor, view_ids: torch.Tensor) -> torch.Tensor:
        c = self.config.net
        B, _, VT, H, W = xv.shape
        V = view_ids.shape[1]
        T = VT // V
        cond = cond_mask.to(xv.dtype)[:, None, :, None, None].expand(B, 1, VT, H, W)
        parts = [xv, cond]
        if c.concat_padding_mask:
            parts.append(xv.new_zeros(B, 1, VT, H, W))
        ids = view_ids.to(device=xv.device, dtype=torch.long).clamp(max=c.num_view_embeddings - 1)
        vemb = self.view_embeddings(ids).to(xv.dtype)
        parts.append(vemb.transpose(1, 2)[:, :, :, None, None, None].expand(B, -1, V, T, H, W).reshape(B, -1, VT, H, W))
        tokens = self.x_embedder_multiview(torch.cat(parts, dim=1))
        return tokens.reshape(B, V, T // c.patch_temporal, (H // c.patch_spatial) * (W // c.patch_spatial), -1)

    def _video_places(self, view_ids: torch.Tensor, Tp: int, Hp: int, Wp: int) -> torch.Tensor:
        """(B, V*Tp*Hp*Wp, D) absolute places of the video tokens, in their packing order."""
        ids = view_ids.to(device=self.action_pos_view.device, dtype=torch.long)
        ids = ids.clamp(max=self.config.net.num_view_embeddings - 1)
        hw = (self.action_pos_h[:Hp, None] + self.action_pos_w[None, :Wp]).reshape(Hp * Wp, -1)
        places = (self.action_pos_view[ids][:, :, None, None] + self.action_pos_t[:Tp][None, None, :, None]
                  + hw[None, None, None])
        return places.reshape(ids.shape[0], -1, places.shape[-1]).to(self.dtype)

    def forward(self, xv: torch.Tensor, tv: torch.Tensor, cond_mask: torch.Tensor, view_ids: torch.Tensor,
                xa: torch.Tensor, ta: torch.Tensor, context: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Network outputs (F_v, F_a) for preconditioned inputs.

        xv: (B, C, V*T, H, W) video latents (views packed along time, view-major); tv: (B, V*T) per-frame
        c_noise; cond_mask: (B, V*T) 1 on conditioning frames; view_ids: (B, V) integers.
        xa: (B, Ha, 14) action tokens; ta: (B, Ha) per-step c_noise; context: (B, M, Dc) instruction
        embeddings; state: (B, 16) normalised proprioception when `policy.use_state`.
        Returns F_v (B, C, V*T, H, W) and F_a (B, Ha, 14) in the network dtype.
        """
        c = self.config.net
        dtype = self.dtype
        B, _, VT, H, W = xv.shape
        V = view_ids.shape[1]
        Tp, Hp, Wp = VT // V // c.patch_temporal, H // c.patch_spatial, W // c.patch_spatial
        Ha = xa.shape[1]
        tokens_v = self._video_tokens(xv.to(dtype), cond_mask, view_ids)
        tokens_a = self.action_in(xa.to(dtype)) + self.action_pos[:Ha].to(dtype)

        emb_v, lora_v = self.t_embedder(tv.to(dtype).reshape(B, V * Tp))
        emb_a, lora_a = self.t_embedder(ta.to(dtype))
        if self.config.policy.use_state:
            if state is None:
                raise ValueError("state: None, but this policy was configured with use_state (expected (B, 16))")
            s = state.to(dtype)[:, None]
            s_D, s_3D = self.state_embedder_B_D(s), self.state_embedder_B_3D(s)
            emb_v, lora_v = emb_v + s_D, lora_v + s_3D
            emb_a, lora_a = emb_a + s_D, lora_a + s_3D
        emb_v, emb_a = self.t_embedding_norm(emb_v), self.t_embedding_norm(emb_a)

        rope = self.pos_embedder_options[f"n_cameras_{V}"].cos_sin(Tp, Hp, Wp, float(self.config.policy.video_fps))
        ctx = context.to(dtype)[:, None]
        inputs = BlockInputs(emb=emb_v, adaln_lora=lora_v, rope=rope, context=ctx)
        act = BlockInputs(emb=emb_a, adaln_lora=lora_a, rope=None, context=ctx)
        places = self._video_places(view_ids, Tp, Hp, Wp) if self.config.policy.action_reads_position else None
        for block in self.blocks:
            tokens_v, tokens_a = block(tokens_v, tokens_a, inputs, act, places)
        out_v = self.final_layer(tokens_v, emb_v, lora_v).view(B, V * Tp, Hp, Wp, -1)
        out_v = unpatchify(out_v, c.patch_spatial, c.patch_temporal, c.out_channels)
        mod = self.final_layer_action.adaln_modulation(emb_a) + lora_a[..., : 2 * c.model_channels]
        shift, scale = mod.chunk(2, dim=-1)
        out_a = self.final_layer_action.linear(modulate(self.final_layer_action.layer_norm(tokens_a), shift, scale))
        return out_v, out_a


def build_policy_net(config: PolicyConfig, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> PolicyNet:
    """Instantiate on `device` ("meta" builds without memory, e.g. to count parameters)."""
    with torch.device(device or "cpu"):
        net = PolicyNet(config)
    return net if dtype is None else net.to(dtype)


def count_parameters(net: nn.Module) -> dict[str, int]:
    """Parameter counts: total, video branch (A2World names), action branch and instruction encoder."""
    total = video = action = 0
    for name, p in net.named_parameters():
        n = p.numel()
        total += n
        if "_action" in name or name.startswith(ACTION_ONLY_PREFIXES):
            action += n
        else:
            video += n
    return {"total": total, "video_branch": video, "action_branch": action}


def init_from_a2world(net: PolicyNet, state: Mapping[str, torch.Tensor], source: str) -> dict[str, list[str]]:
    """Load an A2World state dict (prefix-free names) into the video branch, then copy it to the action
    branch. World-model-only keys (action MLPs, black tokenizer) are skipped and reported.

    Returns {"loaded", "skipped", "fresh"} key lists; a wrongly shaped shared key raises ValueError.
    """
    target = net.state_dict()
    loaded, skipped = [], []
    picked: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in target:
            if tuple(target[key].shape) != tuple(value.shape):
                raise ValueError(f"{source}: {key} has shape {list(value.shape)}, the policy expects "
                                 f"{list(target[key].shape)} (config mismatch?)")
            picked[key] = value
            loaded.append(key)
        else:
            skipped.append(key)
    net.load_state_dict(picked, strict=False)
    net.copy_video_to_action()
    copied = {a for a, _ in net.action_branch_pairs()}
    fresh = [k for k in target if k not in picked and k not in copied]
    return {"loaded": loaded, "skipped": skipped, "fresh": fresh}


def init_cross_attn_from_cosmos(net: PolicyNet, state: Mapping[str, torch.Tensor], source: str) -> list[str]:
    """Copy `blocks.<i>.cross_attn.*` (and their norms) from a Cosmos-Predict2 state dict; returns the keys."""
    target = net.state_dict()
    picked = {k: v for k, v in state.items() if ".cross_attn." in k and k in target}
    if not picked:
        raise ValueError(f"{source}: no blocks.<i>.cross_attn.* tensors that fit this policy")
    for key, value in picked.items():
        if tuple(value.shape) != tuple(target[key].shape):
            raise ValueError(f"{source}: {key} has shape {list(value.shape)}, expected {list(target[key].shape)}")
    net.load_state_dict(picked, strict=False)
    return sorted(picked)
