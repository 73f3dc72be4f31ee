"""Policy client: the `Policy` interface over ZeroMQ, with timeouts and reconnection.

Each call sends one request on a DEALER socket (a msgpack header frame plus one zero-copy frame per
array, `policy.wire`) and waits for the reply with the same id; replies to earlier, abandoned
requests are discarded. With `server_public_key_file` the connection is CURVE-encrypted and the
server is authenticated; `client_secret_key_file` is the robot's own key pair, whose public half the
server's allow-list holds. A timeout closes the socket and reconnects (ZeroMQ's
"lazy pirate" pattern), so a restarted server is picked up by the next call.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import zmq
import zmq.auth

from policy.interface import PolicyRequest, PolicyResult
from policy.wire import decode, encode


class PolicyTimeoutError(TimeoutError):
    """No reply within the timeout; the client has reconnected for the next call."""


class PolicyServerError(RuntimeError):
    """The server answered with an error (malformed request, superseded, model failure)."""


def _load_key(path: str, what: str) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} {path}: cannot read a ZeroMQ CURVE certificate ({exc})") from None


class PolicyClient:
    """Connects to a `PolicyServer`; implements `policy.interface.Policy`."""

    def __init__(self, address: str, timeout_s: float = 2.0, server_public_key_file: str | None = None,
                 client_secret_key_file: str | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._ctx = zmq.Context()
        self._curve: tuple[bytes, bytes, bytes] | None = None
        if client_secret_key_file and not server_public_key_file:
            raise ValueError("policy client: a client key needs the server's public key (server_public_key_file) "
                             "to authenticate the server")
        if server_public_key_file:
            server_public, _ = _load_key(server_public_key_file, "server_public_key_file")
            if client_secret_key_file:
                public, secret = _load_key(client_secret_key_file, "client_secret_key_file")
                if secret is None:
                    raise ValueError(f"client_secret_key_file {client_secret_key_file}: holds no secret key "
                                     "(give the *.key_secret file)")
            else:
                public, secret = zmq.curve_keypair()  # an ephemeral identity (servers with --allow-any-client)
            self._curve = (server_public, public, secret)
        self._sock: zmq.Socket | None = None
        self.last_round_trip_ms = float("nan")
        self._connect()

    def _connect(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self._curve is not None:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self._curve
        sock.connect(self.address)
        self._sock = sock

    def _call(self, kind: str, body: dict[str, Any] | None = None, timeout_s: float | None = None) -> dict[str, Any]:
        assert self._sock is not None
        msg_id = next(self._ids)
        t0 = time.perf_counter()
        self._sock.send_multipart([b"", *encode({"type": kind, "id": msg_id, "body": body or {}})], copy=False)
        deadline = t0 + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            remaining_ms = int(max(0.0, deadline - time.perf_counter()) * 1e3)
            if remaining_ms == 0 or not self._sock.poll(remaining_ms, zmq.POLLIN):
                self._connect()
                waited = self.timeout_s if timeout_s is None else timeout_s
                raise PolicyTimeoutError(f"no reply from {self.address} to {kind!r} within {waited} s")
            reply = decode(self._sock.recv_multipart(copy=False)[1:])
            if reply.get("id") not in (msg_id, None):
                continue  # a late reply to an abandoned request; id None: the server could not read ours
            self.last_round_trip_ms = (time.perf_counter() - t0) * 1e3
            if not reply.get("ok"):
                raise PolicyServerError(str(reply.get("error")))
            reply.setdefault("timing", {})
            return reply

    def metadata(self) -> dict[str, Any]:
        return self._call("metadata")["body"]

    def health(self, timeout_s: float | None = None) -> dict[str, Any]:
        return self._call("health", timeout_s=timeout_s)["body"]

    def infer(self, request: PolicyRequest) -> PolicyResult:
        reply = self._call("infer", request.validate().to_dict())
        result = PolicyResult.from_dict(reply["body"])
        result.timing.update(reply["timing"])
        result.timing["round_trip_ms"] = self.last_round_trip_ms
        return result

    def send_raw(self, *frames: bytes) -> dict[str, Any]:
        """Send frames as they are (after the delimiter) and return the decoded reply (diagnostics, tests)."""
        assert self._sock is not None
        self._sock.send_multipart([b"", *frames])
        if not self._sock.poll(int(self.timeout_s * 1e3)):
            self._connect()
            raise PolicyTimeoutError(f"no reply from {self.address} within {self.timeout_s} s")
        return decode(self._sock.recv_multipart(copy=False)[1:])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        self._ctx.term()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
