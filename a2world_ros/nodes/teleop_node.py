"""`teleop` node: VR teleoperation into training data, a thin wrapper over `teleop.app.TeleopApp` (rig,
VR input, session, executor, guard, recorder). Services /teleop/start, /teleop/stop, /teleop/success,
/teleop/failure, /teleop/discard, /teleop/recenter (std_srvs/Trigger) queue the episode actions;
/teleop/instruction (std_msgs/String) sets the next episodes' instruction; /estop
latches the guard; /diagnostics carries the status the WebXR page shows (engaged arms, recording,
episodes, guard interventions, input counters)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rig import topics
from rig.dataformats import ros_messages as rm
from rig.params import get_float

from .common import A2WorldNode, rig_now, run

ACTIONS = ("start", "stop", "success", "failure", "discard", "recenter")
INSTRUCTION_TOPIC = "/teleop/instruction"
"""std_msgs/String: the instruction of the next episodes."""
STRING = "std_msgs/msg/String"


def status_entries(status: dict[str, Any]) -> list[rm.DiagnosticEntry]:
    """The teleop status as one diagnostics entry (WARN while the guard clamps or the stream is down)."""
    clamped = {arm: r for arm, r in status.get("clamped", {}).items() if r}
    level = "WARN" if clamped or status.get("estop") else "OK"
    summary = (f"recording episode {status['episode']}" if status.get("recording") else "idle") + \
        f", engaged {[a for a, on in status.get('engaged', {}).items() if on]}"
    keys = ("streaming", "accepted", "dropped", "losses", "guard_interventions", "episodes_saved",
            "episodes_discarded", "estop", "last_message")
    values = tuple((k, str(status.get(k))) for k in keys) + tuple((f"clamped.{a}", ",".join(r))
                                                                 for a, r in clamped.items())
    return [rm.DiagnosticEntry(name="teleop", level=level, message=summary, values=values)]


class TeleopNode(A2WorldNode):
    """See the module doc. `app` may be injected (tests); else built from the node's parameters."""

    def __init__(self, app: Any = None, parameter_overrides: list[Any] | None = None) -> None:
        super().__init__("teleop", parameter_overrides)
        if app is None:
            from teleop.app import TeleopApp, TeleopSettings

            record = str(self.param("record_dir", "") or "")
            app = TeleopApp(TeleopSettings(
                rig=str(self.param("rig", "sim")), vr=str(self.param("vr", "webxr")),
                out=Path(record) if record else None, task=str(self.param("task", "")) or None,
                instruction=str(self.param("instruction", "")) or None, operator=str(self.param("operator", "")),
                seed=int(self.param("seed", 0)), rig_config=str(self.param("rig_config", "rig.yaml"))))
            self.on_close(app.close)
        self.app = app
        for action in ACTIONS:
            self.add_trigger(f"/teleop/{action}", lambda action=action: self._queue(action))
        self.add_subscription(topics.ESTOP, topics.BOOL, topics.COMMAND, self._on_estop)
        self.add_subscription(INSTRUCTION_TOPIC, STRING, topics.COMMAND,
                              lambda msg: self.app.runner.session.command(f"instruction:{msg.data}"))
        self.add_diagnostics(lambda: status_entries(self.app.runner.status()),
                             get_float(self.params, "diagnostics_hz", "teleop", default=1.0, positive=True))
        self._thread: threading.Thread | None = None
        if bool(self.param("autostart", True)):
            self._thread = threading.Thread(target=self.app.run, name="teleop-run", daemon=True)
            self._thread.start()
            self.on_close(self._stop_run)

    def _queue(self, action: str) -> tuple[bool, str]:
        self.app.runner.session.command(action)
        return True, f"{action} queued"

    def _on_estop(self, msg: Any) -> None:
        if bool(msg.data):
            self.app.runner.session.release_all(rig_now())
            self.app.runner.guard.estop("/estop", rig_now())

    def _stop_run(self) -> None:
        self.app.runner.stop()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return run(TeleopNode, args)
