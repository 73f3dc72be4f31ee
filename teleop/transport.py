"""ZeroMQ transport of the teleop protocol: the teleop process binds a PULL socket, senders connect PUSH.

Addresses are written `zmq://HOST:PORT` (tcp underneath). Each ZeroMQ message is one protocol message
(msgpack bytes); nothing is unpickled. The receiver thread stamps each message with `time.monotonic()`
right after `recv` returns and hands it to a callback (the session), so the receive-to-target latency
does not include any queueing in Python.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlparse

import zmq

log = logging.getLogger(__name__)


def parse_zmq_url(url: str) -> tuple[str, int]:
    """(host, port) of `zmq://HOST:PORT`; raises ValueError naming the expected form."""
    parsed = urlparse(url)
    if parsed.scheme != "zmq" or not parsed.hostname or parsed.port is None:
        raise ValueError(f"input address {url!r}: expected zmq://HOST:PORT (e.g. zmq://0.0.0.0:5600)")
    return parsed.hostname, int(parsed.port)


class ZmqReceiver:
    """Binds `zmq://HOST:PORT` and calls `on_message(raw, t_receive)` on its own thread."""

    def __init__(self, url: str, on_message: Callable[[bytes, float], object], poll_ms: int = 20) -> None:
        host, port = parse_zmq_url(url)
        self.url = url
        self.on_message = on_message
        self.poll_ms = poll_ms
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PULL)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, 1000)
        self._sock.setsockopt(zmq.MAXMSGSIZE, 65536)  # oversized messages close the peer's connection
        self._sock.bind(f"tcp://{host}:{port}")
        self.port = port if port else int(self._sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="teleop-zmq", daemon=True)

    def start(self) -> ZmqReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._sock.close(0)

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(self.poll_ms):
                    continue
                while True:
                    try:
                        raw = self._sock.recv(zmq.NOBLOCK, copy=True)
                    except zmq.Again:
                        break
                    self.on_message(raw, time.monotonic())
        except Exception as exc:  # surfaced by the runner; the session's loss check then holds the arms
            log.exception("teleop zmq receiver stopped")
            self.error = exc


class ZmqSender:
    """Connects a PUSH socket to `zmq://HOST:PORT` and sends protocol messages."""

    def __init__(self, url: str) -> None:
        host, port = parse_zmq_url(url)
        self._sock = zmq.Context.instance().socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 500)
        self._sock.setsockopt(zmq.SNDHWM, 100)
        self._sock.connect(f"tcp://{host}:{port}")

    def send(self, raw: bytes) -> None:
        self._sock.send(raw, copy=True)

    def close(self) -> None:
        self._sock.close()


def send_paced(sender: ZmqSender, messages: Iterable[tuple[float, bytes]], restamp: Callable[[bytes, float], bytes],
               clock: Callable[[], float] = time.monotonic) -> int:
    """Send (offset, bytes) messages at their offsets from now; `restamp` puts the send time into each."""
    start = clock()
    count = 0
    for offset, raw in messages:
        delay = start + offset - clock()
        if delay > 0:
            time.sleep(delay)
        sender.send(restamp(raw, clock()))
        count += 1
    return count
