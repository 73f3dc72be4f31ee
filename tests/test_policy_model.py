"""A2World-policy network and diffusion: shapes, action-branch initialisation, per-modality noise and loss
weights, modality-wise guidance, the committed prefix, the action representation, the full-size count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from policy.action_repr import Normalizer, chunk_to_relative, relative_to_chunk
from policy.config import load_policy_config
from policy.diffusion import JointCondition, JointDenoiser, joint_loss, loss_weight, sample_joint, sample_sigmas
from policy.model import build_policy_net, count_parameters, init_from_a2world
from worldmodel.configs import A2WorldNetConfig
from worldmodel.network.a2world import build_net

B, V, T, C, H, W, HA = 2, 3, 2, 4, 4, 4, 60


@pytest.fixture(scope="module")
def cfg():
    return load_policy_config("tiny")


@pytest.fixture(scope="module")
def net(cfg):
    torch.manual_seed(0)
    net = build_policy_net(cfg).eval()
    with torch.no_grad():  # AdaLN-Zero makes a fresh net trivial; perturb so the tests see real outputs
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return net


def condition(cfg, batch=B, prefix_len=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, V, T)
    mask[:, :, 0] = 1
    ctx = torch.randn(batch, 5, cfg.net.crossattn_emb_channels, generator=g)
    pm = (torch.arange(HA)[None] < prefix_len).float().expand(batch, -1)
    return JointCondition(torch.randn(batch, C, V * T, H, W, generator=g), mask.reshape(batch, -1),
                          torch.tensor([[2, 0, 1]] * batch), ctx, torch.zeros_like(ctx),
                          torch.randn(batch, 16, generator=g),
                          torch.randn(batch, HA, 14, generator=g) * pm[..., None], pm)


def test_tiny_forward_shapes(cfg, net):
    c = condition(cfg)
    fv, fa = net(torch.randn(B, C, V * T, H, W), torch.rand(B, V * T), c.cond_mask, c.view_ids,
                 torch.randn(B, HA, 14), torch.rand(B, HA), c.context, c.state)
    assert fv.shape == (B, C, V * T, H, W)
    assert fa.shape == (B, HA, 14)
    assert torch.isfinite(fv).all() and torch.isfinite(fa).all()


def test_action_branch_copies_video_branch_exactly(cfg):
    torch.manual_seed(1)
    net = build_policy_net(cfg)
    state = net.state_dict()
    pairs = net.action_branch_pairs()
    assert len(pairs) == cfg.net.num_blocks * 8 + 2  # 3 AdaLN-LoRA x 2 linears + MLP 2 linears per block
    for action_key, video_key in pairs:
        assert torch.equal(state[action_key], state[video_key]), action_key


def test_init_from_a2world_loads_video_branch_and_copies_it(cfg):
    torch.manual_seed(2)
    wm = build_net(A2WorldNetConfig.from_dict({**cfg.net.to_dict(), "use_black": True}))
    with torch.no_grad():
        for p in wm.parameters():
            p.add_(torch.randn_like(p))  # distinct from any fresh init
    wm_state = wm.state_dict()
    net = build_policy_net(cfg)
    report = init_from_a2world(net, wm_state, "test")
    state = net.state_dict()
    assert any(k.startswith("action_embedder") for k in report["skipped"])
    assert any(k.startswith("black_to_crossattn_emb") for k in report["skipped"])
    for key in report["loaded"]:
        assert torch.equal(state[key], wm_state[key]), key
    assert "blocks.0.mlp.layer1.weight" in report["loaded"]
    for action_key, video_key in net.action_branch_pairs():
        assert torch.equal(state[action_key], wm_state[video_key]), action_key
    assert all(k.startswith(("action_in", "action_pos", "state_embedder", "final_layer_action.linear"))
               for k in report["fresh"]), report["fresh"]


def test_full_size_parameter_count_on_meta():
    counts = count_parameters(build_policy_net(load_policy_config("full"), device="meta"))
    assert 3.0e9 < counts["total"] < 3.8e9
    assert counts["action_branch"] > 1.0e9


def test_per_modality_sigma_scaling_and_loss_weights(cfg):
    g = torch.Generator().manual_seed(0)
    d = cfg.diffusion
    base, sv, sa = sample_sigmas(4000, d, g)
    low = sv < d.high_sigma_min
    assert torch.allclose(sv[low], base[low] * math.sqrt(6), rtol=1e-5)
    assert torch.allclose(sa, base * 0.5, rtol=1e-5)
    frac_high = 1 - low.float().mean().item()
    assert 0.03 < frac_high < 0.07  # high-sigma augmentation on the video branch only (ratio 0.05)
    assert (sv[~low] <= d.high_sigma_max).all()
    s = torch.tensor([0.1, 1.0, 10.0])
    assert torch.allclose(loss_weight(s, 1.0), (s**2 + 1) / s**2)
    assert torch.allclose(loss_weight(s, 0.5), (s**2 + 0.25) / (s * 0.5) ** 2)


def test_joint_loss_is_the_weighted_sum(cfg, net):
    den = JointDenoiser(net, cfg.diffusion)
    c = condition(cfg, prefix_len=7)
    x0v, x0a = c.cond_latents.clone(), torch.randn(B, HA, 14)
    sv, sa = torch.tensor([0.5, 3.0]), torch.tensor([0.1, 0.6])
    ev, ea = torch.randn_like(x0v), torch.randn_like(x0a)
    loss, parts = joint_loss(den, x0v, x0a, c, sv, sa, ev, ea)
    with torch.no_grad():
        hv, ha = den.x0(x0v + sv.view(-1, 1, 1, 1, 1) * ev, x0a + sa.view(-1, 1, 1) * ea, sv, sa, c)
    free_v = (1 - c.cond_mask)[:, None, :, None, None].expand_as(x0v)
    free_a = (1 - c.prefix_mask)[..., None].expand_as(x0a)
    lv = ((sv**2 + 1) / sv**2).view(-1, 1, 1, 1, 1) * (x0v - hv) ** 2
    la = ((sa**2 + 1) / sa**2).view(-1, 1, 1) * (x0a - ha) ** 2
    lv = (lv * free_v).sum() / free_v.sum()
    la = (la * free_a).sum() / free_a.sum()
    assert loss.item() == pytest.approx(10 * (lv + 1.0 * la).item(), rel=1e-5)
    assert parts["video"] == pytest.approx(lv.item(), rel=1e-5)


def test_guidance_one_equals_conditional(cfg, net):
    den = JointDenoiser(net, cfg.diffusion)
    c = condition(cfg)
    xv, xa = torch.randn(B, C, V * T, H, W), torch.randn(B, HA, 14)
    sv, sa = torch.full((B,), 2.0), torch.full((B,), 0.4)
    with torch.no_grad():
        cond = den.x0(xv, xa, sv, sa, c)
        same = den.guided_x0(xv, xa, sv, sa, c, 1.0, 1.0)
        # the batched two-pass path with s = 1 also reduces to the conditional output
        uv, ua = den.x0(xv, xa, sv, sa, JointCondition(**{**c.__dict__, "context": c.null_context}))
        g_v, g_a = den.guided_x0(xv, xa, sv, sa, c, 1.0, 2.5)
    assert torch.equal(same[0], cond[0]) and torch.equal(same[1], cond[1])
    assert torch.allclose(g_v, cond[0], atol=1e-5)
    assert torch.allclose(g_a, ua + 2.5 * (cond[1] - ua), atol=1e-5)
    assert not torch.allclose(uv, cond[0])


def test_committed_prefix_is_respected(cfg, net):
    K = 9
    den = JointDenoiser(net, cfg.diffusion)
    c = condition(cfg, prefix_len=K, seed=3)
    out_v, out_a = sample_joint(den, c, torch.randn(B, C, V * T, H, W), torch.randn(B, HA, 14), cfg.sampler)
    assert torch.equal(out_a[:, :K], c.prefix[:, :K])
    assert torch.equal(out_v[:, :, :: T], c.cond_latents[:, :, :: T])  # observation frames stay as given
    assert not torch.allclose(out_a[:, K:], torch.zeros_like(out_a[:, K:]))


def test_relative_action_representation_round_trip():
    rng = np.random.default_rng(0)
    from rig.rotations import euler_xyz_to_quat

    state = np.zeros((2, 8))
    state[:, :3] = rng.normal(0, 0.2, (2, 3))
    state[:, 3:7] = euler_xyz_to_quat(rng.normal(0, 0.5, (2, 3)))
    state[:, 7] = [0.3, 0.9]
    chunk = np.zeros((60, 2, 8))
    chunk[..., :3] = state[None, :, :3] + np.cumsum(rng.normal(0, 0.003, (60, 2, 3)), axis=0)
    chunk[..., 3:7] = euler_xyz_to_quat(rng.normal(0, 0.3, (60, 2, 3)))
    chunk[..., 7] = rng.uniform(0, 1, (60, 2))
    rel = chunk_to_relative(state, chunk)
    back = relative_to_chunk(state, rel)
    assert np.allclose(back[..., :3], chunk[..., :3], atol=1e-9)
    dots = np.abs(np.sum(back[..., 3:7] * chunk[..., 3:7], axis=-1))
    assert np.allclose(dots, 1.0, atol=1e-9)
    assert np.allclose(back[..., 7], chunk[..., 7])
    # holding the current pose is the zero action (plus the gripper opening)
    hold = chunk_to_relative(state, np.repeat(state[None], 3, axis=0))
    assert np.allclose(hold[:, [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]], 0, atol=1e-9)
    norm = Normalizer.fit(rel, np.repeat(state[None], 4, axis=0), action_min_std=0.005, state_min_std=0.02)
    assert min(norm.actions.scale) >= 0.005 and min(norm.state_std) >= 0.02
    assert Normalizer.from_dict(norm.to_dict()) == norm


def test_chunk_smoothing_keeps_the_prefix_and_removes_jitter():
    from policy.action_repr import smooth_chunk

    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 60)[:, None]
    clean = np.repeat(0.1 * t, 14, axis=1)  # a straight, constant-speed motion: unchanged inside
    noisy = clean + rng.normal(0.0, 0.003, clean.shape)
    out = smooth_chunk(noisy, 9, keep=10)
    assert np.array_equal(out[:10], noisy[:10])  # the committed prefix is executed as committed
    step_jitter = lambda a: np.abs(np.diff(a[10:], 2, axis=0)).mean()  # noqa: E731
    assert step_jitter(out) < 0.2 * step_jitter(noisy)
    assert np.allclose(smooth_chunk(clean, 9)[5:-5], clean[5:-5])
    assert np.array_equal(smooth_chunk(noisy, 0), noisy)


def test_position_readout_starts_as_the_plain_network_and_learns_places(cfg):
    """`policy.action_reads_position`: zero-initialised, so the network computes what it computed without
    it (an A2World initialisation stays exact); once trained, the action output depends on where a token
    is, which RoPE alone cannot give the values."""
    torch.manual_seed(3)
    plain = build_policy_net(cfg).eval()
    pos_cfg = load_policy_config("tiny", ["policy.action_reads_position=true"])
    net = build_policy_net(pos_cfg).eval()
    missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == sorted(["action_pos_view", "action_pos_t", "action_pos_h", "action_pos_w"]
                                     + [f"blocks.{i}.value_pos_action.weight" for i in range(cfg.net.num_blocks)])
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        net.load_state_dict(plain.state_dict(), strict=False)
    c = condition(cfg)
    args = (torch.randn(B, C, V * T, H, W), torch.rand(B, V * T), c.cond_mask, c.view_ids,
            torch.randn(B, HA, 14), torch.rand(B, HA), c.context, c.state)
    with torch.no_grad():
        assert torch.equal(plain(*args)[1], net(*args)[1])
    counts = count_parameters(net)
    assert counts["action_branch"] > count_parameters(plain)["action_branch"]
    _, fa = net(*args)
    fa.square().mean().backward()
    assert all(net.blocks[i].value_pos_action.weight.grad.abs().sum() > 0 for i in range(cfg.net.num_blocks))
    with torch.no_grad():
        for block in net.blocks:
            block.value_pos_action.weight.normal_(std=0.1)
        before = net(*args)[1]
        net.action_pos_w[0].add_(1.0)  # move one column's place: only the action output may change
        out_v, after = net(*args)
        assert not torch.allclose(before, after)
        assert torch.equal(out_v, plain(*args)[0])  # the video branch never reads the places
