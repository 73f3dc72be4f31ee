"""Chunk-wise autoregressive rollout: frames and history are carried from chunk to chunk as released."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_wm_data_fixtures import one_thread

import worldmodel.rollout as rollout_mod
from worldmodel.configs import load_net_config
from worldmodel.network import build_net
from worldmodel.predict import PredictError, WorldModelPredictor
from worldmodel.rollout import RolloutSession, encode_history, rollout
from worldmodel.vae import WanVAE

SIZE = 32


@pytest.fixture(scope="module")
def predictor() -> WorldModelPredictor:
    torch.manual_seed(0)
    vae = WanVAE.from_config("tiny")
    cfg = replace(load_net_config("tiny_sim"), in_channels=vae.config.z_dim, out_channels=vae.config.z_dim)
    net = build_net(cfg)
    with torch.no_grad():  # random weights everywhere (the release init zeroes the AdaLN gates)
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return WorldModelPredictor(net, vae, (SIZE, SIZE))


def images(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cams = ("wrist_left", "front", "wrist_right")
    return {cam: rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for cam in cams}


def actions(n: int, seed: int = 1) -> np.ndarray:
    a = np.random.default_rng(seed).normal(0.0, 0.01, (n, 14))
    a[:, 6] = a[:, 13] = 1.0
    return a


def test_rollout_carries_frames_history_and_seeds(predictor: WorldModelPredictor,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen_cond: list[np.ndarray] = []
    seen_hist: list[np.ndarray] = []
    encode_condition = predictor.encode_condition

    def spy_condition(frames: torch.Tensor) -> torch.Tensor:
        seen_cond.append(frames.numpy().copy())
        return encode_condition(frames)

    def spy_history(vae, frames, temporal_window=16):
        seen_hist.append(frames.copy())
        return encode_history(vae, frames, temporal_window)

    monkeypatch.setattr(predictor, "encode_condition", spy_condition)
    monkeypatch.setattr(rollout_mod, "encode_history", spy_history)
    obs = images()
    with one_thread():
        res = rollout(predictor, obs, actions(65), history="sliding_window", steps=2, seed=7)
    keys = list(obs)
    assert [c.index for c in res.chunks] == [0, 1, 2] and [c.seed for c in res.chunks] == [7, 8, 9]
    assert all(v.shape == (61, SIZE, SIZE, 3) and v.dtype == np.uint8 for v in res.frames.values())
    # chunk 0 starts from the observation; chunk k from chunk k-1's last predicted frame, per view
    np.testing.assert_array_equal(seen_cond[0], np.stack([obs[k] for k in keys]))
    for k in (1, 2):
        last = np.stack([res.chunks[k - 1].frames[key][-1] for key in keys])
        np.testing.assert_array_equal(seen_cond[k], last)
        np.testing.assert_array_equal(res.frames["front"][20 * k], res.chunks[k - 1].frames["front"][-1])
    # history: 20 copies of the observation first, then the most recent 20 buffer frames (sliding window)
    assert res.chunks[0].history_indices == list(range(20)) and res.chunks[1].history_indices == list(range(20, 40))
    np.testing.assert_array_equal(seen_hist[0][1], np.repeat(obs["front"][None], 20, axis=0))
    gen0 = np.stack([res.chunks[0].frames[key][1:] for key in keys])  # chunk 0 returns the condition first
    np.testing.assert_array_equal(seen_hist[1], gen0)


def test_history_matters_and_the_session_is_deterministic(predictor: WorldModelPredictor) -> None:
    obs, act = images(3), actions(40, seed=4)
    with one_thread():
        a = rollout(predictor, obs, act, history="arc_dual", steps=2)
        b = rollout(predictor, obs, act, history="arc_dual", steps=2)
        none = rollout(predictor, obs, act, history="none", steps=2)
        session = RolloutSession(predictor, obs, history="arc_dual", steps=2)
        first = session.step(act[:20], include_condition=True)
        second = session.step(act[20:40])
    assert all(np.array_equal(a.frames[k], b.frames[k]) for k in obs)
    assert not np.array_equal(a.frames["front"][21:], none.frames["front"][21:])
    assert none.chunks[1].history_indices is None
    np.testing.assert_array_equal(np.concatenate([first.frames["front"], second.frames["front"]]), a.frames["front"])
    assert len(session.buffer) == 60 and session.buffer.actions.shape == (59, 14)
    assert session.buffer.poses.shape == (60, 2, 7)


def test_rollout_errors_are_named(predictor: WorldModelPredictor) -> None:
    with pytest.raises(PredictError, match=r"T >= 20"):
        rollout(predictor, images(), actions(10))
    session = RolloutSession(predictor, images(), history="release")
    with pytest.raises(PredictError, match=r"expected finite \(20, 14\)"):
        session.step(np.zeros((19, 14)))
    one_view = RolloutSession(predictor, {"front": images()["front"]}, history="release", steps=1)
    with pytest.raises(PredictError, match="not divisible by the views|temporal_window"):
        one_view.step(actions(20))
