"""Rectified-flow preconditioning, the released sampler (schedule, solver, determinism, call count),
conditioning frames, guidance paths and the training noise/loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldmodel.configs import load_net_config
from worldmodel.diffusion import (
    Conditioning,
    Denoiser,
    SamplerConfig,
    TrainingNoiseConfig,
    first_frames_mask,
    initial_noise,
    karras_sigmas,
    loss_weight,
    rf_scaling,
    sample,
    sample_training_sigma,
    solver_step,
    training_loss,
)
from worldmodel.network import A2WorldNet, build_net


def tiny_net(seed: int = 0) -> A2WorldNet:
    torch.manual_seed(seed)
    net = build_net(load_net_config("tiny"))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return net.eval()


class CallCounter:
    """Counts network calls and the batch size of each."""

    def __init__(self, net: A2WorldNet) -> None:
        self.batches: list[int] = []
        net.register_forward_pre_hook(lambda mod, args: self.batches.append(args[0].shape[0]))


def problem(B: int = 1, V: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(B, 16, V * 6, 8, 8, generator=g)
    actions = torch.randn(B, 20, 14, generator=g) * 0.05
    ids = torch.tensor([[0, 2, 1][:V]] * B)
    return latents, actions, ids


def test_release_schedule_values() -> None:
    cfg = SamplerConfig.preset("release")
    assert (cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho, cfg.network_calls) == (35, 0.01, 200.0, 7.0, 36)
    s = karras_sigmas(cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)
    assert s.dtype == torch.float64 and s.shape == (36,)
    assert s[0].item() == pytest.approx(200.0, rel=1e-12) and s[-1].item() == pytest.approx(0.01, rel=1e-12)
    assert bool((s[1:] < s[:-1]).all())
    i = 17
    expected = (200 ** (1 / 7) + i / 35 * (0.01 ** (1 / 7) - 200 ** (1 / 7))) ** 7
    assert s[i].item() == pytest.approx(expected, rel=1e-12)
    assert SamplerConfig() == cfg
    assert SamplerConfig.preset("fast_4").num_steps == 4


def test_preconditioning_recovers_x0_from_true_velocity() -> None:
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)
    sigma = torch.tensor([0.01, 0.5, 3.0, 150.0])[:, None]
    c_skip, c_out, c_in, c_noise = rf_scaling(sigma)
    t = sigma / (1 + sigma)
    torch.testing.assert_close(c_noise, t)
    x_sigma = x0 + sigma * eps
    torch.testing.assert_close(c_in * x_sigma, (1 - t) * x0 + t * eps)  # the RF interpolant
    velocity = eps - x0
    torch.testing.assert_close(c_skip * x_sigma + c_out * velocity, x0)
    torch.testing.assert_close(loss_weight(sigma), (sigma**2 + 1) / sigma**2)


def test_initial_noise_is_the_release_numpy_draw() -> None:
    n = initial_noise((1, 2, 3), seed=7, sigma_max=200.0)
    ref = np.random.RandomState(7).standard_normal((1, 2, 3)).astype(np.float32) * 200.0
    np.testing.assert_array_equal(n.numpy(), ref)


def test_solver_step_euler_and_ab2_exact_cases() -> None:
    sig = karras_sigmas(35, 0.01, 200.0, 7.0)
    x = torch.randn(3, 5, dtype=torch.float32)
    x0 = torch.randn(3, 5, dtype=torch.float32)
    # constant x0: both updates contract toward x0 by sigma_next / sigma
    for i, prev in ((0, None), (5, x0)):
        out = solver_step(x, x0, i, sig, prev)
        ratio = (sig[i + 1] / sig[i]).item()
        torch.testing.assert_close(out, x0 + ratio * (x - x0), rtol=1e-6, atol=1e-6)
    # x0 linear in lambda = -log(sigma): AB2 integrates dx/dlambda = x0(lambda) - x exactly
    i = 10
    lam = lambda k: -math.log(sig[k].item())  # noqa: E731
    alpha, beta = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    x0_now, x0_prev = alpha + beta * lam(i), alpha + beta * lam(i - 1)
    h = lam(i + 1) - lam(i)
    exact = math.exp(-h) * x.double() + (1 - math.exp(-h)) * x0_now + (h - 1 + math.exp(-h)) * beta
    out = solver_step(x, x0_now.float(), i, sig, x0_prev.float())
    torch.testing.assert_close(out.double(), exact, rtol=1e-5, atol=1e-5)


def test_sampler_is_seeded_and_returns_conditioning_frames_exactly() -> None:
    net = tiny_net()
    latents, actions, ids = problem(B=1, V=2)
    counter = CallCounter(net)
    out1 = sample(net, latents, actions, ids, seed=3, sampler="fast_4")
    out2 = sample(net, latents, actions, ids, seed=3, sampler="fast_4")
    out3 = sample(net, latents, actions, ids, seed=4, sampler="fast_4")
    assert counter.batches == [1] * 15  # 3 x (4 steps + final clean call)
    assert out1.dtype == torch.float32 and out1.shape == latents.shape
    assert torch.equal(out1, out2) and not torch.equal(out1, out3)
    mask = first_frames_mask(1, 2, 6)[0]
    assert torch.equal(out1[:, :, mask], latents[:, :, mask])  # frame 0 of each view, bit-exact
    assert not torch.allclose(out1[:, :, ~mask], latents[:, :, ~mask])


def test_release_sampler_makes_36_calls_and_guidance_without_null_is_a_noop() -> None:
    net = tiny_net()
    latents, actions, ids = problem(B=1, V=1)
    latents = latents[..., :4, :4]
    counter = CallCounter(net)
    sample(net, latents, actions, ids, seed=0, guidance=3.0)
    assert counter.batches == [1] * 36  # release: 35 steps + final clean call, one call per step
    plain = sample(net, latents, actions, ids, seed=0, sampler="fast_4")
    guided = sample(net, latents, actions, ids, seed=0, sampler="fast_4", guidance=3.0)
    assert torch.equal(plain, guided)


def test_real_cfg_path_batches_null_condition() -> None:
    net = tiny_net()
    latents, actions, ids = problem(B=2, V=2)
    counter = CallCounter(net)
    null = torch.zeros(1, 20, 14)
    g0 = sample(net, latents, actions, ids, seed=0, sampler="fast_4", null_action=null)
    assert counter.batches == [2] * 5  # guidance 0: no extra pass even with a null condition
    g2 = sample(net, latents, actions, ids, seed=0, sampler="fast_4", null_action=null, guidance=2.0)
    assert counter.batches[5:] == [4] * 5  # cond + null in one batched call
    assert not torch.allclose(g0, g2)
    # x0 = cond + g (cond - uncond) at one step
    den = Denoiser(net)
    cond = Conditioning(latents, first_frames_mask(2, 2, 6), actions, ids, null_action=null)
    x = torch.randn_like(latents) * 5
    sigma = torch.full((2,), 5.0)
    c = den.x0(x, sigma, cond)
    u = den.x0(x, sigma, Conditioning(latents, cond.frame_mask, null.expand(2, -1, -1), ids))
    torch.testing.assert_close(den.x0(x, sigma, cond, guidance=2.0), c + 2.0 * (c - u), rtol=1e-5, atol=1e-5)


def test_conditioning_frames_get_the_conditional_timestep() -> None:
    net = tiny_net()
    latents, actions, ids = problem(B=1, V=2)
    seen: dict[str, torch.Tensor] = {}

    def grab(mod, args):
        seen["x"], seen["t"] = args[0].clone(), args[1].clone()

    net.register_forward_pre_hook(grab)
    cond = Conditioning(latents, first_frames_mask(1, 2, 6), actions, ids)
    x_sigma = torch.randn_like(latents) * 10
    Denoiser(net).x0(x_sigma, torch.tensor([10.0]), cond)
    t = seen["t"][0]
    assert t[0].item() == pytest.approx(1e-4 / (1 + 1e-4)) and t[6].item() == pytest.approx(1e-4 / (1 + 1e-4))
    assert t[1].item() == pytest.approx(10 / 11) and t[11].item() == pytest.approx(10 / 11)
    torch.testing.assert_close(seen["x"][:, :, 0], latents[:, :, 0])  # clean frame in, not scaled
    torch.testing.assert_close(seen["x"][:, :, 1], x_sigma[:, :, 1] / 11)


def test_training_sigma_distribution_and_loss() -> None:
    g = torch.Generator().manual_seed(0)
    sig = sample_training_sigma(20000, state_t=6, generator=g)
    assert sig.shape == (20000, 1)
    high = (sig > 200).float().mean().item()
    assert 0.04 < high < 0.06
    low = sig[sig <= 200]
    assert torch.median(low).item() == pytest.approx(math.sqrt(6), rel=0.1)
    no_high = sample_training_sigma(5000, 6, TrainingNoiseConfig(high_sigma_ratio=0.0), generator=g)
    assert no_high.max().item() < 200
    assert TrainingNoiseConfig.load() == TrainingNoiseConfig()

    net = tiny_net()
    net.train()
    latents, actions, ids = problem(B=2, V=2)
    cond = Conditioning(latents, first_frames_mask(2, 2, 6), actions, ids)
    sigma = torch.tensor([[0.5], [4.0]])
    eps = torch.randn_like(latents)
    loss = training_loss(net, latents, cond, sigma, eps)
    loss.backward()
    assert loss.item() > 0 and net.x_embedder_multiview.proj[1].weight.grad is not None
