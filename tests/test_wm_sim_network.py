"""A2World-sim network: key parity with `a2world-libero.pt` (meta device), loading and inspecting a
libero-layout file, and a tiny forward of the history path against a literal float64 reference."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_wm_network_reference import reference_forward, rms
from torch.nn import functional as F

from a2world_ros.cli.main import main as cli_main
from worldmodel.checkpoint import inspect_checkpoint, load_state_dict_into, read_official
from worldmodel.configs import load_net_config
from worldmodel.network import build_net
from worldmodel.network.sim import A2WorldSimNet

KEYS_FILE = Path(__file__).parent / "data" / "a2world_libero_keys.txt"
LIBERO_PARAMS = 2_514_593_693


def libero_layout() -> list[tuple[str, list[int]]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split(" [")
            rows.append((key, [int(s) for s in shape.rstrip("]").split(", ")]))
    return rows


def test_full_size_state_dict_matches_libero_release() -> None:
    net = build_net(load_net_config("a2world_sim_2b"), device="meta")
    assert isinstance(net, A2WorldSimNet)
    mine = [(f"net.{k}", list(v.shape)) for k, v in net.state_dict().items()]
    ref = [(f"net.{k}", s) for k, s in libero_layout()]
    assert len(ref) == 836
    assert [k for k, _ in mine] == [k for k, _ in ref]  # names and order
    assert mine == ref  # shapes
    assert sum(p.numel() for p in net.parameters()) == LIBERO_PARAMS
    assert sum(b.numel() for b in net.buffers()) == 684


def test_libero_layout_file_loads_and_is_inspected_as_sim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = torch.Generator().manual_seed(0)
    state = {f"net.{k}": torch.randn(1, generator=g).to(torch.bfloat16).expand(s) for k, s in libero_layout()}
    path = tmp_path / "a2world-libero.pt"
    torch.save(state, path)
    rep = inspect_checkpoint(path)
    assert rep.variant == "a2world_sim" and rep.matches == ["a2world_sim_2b"]
    assert rep.n_parameters == LIBERO_PARAMS and rep.dtypes == {"bfloat16": 836}
    net = build_net(load_net_config("a2world_sim_2b"), device="meta")
    report = load_state_dict_into(net, read_official(path), str(path))
    assert report.ok and not any(p.is_meta for p in net.parameters())
    assert torch.equal(net.vpb.mlp[2].bias, state["net.vpb.mlp.2.bias"])
    assert cli_main(["worldmodel", "inspect", str(path), "--require-match"]) == 0
    out = capsys.readouterr().out
    assert "a2world_sim" in out and "matches a2world_sim_2b" in out


# ------------------------------------------------------------------------------- literal reference
def bilinear(grid: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Resize (h, w, C) with align_corners=False bilinear weights, written out (PyTorch's convention)."""
    h, w = grid.shape[:2]

    def taps(n_in: int, n_out: int, i: int) -> tuple[int, int, float]:
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = min(math.floor(src), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        return lo, hi, src - lo

    out = torch.zeros(out_h, out_w, grid.shape[2], dtype=grid.dtype)
    for i in range(out_h):
        y0, y1, fy = taps(h, out_h, i)
        for j in range(out_w):
            x0, x1, fx = taps(w, out_w, j)
            out[i, j] = ((1 - fy) * ((1 - fx) * grid[y0, x0] + fx * grid[y0, x1])
                         + fy * ((1 - fx) * grid[y1, x0] + fx * grid[y1, x1]))
    return out


def history_tokens(sd: dict, hist: torch.Tensor, pe_dim: int) -> torch.Tensor:
    """(C, Th, H, W) one view's history latents -> (Th * h * w, Dc) tokens (frame, h, w order)."""
    rows = []
    for f in range(hist.shape[1]):
        z = F.conv2d(hist[:, f][None], sd["history_tokenizer.down.0.weight"], sd["history_tokenizer.down.0.bias"],
                     stride=2, padding=1)
        z = F.conv2d(F.silu(z), sd["history_tokenizer.down.2.weight"], sd["history_tokenizer.down.2.bias"])[0]
        h, w = z.shape[1:]
        q = pe_dim // 4
        for i in range(h):
            for j in range(w):
                y = -1.0 + 2.0 * i / (h - 1)
                x = -1.0 + 2.0 * j / (w - 1)
                om = [10000.0 ** (-k / q) for k in range(q)]
                pe = torch.tensor([math.sin(y * o) for o in om] + [math.cos(y * o) for o in om]
                                  + [math.sin(x * o) for o in om] + [math.cos(x * o) for o in om], dtype=hist.dtype)
                rows.append(z[:, i, j] + sd["history_tokenizer.pe2d_proj.weight"] @ pe
                            + sd["history_tokenizer.pe2d_proj.bias"])
    return torch.stack(rows)


def reference_sim_forward(net: A2WorldSimNet, x, t, a, ids, cond, history, state) -> torch.Tensor:
    """The base literal forward with the release's history memory and biased history cross-attention."""
    cfg = net.config
    sd = dict(net.state_dict())
    B, _, VT, H, W = x.shape
    V = ids.shape[1]
    T, Th = VT // V, history.shape[2] // V
    L = (H // 2) * (W // 2)
    nh, hd = cfg.num_heads, cfg.head_dim
    mem = [[history_tokens(sd, history[b, :, v * Th:(v + 1) * Th], cfg.history_pe_dim) for v in range(V)]
           for b in range(B)]
    bias = []
    for b in range(B):
        plane = state[b].permute(1, 0, 2)  # (slots, future, 22): slots become target latents (release)
        z = F.silu(bilinear(plane, T, Th) @ sd["vpb.mlp.0.weight"].T + sd["vpb.mlp.0.bias"]) @ sd["vpb.mlp.2.weight"].T
        cell_bias = (z[..., 0] + sd["vpb.mlp.2.bias"]).clamp(-10, 10)
        bias.append(cell_bias.repeat_interleave(L, 0).repeat_interleave(L, 1))  # (T*L, Th*L)

    def heads(z: torch.Tensor) -> torch.Tensor:
        return z.reshape(*z.shape[:-1], nh, hd)

    def extend_kv(p: str, b: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ks, vs = [], []
        for j in range(V):  # per view: [memory of view j ; tokens of view j] (no RoPE on memory)
            mk = mem[b][j] @ sd["mem_to_k.weight"].T
            mv = mem[b][j] @ sd["mem_to_v.weight"].T
            ks += [rms(heads(mk @ sd[p + "self_attn.k_proj.weight"].T), sd[p + "self_attn.k_norm.weight"]),
                   k[j * T * L:(j + 1) * T * L]]
            vs += [heads(mv @ sd[p + "self_attn.v_proj.weight"].T), v[j * T * L:(j + 1) * T * L]]
        return torch.cat(ks), torch.cat(vs)

    def cross_attn(p: str, b: int, j: int, queries: torch.Tensor) -> torch.Tensor:
        c = p + "cross_biased_attn.core."
        q = rms(heads(queries @ sd[c + "q_proj.weight"].T), sd[c + "q_norm.weight"])
        k = rms(heads(mem[b][j] @ sd[c + "k_proj.weight"].T), sd[c + "k_norm.weight"])
        v = heads(mem[b][j] @ sd[c + "v_proj.weight"].T)
        logits = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd) + bias[b][None]
        out = torch.einsum("hqk,khd->qhd", logits.softmax(-1), v).reshape(q.shape[0], -1)
        return out @ sd[c + "out_proj.weight"].T

    return reference_forward(net, x, t, a, ids, cond, extend_kv=extend_kv, cross_attn=cross_attn)


def tiny_sim(seed: int = 0) -> A2WorldSimNet:
    torch.manual_seed(seed)
    net = build_net(load_net_config("tiny_sim")).double().eval()
    with torch.no_grad():
        for prm in net.parameters():
            prm.normal_(0.0, 0.1)
        net.vpb.mlp[2].weight.mul_(150.0)  # push some cells past the +-10 clamp
    return net


def sim_inputs(view_ids: list[list[int]], Th: int = 3, seed: int = 3):
    ids = torch.tensor(view_ids)
    B, V, T = ids.shape[0], ids.shape[1], 6
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 16, V * T, 8, 8, generator=g, dtype=torch.float64)
    t = torch.rand(B, V * T, generator=g, dtype=torch.float64)
    a = torch.randn(B, 20, 14, generator=g, dtype=torch.float64) * 0.1
    cond = torch.zeros(B, 1, V * T, 8, 8, dtype=torch.float64)
    cond[:, :, ::T] = 1.0
    hist = torch.randn(B, 16, V * Th, 8, 8, generator=g, dtype=torch.float64)
    state = torch.randn(B, 20, 20, 22, generator=g, dtype=torch.float64)
    return x, t, a, ids, cond, hist, state


@pytest.mark.parametrize("view_ids", [[[2, 0], [0, 2]], [[0, 2, 1]], [[2]]])
def test_history_forward_matches_literal_reference(view_ids: list[list[int]]) -> None:
    net = tiny_sim()
    x, t, a, ids, cond, hist, state = sim_inputs(view_ids)
    with torch.no_grad():
        cells = net.vpb.cells(state, 6, 3)
        assert cells.abs().max() == 10.0 and (cells.abs() < 10.0).any()  # the clamp is exercised
        mine = net(x, t, a, ids, cond, history=hist, state=state)
        ref = reference_sim_forward(net, x, t, a, ids, cond, hist, state)
    torch.testing.assert_close(mine, ref, rtol=1e-9, atol=1e-9)


def test_history_changes_the_output_and_none_skips_it() -> None:
    net = tiny_sim()
    x, t, a, ids, cond, hist, state = sim_inputs([[2, 0]])
    with torch.no_grad():
        with_h = net(x, t, a, ids, cond, history=hist, state=state)
        other = net(x, t, a, ids, cond, history=hist.flip(2), state=state)
        biased = net(x, t, a, ids, cond, history=hist, state=state * 2)
        none = net(x, t, a, ids, cond)
    assert not torch.allclose(with_h, other) and not torch.allclose(with_h, biased)
    assert torch.isfinite(none).all() and not torch.allclose(with_h, none)


def test_absent_view_memory_is_masked() -> None:
    """With a view marked absent, neither its tokens nor its history memory reach the present view."""
    net = tiny_sim()
    x, t, a, ids, cond, hist, state = sim_inputs([[2, 0]])
    mask = torch.tensor([[True, False]])
    with torch.no_grad():
        y1 = net(x, t, a, ids, cond, history=hist, state=state, view_mask=mask)
        x2, hist2 = x.clone(), hist.clone()
        x2[:, :, 6:] += 1.0
        hist2[:, :, 3:] += 1.0
        y2 = net(x2, t, a, ids, cond, history=hist2, state=state, view_mask=mask)
    torch.testing.assert_close(y1[:, :, :6], y2[:, :, :6], rtol=1e-9, atol=1e-9)


def test_bad_history_inputs_are_named() -> None:
    net = tiny_sim()
    x, t, a, ids, cond, hist, state = sim_inputs([[2, 0]])
    with pytest.raises(ValueError, match="without state"):
        net(x, t, a, ids, cond, history=hist)
    with pytest.raises(ValueError, match="state: shape"):
        net(x, t, a, ids, cond, history=hist, state=state[..., :5])
    with pytest.raises(ValueError, match="not divisible into 2 views"):
        net(x, t, a, ids, cond, history=hist[:, :, :5], state=state)
    base = build_net(load_net_config("tiny"))
    with pytest.raises(ValueError, match="a2world_sim"):
        base(x.float(), t.float(), a.float(), ids, cond.float(), history=hist.float(), state=state.float())
