"""Test double of `rclpy.executors`: SingleThreadedExecutor / MultiThreadedExecutor (add_node, spin,
spin_once, shutdown), and ExternalShutdownException."""

from __future__ import annotations

from typing import Any

import rclpy


class ExternalShutdownException(Exception):  # noqa: N818 - rclpy's name
    """Raised from spin when the context was shut down from elsewhere."""


class Executor:
    """Runs the callbacks of the nodes added to it."""

    def __init__(self, *, context: Any = None) -> None:
        self._nodes: list[Any] = []
        self._shutdown = False

    def add_node(self, node: Any) -> bool:
        if node not in self._nodes:
            self._nodes.append(node)
        return True

    def remove_node(self, node: Any) -> None:
        self._nodes.remove(node)

    def get_nodes(self) -> list[Any]:
        return list(self._nodes)

    def spin_once(self, timeout_sec: float | None = None) -> None:
        for node in list(self._nodes):
            rclpy.spin_once(node, timeout_sec=None)

    def spin(self) -> None:
        while not self._shutdown and rclpy.ok() and self._nodes:
            self.spin_once(timeout_sec=0.001)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self._shutdown = True
        return True


class SingleThreadedExecutor(Executor):
    """Callbacks run one at a time in the spinning thread."""


class MultiThreadedExecutor(Executor):
    """`MultiThreadedExecutor(num_threads=None)`; the double runs callbacks in the spinning thread."""

    def __init__(self, num_threads: int | None = None, *, context: Any = None) -> None:
        super().__init__(context=context)
        self.num_threads = num_threads
