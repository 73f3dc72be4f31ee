"""The shadow node's plain-Python core: ROS messages in, the shadow session fed, shadow topics out.

Inputs are the policy graph's own topics: camera images, arm and gripper states (paired into
observations by capture time by the policy node's own `PolicyBridge`) and the command chunks
the policy node publishes (the two halves paired by header stamp, as the arms node does). Outputs: per
camera the side-by-side real | predicted | |difference| image of each scored frame, published in
capture-time order at the node's image rate (`/shadow/<camera>/image`), each chunk's metric means
(`/shadow/metrics`, std_msgs/Float64MultiArray, rows = cameras, columns = metrics) and diagnostics.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from typing import Any, Protocol

import numpy as np

from rig import topics
from rig.conventions import CAMERA_NAMES
from rig.dataformats import ros_messages as rm
from rig.schema import CommandChunk, Observation, SchemaError
from worldmodel.metrics import METRIC_NAMES

from .bridges import PolicyBridge

log = logging.getLogger(__name__)

Outgoing = list[tuple[str, Any]]
FLOAT_ARRAY = "std_msgs/msg/Float64MultiArray"


def shadow_image_topic(camera: str) -> str:
    return f"/shadow/{camera}/image"


SHADOW_METRICS = "/shadow/metrics"


class ShadowSink(Protocol):
    """What the bridge feeds (a2world_ros.shadow_session.ShadowSession)."""

    def on_observation(self, now: float, obs: Observation) -> None: ...

    def on_chunk(self, chunk: CommandChunk) -> None: ...


class ShadowBridge:
    """See the module doc; `on_result(result, status)` is the session's result callback."""

    def __init__(self, sink: ShadowSink, clock_map: rm.ClockMap, cameras: tuple[str, ...] = CAMERA_NAMES,
                 slop_s: float = 0.02, state_slop_s: float = 0.02, gripper_slop_s: float = 0.1,
                 distro: str = "humble", dt: float = 1.0 / 30.0) -> None:
        self.sink = sink
        self.clock_map = clock_map
        self.cameras = cameras
        self.distro = distro
        self.dt = dt
        self._inputs = PolicyBridge(self, clock_map, slop_s=slop_s, state_slop_s=state_slop_s,  # type: ignore[arg-type]
                                    gripper_slop_s=gripper_slop_s, cameras=cameras, distro=distro)
        self._inputs.running = True
        self._pending: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()
        self._frames: dict[str, deque[tuple[float, np.ndarray]]] = {c: deque(maxlen=60) for c in cameras}
        self._last_t: dict[str, float] = {c: -math.inf for c in cameras}
        self._metrics: deque[Any] = deque(maxlen=16)
        self.status: dict[str, Any] = {}
        self.last_divergence = ""
        self.counters = {"observations": 0, "chunks": 0, "results": 0, "errors": 0}

    # ------------------------------------------------------------------ inputs
    # Observations are assembled exactly as the policy node assembles them: its bridge, with this one as
    # its "loop" (`on_observation`), always running.
    def on_observation(self, obs: Observation) -> None:
        self.counters["observations"] += 1
        self.sink.on_observation(obs.t, obs)

    def on_image(self, camera: str, msg: Any) -> None:
        self._inputs.on_image(camera, msg)

    def on_joint_state(self, arm: str, msg: Any) -> None:
        self._inputs.on_joint_state(arm, msg)

    def on_tcp_pose(self, arm: str, msg: Any) -> None:
        self._inputs.on_tcp_pose(arm, msg)

    def on_gripper_state(self, arm: str, msg: Any) -> None:
        self._inputs.on_gripper_state(arm, msg)

    def on_command(self, kind: str, msg: Any) -> bool:
        """One half of a published chunk (`poses` or `grippers`); True when it completed a chunk."""
        stamp = rm.stamp_ns(msg.header.stamp)
        with self._lock:
            self._pending[kind] = (stamp, msg)
            other = self._pending.get("grippers" if kind == "poses" else "poses")
            if other is None or other[0] != stamp:
                return False
            poses, grippers = self._pending.pop("poses")[1], self._pending.pop("grippers")[1]
        try:
            chunk = rm.command_chunk_from_msgs(poses, grippers, self.clock_map, self.dt)
        except (rm.MessageError, SchemaError) as exc:
            self.counters["errors"] += 1
            log.warning("shadow: dropped command chunk: %s", exc)
            return False
        self.counters["chunks"] += 1
        self.sink.on_chunk(chunk)
        return True

    # ------------------------------------------------------------------ results (session monitor thread)
    def on_result(self, result: dict[str, Any], status: dict[str, Any]) -> None:
        self.counters["results"] += 1
        self.status = status
        fired = (result.get("divergence") or {}).get("fired") or []
        if fired:
            self.last_divergence = fired[-1]
        with self._lock:
            for cam, panels in (result.get("panels") or {}).items():
                if cam not in self._frames:
                    continue
                times = result["metrics"][cam]["frame_times"]
                for t, panel in zip(times, np.asarray(panels)[1:]):
                    if t is not None and t > self._last_t[cam]:  # overlapping chunks: newest time only
                        self._frames[cam].append((float(t), panel))
                        self._last_t[cam] = float(t)
            self._metrics.append(self._metrics_msg(result))

    def _metrics_msg(self, result: dict[str, Any]) -> Any:
        cams = [c for c in self.cameras if c in result["summary"]]
        data = np.array([[np.nan if result["summary"][c][m] is None else result["summary"][c][m]
                          for m in METRIC_NAMES] for c in cams], dtype=np.float64).reshape(-1)
        dim = rm._cls("std_msgs/msg/MultiArrayDimension", self.distro)
        layout = rm._cls("std_msgs/msg/MultiArrayLayout", self.distro)(
            dim=[dim(label="camera:" + ",".join(cams), size=len(cams), stride=len(cams) * len(METRIC_NAMES)),
                 dim(label="metric:" + ",".join(METRIC_NAMES), size=len(METRIC_NAMES), stride=len(METRIC_NAMES))],
            data_offset=0)
        return rm._cls(FLOAT_ARRAY, self.distro)(layout=layout, data=data)

    # ------------------------------------------------------------------ outputs (node timers)
    def poll_images(self) -> Outgoing:
        """The next scored frame of each camera as a side-by-side Image (stamped with its capture time)."""
        out: Outgoing = []
        with self._lock:
            for cam, queue in self._frames.items():
                if queue:
                    t, panel = queue.popleft()
                    stamp = self.clock_map.to_ros_ns(t)
                    out.append((shadow_image_topic(cam),
                                rm.image_msg(np.ascontiguousarray(panel), stamp, rm.camera_frame(cam), "rgb8",
                                             self.distro)))
        return out

    def poll_metrics(self) -> Outgoing:
        with self._lock:
            msgs, self._metrics = list(self._metrics), deque(maxlen=16)
        return [(SHADOW_METRICS, m) for m in msgs]

    def diagnostics(self) -> list[rm.DiagnosticEntry]:
        s = self.status
        level = "WARN" if (s.get("divergence") or {}).get("active") else "OK"
        message = self.last_divergence if level == "WARN" else "predicting"
        values = [("predictions_per_s", f"{s.get('predictions_per_s', 0.0):.3f}"),
                  ("dropped", str(s.get("dropped", 0))), ("lag_s", f"{s.get('lag_s', float('nan')):.3f}"),
                  ("scored", str(s.get("scored", 0))), *[(k, str(v)) for k, v in self.counters.items()]]
        return [rm.diagnostic_entry("shadow", level, message, values)]


def shadow_topics(cameras: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """{topic: (message type, QoS kind)} the shadow node publishes."""
    out = {shadow_image_topic(c): (topics.IMAGE, topics.SENSOR) for c in cameras}
    out[SHADOW_METRICS] = (FLOAT_ARRAY, topics.COMMAND)
    return out
