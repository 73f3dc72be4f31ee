"""HTTPS + WebSocket server of the WebXR page (aiohttp, on its own thread and event loop).

`GET /` is the page, `GET /teleop.js` its script, `GET /ws` the WebSocket. Binary WebSocket messages are
teleop protocol messages (`teleop.protocol`, msgpack) and go straight to `handle(raw, t_receive)`; the
server pushes a JSON status message (`status()`: engaged arms, recording, episodes, guard interventions,
which arms the guard is clamping, for the page's status view and controller haptics) to every client at
`status_hz`. aiohttp serves both HTTPS and the WebSocket on one port with one TLS context.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from teleop.config import WebXRConfig
from teleop.webxr.certs import ensure_certificate, fingerprint

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class WebXRServer:
    """Serves the page; `start()` returns once listening (`url`, `fingerprint` are then set)."""

    def __init__(self, config: WebXRConfig, runner: Any = None, handle: Callable[[bytes, float], Any] | None = None,
                 status: Callable[[], dict[str, Any]] | None = None) -> None:
        if runner is not None:
            handle = handle or runner.session.handle
            status = status or runner.status
        if handle is None or status is None:
            raise ValueError("WebXRServer: give a runner or both handle and status")
        self.config = config
        self.handle = handle
        self.status = status
        self.port = config.port
        self.url = ""
        self.fingerprint = ""
        self.clients = 0
        self.messages = 0
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="teleop-webxr", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> WebXRServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"WebXR server did not start within {timeout} s")
        if self.error is not None:
            raise RuntimeError(f"WebXR server: {self.error}") from self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self.error = exc
            log.exception("WebXR server stopped")
        finally:
            self._ready.set()

    def _tls(self) -> ssl.SSLContext:
        cert, key, created = ensure_certificate(self.config.cert_dir)
        self.fingerprint = fingerprint(cert)
        print(f"teleop: {'created' if created else 'using'} TLS certificate {cert}\n"
              f"teleop: certificate SHA-256 fingerprint {self.fingerprint}", flush=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/teleop.js", self._script)
        app.router.add_get("/ws", self._websocket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, ssl_context=self._tls())
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # the bound port (port 0 in tests)
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.config.port
        host = "localhost" if self.config.host in ("0.0.0.0", "127.0.0.1", "::") else self.config.host
        self.url = f"https://{host}:{self.port}/"
        print(f"teleop: WebXR page at {self.url} (from the headset: https://<this machine's address>:{self.port}/)",
              flush=True)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    # ------------------------------------------------------------------ handlers

    async def _page(self, _request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _script(self, _request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "teleop.js", headers={"Cache-Control": "no-store",
                                                               "Content-Type": "text/javascript"})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=65536, heartbeat=5.0)
        await ws.prepare(request)
        self.clients += 1
        pusher = asyncio.create_task(self._push_status(ws))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    self.messages += 1
                    self.handle(msg.data, time.monotonic())
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            pusher.cancel()
            self.clients -= 1
        return ws

    async def _push_status(self, ws: web.WebSocketResponse) -> None:
        period = 1.0 / self.config.status_hz
        while not ws.closed:
            try:
                status = self.status()
            except RuntimeError as exc:  # a counter changed size while being read: skip this update
                log.debug("status skipped: %s", exc)
            else:
                await ws.send_str(json.dumps({"type": "status", **status}, default=str))
            await asyncio.sleep(period)
