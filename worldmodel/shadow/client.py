"""The control side of the shadow predictor: forwards chunk starts and camera frames without ever waiting.

`ShadowClient` sends on a DEALER socket with a small send queue (`send_hwm`); when the shadow process (or
the network) cannot keep up, new messages are dropped and counted instead of blocking the caller. Frames
are shrunk to the model resolution before sending (cv2 INTER_AREA, the model's own resize), so a remote
shadow needs little bandwidth. It keeps the last few observations to pair each chunk with the observation
it was planned on (the chunk starts at that observation's time). No torch here.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any

import cv2
import numpy as np
import zmq
import zmq.auth
from numpy.typing import NDArray

from policy.wire import decode, encode
from rig.schema import CommandChunk, Observation
from worldmodel.shadow.work import ShadowWork


class ShadowUnavailableError(RuntimeError):
    """The shadow process did not answer within the timeout."""


class ShadowClient:
    """Talks to a `ShadowServer`; see the module doc."""

    def __init__(self, address: str, send_hwm: int = 8, timeout_s: float = 2.0,
                 server_public_key_file: str | None = None, client_secret_key_file: str | None = None,
                 cameras: tuple[str, ...] | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._seq = itertools.count(0)
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, send_hwm)
        if server_public_key_file:
            server_public, _ = zmq.auth.load_certificate(server_public_key_file)
            if client_secret_key_file:
                public, secret = zmq.auth.load_certificate(client_secret_key_file)
            else:
                public, secret = zmq.curve_keypair()
            self._sock.curve_serverkey, self._sock.curve_publickey, self._sock.curve_secretkey = (
                server_public, public, secret)
        self._sock.connect(address)
        self.cameras = cameras
        self.resolution: tuple[int, int] | None = None
        self._recent: deque[Observation] = deque(maxlen=16)
        self.counters = {"frames_sent": 0, "work_sent": 0, "dropped_sends": 0}
        self.last_seen_result = -1
        self._last_frame_t: dict[str, float] = {}

    # ------------------------------------------------------------------ requests (wait up to timeout_s)
    def _call(self, kind: str, body: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        msg_id = next(self._ids)
        try:  # a DEALER without a connected peer would block a plain send forever
            frames = encode({"type": kind, "id": msg_id, "body": body or {}})
            self._sock.send_multipart([b"", *frames], flags=zmq.NOBLOCK)
        except zmq.Again:
            raise ShadowUnavailableError(
                f"shadow server {self.address}: not connected (no reply to {kind!r})") from None
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            remaining = int(max(0.0, deadline - time.monotonic()) * 1e3)
            if remaining == 0 or not self._sock.poll(remaining, zmq.POLLIN):
                raise ShadowUnavailableError(f"shadow server {self.address}: no reply to {kind!r} within "
                                        f"{self.timeout_s if timeout_s is None else timeout_s} s")
            reply = decode(self._sock.recv_multipart()[1:])  # after the empty delimiter frame
            if reply.get("id") != msg_id:
                continue
            if not reply.get("ok"):
                raise RuntimeError(f"shadow server: {reply.get('error')}")
            return reply.get("body")

    def connect(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Fetch the server's metadata (resolution, fps, cameras); call once before streaming."""
        meta = self._call("metadata", timeout_s=timeout_s)
        self.resolution = (int(meta["resolution"][0]), int(meta["resolution"][1]))
        if self.cameras is None:
            self.cameras = tuple(meta["cameras"])
        return meta

    def status(self, timeout_s: float | None = None) -> dict[str, Any]:
        return {**self._call("status", timeout_s=timeout_s), "client": dict(self.counters)}

    def results(self, panels: bool = False, timeout_s: float | None = None, since: int | None = None
                ) -> list[dict[str, Any]]:
        """Results scored since the last call (or after seq `since`; -1: all the server keeps), with their
        side-by-side panels if asked."""
        start = self.last_seen_result if since is None else since
        body = self._call("results", {"since": start, "panels": panels}, timeout_s=timeout_s)
        new = body["results"]
        if new and since is None:
            self.last_seen_result = max(r["seq"] for r in new)
        return new

    # ------------------------------------------------------------------ streaming (never blocks)
    def _send(self, kind: str, body: dict[str, Any]) -> bool:
        try:
            self._sock.send_multipart([b"", *encode({"type": kind, "body": body})], flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            self.counters["dropped_sends"] += 1
            return False

    def _shrink(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if self.resolution is None or image.shape[:2] == self.resolution:
            return image
        h, w = self.resolution
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)

    def on_observation(self, obs: Observation) -> None:
        """Forward each camera frame (by capture time) and remember the observation for `on_chunk`."""
        self._recent.append(obs)
        for cam, frame in obs.frames.items():
            if (self.cameras is not None and cam not in self.cameras) or frame.t <= self._last_frame_t.get(cam, -1e300):
                continue  # not scored, or the same frame as last time (observations outpace a camera)
            self._last_frame_t[cam] = float(frame.t)
            if self._send("frame", {"camera": cam, "t": float(frame.t), "image": self._shrink(frame.color)}):
                self.counters["frames_sent"] += 1

    def on_chunk(self, chunk: CommandChunk) -> bool:
        """Forward a chunk handed to the executor, with the observation it starts at; False if none is known."""
        if not self._recent:
            return False
        obs = min(self._recent, key=lambda o: abs(o.t - chunk.t0))
        work = ShadowWork.from_observation(next(self._seq), obs, chunk, self.cameras)
        work.images = {c: self._shrink(img) for c, img in work.images.items()}
        sent = self._send("work", work.to_wire())
        self.counters["work_sent"] += int(sent)
        return sent

    def close(self) -> None:
        self._sock.close(0)
        self._ctx.term()
