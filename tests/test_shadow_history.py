"""A2World-sim in the shadow and in the evaluation loop: the shadow's history holds the REAL past frames and
the executed actions; the closed loop carries its own generated frames as history (tiny random sim net)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_wm_data_fixtures import one_thread

from worldmodel.configs import load_net_config
from worldmodel.network import build_net
from worldmodel.predict import WorldModelPredictor
from worldmodel.shadow.config import ShadowConfig
from worldmodel.shadow.engine import ShadowEngine
from worldmodel.shadow.frames import RealFrameBuffer
from worldmodel.shadow.history import HistoryShadowPredictor, is_history_model
from worldmodel.shadow.work import ShadowWork
from worldmodel.vae import WanVAE

SIZE = 32
CAMS = ("wrist_left", "front", "wrist_right")


@pytest.fixture(scope="module")
def sim_predictor() -> WorldModelPredictor:
    torch.manual_seed(0)
    vae = WanVAE.from_config("tiny")
    cfg = replace(load_net_config("tiny_sim"), in_channels=vae.config.z_dim, out_channels=vae.config.z_dim)
    net = build_net(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return WorldModelPredictor(net, vae, (SIZE, SIZE))


def _state(x: float) -> np.ndarray:
    s = np.zeros((2, 8))
    s[:, :3] = [x, 0.0, 0.3]
    s[:, 6] = s[:, 7] = 1.0
    return s


def test_shadow_history_is_the_real_past(sim_predictor):
    assert is_history_model(sim_predictor)
    wrapped = HistoryShadowPredictor(sim_predictor, "sliding_window", keep=300)
    engine = ShadowEngine(wrapped, ShadowConfig.from_mapping({"cameras": list(CAMS), "sampler_steps": 1}))
    rng = np.random.default_rng(0)
    buffer = RealFrameBuffer(keep_s=60)
    real = {c: rng.integers(0, 256, (100, SIZE, SIZE, 3), dtype=np.uint8) for c in CAMS}
    for j in range(100):
        for c in CAMS:
            buffer.add(c, j / 30, real[c][j])
    with one_thread():
        for k, t_step in enumerate((0, 30)):  # chunks 1 s apart, 2 s long: they overlap by 1 s
            t = t_step / 30
            targets = np.stack([_state(0.4 + 0.001 * (t_step + i + 1)) for i in range(60)])
            work = ShadowWork(k, t, {c: real[c][t_step] for c in CAMS}, _state(0.4 + 0.001 * t_step), targets, t,
                              1 / 30)
            result = engine.score(engine.predict(work), buffer)
            assert all(np.isfinite(m.ssim).all() for m in result.metrics.values())
    b = wrapped.buffer
    assert b is not None and len(b) == 20 + 30  # budget copies of t=0, then real frames at 0.1 .. 3.0 s
    np.testing.assert_array_equal(b.frames["front"][-1], real["front"][90])  # the real frame at 3.0 s
    np.testing.assert_array_equal(b.frames["front"][20], real["front"][3])  # the real frame at 0.1 s
    assert wrapped.last_t == pytest.approx(3.0)
    assert b.actions.shape == (49, 14)


def test_closed_loop_with_a_sim_model_carries_generated_history(sim_predictor):
    from policy.interface import PolicyResult
    from worldmodel.wm_eval.closed_loop import rollout_in_world_model

    class Still:
        def metadata(self):
            return {}

        def infer(self, request):
            return PolicyResult(chunk=np.repeat(request.state[None], 60, axis=0), dt=1 / 30)

    images = {c: np.full((SIZE, SIZE, 3), 100, np.uint8) for c in CAMS}
    with one_thread():
        episode = rollout_in_world_model(Still(), sim_predictor, images, _state(0.4), "hold", seconds=4.0, steps=1,
                                         history="sliding_window")
    assert episode.frames["front"].shape == (41, SIZE, SIZE, 3)
