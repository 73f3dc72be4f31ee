"""The policy link end to end: CURVE keys on both ends (config, CLI), an allow-list required off
loopback, fair per-client serving, bounded msgpack containers, quaternion validation, zero-copy
array frames and one persistent inference worker. Real ZeroMQ sockets on loopback."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
import zmq.auth

from a2world_ros.runtime.policy_loop import ClientKeys, client_keys, open_policy
from policy.client import PolicyClient, PolicyServerError
from policy.interface import PolicyRequest
from policy.server import PolicyServer, ServerConfig
from policy.wire import decode, encode
from rig.config import ConfigError
from rig.schema import SchemaError
from tests.test_policy_server import IDENTITY_STATE, ShiftPolicy, make_request


@pytest.fixture
def keys(tmp_path):
    server_pub, server_sec = zmq.auth.create_certificates(tmp_path, "server")
    authorized = tmp_path / "clients"
    authorized.mkdir()
    robot_pub, robot_sec = zmq.auth.create_certificates(tmp_path, "robot")
    (authorized / "robot.key").write_bytes(Path(robot_pub).read_bytes())
    return {"server_pub": server_pub, "server_sec": server_sec, "authorized": str(authorized), "robot": robot_sec}


def start(policy, **config) -> PolicyServer:
    server = PolicyServer(policy, ServerConfig(**{"address": "tcp://127.0.0.1:0", **config}))
    server.start_background()
    return server


# ------------------------------------------------------------------ 7. keys on the robot side


def test_robot_connects_to_a_curve_server_with_keys_from_config(keys, tmp_path):
    server = start(ShiftPolicy(), curve_secret_key_file=keys["server_sec"], authorized_keys_dir=keys["authorized"])
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(f"policy_client:\n  server_public_key_file: {keys['server_pub']}\n"
                        f"  client_secret_key_file: {keys['robot']}\n")
    try:
        loaded = client_keys(None, str(run_yaml))
        assert loaded == ClientKeys(keys["server_pub"], keys["robot"])
        policy = open_policy(server.address, 5.0, loaded)
        assert policy.infer(make_request()).chunk.shape == (60, 2, 8)
        policy.close()
        node = client_keys({"server_public_key_file": keys["server_pub"], "client_secret_key_file": keys["robot"]})
        assert node == loaded  # the ROS policy node's parameters (launch args server_key, client_key)
    finally:
        server.stop()


def test_off_loopback_without_the_server_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not on loopback.*server-key"):
        open_policy("tcp://192.0.2.7:5555", 1.0)
    with pytest.raises(ConfigError, match="no such file"):
        client_keys({"server_public_key_file": str(tmp_path / "missing.key")})


# ------------------------------------------------------------------ 8. allow-list


def test_curve_off_loopback_requires_an_allow_list(keys, tmp_path, caplog):
    with pytest.raises(ValueError, match="without an allow-list admits any client"):
        PolicyServer(ShiftPolicy(), ServerConfig(address="tcp://0.0.0.0:0", curve_secret_key_file=keys["server_sec"]))
    with pytest.raises(ValueError, match="not a directory"):
        PolicyServer(ShiftPolicy(), ServerConfig(address="tcp://0.0.0.0:0", curve_secret_key_file=keys["server_sec"],
                                                 authorized_keys_dir=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no client public keys"):
        PolicyServer(ShiftPolicy(), ServerConfig(address="tcp://0.0.0.0:0", curve_secret_key_file=keys["server_sec"],
                                                 authorized_keys_dir=str(tmp_path / "empty")))
    with caplog.at_level(logging.WARNING, logger="policy.server"):
        server = PolicyServer(ShiftPolicy(), ServerConfig(address="tcp://0.0.0.0:0", allow_any_client=True,
                                                          curve_secret_key_file=keys["server_sec"]))
    assert "ANY client" in caplog.text
    server.stop()
    server._close()


def test_cli_serve_refuses_a_missing_allow_list(keys, tmp_path, capsys):
    from policy_demo_data import random_checkpoint

    from a2world_ros.cli.main import main

    ckpt = random_checkpoint(tmp_path / "ckpt")
    code = main(["policy", "serve", str(ckpt), "--address", "tcp://0.0.0.0:0", "--curve-secret", keys["server_sec"],
                 "--authorized-keys", str(tmp_path / "missing")])
    assert code == 2 and "not a directory" in capsys.readouterr().err


# ------------------------------------------------------------------ 9. fairness, bounds, quaternions


def test_greedy_clients_do_not_starve_the_robot():
    """20 clients re-sending as fast as they can and one robot asking every few ms: before, 759 of 800
    inferences were superseded ("newest wins" was global); now each client keeps its turn."""
    policy = ShiftPolicy(delay_s=0.002)
    server = start(policy)
    stop = threading.Event()

    def greedy():
        with PolicyClient(server.address, timeout_s=10.0) as c:
            while not stop.is_set():
                with contextlib.suppress(PolicyServerError):
                    c.infer(make_request())

    threads = [threading.Thread(target=greedy, daemon=True) for _ in range(20)]
    for t in threads:
        t.start()
    served = 0
    with PolicyClient(server.address, timeout_s=10.0) as robot:
        for _ in range(10):
            robot.infer(make_request())  # raises PolicyServerError when superseded
            served += 1
    stop.set()
    for t in threads:
        t.join(15.0)
    server.stop()
    assert served == 10 and server.superseded == 0


def test_a_huge_msgpack_map_is_refused_at_once_and_health_still_answers():
    server = start(ShiftPolicy())
    try:
        with PolicyClient(server.address, timeout_s=5.0) as client:
            huge = msgpack.packb({"type": "infer", "id": 1, "body": {f"k{i}": i for i in range(1_000_000)}})
            t0 = time.perf_counter()
            reply = client.send_raw(huge)
            assert not reply["ok"] and "header of" in reply["error"] and "exceeds the limit" in reply["error"]
            assert time.perf_counter() - t0 < 2.0  # refused before parsing 1M keys
            wide = msgpack.packb({"type": "infer", "id": 2, "body": {f"k{i}": i for i in range(5000)}})
            reply = client.send_raw(wide)  # small enough in bytes, but the map is over max_map_len
            assert not reply["ok"] and "5000 exceeds max_map_len" in reply["error"]
            assert client.health()["status"] == "idle"
    finally:
        server.stop()


def test_state_quaternions_are_validated():
    bad = IDENTITY_STATE.copy()
    bad[1, 3:7] = [0.0, 0.0, 0.0, 0.5]
    with pytest.raises(SchemaError, match=r"request.state\[1\]: quaternion norm 0.5000"):
        PolicyRequest(images={}, state=bad, instruction="x").validate()
    prefix = np.repeat(IDENTITY_STATE[None], 3, axis=0)
    prefix[2, 0, 3:7] = 0.0
    with pytest.raises(SchemaError, match=r"request.prefix\[2, 0\]"):
        PolicyRequest(images={}, state=IDENTITY_STATE.copy(), instruction="x", prefix=prefix).validate()


# ------------------------------------------------------------------ 10. transport


def test_arrays_travel_as_separate_zero_copy_frames():
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    frames = encode({"type": "infer", "body": {"images": {"front": image}}})
    assert len(frames) == 2 and len(frames[0]) < 200  # small header + the image's own buffer
    assert np.shares_memory(frames[1], image)  # no copy on the way out
    received = [zmq.Frame(f) for f in frames]
    out = decode(received)["body"]["images"]["front"]
    np.testing.assert_array_equal(out, image)
    assert np.shares_memory(out, np.frombuffer(received[1].buffer, np.uint8))  # no copy on the way in


def test_one_persistent_inference_worker():
    server = start(ShiftPolicy())
    try:
        with PolicyClient(server.address, timeout_s=5.0) as client:
            client.infer(make_request())
            before = {t.ident for t in threading.enumerate()}
            for _ in range(20):
                client.infer(make_request())
            assert {t.ident for t in threading.enumerate()} == before  # no thread per inference
            assert server._worker.is_alive() and server.served == 21
    finally:
        server.stop()
