"""`TeleopApp`: the whole teleop process as one object (rig, recorder, runner, VR input), shared by
`a2world teleop` and the ROS `teleop_node`.

`vr` is `zmq://HOST:PORT` (bind a PULL socket there for any protocol sender) or `webxr` (serve the WebXR
page over HTTPS with its WebSocket back-channel, `teleop.webxr`). On `--rig sim` the twin runs in real
time with the task's scene; on `--rig real` the arms move.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.conventions import CAMERA_NAMES
from teleop.config import TeleopConfig, load_teleop_config
from teleop.runner import TeleopRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeleopSettings:
    """What the operator chooses per run (command-line flags / launch arguments)."""

    rig: str = "sim"
    vr: str = "webxr"
    out: Path | None = None
    task: str | None = None
    instruction: str | None = None
    operator: str = ""
    seed: int = 0
    render_size: tuple[int, int] = (480, 640)
    episodes: int | None = None
    """Stop after this many saved episodes (None: run until stopped)."""
    max_seconds: float | None = None
    config: str = "teleop.yaml"
    rig_config: str = "rig.yaml"


def instruction_of(settings: TeleopSettings) -> str:
    """--instruction, else the task's instruction in config/tasks.yaml."""
    if settings.instruction:
        return settings.instruction
    if settings.task:
        from rig.config import load_yaml

        entry = load_yaml("tasks.yaml").get(settings.task)
        if isinstance(entry, dict) and isinstance(entry.get("instruction"), str):
            return entry["instruction"]
        raise ValueError(f"task {settings.task!r}: not in config/tasks.yaml; give --instruction instead")
    raise ValueError("no instruction: give --task (twin or real) or --instruction")


class TeleopApp:
    """Builds and connects everything; `run()` blocks until done; `close()` releases everything."""

    def __init__(self, settings: TeleopSettings, config: TeleopConfig | None = None) -> None:
        from rig.factory import build_rig

        self.settings = settings
        self.config = config or load_teleop_config(settings.config)
        instruction = instruction_of(settings)
        if settings.rig == "sim":
            if not settings.task:
                raise ValueError("--rig sim needs --task (the twin's scene)")
            h, w = settings.render_size
            self.rig = build_rig(rig="sim", sim_overrides={"task": settings.task, "seed": settings.seed,
                                                          "clock": "realtime", "render": {"height": h, "width": w}})
        else:
            self.rig = build_rig(settings.rig_config, rig=settings.rig)
        self.recorder: Any = None
        self.input: Any = None
        self.rig.connect()
        try:
            if settings.out is not None:
                self.recorder = self._open_recorder(settings.out)
            self.runner = TeleopRunner(self.rig, self.config, instruction, self.recorder,
                                       operator=settings.operator, seed=settings.seed, input_label=settings.vr)
            self.input = self._open_input(settings.vr)
        except BaseException:
            self.close()
            raise

    def _open_recorder(self, out: Path) -> Any:
        from teleop.recorder import EpisodeRecorder

        cameras = [c for c in CAMERA_NAMES if c in self.rig.cameras]
        intrinsics = {}
        for cam in cameras:
            with contextlib.suppress(Exception):  # intrinsics are optional metadata
                intrinsics[cam] = self.rig.cameras[cam].intrinsics()
        return EpisodeRecorder(out, fps=round(self.config.observation_hz), cameras=cameras, intrinsics=intrinsics)

    def _open_input(self, vr: str) -> Any:
        if vr == "webxr":
            from teleop.webxr.server import WebXRServer

            return WebXRServer(self.config.webxr, self.runner).start()
        from teleop.transport import ZmqReceiver

        return ZmqReceiver(vr, self.runner.session.handle).start()

    def saved(self) -> int:
        return len(self.runner.episodes.log.saved)

    def run(self) -> None:
        episodes = self.settings.episodes
        self.runner.run_realtime(self.settings.max_seconds,
                                 until=(lambda: self.saved() >= episodes) if episodes else None)
        if self.recorder is not None:
            self.recorder.wait()

    def close(self) -> None:
        if self.input is not None:
            self.input.stop()
            self.input = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        try:
            self.rig.disconnect()
        except Exception as exc:  # shutting down: report, do not mask the run's own outcome
            log.warning("teleop: rig disconnect: %s", exc)

