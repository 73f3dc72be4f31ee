"""ONNX export of the denoiser step and the onnxruntime runner agree with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from policy_demo_data import home_request, random_checkpoint

from policy.checkpoint import load_policy
from policy.inference import A2WorldPolicy
from policy.onnx_export import INPUTS, DenoiserStep, example_inputs, export_onnx
from policy.onnx_runner import OnnxDenoiser, OnnxPolicy

TOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    ckpt = random_checkpoint(root / "ckpt")
    return ckpt, export_onnx(ckpt, root / "denoiser.onnx")


def test_onnx_step_matches_torch(exported):
    ckpt, path = exported
    loaded = load_policy(ckpt)
    inputs = example_inputs(loaded.config, loaded.config.text.max_tokens)
    with torch.no_grad():
        ref = DenoiserStep(loaded.net, loaded.config)(*inputs)
    got = OnnxDenoiser(path).x0(**{n: t.numpy() for n, t in zip(INPUTS, inputs)})
    for g, r in zip(got, ref):
        assert g.shape == tuple(r.shape)
        assert np.abs(g - r.numpy()).max() < TOL
    # the committed prefix (first 5 steps in the example) is passed through exactly
    assert np.array_equal(got[1][:, :5], inputs[9][:, :5].numpy())


def test_onnx_policy_chunk_matches_torch_policy(exported):
    ckpt, path = exported
    request = home_request(prefix_len=4)
    torch_chunk = A2WorldPolicy(ckpt, device="cpu", seed=7).infer(request).chunk
    onnx_chunk = OnnxPolicy(ckpt, path, seed=7).infer(request).chunk
    assert onnx_chunk.shape == torch_chunk.shape == (56, 2, 8)
    assert np.abs(onnx_chunk - torch_chunk).max() < 1e-4
