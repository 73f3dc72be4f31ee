"""A2WorldNet against a literal, loop-based re-statement of the release's forward pass (float64).

The reference below follows the official `ActionConditionedMultiViewDiT.forward` step by step, written
independently of worldmodel/network: explicit patch feature indices, the action context as repeated
tokens per view (the release uses 512), cross-view attention by gathering each view's neighbours from the
hard-coded map, hand-written softmax attention and RoPE from the formulas.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from worldmodel.configs import load_net_config
from worldmodel.network import A2WorldNet, build_net
from worldmodel.network.rope import RopePosition3D

CROSS_VIEW_MAP = {0: [1, 2, 3], 1: [0, 2, 3], 2: [0, 1, 3], 3: [0, 1, 2]}


def rms(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def ln(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q (Sq, h, d), k/v (Sk, h, d) -> (Sq, h*d), plain softmax attention."""
    logits = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
    out = torch.einsum("hqk,khd->qhd", logits.softmax(-1), v)
    return out.reshape(q.shape[0], -1)


def rope_table(cfg, T: int, H: int, W: int, fps: float) -> torch.Tensor:
    d = cfg.head_dim
    dh = d // 6 * 2
    dt = d - 2 * dh
    th_h = 10000.0 * cfg.rope_h_extrapolation ** (dh / (dh - 2))
    th_t = 10000.0 * cfg.rope_t_extrapolation ** (dt / (dt - 2))
    fh = th_h ** (-torch.arange(0, dh, 2, dtype=torch.float64) / dh)
    ft = th_t ** (-torch.arange(0, dt, 2, dtype=torch.float64) / dt)
    rows = []
    for t in range(T):
        for i in range(H):
            for j in range(W):
                half = torch.cat([t / fps * cfg.rope_base_fps * ft, i * fh, j * fh])
                rows.append(torch.cat([half, half]))
    return torch.stack(rows)  # (T*H*W, d)


def rotate(x: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
    """x (S, h, d), ang (S, d): rotate-half convention."""
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1)
    return x * ang.cos()[:, None] + rot * ang.sin()[:, None]


def reference_forward(net: A2WorldNet, x, t, a, ids, cond_mask, fps: float = 10.0, ctx_repeat: int = 8,
                      extend_kv=None, cross_attn=None):
    """The literal forward. Variant hooks (A2World-sim): `extend_kv(prefix, b, k, v) -> (k, v)` changes the
    self-attention keys/values of sample b; `cross_attn(prefix, b, j, queries) -> out` replaces the
    cross-attention of view j (queries: that view's modulated tokens)."""
    cfg = net.config
    sd = {k: v for k, v in net.state_dict().items()}
    B, C, VT, H, W = x.shape
    V = ids.shape[1]
    T = VT // V
    h, w = H // 2, W // 2
    D, nh, hd = cfg.model_channels, cfg.num_heads, cfg.head_dim

    vemb = sd["view_embeddings.weight"][ids.clamp(max=3)]  # (B, V, 7)
    vemb = vemb.repeat_interleave(T, dim=1).permute(0, 2, 1)[..., None, None].expand(B, 7, VT, H, W)
    inp = torch.cat([x, cond_mask, torch.zeros(B, 1, VT, H, W, dtype=x.dtype), vemb], dim=1)
    feats = torch.zeros(B, VT, h, w, inp.shape[1] * 4, dtype=x.dtype)
    for ch in range(inp.shape[1]):
        for m in range(2):
            for n in range(2):
                feats[..., ch * 4 + m * 2 + n] = inp[:, ch, :, m::2, n::2]
    tok = feats @ sd["x_embedder_multiview.proj.1.weight"].T  # (B, VT, h, w, D)

    def mlp(prefix: str, z: torch.Tensor) -> torch.Tensor:
        z = F.gelu(z @ sd[f"{prefix}.fc1.weight"].T + sd[f"{prefix}.fc1.bias"], approximate="tanh")
        return z @ sd[f"{prefix}.fc2.weight"].T + sd[f"{prefix}.fc2.bias"]

    A = a.reshape(B, 1, -1)
    e_d, e_3d = mlp("action_embedder_B_D_agi", A), mlp("action_embedder_B_3D_agi", A)
    freqs = torch.exp(-math.log(10000) * torch.arange(D // 2, dtype=x.dtype) / (D // 2))
    sinus = torch.cat([torch.cos(t[..., None] * freqs), torch.sin(t[..., None] * freqs)], dim=-1)
    lora = F.silu(sinus @ sd["t_embedder.1.linear_1.weight"].T) @ sd["t_embedder.1.linear_2.weight"].T + e_3d
    emb = rms(sinus + e_d, sd["t_embedding_norm.weight"])
    ctx = mlp("action_to_crossattn_emb", A).expand(B, V * ctx_repeat, -1)  # release: zeros + MLP, repeated
    ang = rope_table(cfg, T, h, w, fps).repeat(V, 1)  # every view reuses the same positions

    def heads(z: torch.Tensor) -> torch.Tensor:
        return z.reshape(*z.shape[:-1], nh, hd)

    for i in range(cfg.num_blocks):
        p = f"blocks.{i}."

        def mod(name: str, p: str = p) -> list[torch.Tensor]:
            m = F.silu(emb) @ sd[f"{p}{name}.1.weight"].T @ sd[f"{p}{name}.2.weight"].T + lora
            return [c[:, :, None, None, :] for c in m.chunk(3, dim=-1)]

        sh, sc, g = mod("adaln_modulation_self_attn")
        xn = (ln(tok) * (1 + sc) + sh).reshape(B, -1, D)
        out = torch.zeros_like(xn)
        for b in range(B):
            q = rotate(rms(heads(xn[b] @ sd[p + "self_attn.q_proj.weight"].T), sd[p + "self_attn.q_norm.weight"]),
                       ang)
            k = rotate(rms(heads(xn[b] @ sd[p + "self_attn.k_proj.weight"].T), sd[p + "self_attn.k_norm.weight"]),
                       ang)
            v = heads(xn[b] @ sd[p + "self_attn.v_proj.weight"].T)
            if extend_kv is not None:
                k, v = extend_kv(p, b, k, v)
            out[b] = attend(q, k, v) @ sd[p + "self_attn.output_proj.weight"].T
        tok = tok + g * out.reshape(tok.shape)

        # cross-view attention (no modulation): per (b, frame t, view), keys = neighbours present at t
        xv = F.layer_norm(tok, (D,), sd[p + "layer_norm_cross_view_attn.weight"],
                          sd[p + "layer_norm_cross_view_attn.bias"], eps=1e-6).reshape(B, V, T, h * w, D)
        cv = torch.zeros_like(xv)
        for b in range(B):
            pos_of = {int(ids[b, j]): j for j in range(V)}
            for f in range(T):
                for j in range(V):
                    nbrs = [pos_of[n] for n in CROSS_VIEW_MAP[int(ids[b, j])] if n in pos_of]
                    if not nbrs:
                        continue
                    kv = torch.cat([xv[b, n, f] for n in sorted(nbrs, reverse=True)])
                    q = rms(heads(xv[b, j, f] @ sd[p + "cross_view_attn.q_proj.weight"].T),
                            sd[p + "cross_view_attn.q_norm.weight"])
                    k = rms(heads(kv @ sd[p + "cross_view_attn.k_proj.weight"].T),
                            sd[p + "cross_view_attn.k_norm.weight"])
                    v = heads(kv @ sd[p + "cross_view_attn.v_proj.weight"].T)
                    cv[b, j, f] = attend(q, k, v) @ sd[p + "cross_view_attn.output_proj.weight"].T
        tok = tok + cv.reshape(tok.shape)

        sh, sc, g = mod("adaln_modulation_cross_attn")
        xn = (ln(tok) * (1 + sc) + sh).reshape(B, V, T * h * w, D)
        out = torch.zeros_like(xn)
        for b in range(B):
            for j in range(V):
                if cross_attn is not None:
                    out[b, j] = cross_attn(p, b, j, xn[b, j])
                    continue
                c_slice = ctx[b, j * ctx_repeat:(j + 1) * ctx_repeat]
                q = rms(heads(xn[b, j] @ sd[p + "cross_attn.q_proj.weight"].T), sd[p + "cross_attn.q_norm.weight"])
                k = rms(heads(c_slice @ sd[p + "cross_attn.k_proj.weight"].T), sd[p + "cross_attn.k_norm.weight"])
                v = heads(c_slice @ sd[p + "cross_attn.v_proj.weight"].T)
                out[b, j] = attend(q, k, v) @ sd[p + "cross_attn.output_proj.weight"].T
        tok = out.reshape(tok.shape) * g + tok

        sh, sc, g = mod("adaln_modulation_mlp")
        xn = ln(tok) * (1 + sc) + sh
        tok = tok + g * (F.gelu(xn @ sd[p + "mlp.layer1.weight"].T) @ sd[p + "mlp.layer2.weight"].T)

    m = (F.silu(emb) @ sd["final_layer.adaln_modulation.1.weight"].T @ sd["final_layer.adaln_modulation.2.weight"].T
         + lora[..., : 2 * D])
    shift, scale = (c[:, :, None, None, :] for c in m.chunk(2, dim=-1))
    y = (ln(tok) * (1 + scale) + shift) @ sd["final_layer.linear.weight"].T  # (B, VT, h, w, 4 * C)
    out = torch.zeros(B, C, VT, H, W, dtype=x.dtype)
    for p1 in range(2):
        for p2 in range(2):
            for ch in range(C):
                out[:, ch, :, p1::2, p2::2] = y[..., p1 * 2 * C + p2 * C + ch]
    return out


@pytest.mark.parametrize("view_ids", [[[0, 2, 1], [2, 3, 0]], [[1, 3], [0, 2]], [[2], [0]]])
def test_forward_matches_literal_reference(view_ids: list[list[int]]) -> None:
    torch.manual_seed(0)
    net = build_net(load_net_config("tiny")).double().eval()
    with torch.no_grad():
        for prm in net.parameters():
            prm.normal_(0.0, 0.1)
    ids = torch.tensor(view_ids)
    B, V, T = ids.shape[0], ids.shape[1], 6
    g = torch.Generator().manual_seed(3)
    x = torch.randn(B, 16, V * T, 8, 8, generator=g, dtype=torch.float64)
    t = torch.rand(B, V * T, generator=g, dtype=torch.float64)
    a = torch.randn(B, 20, 14, generator=g, dtype=torch.float64) * 0.1
    cond = torch.zeros(B, 1, V * T, 8, 8, dtype=torch.float64)
    cond[:, :, ::T] = 1.0
    with torch.no_grad():
        mine = net(x, t, a, ids, cond)
        ref = reference_forward(net, x, t, a, ids, cond)
    torch.testing.assert_close(mine, ref, rtol=1e-9, atol=1e-9)


def test_release_rope_values() -> None:
    cfg = load_net_config("a2world_2b")
    rope = RopePosition3D(cfg.head_dim, 120, 120, 128, 3.0, 3.0, 0.25, 24.0, True)
    assert rope.dim_h == 42 and rope.dim_t == 44
    assert 10000.0 * rope.h_ntk == pytest.approx(31694.0, rel=1e-4)
    assert 10000.0 * rope.t_ntk == pytest.approx(2340.29, rel=1e-4)
    ang = rope.angles(6, 16, 16, fps=10.0)
    temporal_pos = ang[:: 16 * 16, 0]  # first temporal frequency is 1: angle = position
    torch.testing.assert_close(temporal_pos, torch.tensor([0.0, 2.4, 4.8, 7.2, 9.6, 12.0]))
    torch.testing.assert_close(ang, rope_table(cfg, 6, 16, 16, 10.0).float(), rtol=1e-5, atol=1e-5)
    # after .to(bfloat16) the release computes the table from bf16 buffers: quantised angles
    ang_bf16 = rope.to(torch.bfloat16).angles(6, 16, 16, fps=10.0)
    assert ang_bf16.dtype == torch.float32
    diff = (ang_bf16 - ang).abs()
    assert 0 < diff.max() < 0.1
