"""The shadow predictor in its own server: wire round trip, scoring of a streamed run, security rules,
and a client that never blocks the control loop."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shadow_scene as scene
import zmq.auth

from worldmodel.shadow.client import ShadowClient, ShadowUnavailableError
from worldmodel.shadow.config import ServerSettings, ShadowConfig
from worldmodel.shadow.engine import ShadowEngine
from worldmodel.shadow.service import ShadowServer
from worldmodel.shadow.worker import ShadowWorker


def _serve(settings: ServerSettings, predictor=None):
    config = ShadowConfig.from_mapping({"cameras": ["front"]})
    worker = ShadowWorker(ShadowEngine(predictor or scene.KinematicPredictor(), config)).start()
    server = ShadowServer(worker, settings)
    server.start_background()
    return worker, server


def _stream(client: ShadowClient, chunks: int) -> None:
    """A run of the scene: observations at 30 Hz, a chunk every second starting at its observation."""
    pos = scene.positions(30 * (chunks + 2))
    for j, p in enumerate(pos):
        obs = scene.observation(100.0 + j * scene.DT, p)
        client.on_observation(obs)
        if j % 30 == 0 and j // 30 < chunks:
            assert client.on_chunk(scene.trajectory(obs.t, 60, p))
        time.sleep(0.002)


def test_streamed_run_is_scored_in_the_server():
    worker, server = _serve(ServerSettings(address="tcp://127.0.0.1:*"))
    client = ShadowClient(server.address, send_hwm=1000, cameras=("front",))
    try:
        meta = client.connect(timeout_s=5.0)
        assert meta["resolution"] == [scene.H, scene.W] and meta["cameras"] == ["front"]
        _stream(client, chunks=3)
        deadline = time.monotonic() + 10
        results = []
        while time.monotonic() < deadline and len(results) < 3:
            results += client.results(panels=True)
            time.sleep(0.05)
        assert [r["seq"] for r in results] == [0, 1, 2]
        for r in results:
            m = r["metrics"]["front"]
            assert m["psnr"] == [None] * 20  # +inf: the prediction is pixel-identical to the right frames
            assert max(m["flow_epe"]) < 1e-9 and r["missing"] == {"front": 0}
            assert r["panels"]["front"].shape == (21, scene.H, 3 * scene.W, 3)
        status = client.status()
        assert status["predicted"] == 3 and status["scored"] == 3 and status["dropped"] == 0
        assert status["client"]["dropped_sends"] == 0 and status["frames"] == 150
    finally:
        client.close()
        server.stop()
        worker.stop()


def test_non_loopback_needs_curve_and_curve_works(tmp_path):
    with pytest.raises(ValueError, match="needs CURVE keys"):
        ShadowServer(ShadowWorker(ShadowEngine(scene.KinematicPredictor(), ShadowConfig())),
                     ServerSettings(address="tcp://0.0.0.0:5599"))
    server_public, server_secret = zmq.auth.create_certificates(str(tmp_path), "server")
    worker, server = _serve(ServerSettings(address="tcp://127.0.0.1:*", curve_secret_key_file=server_secret))
    try:
        good = ShadowClient(server.address, server_public_key_file=server_public)
        assert good.connect(timeout_s=5.0)["fps"] == 10.0
        good.close()
        plain = ShadowClient(server.address)  # no keys: the CURVE server never answers
        with pytest.raises(ShadowUnavailableError):
            plain.connect(timeout_s=0.5)
        plain.close()
    finally:
        server.stop()
        worker.stop()


def test_client_never_blocks_without_a_server():
    client = ShadowClient("tcp://127.0.0.1:5598", send_hwm=4, cameras=("front",))
    try:
        pos = scene.positions(200)
        t0 = time.perf_counter()
        for j, p in enumerate(pos):
            client.on_observation(scene.observation(100.0 + j * scene.DT, p))
        elapsed = time.perf_counter() - t0
        assert elapsed < 2.0  # 200 frames: a blocked send would hang here
        assert client.counters["dropped_sends"] >= 190
        with pytest.raises(ShadowUnavailableError, match="no reply"):
            client.status(timeout_s=0.2)
    finally:
        client.close()


def test_bad_messages_get_errors_and_the_server_keeps_serving():
    worker, server = _serve(ServerSettings(address="tcp://127.0.0.1:*"))
    client = ShadowClient(server.address)
    try:
        with pytest.raises(RuntimeError, match="expected work, frame"):
            client._call("nonsense")
        client._send("work", {"seq": 1})  # missing fields: counted, no reply (no id), still serving
        client._send("frame", {"camera": "front", "t": 1.0, "image": np.zeros((2, 2), np.uint8)})
        assert client.connect(timeout_s=5.0)["fps"] == 10.0
        assert server.errors == 3
    finally:
        client.close()
        server.stop()
        worker.stop()
