"""`A2WorldNet`: the action-conditioned multi-view DiT of A2World in plain PyTorch.

Computes what the release's `ActionConditionedMultiViewDiT` computes for the same weights (quirks
included, see docs/worldmodel.md), with state-dict keys identical to `a2world-pretrained.pt` minus the
`net.` prefix. A2World-sim (history tokenizer, memory K/V, view-pair bias; `worldmodel.network.sim`)
subclasses this class: it overrides `build_variant_modules`, `block_cls` and `build_context_and_memory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from worldmodel.configs import A2WorldNetConfig
from worldmodel.network.block import A2WorldBlock, BlockInputs
from worldmodel.network.embeddings import (
    FinalLayer,
    LatentToContext,
    PatchEmbed,
    TimestepEmbedding,
    Timesteps,
    unpatchify,
)
from worldmodel.network.layers import Mlp, RMSNorm
from worldmodel.network.rope import RopePosition3D


def init_video_trunk(net: nn.Module) -> None:
    """The release's initialisation of the video trunk that A2WorldNet and the policy share (patch embed,
    RoPE tables, timestep MLP, blocks, final layer, timestep norm); attribute names as in the release."""
    net.x_embedder_multiview.init_weights()
    for pos in net.pos_embedder_options.values():
        pos.reset_parameters()
    net.t_embedder[1].init_weights()
    for block in net.blocks:
        block.init_weights()
    net.final_layer.init_weights()
    net.t_embedding_norm.reset_parameters()

@dataclass
class VariantContext:
    """What a variant feeds the blocks besides the timestep/action embedding.

    context (B, Vc, M, Dc) or None; k_mem/v_mem (B, V * Mv, D) memory keys/values, view-major, or None;
    context_bias (B, S, M) additive cross-attention logit bias or None.
    """

    context: torch.Tensor | None
    k_mem: torch.Tensor | None = None
    v_mem: torch.Tensor | None = None
    context_bias: torch.Tensor | None = None


class A2WorldNet(nn.Module):
    """The A2World network. Build with `A2WorldNet(config)`; call `forward(...)` (documented there)."""

    block_cls: type[A2WorldBlock] = A2WorldBlock

    def __init__(self, config: A2WorldNetConfig) -> None:
        super().__init__()
        self.config = c = config
        D = c.model_channels
        self.x_embedder_multiview = PatchEmbed(c.patch_spatial, c.patch_temporal, c.patch_in_channels, D)
        self.pos_embedder_options = nn.ModuleDict({
            f"n_cameras_{n}": RopePosition3D(
                head_dim=c.head_dim,
                len_h=c.max_img_h // c.patch_spatial,
                len_w=c.max_img_w // c.patch_spatial,
                len_t=c.max_frames // c.patch_temporal,
                h_extrapolation=c.rope_h_extrapolation,
                w_extrapolation=c.rope_w_extrapolation,
                t_extrapolation=c.rope_t_extrapolation,
                base_fps=c.rope_base_fps,
                fps_modulation=c.rope_fps_modulation,
            )
            for n in range(1, c.max_views + 1)
        })
        self.t_embedder = nn.Sequential(Timesteps(D), TimestepEmbedding(D))
        self.final_layer = FinalLayer(D, c.patch_spatial, c.patch_temporal, c.out_channels, c.adaln_lora_dim,
                                      c.norm_eps)
        self.t_embedding_norm = RMSNorm(D, c.norm_eps)
        self.view_embeddings = nn.Embedding(c.num_view_embeddings, c.view_condition_dim)
        self.action_embedder_B_D_agi = Mlp(c.action_dim, 4 * D, D)
        self.action_embedder_B_3D_agi = Mlp(c.action_dim, 4 * D, 3 * D)
        self.action_to_crossattn_emb = Mlp(c.action_dim, 4 * D, c.crossattn_emb_channels)
        self.build_variant_modules()
        self.blocks = nn.ModuleList([
            self.block_cls(D, c.crossattn_emb_channels, c.num_heads, c.mlp_hidden, c.adaln_lora_dim, c.norm_eps,
                           c.enable_cross_view_attn)
            for _ in range(c.num_blocks)
        ])
        if not any(p.is_meta for p in self.parameters()):
            self.init_weights()

    # ----------------------------------------------------------------------------------- variant hooks
    def build_variant_modules(self) -> None:
        """Modules registered between the action embedders and the blocks (state-dict order)."""
        c = self.config
        if c.use_black:
            self.black_to_crossattn_emb = LatentToContext(c.in_channels, c.black_mid_channels,
                                                          c.crossattn_emb_channels, c.black_pool)

    def build_context_and_memory(
        self, action_flat: torch.Tensor, n_views: int, grid: tuple[int, int, int], *,
        blacks: torch.Tensor | None = None, history: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> VariantContext:
        """Cross-attention context (B, Vc, M, Dc) and optional memory; grid = latent tokens (T, Hp, Wp) per view.

        A2World: the action MLP gives one context token per sample; the release repeats it 512 times per
        view, which is the same attention (uniform weights over identical keys), so it is passed as a
        single token shared by all views. With `blacks` (B, C, T, H, W) latents, the context is
        `black_to_crossattn_emb(blacks)` split evenly over the views (release: 1536 tokens, 3 views).
        """
        if history is not None or state is not None:
            raise ValueError("history/state inputs need the A2World-sim network (variant a2world_sim)")
        if blacks is None or not self.config.use_black:
            return VariantContext(self.action_to_crossattn_emb(action_flat)[:, None])
        tokens = self.black_to_crossattn_emb(blacks.to(action_flat.dtype))
        B, N, Dc = tokens.shape
        if N % n_views:
            raise ValueError(f"blacks context has {N} tokens, not divisible by {n_views} views")
        return VariantContext(tokens.view(B, n_views, N // n_views, Dc))

    # ---------------------------------------------------------------------------------------- helpers
    def init_weights(self) -> None:
        """The release's initialisation (truncated normal linears, AdaLN-Zero, zero cross-view output)."""
        init_video_trunk(self)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder_multiview.proj[1].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.x_embedder_multiview.proj[1].weight.device

    def check_view_ids(self, view_ids: torch.Tensor) -> None:
        """Raise ValueError unless view_ids (B, V) are integers in [0, max_views) and distinct per sample."""
        if view_ids.ndim != 2 or view_ids.dtype.is_floating_point:
            raise ValueError(f"view_ids: shape {tuple(view_ids.shape)} dtype {view_ids.dtype}, "
                             "expected integer (B, V)")
        if view_ids.is_meta:
            return
        ids = view_ids.detach().cpu()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.max_views):
            raise ValueError(f"view_ids: values {ids.tolist()} outside [0, {self.config.max_views - 1}]")
        for row in ids.tolist():
            if len(set(row)) != len(row):
                raise ValueError(f"view_ids: {row} repeats an id; each view of a sample needs its own id")

    # ---------------------------------------------------------------------------------------- forward
    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        action: torch.Tensor,
        view_ids: torch.Tensor,
        condition_mask: torch.Tensor | None = None,
        *,
        fps: float | None = None,
        padding_mask: torch.Tensor | None = None,
        view_mask: torch.Tensor | None = None,
        blacks: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Network output F (the velocity, in the release's preconditioning) for packed multi-view latents.

        x: (B, C, V*T, H, W) latents, views packed along time, view-major (view v = frames v*T..v*T+T-1).
        timesteps: (B, V*T) per-latent-frame c_noise = sigma / (1 + sigma); (B,) or (B, 1) broadcasts.
        action: (B, action_steps, action_per_step) or (B, action_dim) model actions (flattened time-major).
        view_ids: (B, V) integer view id of each packed view (0/1 wrist, 2/3 third-person), distinct per
            sample; `check_view_ids` validates them (not done here to keep the call sync-free).
        condition_mask: (B, 1, V*T, H, W) or (B, V*T), 1 on conditioning latent frames; None = zeros.
        fps: frame rate for the RoPE temporal scaling (default `config.default_fps`, 10).
        padding_mask: (B, 1, Hp, Wp) resized to (H, W) by nearest neighbour; None = zeros (the release).
        view_mask: (B, V) bool, True = present. Absent views are excluded as keys from self-attention and
            cross-view attention, so they cannot influence present views; their outputs are meaningless.
        blacks: optional latents for the `black_to_crossattn_emb` context (unused by the release rollout).
        history: A2World-sim only, (B, C, V*Th, H, W) history latents packed view-major; None = no history.
        state: A2World-sim only, (B, F, S, 22) action-path features (`worldmodel.history.action_path_features`).
        Returns (B, out_channels, V*T, H, W) in the network dtype.
        """
        c = self.config
        dtype = self.dtype
        B, C, VT, H, W = x.shape
        if view_ids.ndim != 2 or view_ids.shape[0] != B:
            raise ValueError(f"view_ids: shape {tuple(view_ids.shape)}, expected ({B}, V)")
        V = view_ids.shape[1]
        if V < 1 or c.max_views < V or VT % V:
            raise ValueError(f"x has {VT} latent frames, not divisible into V={V} views (max {c.max_views})")
        if c.in_channels != C:
            raise ValueError(f"x has {C} channels, expected {c.in_channels}")
        T = VT // V
        p, r = c.patch_spatial, c.patch_temporal
        if T % r or H % p or W % p:
            raise ValueError(f"latent per view (T={T}, H={H}, W={W}) not divisible by the patch (t={r}, h=w={p})")
        x = x.to(dtype)

        if condition_mask is None:
            cond = x.new_zeros(B, 1, VT, H, W)
        elif condition_mask.ndim == 2:
            cond = condition_mask.to(dtype)[:, None, :, None, None].expand(B, 1, VT, H, W)
        else:
            cond = condition_mask.to(dtype)
        parts = [x, cond]
        if c.concat_padding_mask:
            if padding_mask is None:
                pad = x.new_zeros(B, 1, 1, H, W).expand(B, 1, VT, H, W)
            else:
                pm = padding_mask.to(dtype)
                if pm.shape[-2:] != (H, W):
                    pm = nn.functional.interpolate(pm, size=(H, W), mode="nearest")
                pad = pm[:, :, None].expand(B, 1, VT, H, W)
            parts.append(pad)
        ids = view_ids.to(device=x.device, dtype=torch.long).clamp(max=c.num_view_embeddings - 1)
        vemb = self.view_embeddings(ids).to(dtype)  # (B, V, E)
        vemb = vemb.transpose(1, 2)[:, :, :, None, None, None].expand(B, -1, V, T, H, W).reshape(B, -1, VT, H, W)
        parts.append(vemb)
        tokens = self.x_embedder_multiview(torch.cat(parts, dim=1))  # (B, VT/r, H/p, W/p, D)
        Tp, Hp, Wp = T // r, H // p, W // p
        tokens = tokens.view(B, V, Tp, Hp * Wp, c.model_channels)

        act = action.to(device=x.device, dtype=dtype).reshape(B, 1, -1)
        if act.shape[-1] != c.action_dim:
            raise ValueError(f"action has {act.shape[-1]} values per sample, expected {c.action_dim} "
                             f"({c.action_steps} x {c.action_per_step})")
        emb_D = self.action_embedder_B_D_agi(act)
        emb_3D = self.action_embedder_B_3D_agi(act)

        t = timesteps.to(device=x.device, dtype=dtype)
        if t.ndim == 1:
            t = t[:, None]
        t = t.expand(B, V * Tp) if t.shape[1] == 1 else t
        if t.shape != (B, V * Tp):
            raise ValueError(f"timesteps: shape {tuple(timesteps.shape)}, expected ({B}, {V * Tp}) or ({B},)")
        emb, adaln_lora = self.t_embedder(t)
        emb = self.t_embedding_norm(emb + emb_D)
        adaln_lora = adaln_lora + emb_3D

        ctx = self.build_context_and_memory(act, V, (Tp, Hp, Wp), blacks=blacks, history=history, state=state)
        rope = self.pos_embedder_options[f"n_cameras_{V}"].cos_sin(Tp, Hp, Wp, c.default_fps if fps is None else fps)
        key_mask = vm = None
        if view_mask is not None:
            vm = view_mask.to(device=x.device, dtype=torch.bool)
            key_mask = vm[:, :, None].expand(B, V, Tp * Hp * Wp).reshape(B, -1)
            if ctx.k_mem is not None:  # memory keys come first, view-major: an absent view's memory is masked
                mem_mask = vm[:, :, None].expand(B, V, ctx.k_mem.shape[1] // V).reshape(B, -1)
                key_mask = torch.cat([mem_mask, key_mask], dim=1)
        inputs = BlockInputs(emb=emb, adaln_lora=adaln_lora, rope=rope, context=ctx.context,
                             view_mask=vm, key_mask=key_mask, k_mem=ctx.k_mem, v_mem=ctx.v_mem,
                             context_bias=ctx.context_bias)
        for block in self.blocks:
            tokens = block(tokens, inputs)
        out = self.final_layer(tokens, emb, adaln_lora)  # (B, V, Tp, L, p*p*r*C)
        out = out.view(B, V * Tp, Hp, Wp, -1)
        return unpatchify(out, p, r, c.out_channels)


def build_net(config: A2WorldNetConfig, device: torch.device | str | None = None,
              dtype: torch.dtype | None = None) -> A2WorldNet:
    """Instantiate the network for `config.variant` on `device` ("meta" builds it without memory)."""
    if config.variant == "a2world_sim":
        from worldmodel.network.sim import A2WorldSimNet

        cls: type[A2WorldNet] = A2WorldSimNet
    elif config.variant == "a2world":
        cls = A2WorldNet
    else:
        raise ValueError(f"network variant {config.variant!r}: expected 'a2world' or 'a2world_sim'")
    with torch.device(device or "cpu"):
        net = cls(config)
    return net if dtype is None else net.to(dtype)
