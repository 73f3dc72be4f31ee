"""An openpi-style policy transport, written for comparison only (bench/bench_policy.py --transport).

It follows the protocol of openpi's `WebsocketPolicyServer` / `WebsocketClientPolicy` as documented by
that project: one websocket per client (the `websockets` library, no compression, no message size
limit); on connect the server sends its metadata as one msgpack message; then each request is one
binary message holding the msgpack-packed observation dict, answered with one binary message holding
the packed action dict. NumPy arrays are packed as maps {"__ndarray__": True, "data": raw bytes,
"dtype": dtype string, "shape": shape} (its msgpack_numpy convention) and rebuilt on the other side
without pickle. The server runs the policy inside its asyncio handler. This module is written here
from those protocol facts; no openpi code is copied.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgpack
import numpy as np


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot pack {type(obj).__name__}")


def _unpack_hook(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    return obj


def pack(message: dict[str, Any]) -> bytes:
    return msgpack.packb(message, default=_pack_default)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, object_hook=_unpack_hook)


class EchoPolicy:
    """Answers every observation at once with a fixed (60, 2, 8) action chunk: isolates the transport."""

    def __init__(self) -> None:
        self.actions = np.zeros((60, 2, 8))

    def infer(self, obs: dict) -> dict:
        return {"actions": self.actions}


class WebsocketServer:
    """Serves a policy over websockets on 127.0.0.1 in a background thread with its own event loop."""

    def __init__(self, policy: Any, port: int = 0) -> None:
        self.policy = policy
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self.port = port
        self._thread = threading.Thread(target=self._run, daemon=True, name="ws-policy-server")

    async def _handler(self, websocket: Any) -> None:
        await websocket.send(pack({"policy": "echo"}))
        async for message in websocket:
            await websocket.send(pack(self.policy.infer(unpack(message))))

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", self.port, compression=None, max_size=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    def start(self) -> WebsocketServer:
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("websocket server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5.0)


class WebsocketClient:
    """The synchronous client side: connect, read the metadata, then one message per inference."""

    def __init__(self, uri: str) -> None:
        from websockets.sync.client import connect

        self._ws = connect(uri, compression=None, max_size=None)
        self.metadata = unpack(self._ws.recv())

    def infer(self, obs: dict) -> dict:
        self._ws.send(pack(obs))
        return unpack(self._ws.recv())

    def close(self) -> None:
        self._ws.close()
