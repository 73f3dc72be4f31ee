"""Policy server and client over real ZeroMQ sockets on loopback."""

import threading
import time

import numpy as np
import pytest
import zmq
import zmq.auth

from policy.client import PolicyClient, PolicyServerError, PolicyTimeoutError
from policy.interface import PolicyRequest, PolicyResult
from policy.server import PolicyServer, ServerConfig, is_loopback
from policy.wire import WireError, WireLimits, decode, encode

IDENTITY_STATE = np.array([[0.4, 0.1, 0.3, 0, 0, 0, 1, 1.0], [0.4, -0.1, 0.3, 0, 0, 0, 1, 0.5]])


class ShiftPolicy:
    """Deterministic test policy: moves each arm up 1 mm per step from the request state."""

    def __init__(self, delay_s: float = 0.0, steps: int = 60) -> None:
        self.delay_s = delay_s
        self.steps = steps
        self.calls = 0
        self.started = threading.Event()

    def metadata(self):
        return {"name": "shift", "steps": self.steps, "dt": 1 / 30, "action_layout": "(T, 2, 8)"}

    def infer(self, request: PolicyRequest) -> PolicyResult:
        self.calls += 1
        self.started.set()
        time.sleep(self.delay_s)
        chunk = np.repeat(request.state[None], self.steps, axis=0)
        chunk[:, :, 2] += 0.001 * np.arange(1, self.steps + 1)[:, None]
        return PolicyResult(chunk=chunk, dt=1 / 30, timing={"model_ms": self.delay_s * 1e3})


def make_request(tag: float = 0.0) -> PolicyRequest:
    images = {"front": np.zeros((48, 64, 3), np.uint8)}
    return PolicyRequest(images=images, state=IDENTITY_STATE.copy(), instruction="lift the box", t_obs=tag)


@pytest.fixture
def served():
    servers = []

    def start(policy, **config):
        server = PolicyServer(policy, ServerConfig(address="tcp://127.0.0.1:0", **config))
        server.start_background()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_wire_round_trip_and_rejections():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = decode(encode({"a": arr, "nested": {"b": np.uint8(3)}}))
    np.testing.assert_array_equal(out["a"], arr)
    assert out["a"].dtype == np.float32 and out["nested"]["b"] == 3
    with pytest.raises(WireError, match="dtype object is not allowed"):
        encode({"a": np.array([object()])})
    with pytest.raises(WireError, match="exceeds the limit of 10 bytes"):
        decode(encode({"a": arr}), WireLimits(max_bytes=10))
    with pytest.raises(WireError, match="not a valid msgpack message"):
        decode([b"\xc1\xc1\xc1"])
    with pytest.raises(WireError, match="expected a map"):
        decode(encode([1, 2]))  # type: ignore[arg-type]


def test_round_trip_metadata_health_and_chunk(served):
    server = served(ShiftPolicy())
    with PolicyClient(server.address, timeout_s=5.0) as client:
        assert client.metadata()["name"] == "shift"
        assert client.health()["status"] == "idle"
        result = client.infer(make_request())
    assert result.chunk.shape == (60, 2, 8)
    np.testing.assert_allclose(result.chunk[0, 0, 2], 0.301)
    assert {"infer_ms", "queue_ms", "round_trip_ms", "model_ms"} <= set(result.timing)


def test_malformed_and_oversized_requests_get_errors_and_server_keeps_serving(served):
    server = served(ShiftPolicy(), max_request_bytes=200_000)
    with PolicyClient(server.address, timeout_s=5.0) as client:
        reply = client.send_raw(b"\x00garbage")
        assert not reply["ok"] and "not a valid msgpack message" in reply["error"]
        reply = client.send_raw(*encode({"type": "infer", "id": 7, "body": {"state": [1, 2]}}))
        assert not reply["ok"] and reply["id"] == 7 and "missing field 'images'" in reply["error"]
        bad = make_request()
        bad.images["front"] = np.zeros((4, 4), np.uint8)
        reply = client.send_raw(*encode({"type": "infer", "id": 8, "body": bad.to_dict()}))
        assert "request.images['front']" in reply["error"]
        big = make_request()
        big.images["front"] = np.zeros((480, 640, 3), np.uint8)
        with pytest.raises(PolicyServerError, match="exceeds the limit of 200000 bytes"):
            client.infer(big)
        reply = client.send_raw(*encode({"type": "reboot", "id": 9}))
        assert "expected 'infer', 'metadata' or 'health'" in reply["error"]
        assert client.infer(make_request()).chunk.shape == (60, 2, 8)
    assert server.errors == 5


def test_timeout_then_server_restart_reconnects():
    with zmq.Context() as ctx:  # find a free port, then leave it unbound
        sock = ctx.socket(zmq.REP)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        sock.close(0)
    address = f"tcp://127.0.0.1:{port}"
    client = PolicyClient(address, timeout_s=0.3)
    with pytest.raises(PolicyTimeoutError, match="no reply"):
        client.infer(make_request())
    server = PolicyServer(ShiftPolicy(), ServerConfig(address=address))
    server.start_background()
    try:
        client.timeout_s = 5.0
        assert client.infer(make_request()).chunk.shape == (60, 2, 8)
        server.stop()
        time.sleep(0.3)
        client.timeout_s = 0.3
        with pytest.raises(PolicyTimeoutError):
            client.health()
        server = PolicyServer(ShiftPolicy(), ServerConfig(address=address))
        server.start_background()
        client.timeout_s = 5.0
        assert client.health()["served"] == 0
    finally:
        server.stop()
        client.close()


def test_newest_request_wins_per_client_while_busy(served):
    """Requests of one client (one ZeroMQ identity) supersede each other; other clients keep their turn."""
    policy = ShiftPolicy(delay_s=0.4)
    server = served(policy)
    first, third = (PolicyClient(server.address, timeout_s=5.0) for _ in range(2))
    ctx = zmq.Context.instance()
    robot = ctx.socket(zmq.DEALER)  # one identity sending twice, as a client that re-sends after a timeout
    robot.connect(server.address)
    results = {}

    def call(name, client, tag):
        try:
            results[name] = client.infer(make_request(tag))
        except PolicyServerError as exc:
            results[name] = exc

    threads = [threading.Thread(target=call, args=("first", first, 1.0))]
    threads[0].start()
    assert policy.started.wait(2.0)
    for msg_id in (21, 22):
        robot.send_multipart([b"", *encode({"type": "infer", "id": msg_id, "body": make_request(2.0).to_dict()})])
    time.sleep(0.1)
    health = third.health()
    assert health["status"] == "busy" and health["waiting"] == 1  # metadata/health answered during inference
    threads.append(threading.Thread(target=call, args=("third", third, 3.0)))
    threads[1].start()
    replies = {}
    for _ in range(2):
        assert robot.poll(5000)
        reply = decode(robot.recv_multipart()[1:])
        replies[reply["id"]] = reply
    for t in threads:
        t.join(5.0)
    assert not replies[21]["ok"] and "superseded" in replies[21]["error"] and replies[22]["ok"]
    assert isinstance(results["first"], PolicyResult) and isinstance(results["third"], PolicyResult)
    assert policy.calls == 3 and server.superseded == 1
    robot.close(0)
    for c in (first, third):
        c.close()


def test_non_loopback_needs_curve_and_curve_round_trip(tmp_path, served):
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1") and is_loopback("ipc:///tmp/x")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://192.0.2.1:5555")
    with pytest.raises(ValueError, match="needs CURVE keys"):
        PolicyServer(ShiftPolicy(), ServerConfig(address="tcp://0.0.0.0:0"))
    server_pub, server_sec = zmq.auth.create_certificates(tmp_path, "server")
    authorized = tmp_path / "authorized"
    authorized.mkdir()
    _, client_sec = zmq.auth.create_certificates(authorized, "client")
    server = served(ShiftPolicy(), curve_secret_key_file=server_sec, authorized_keys_dir=str(authorized))
    with PolicyClient(server.address, timeout_s=5.0, server_public_key_file=server_pub,
                      client_secret_key_file=client_sec) as client:
        assert client.infer(make_request()).chunk.shape == (60, 2, 8)
    with PolicyClient(server.address, timeout_s=0.5, server_public_key_file=server_pub) as stranger, \
            pytest.raises(PolicyTimeoutError):  # unknown client key: ZAP refuses the handshake
        stranger.health()
