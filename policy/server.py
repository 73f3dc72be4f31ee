"""Policy server over ZeroMQ: typed msgpack messages, one inference at a time, newest request wins.

Requests `{"type": "infer" | "metadata" | "health", "id": int, "body": {...}}` arrive on a ROUTER
socket; replies carry the same id, `ok`, an `error` text or a `body`, and `timing` in ms. Metadata and
health are answered at once, also while an inference runs. An inference request that arrives while
another runs waits in a single slot; a newer one replaces it and the replaced client is told it was
superseded. Malformed or oversized requests get an error reply and the server keeps serving.

Binds to loopback unless told otherwise; any other interface requires CURVE keys (encryption and,
with `authorized_keys_dir`, client authentication through ZAP).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from policy.interface import Policy, PolicyRequest
from policy.wire import WireError, decode, encode

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    """Where and how the server listens."""

    address: str = "tcp://127.0.0.1:5555"
    max_request_bytes: int = 64 * 1024 * 1024
    curve_secret_key_file: str | None = None
    authorized_keys_dir: str | None = None


def is_loopback(address: str) -> bool:
    """True for tcp://127.x, tcp://[::1], tcp://localhost and ipc/inproc endpoints."""
    parsed = urlparse(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_socket(ctx: zmq.Context, sock: zmq.Socket, address: str, secret_key_file: str | None,
                  authorized_keys_dir: str | None, what: str = "server") -> ThreadAuthenticator | None:
    """The security rule of our ZeroMQ servers: loopback may run in the clear; any other interface needs
    a CURVE secret key (encryption) and, with `authorized_keys_dir`, client authentication through ZAP.
    Returns the started authenticator (stop it on close), or None."""
    if secret_key_file is None:
        if not is_loopback(address):
            raise ValueError(
                f"{what} address {address}: binding to a non-loopback interface needs CURVE "
                "keys (curve_secret_key_file); generate them with `a2world policy keys DIR`"
            )
        return None
    public, private = zmq.auth.load_certificate(secret_key_file)
    if private is None:
        raise ValueError(f"curve_secret_key_file {secret_key_file}: holds no secret key")
    auth = None
    if authorized_keys_dir:
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(Path(authorized_keys_dir)))
    sock.curve_secretkey = private
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


class PolicyServer:
    """Serves one `Policy` on a ZeroMQ ROUTER socket until `stop()`."""

    def __init__(self, policy: Policy, config: ServerConfig | None = None) -> None:
        self.policy = policy
        self.config = config or ServerConfig()
        self._ctx = zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        # zmq drops (and disconnects) above this hard cap; our own lower limit answers with an error.
        self._sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_request_bytes * 16)
        self._configure_security()
        self._sock.bind(self.config.address)
        self.address = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._done_rx = self._ctx.socket(zmq.PAIR)
        self._done_rx.bind(f"inproc://policy-done-{id(self)}")
        self._done_tx = self._ctx.socket(zmq.PAIR)
        self._done_tx.connect(f"inproc://policy-done-{id(self)}")
        self._stop = threading.Event()
        self._busy = False
        self._pending: tuple[bytes, int, PolicyRequest, float] | None = None
        self._result: dict[str, Any] | None = None
        self.served = 0
        self.errors = 0
        self.superseded = 0
        self._meta = encode({"ok": True, "body": policy.metadata()})

    def _configure_security(self) -> None:
        self._auth = secure_socket(self._ctx, self._sock, self.config.address, self.config.curve_secret_key_file,
                                   self.config.authorized_keys_dir, what="server")

    # -- request handling -------------------------------------------------------------------
    def _reply(self, ident: bytes, msg_id: Any, *, ok: bool, body: Any = None, error: str = "",
               timing: dict[str, float] | None = None) -> None:
        payload = {"id": msg_id, "ok": ok, "timing": timing or {}}
        if ok:
            payload["body"] = body
        else:
            payload["error"] = error
            self.errors += 1
        self._sock.send_multipart([ident, b"", encode(payload)], copy=False)

    def _on_message(self, frames: list[bytes]) -> None:
        t_recv = time.perf_counter()
        ident, payload = frames[0], frames[-1]
        msg_id: Any = None
        try:
            message = decode(payload, self.config.max_request_bytes)
            msg_id = message.get("id")
            kind = message.get("type")
            if kind == "metadata":
                self._sock.send_multipart([ident, b"", encode({"id": msg_id, **decode(self._meta)})])
                return
            if kind == "health":
                body = {"status": "busy" if self._busy else "idle", "served": self.served,
                        "errors": self.errors, "superseded": self.superseded}
                self._reply(ident, msg_id, ok=True, body=body)
                return
            if kind != "infer":
                raise WireError(f"field 'type': {kind!r}, expected 'infer', 'metadata' or 'health'")
            request = PolicyRequest.from_dict(message.get("body") or {})
        except (WireError, ValueError) as exc:
            self._reply(ident, msg_id, ok=False, error=str(exc))
            return
        if self._pending is not None:
            old_ident, old_id, _, _ = self._pending
            self.superseded += 1
            self._reply(old_ident, old_id, ok=False, error="superseded by a newer request")
        self._pending = (ident, msg_id, request, t_recv)
        self._start_next()

    def _start_next(self) -> None:
        if self._busy or self._pending is None:
            return
        job, self._pending = self._pending, None
        self._busy = True
        threading.Thread(target=self._run, args=(job,), daemon=True, name="policy-infer").start()

    def _run(self, job: tuple[bytes, int, PolicyRequest, float]) -> None:
        ident, msg_id, request, t_recv = job
        t0 = time.perf_counter()
        try:
            result = self.policy.infer(request)
            out = {"ident": ident, "id": msg_id, "ok": True, "body": result.to_dict(),
                   "timing": {"queue_ms": (t0 - t_recv) * 1e3, "infer_ms": (time.perf_counter() - t0) * 1e3,
                              **result.timing}}
        except Exception as exc:  # report any model failure to the client and keep serving
            log.error("inference failed: %s", traceback.format_exc())
            out = {"ident": ident, "id": msg_id, "ok": False, "error": f"inference failed: {exc!r}"}
        self._result = out
        self._done_tx.send(b"")

    def _on_done(self) -> None:
        self._done_rx.recv()
        out, self._result = self._result, None
        self._busy = False
        assert out is not None
        if out["ok"]:
            self.served += 1
            self._reply(out["ident"], out["id"], ok=True, body=out["body"], timing=out["timing"])
        else:
            self._reply(out["ident"], out["id"], ok=False, error=out["error"])
        self._start_next()

    # -- lifecycle ----------------------------------------------------------------------------
    def serve_forever(self, poll_ms: int = 100) -> None:
        """Serve until `stop()` is called (from another thread or a signal handler)."""
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._done_rx, zmq.POLLIN)
        log.info("policy server listening on %s", self.address)
        while not self._stop.is_set():
            events = dict(poller.poll(poll_ms))
            if self._done_rx in events:
                self._on_done()
            if self._sock in events:
                while True:
                    try:
                        frames = self._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_message(frames)
        self._close()

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (tests, in-process use); returns the thread."""
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="policy-server")
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _close(self) -> None:
        for sock in (self._sock, self._done_rx, self._done_tx):
            sock.close(0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()
