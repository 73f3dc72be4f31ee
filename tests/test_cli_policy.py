"""`a2world policy ...`: help texts, CURVE key generation, and `serve` round trips with a real client."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from policy_demo_data import home_request, random_checkpoint

from a2world_ros.cli.main import main
from policy.client import PolicyClient, PolicyServerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_group_without_subcommand_prints_help(capsys):
    assert main(["policy"]) == 0
    out = capsys.readouterr().out
    for sub in ("train", "serve", "export-onnx", "keys"):
        assert sub in out


def test_keys_writes_loadable_certificates(tmp_path, capsys):
    import zmq.auth

    assert main(["policy", "keys", str(tmp_path / "keys")]) == 0
    pub, secret = zmq.auth.load_certificate(str(tmp_path / "keys" / "server.key_secret"))
    assert pub and secret
    assert (tmp_path / "keys" / "clients" / "client.key").is_file()
    _, client_secret = zmq.auth.load_certificate(str(tmp_path / "keys" / "client.key_secret"))
    assert client_secret


def test_serve_refuses_public_interface_without_keys(tmp_path, capsys):
    ckpt = random_checkpoint(tmp_path / "ckpt")
    assert main(["policy", "serve", str(ckpt), "--address", "tcp://0.0.0.0:5999"]) == 2
    assert "CURVE" in capsys.readouterr().err


@pytest.fixture
def served(tmp_path):
    ckpt = random_checkpoint(tmp_path / "ckpt")
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "a2world_ros.cli.main", "policy", "serve", str(ckpt),
                             "--address", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc, address
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_round_trip_returns_absolute_chunks(served):
    proc, address = served
    request = home_request()
    with PolicyClient(address, timeout_s=60.0) as client:
        deadline = time.monotonic() + 120
        while True:  # the server process needs a while to import torch and load the model
            try:
                meta = client.metadata()
                break
            except TimeoutError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline
        assert meta["action_layout"]["shape"] == [60, 2, 8]
        assert meta["rates"] == {"action_hz": 30, "video_fps": 10}
        assert len(meta["model_hash"]) == 64
        result = client.infer(request)
        assert result.chunk.shape == (60, 2, 8)
        assert result.dt == pytest.approx(1 / 30)
        quat_norm = np.linalg.norm(result.chunk[..., 3:7], axis=-1)
        assert np.allclose(quat_norm, 1.0, atol=1e-6)
        assert np.all((result.chunk[..., 7] >= 0) & (result.chunk[..., 7] <= 1))
        # absolute targets: near the arms' current poses (an untrained policy stays within a metre)
        assert np.abs(result.chunk[..., :3] - request.state[None, :, :3]).max() < 1.0
        assert {"sample_ms", "encode_ms", "infer_ms", "round_trip_ms"} <= set(result.timing)
        # with a committed prefix the reply continues after it
        assert client.infer(home_request(prefix_len=10)).chunk.shape == (50, 2, 8)
        # a malformed request gets an error reply and the server keeps serving
        bad = home_request()
        bad.images.pop("front")
        with pytest.raises(PolicyServerError, match="front"):
            client.infer(bad)
        assert client.health()["errors"] >= 1
        assert client.infer(request).chunk.shape == (60, 2, 8)


def test_export_onnx_with_check(tmp_path, capsys):
    ckpt = random_checkpoint(tmp_path / "ckpt")
    assert main(["policy", "export-onnx", str(ckpt), str(tmp_path / "step.onnx"), "--check"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "step.onnx").is_file()
    diff = float(out.rsplit("max abs difference", 1)[1].split()[0])
    assert diff < 1e-4
