"""The shadow predictor in its own process: a `ShadowWorker` behind a ZeroMQ ROUTER socket.

Wire as the policy server (policy/wire.py: msgpack, numpy arrays as raw buffers, never pickle) and the
same security rule: loopback unless CURVE keys are given (policy.server.is_loopback). Messages
`{"type", "id", "body"}`:
- `work` (a `ShadowWork`) and `frame` (`camera`, `t`, `image`): no reply, so the sender never waits;
- `status`, `metadata`, `results` (`since`: last result seq seen): answered at once with `ok` and `body`.
Results carry metric series per camera, the divergence state and the side-by-side panels of each
result when asked (real | predicted | |difference|), for the ROS shadow node and live reports.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import zmq

from policy.server import secure_socket
from policy.wire import WireError, WireLimits, decode, encode
from worldmodel.shadow.config import ServerSettings
from worldmodel.shadow.engine import ShadowResult
from worldmodel.shadow.work import ShadowWork, ShadowWorkError
from worldmodel.shadow.worker import ShadowWorker

log = logging.getLogger(__name__)


def result_to_wire(result: ShadowResult, panels: bool) -> dict[str, Any]:
    """A scored prediction as a wire/JSON-ready dict (metric lists per camera; panels optional)."""
    out: dict[str, Any] = {
        "seq": result.seq, "t_obs": result.t_obs, "predict_s": result.predict_s, "lag_s": result.lag_s,
        "missing": result.missing, "divergence": result.divergence,
        "summary": result.summary(), "metrics": {c: m.to_dict() for c, m in result.metrics.items()},
    }
    if panels:
        out["panels"] = {c: result.panels(c) for c in result.metrics}
    return out


class ShadowServer:
    """Serves one `ShadowWorker` until `stop()`."""

    def __init__(self, worker: ShadowWorker, settings: ServerSettings, metadata: dict[str, Any] | None = None) -> None:
        self.worker = worker
        self.settings = settings
        self.metadata = {"resolution": list(worker.engine.resolution), "fps": worker.engine.fps,
                         "cameras": list(worker.config.cameras), **(metadata or {})}
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, settings.max_message_bytes)
        self._auth = secure_socket(self._ctx, self._sock, settings.address, settings.curve_secret_key_file,
                                   settings.authorized_keys_dir, what="shadow server")
        self._sock.bind(settings.address)
        self.address = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = threading.Event()
        self.errors = 0

    def _reply(self, ident: bytes, msg_id: Any, ok: bool, body: Any = None, error: str = "") -> None:
        payload = {"id": msg_id, "ok": ok, **({"body": body} if ok else {"error": error})}
        self._sock.send_multipart([ident, b"", *encode(payload)])

    def _on_message(self, frames: list[bytes]) -> None:
        # ROUTER frames: [identity, b"" (the DEALER's delimiter), header, array frames...]
        ident, body_frames = frames[0], frames[2:] if len(frames) > 1 and frames[1] == b"" else frames[1:]
        msg_id: Any = None
        try:
            message = decode(body_frames, WireLimits(max_bytes=self.settings.max_message_bytes))
            msg_id, kind, body = message.get("id"), message.get("type"), message.get("body") or {}
            if kind == "frame":
                image = body.get("image")
                if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
                    raise WireError("frame: field 'image' is not a uint8 (H, W, 3) array")
                self.worker.add_frame(str(body["camera"]), float(body["t"]), image)
            elif kind == "work":
                self.worker.submit(ShadowWork.from_wire(body))
            elif kind == "status":
                self._reply(ident, msg_id, True, self.worker.status())
            elif kind == "metadata":
                self._reply(ident, msg_id, True, self.metadata)
            elif kind == "results":
                since = int(body.get("since", -1))
                new = self.worker.results_after(since)
                wire = [result_to_wire(r, panels=bool(body.get("panels"))) for r in new]
                self._reply(ident, msg_id, True, {"results": wire})
            else:
                raise WireError(f"field 'type': {kind!r}, expected work, frame, status, metadata or results")
        except (WireError, ShadowWorkError, KeyError, TypeError, ValueError) as exc:
            self.errors += 1
            log.warning("shadow server: bad message: %s", exc)
            if msg_id is not None:
                self._reply(ident, msg_id, False, error=str(exc))

    def serve_forever(self, poll_ms: int = 100) -> None:
        log.info("shadow server listening on %s", self.address)
        while not self._stop.is_set():
            if not self._sock.poll(poll_ms, zmq.POLLIN):
                continue
            while True:
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_message(frames)
        self._sock.close(0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="shadow-server")
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
