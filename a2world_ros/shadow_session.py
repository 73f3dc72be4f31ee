"""The shadow predictor attached to a policy run: its own process, live metrics, the report at the end.

`ShadowSession.start(checkpoint)` launches `a2world shadow serve` as a separate process (the model never
runs in the control process) on a free loopback port, or connects to a running one (`address=`, e.g.
on the GPU machine, with CURVE keys off loopback). The control thread calls `on_observation(t, obs)` and
`on_chunk(chunk)` (the `PolicyRunner` hooks); both only enqueue without waiting. A monitor thread with
its own socket polls the results once a second, prints one line per scored chunk, keeps them for the
report, and on a divergence with `action: hold` asks the guard for its latched stop. Images stay out of
the control process while it runs (`live_panels=False`): the side-by-side panels for the report are
fetched once at `close()` (the server keeps the last 64 results); the ROS node, a process of its own,
asks for them live.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.schema import CommandChunk, Observation
from worldmodel.shadow.client import ShadowClient, ShadowUnavailableError
from worldmodel.shadow.config import ShadowConfig

log = logging.getLogger(__name__)


def _format_line(result: dict[str, Any], status: dict[str, Any]) -> str:
    s = result["summary"]
    means = {m: sum(v[m] for v in s.values() if v[m] is not None) / max(1, sum(v[m] is not None for v in s.values()))
             for m in ("psnr", "ssim", "flow_epe", "flow_cos")} if s else {}
    fired = " DIVERGENCE" if (result.get("divergence") or {}).get("fired") else ""
    return (f"shadow chunk {result['seq']} (t={result['t_obs']:.2f}): "
            + " ".join(f"{k} {v:.3g}" for k, v in means.items())
            + f" | {status.get('predictions_per_s', 0):.2f} pred/s, dropped {status.get('dropped', 0)}, "
              f"lag {status.get('lag_s', float('nan')):.2f} s{fired}")


class ShadowSession:
    """See the module doc."""

    def __init__(self, config: ShadowConfig, address: str, process: subprocess.Popen | None = None,
                 on_hold: Callable[[str], None] | None = None, printer: Callable[[str], None] = print,
                 poll_s: float = 1.0, on_result: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
                 live_panels: bool = False) -> None:
        self.config = config
        self.process = process
        self.on_hold = on_hold
        self.printer = printer
        self.poll_s = poll_s
        self.on_result = on_result
        self.live_panels = live_panels
        keys = config.server
        self.stream = ShadowClient(address, keys.send_hwm)
        self.monitor = ShadowClient(address, keys.send_hwm)
        self.meta = self.monitor.connect(timeout_s=120.0)
        self.stream.resolution = self.monitor.resolution
        self.stream.cameras = self.monitor.cameras
        self.results: list[dict[str, Any]] = []
        self.status: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._monitor, daemon=True, name="shadow-monitor")
        self._thread.start()

    @classmethod
    def start(cls, checkpoint: str, config: ShadowConfig, config_file: str = "shadow.yaml",
              address: str | None = None, vae: str | None = None, **kwargs: Any) -> ShadowSession:
        """Spawn the shadow process for `checkpoint` (or connect to `address`) and wait until it serves."""
        if address is not None:
            return cls(config, address, None, **kwargs)
        cmd = [sys.executable, "-m", "a2world_ros.cli.main", "shadow", "serve", "--checkpoint", str(checkpoint),
               "--config", config_file, "--address", "tcp://127.0.0.1:*"]
        if vae:
            cmd += ["--vae", str(vae)]
        if config.divergence.threshold is not None:
            cmd += ["--threshold", repr(config.divergence.threshold)]
        if config.sampler_steps is not None:
            cmd += ["--steps", str(config.sampler_steps)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
        assert proc.stdout is not None
        deadline = time.monotonic() + 300.0
        address_line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("shadow server listening on "):
                address_line = line.split(" on ", 1)[1].strip()
                break
        if not address_line:
            proc.kill()
            raise RuntimeError(f"shadow process ({' '.join(cmd)}) exited with {proc.wait()} before serving")
        return cls(config, address_line, proc, **kwargs)

    # ------------------------------------------------------------------ control-thread hooks (never wait)
    def on_observation(self, _now: float, obs: Observation) -> None:
        self.stream.on_observation(obs)

    def on_chunk(self, chunk: CommandChunk) -> None:
        self.stream.on_chunk(chunk)

    # ------------------------------------------------------------------ monitor thread
    def _poll(self) -> None:
        new = self.monitor.results(panels=self.live_panels, timeout_s=5.0)
        self.status = self.monitor.status(timeout_s=5.0)
        for r in new:
            self.results.append(r)
            self.printer(_format_line(r, self.status))
            if self.on_result is not None:
                self.on_result(r, self.status)
            for message in (r.get("divergence") or {}).get("fired", []):
                self.printer(message)
                if self.config.divergence.action == "hold" and self.on_hold is not None:
                    self.on_hold(message)

    def _monitor(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._poll()
            except (ShadowUnavailableError, RuntimeError) as exc:
                log.warning("shadow monitor: %s", exc)

    def close(self, drain_s: float = 5.0) -> None:
        """Wait up to `drain_s` for the last predictions, stop the monitor and the process."""
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            try:
                status = self.monitor.status(timeout_s=2.0)
            except ShadowUnavailableError:
                break
            if not status["busy"] and not status["waiting"]:
                break
            time.sleep(0.2)
        self._stop.set()
        self._thread.join(10.0)
        try:
            self._poll()
            if not self.live_panels:  # the panels of the results the server still keeps, for the report
                kept = {r["seq"]: r for r in self.monitor.results(panels=True, timeout_s=30.0, since=-1)}
                self.results = [kept.get(r["seq"], r) for r in self.results]
        except (ShadowUnavailableError, RuntimeError) as exc:
            log.warning("shadow monitor: %s", exc)
        self.stream.close()
        self.monitor.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def write_report(self, out_dir: str | Path, title: str = "") -> dict[str, Any]:
        from worldmodel.shadow.report import write_report

        return write_report(self.results, out_dir, fps=float(self.meta.get("fps", 10.0)),
                            divergence=self.config.divergence.__dict__, status=self.status,
                            settings={"checkpoint": self.meta.get("checkpoint"), "address": self.stream.address},
                            title=title)
