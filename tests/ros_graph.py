"""Helpers of the real-ROS graph tests (tests/test_ros_graph.py): start `ros2 launch` in its own
process group, stop it the way a terminal's Ctrl-C does, and watch the graph from a probe node.

Needs a sourced ROS 2 (Jazzy) with this package built into a sourced workspace (scripts/ci_ros.sh);
the tests skip otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ARMS = ("left", "right")
CAMERAS = ("front", "wrist_left", "wrist_right")


def ros_unavailable() -> str:
    """'' when a real ROS 2 with the built a2world_ros package is sourced, else why not."""
    import shutil

    if not os.environ.get("AMENT_PREFIX_PATH") or shutil.which("ros2") is None:
        return "needs a sourced ROS 2 (ros2 on PATH, AMENT_PREFIX_PATH set); scripts/ci_ros.sh sets one up"
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return "needs ament_index_python from a sourced ROS 2"
    try:
        get_package_share_directory("a2world_ros")
    except PackageNotFoundError:
        return "a2world_ros is not built into a sourced workspace (colcon build; scripts/ci_ros.sh)"
    return ""


class Launch:
    """`ros2 launch a2world_ros LAUNCH_FILE ARGS` (policy.launch.py unless told) in a new process group,
    output in `log`."""

    def __init__(self, log: Path, *args: str, launch_file: str = "policy.launch.py") -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(["ros2", "launch", "a2world_ros", launch_file, *args],
                                     stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)
        self.returncode: int | None = None
        self.stop_seconds = float("nan")

    def text(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def ctrl_c(self, timeout: float = 10.0, repeats: int = 2) -> int:
        """SIGINT to the whole group (as a terminal's Ctrl-C; `repeats` times, 0.3 s apart), then wait."""
        start = time.monotonic()
        for i in range(repeats):
            if self.proc.poll() is not None:
                break
            os.killpg(self.proc.pid, signal.SIGINT)
            if i + 1 < repeats:
                time.sleep(0.3)
        try:
            self.returncode = self.proc.wait(timeout=max(0.1, timeout - (time.monotonic() - start)))
        finally:
            self.stop_seconds = time.monotonic() - start
            self.kill()
        return self.returncode

    def kill(self) -> None:
        """Last resort (a failed test): SIGKILL whatever is left of the launch, its group and its
        children (the recorder runs in a session of its own)."""
        import psutil

        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if not self._out.closed:
            self._out.close()


class Probe:
    """An rclpy node spun on its own thread: diagnostics, command chunks, TCP poses, message counts."""

    def __init__(self, rclpy: Any, name: str = "a2world_test_probe") -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Bool
        from trajectory_msgs.msg import MultiDOFJointTrajectory

        self.rclpy = rclpy
        self.node = rclpy.create_node(name)
        self.lock = threading.Lock()
        self.diagnostics: dict[str, tuple[int, str, dict[str, str]]] = {}
        self.counts: Counter[str] = Counter()
        self.first_tcp: dict[str, tuple[float, float, float]] = {}
        self.last_tcp: dict[str, tuple[float, float, float]] = {}
        self.stamps: dict[str, list[float]] = defaultdict(list)
        sensor = qos_profile_sensor_data
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.node.create_subscription(MultiDOFJointTrajectory, "/policy/command/poses",
                                      lambda m: self._count("/policy/command/poses"), 10)
        for arm in ARMS:
            self.node.create_subscription(PoseStamped, f"/arms/{arm}/tcp_pose",
                                          lambda m, arm=arm: self._on_tcp(arm, m), sensor)
            self.node.create_subscription(JointState, f"/arms/{arm}/joint_states",
                                          lambda m, arm=arm: self._count(f"/arms/{arm}/joint_states"), sensor)
        for cam in CAMERAS:
            self.node.create_subscription(Image, f"/cameras/{cam}/image_raw",
                                          lambda m, cam=cam: self._count(f"/cameras/{cam}/image_raw"), sensor)
        self.estop_pub = self.node.create_publisher(Bool, "/estop", 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _count(self, topic: str) -> None:
        with self.lock:
            self.counts[topic] += 1
            self.stamps[topic].append(time.monotonic())

    def _on_tcp(self, arm: str, msg: Any) -> None:
        p = msg.pose.position
        with self.lock:
            self.first_tcp.setdefault(arm, (p.x, p.y, p.z))
            self.last_tcp[arm] = (p.x, p.y, p.z)

    def _on_diagnostics(self, msg: Any) -> None:
        with self.lock:
            for status in msg.status:
                level = status.level if isinstance(status.level, int) else ord(status.level)
                self.diagnostics[status.name] = (level, status.message, {kv.key: kv.value for kv in status.values})

    def diag(self, name: str) -> tuple[int, str, dict[str, str]] | None:
        with self.lock:
            return self.diagnostics.get(name)

    def rate(self, topic: str, window: float) -> float:
        """Messages per second of `topic` over the last `window` seconds."""
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.stamps[topic] if t > now - window]
        return len(recent) / window

    def tcp_travel(self, arm: str) -> float:
        with self.lock:
            a, b = self.first_tcp.get(arm), self.last_tcp.get(arm)
        if a is None or b is None:
            return 0.0
        return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5

    def estop(self) -> None:
        from std_msgs.msg import Bool

        self.estop_pub.publish(Bool(data=True))

    def trigger(self, service: str, timeout: float = 20.0) -> Any:
        """Call a std_srvs/Trigger service; the response (AssertionError when it never answers)."""
        from std_srvs.srv import Trigger

        client = self.node.create_client(Trigger, service)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"{service}: not available within {timeout} s"
            future = client.call_async(Trigger.Request())
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert future.done(), f"{service}: no answer within {timeout} s"
            return future.result()
        finally:
            self.node.destroy_client(client)

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout} s")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
