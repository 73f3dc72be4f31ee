"""World-model prediction: the Python API and `a2world worldmodel predict` on a tiny trained checkpoint,
the official actions.npz format, absolute-pose actions, and clear errors for bad inputs."""

from __future__ import annotations

import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
from test_wm_data_fixtures import TWIN_SIZE, trained_run

from worldmodel.actions import command_chunk_to_actions
from worldmodel.predict import PredictError, WorldModelPredictor


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "wm_shared")["result"].checkpoint


@pytest.fixture(scope="module")
def predictor(checkpoint):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread avoids OpenMP contention on a busy 2-core machine
    yield WorldModelPredictor.from_checkpoint(checkpoint)
    torch.set_num_threads(threads)


def _image(seed: int, h: int = 48, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_predict_api_shapes_and_determinism(predictor):
    assert predictor.resolution == (TWIN_SIZE, TWIN_SIZE) and predictor.fps == 10.0
    assert list(predictor.stats) == ["twin"]
    images = {"front": _image(0), 0: _image(1)}  # camera name or view id; any input size is resized
    actions = np.zeros((20, 14))
    actions[:, 6] = actions[:, 13] = 1.0
    out = predictor.predict(images, actions, steps=3, seed=5)
    assert list(out) == ["front", 0]
    assert all(v.shape == (21, TWIN_SIZE, TWIN_SIZE, 3) and v.dtype == np.uint8 for v in out.values())
    again = predictor.predict(images, actions, steps=3, seed=5)
    assert all(np.array_equal(out[k], again[k]) for k in out)
    future = predictor.predict(images, actions, steps=3, seed=5, include_condition=False)
    assert future["front"].shape[0] == 20 and np.array_equal(future["front"], out["front"][1:])


def test_absolute_pose_actions_are_converted(predictor):
    rng = np.random.default_rng(0)
    seq = np.zeros((21, 2, 8))
    seq[:, :, :3] = 0.4 + np.cumsum(rng.normal(0, 0.003, (21, 2, 3)), axis=0)
    seq[:, :, 6] = 1.0  # identity quaternion (x y z w)
    seq[:, :, 7] = 0.8
    expect = predictor.action_stats(None).normalize(command_chunk_to_actions(seq[0], seq[1:]))
    np.testing.assert_allclose(predictor.model_actions(seq), expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(predictor.model_actions(seq[1:], current=seq[0]), expect, rtol=1e-6, atol=1e-6)
    with pytest.raises(PredictError, match="current="):
        predictor.model_actions(seq[1:])


def test_bad_inputs_are_named(predictor, tmp_path):
    good = {"front": _image(0)}
    with pytest.raises(PredictError, match=r"actions: shape \(20, 7\), expected \(20, 14\)"):
        predictor.predict(good, np.zeros((20, 7)))
    with pytest.raises(PredictError, match=r"images\['front'\]: float64 \(8, 8, 3\), expected uint8"):
        predictor.predict({"front": np.zeros((8, 8, 3))}, np.zeros((20, 14)))
    with pytest.raises(PredictError, match="'top' is neither a camera name"):
        predictor.predict({"top": _image(0)}, np.zeros((20, 14)))
    with pytest.raises(PredictError, match="repeated ids"):
        predictor.predict({"front": _image(0), 2: _image(1)}, np.zeros((20, 14)))
    with pytest.raises(PredictError, match="stats 'other'"):
        predictor.predict(good, np.zeros((20, 14)), stats="other")
    with pytest.raises(PredictError, match="no such checkpoint"):
        WorldModelPredictor.from_checkpoint(tmp_path / "missing")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny model: one thread is fastest on a busy machine
    return subprocess.run([sys.executable, "-m", "a2world_ros.cli.main", "worldmodel", "predict", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_writes_side_by_side_mp4_from_official_sample(checkpoint, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"view{i}.png"
        cv2.imwrite(str(p), _image(i, 64, 64))
        paths.append(str(p))
    actions = tmp_path / "actions.npz"  # the release's pretrained-example layout: (T, 14) float32
    np.savez(actions, actions=np.full((40, 14), 0.002, dtype=np.float32))
    out = tmp_path / "rollout.mp4"
    r = _cli("--checkpoint", str(checkpoint), "--images", *paths, "--view-ids", "2", "0", "1",
             "--actions", str(actions), "--out", str(out), "--steps", "2", "--autoregressive")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        rate = float(stream.average_rate)
    assert len(frames) == 41  # 1 + 2 chunks x 20 frames
    assert frames[0].shape == (TWIN_SIZE, 3 * TWIN_SIZE, 3) and rate == 10.0
    bad = tmp_path / "bad_actions.npz"
    np.savez(bad, actions=np.zeros((20, 2, 8), np.float32))
    r = _cli("--checkpoint", str(checkpoint), "--images", paths[0], "--view-ids", "2", "--actions", str(bad),
             "--out", str(tmp_path / "x.mp4"))
    assert r.returncode == 2
    assert "bad_actions.npz: field 'actions' has shape (20, 2, 8), expected (T, 14)" in r.stderr
    r = _cli("--checkpoint", str(checkpoint), "--images", *paths[:2], "--view-ids", "2", "--actions", str(actions),
             "--out", str(tmp_path / "x.mp4"))
    assert r.returncode == 2 and "2 images but 1 view ids" in r.stderr


def test_conditioning_latent_equals_release_clip_encoding(predictor):
    import torch

    frames = torch.from_numpy(np.stack([_image(3, TWIN_SIZE, TWIN_SIZE), _image(4, TWIN_SIZE, TWIN_SIZE)]))
    packed = predictor.encode_condition(frames)  # (1, C, 2 * 6, h, w)
    clip = torch.full((2, 3, 21, TWIN_SIZE, TWIN_SIZE), -1.0)  # the release: image + 20 black frames
    clip[:, :, 0] = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        ref = predictor.vae.encode(clip, chunked=False)
    assert packed.shape == (1, ref.shape[1], 12, *ref.shape[3:])
    torch.testing.assert_close(packed[0, :, 0], ref[0, :, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed[0, :, 6], ref[1, :, 0], rtol=1e-5, atol=1e-5)


def test_official_layout_checkpoint_loads(checkpoint, tmp_path):
    import torch
    from safetensors.torch import load_file

    from worldmodel.checkpoint import read_own_config

    net_cfg, _ = read_own_config(checkpoint)
    state = {f"net.{k}": v.to(torch.bfloat16) for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
    official = tmp_path / "a2world-tiny.pt"
    torch.save(state, official)  # the release's layout: `net.` keys, bf16 tensors
    with pytest.raises(PredictError, match="needs the Wan2.1 VAE weights"):
        WorldModelPredictor.from_checkpoint(official, net_config=net_cfg)
    p = WorldModelPredictor.from_checkpoint(official, net_config=net_cfg, vae_weights=checkpoint / "vae.safetensors",
                                            vae_config="auto")
    assert p.resolution == (256, 256) and p.action_stats(None).kind == "identity"
    p.resolution = (TWIN_SIZE, TWIN_SIZE)  # the tiny network's size; the release runs at 256x256
    out = p.predict({2: _image(0)}, np.zeros((20, 14)), steps=1)
    assert out[2].shape == (21, TWIN_SIZE, TWIN_SIZE, 3)


def test_untrained_vae_warns_loudly(checkpoint, tmp_path):
    import torch

    from worldmodel.checkpoint import read_own_config
    from worldmodel.predict import UntrainedVAEWarning
    from worldmodel.vae import WanVAE

    with pytest.warns(UntrainedVAEWarning, match="colour noise"):
        p = WorldModelPredictor.from_checkpoint(checkpoint)  # the smoke run trains on a random tiny VAE
    assert "randomly initialised" in p.vae_warning
    r = _cli("--checkpoint", str(checkpoint), "--images", str(_png(tmp_path)), "--view-ids", "2",
             "--actions", str(_zero_actions(tmp_path)), "--out", str(tmp_path / "x.mp4"), "--steps", "1")
    assert r.returncode == 0 and "WARNING: UNTRAINED VAE" in r.stderr, r.stderr
    # the same weights with a training record (what `train-vae` writes) load without a warning
    vae = WanVAE.from_checkpoint(checkpoint / "vae.safetensors", config="auto")
    trained = vae.save_checkpoint(tmp_path / "trained_vae.safetensors", {"trained": True, "steps": 1})
    net_cfg, _ = read_own_config(checkpoint)
    official = tmp_path / "net.pt"
    from safetensors.torch import load_file

    torch.save({f"net.{k}": v for k, v in load_file(str(checkpoint / "model.safetensors")).items()}, official)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedVAEWarning)
        q = WorldModelPredictor.from_checkpoint(official, net_config=net_cfg, vae_weights=trained, vae_config="auto")
    assert q.vae_warning is None


def _png(tmp_path):
    path = tmp_path / "view.png"
    cv2.imwrite(str(path), _image(0, 64, 64))
    return path


def _zero_actions(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez(path, actions=np.zeros((20, 14), np.float32))
    return path
