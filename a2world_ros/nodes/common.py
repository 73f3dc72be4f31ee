"""Shared rclpy plumbing of the A2World nodes: QoS profiles, nested parameters, publishing rosbags
messages, Trigger services, diagnostics and the process entry point."""

from __future__ import annotations

import array
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from a2world_ros.params import unflatten
from rig import topics
from rig.dataformats import ros_messages as rm

from .convert import from_ros, ros_class, to_ros


def qos(kind: str) -> QoSProfile:
    """The QoS profile of a kind in `topics` (SENSOR, COMMAND, LATCHED)."""
    if kind == topics.SENSOR:
        return qos_profile_sensor_data
    if kind == topics.COMMAND:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    if kind == topics.LATCHED:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    raise ValueError(f"unknown QoS kind {kind!r}")


def _plain(value: Any) -> Any:
    # Array parameters may arrive as array.array (ParameterValue's float64[] / int64[] fields).
    return list(value) if isinstance(value, (array.array, tuple)) else value


class A2WorldNode(Node):
    """A Node whose parameters are read as one nested mapping and which publishes rosbags messages."""

    def __init__(self, name: str, parameter_overrides: list[Any] | None = None) -> None:
        super().__init__(name, parameter_overrides=parameter_overrides,
                         automatically_declare_parameters_from_overrides=True)
        self.params: dict[str, Any] = unflatten(
            {key: _plain(p.value) for key, p in self.get_parameters_by_prefix("").items()}
        )
        self.distro = resolve_distro(str(self.params.get("distro", "auto")), self.get_logger())
        self.clock_map = rm.ClockMap.shared()  # one offset per boot for every node (docs/control.md)
        self._pubs: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []

    def param(self, key: str, default: Any) -> Any:
        return self.params.get(key, default)

    def add_publisher(self, topic: str, msgtype: str, kind: str) -> Any:
        pub = self.create_publisher(ros_class(msgtype), topic, qos(kind))
        self._pubs[topic] = pub
        return pub

    def add_subscription(self, topic: str, msgtype: str, kind: str, handler: Callable[[Any], Any],
                         convert: bool = True) -> Any:
        """Subscribe; `handler` gets the rosbags message (or the rclpy one with convert=False)."""
        if convert:
            def callback(msg: Any) -> None:
                handler(from_ros(msg, msgtype, self.distro))
        else:
            callback = handler
        return self.create_subscription(ros_class(msgtype), topic, callback, qos(kind))

    def publish_all(self, outgoing: list[tuple[str, Any]]) -> None:
        for topic, msg in outgoing:
            self._pubs[topic].publish(to_ros(msg))

    def add_trigger(self, name: str, action: Callable[[], tuple[bool, str]]) -> Any:
        """std_srvs/Trigger service calling `action() -> (success, message)`."""
        trigger = ros_class(topics.TRIGGER)

        def callback(request: Any, response: Any) -> Any:
            try:
                response.success, response.message = action()
            except Exception as exc:  # a service must answer; the reason goes back to the caller
                response.success, response.message = False, f"{type(exc).__name__}: {exc}"
            self.get_logger().info(f"{name}: {response.message}")
            return response

        return self.create_service(trigger, name, callback)

    def add_diagnostics(self, entries: Callable[[], list[rm.DiagnosticEntry]], hz: float) -> None:
        self.add_publisher(topics.DIAGNOSTICS, topics.DIAGNOSTIC_ARRAY, topics.COMMAND)

        def publish() -> None:
            msg = rm.diagnostic_array_msg(entries(), self.clock_map.to_ros_ns(rig_now()), self.distro)
            self._pubs[topics.DIAGNOSTICS].publish(to_ros(msg))

        self.create_timer(1.0 / hz, publish)

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        """Run the shutdown steps once, newest first (a second call does nothing)."""
        closers, self._closers = self._closers, []
        for fn in reversed(closers):
            t0 = time.monotonic()
            try:
                fn()
            except Exception as exc:  # keep closing the rest
                self.get_logger().error(f"shutdown step failed: {exc}")
            took = time.monotonic() - t0
            if took > 0.5:  # a slow step delays Ctrl-C: name it
                self.get_logger().warning(f"shutdown step {getattr(fn, '__qualname__', fn)} took {took:.2f} s")


KNOWN_DISTROS = ("humble", "jazzy")


def resolve_distro(configured: str, logger: Any = None) -> str:
    """Message definitions for conversions: `auto` takes $ROS_DISTRO of the sourced ROS 2 (humble when
    unset or unknown); an explicit value is kept, with a warning when the running ROS differs."""
    running = os.environ.get("ROS_DISTRO", "")
    if configured == "auto":
        return running if running in KNOWN_DISTROS else "humble"
    if running in KNOWN_DISTROS and running != configured and logger is not None:
        logger.warning(f"distro: {configured} configured but ROS_DISTRO is {running} (the message fields "
                       "used here are the same in both)")
    return configured


def rig_now() -> float:
    """Host monotonic time (the clock every sample uses)."""
    return time.monotonic()


def run(factory: Callable[[], A2WorldNode], args: list[str] | None = None) -> int:
    """Process entry point: init, build the node, spin, and on SIGINT/SIGTERM close it once and exit 0.

    Ctrl-C in a terminal sends SIGINT to the whole process group and `ros2 launch` forwards another
    one, so a node sees two or more. rclpy's own handler would shut the context down on the first
    and let the next raise KeyboardInterrupt wherever the cleanup happens to be (inside a thread
    join, a MuJoCo call): so rclpy installs no handler here, the executor spins on a worker thread,
    and the main thread only waits. The signal handler sets an event (any number of times); the spin
    thread sees it and returns; the main thread then shuts the executor down, closes the node's
    components once (`close()`: threads joined, devices and GL contexts released) and shuts rclpy down.

    One executor thread: the node's components are closed only after the spin thread has returned,
    so no callback can run into a destroyed publisher. (Jazzy's `Executor.shutdown` does not wait
    for callbacks still running in MultiThreadedExecutor's pool, and under the GIL that pool adds no
    parallelism to these short callbacks; physics, rendering, control and inference run on the
    components' own threads.)
    """
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)

        def spin() -> None:
            # spin_once in a loop that this thread leaves itself: the executor is shut down only
            # after it returned (shutting it down under a running spin races rclpy's wait set).
            try:
                while not stop.is_set():
                    executor.spin_once(timeout_sec=0.1)
            except ExternalShutdownException:
                pass
            finally:
                stop.set()

        spinner = threading.Thread(target=spin, name=f"{node.get_name()}-spin", daemon=True)
        spinner.start()
        while not stop.wait(0.2):
            pass
        if received:
            node.get_logger().info(f"{signal.Signals(received[0]).name}: shutting down")
        spinner.join(timeout=5.0)
        executor.shutdown(timeout_sec=2.0)
    finally:
        # Signals during the cleanup change nothing (the event is already set).
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
        # Python's finalisation puts SIG_DFL back for signals with a Python handler, so a SIGINT
        # arriving while the interpreter exits would end the process with -2: ignore it from here
        # on (everything is released); SIGTERM keeps its default so a hung exit can still be ended.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return 0
