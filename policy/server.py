"""Policy server over ZeroMQ: typed msgpack messages, one persistent inference worker, fair per client.

Requests `{"type": "infer" | "metadata" | "health", "id": int, "body": {...}}` arrive on a ROUTER
socket as a msgpack header frame plus one raw frame per array (`policy.wire`); replies carry the same
id, `ok`, an `error` text or a `body`, and `timing` in ms. Metadata and health are answered at once,
also while an inference runs. Each client (ZeroMQ identity) has at most one waiting inference: a newer
request from the same client replaces its older one (that client is told it was superseded), and the
one worker thread serves the waiting clients in arrival order, so a second client never starves the
robot. Malformed or oversized requests get an error reply and the server keeps serving.

Binds to loopback unless told otherwise; any other interface requires CURVE keys (encryption) and an
allow-list of client public keys (`authorized_keys_dir`, checked through ZAP), or an explicit
`allow_any_client` that logs a warning. A missing or empty allow-list directory fails at start.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from policy.interface import Policy, PolicyRequest
from policy.wire import WireError, WireLimits, decode, encode

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    """Where and how the server listens."""

    address: str = "tcp://127.0.0.1:5555"
    max_request_bytes: int = 64 * 1024 * 1024
    curve_secret_key_file: str | None = None
    authorized_keys_dir: str | None = None
    allow_any_client: bool = False
    """CURVE without an allow-list: any client holding the server's public key may connect (warned)."""
    max_waiting_clients: int = 64


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


def authorized_key_files(directory: str) -> list[Path]:
    """The client public keys (`*.key`) of an allow-list directory; ValueError when there are none."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"authorized_keys_dir {directory}: not a directory; create it and copy the clients' "
                         "public keys (*.key from `a2world policy keys`) into it")
    keys = sorted(path.glob("*.key"))
    if not keys:
        raise ValueError(f"authorized_keys_dir {directory}: no client public keys (*.key); every client would be "
                         "refused")
    return keys


def secure_socket(ctx: zmq.Context, sock: zmq.Socket, address: str, secret_key_file: str | None,
                  authorized_keys_dir: str | None, what: str = "server", *,
                  allow_any_client: bool = False) -> ThreadAuthenticator | None:
    """The security rule of our ZeroMQ servers: loopback may run in the clear; any other interface needs
    a CURVE secret key (encryption) and an allow-list of client public keys checked through ZAP (or,
    deliberately, `allow_any_client`, which warns). Returns the started authenticator (stop it on close),
    or None."""
    if secret_key_file is None:
        if not is_loopback(address):
            raise ValueError(
                f"{what} address {address}: binding to a non-loopback interface needs CURVE "
                "keys (curve_secret_key_file); generate them with `a2world policy keys DIR`"
            )
        if authorized_keys_dir:
            raise ValueError("authorized_keys_dir needs CURVE (curve_secret_key_file) to check clients")
        return None
    if not Path(secret_key_file).is_file():
        raise ValueError(f"curve_secret_key_file {secret_key_file}: no such file")
    public, private = zmq.auth.load_certificate(secret_key_file)
    if private is None:
        raise ValueError(f"curve_secret_key_file {secret_key_file}: holds no secret key")
    auth = None
    if authorized_keys_dir:
        authorized_key_files(authorized_keys_dir)
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(Path(authorized_keys_dir)))
    elif not is_loopback(address) and not allow_any_client:
        raise ValueError(
            f"{what} address {address}: CURVE without an allow-list admits any client; give "
            "authorized_keys_dir (--authorized-keys DIR with the robots' public keys) or, deliberately, "
            "allow_any_client (--allow-any-client)")
    else:
        log.warning("%s: CURVE without an allow-list on %s: ANY client that knows the server's "
                    "public key can connect", what, address)
    sock.curve_secretkey = private
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


class PolicyServer:
    """Serves one `Policy` on a ZeroMQ ROUTER socket until `stop()`."""

    def __init__(self, policy: Policy, config: ServerConfig | None = None) -> None:
        self.policy = policy
        self.config = config or ServerConfig()
        self.limits = WireLimits(max_bytes=self.config.max_request_bytes)
        self._stop = threading.Event()
        self._jobs = threading.Condition()
        self._ctx = zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        # zmq drops (and disconnects) above this hard cap; our own lower limit answers with an error.
        self._sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_request_bytes * 16)
        try:
            self._configure_security()
            self._sock.bind(self.config.address)
        except BaseException:
            self._close()
            raise
        self.address = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._done_rx = self._ctx.socket(zmq.PAIR)
        self._done_rx.bind(f"inproc://policy-done-{id(self)}")
        self._done_tx = self._ctx.socket(zmq.PAIR)
        self._done_tx.connect(f"inproc://policy-done-{id(self)}")
        self._busy = False
        # One waiting inference per client identity, served in arrival order (fair between clients).
        self._pending: OrderedDict[bytes, tuple[bytes, Any, PolicyRequest, float]] = OrderedDict()
        self._job: tuple[bytes, Any, PolicyRequest, float] | None = None
        self._result: dict[str, Any] | None = None
        self.served = 0
        self.errors = 0
        self.superseded = 0
        self._meta = policy.metadata()
        self._worker = threading.Thread(target=self._work, daemon=True, name="policy-infer")
        self._worker.start()

    def _configure_security(self) -> None:
        cfg = self.config
        self._auth = secure_socket(self._ctx, self._sock, cfg.address, cfg.curve_secret_key_file,
                                   cfg.authorized_keys_dir, what="policy server",
                                   allow_any_client=cfg.allow_any_client)

    # -- request handling -------------------------------------------------------------------
    def _reply(self, ident: bytes, msg_id: Any, *, ok: bool, body: Any = None, error: str = "",
               timing: dict[str, float] | None = None) -> None:
        payload = {"id": msg_id, "ok": ok, "timing": timing or {}}
        if ok:
            payload["body"] = body
        else:
            payload["error"] = error
            self.errors += 1
        self._sock.send_multipart([ident, b"", *encode(payload)], copy=False)

    def _on_message(self, frames: list[Any]) -> None:
        t_recv = time.perf_counter()
        ident = frames[0].bytes
        msg_id: Any = None
        try:
            if len(frames) < 3 or frames[1].bytes != b"":
                raise WireError("expected [empty delimiter, header, arrays...] after the identity")
            message = decode(frames[2:], self.limits)
            msg_id = message.get("id")
            kind = message.get("type")
            if kind == "metadata":
                self._reply(ident, msg_id, ok=True, body=self._meta)
                return
            if kind == "health":
                body = {"status": "busy" if self._busy else "idle", "served": self.served,
                        "errors": self.errors, "superseded": self.superseded, "waiting": len(self._pending)}
                self._reply(ident, msg_id, ok=True, body=body)
                return
            if kind != "infer":
                raise WireError(f"field 'type': {kind!r}, expected 'infer', 'metadata' or 'health'")
            request = PolicyRequest.from_dict(message.get("body") or {})
        except (WireError, ValueError) as exc:
            self._reply(ident, msg_id, ok=False, error=str(exc))
            return
        old = self._pending.get(ident)
        if old is not None:
            self.superseded += 1
            self._reply(ident, old[1], ok=False, error="superseded by a newer request from the same client")
        elif len(self._pending) >= self.config.max_waiting_clients:
            self._reply(ident, msg_id, ok=False, error=f"server busy: {len(self._pending)} clients waiting")
            return
        self._pending[ident] = (ident, msg_id, request, t_recv)  # a replacement keeps its place in line
        self._start_next()

    def _start_next(self) -> None:
        if self._busy or not self._pending:
            return
        _, job = self._pending.popitem(last=False)
        self._busy = True
        with self._jobs:
            self._job = job
            self._jobs.notify()

    def _work(self) -> None:
        """The one inference worker: waits for a job, runs it, signals the serving loop."""
        while True:
            with self._jobs:
                while self._job is None and not self._stop.is_set():
                    self._jobs.wait(0.5)
                if self._job is None:
                    return
                job, self._job = self._job, None
            self._run(job)

    def _run(self, job: tuple[bytes, Any, PolicyRequest, float]) -> None:
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
        with contextlib.suppress(zmq.ZMQError):  # closed while stopping
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
                        frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
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
        with self._jobs:
            self._jobs.notify_all()

    def _close(self) -> None:
        self._stop.set()
        worker = getattr(self, "_worker", None)
        if worker is not None:
            with self._jobs:
                self._jobs.notify_all()
            worker.join(timeout=5.0)
        for name in ("_sock", "_done_rx", "_done_tx"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close(0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()
