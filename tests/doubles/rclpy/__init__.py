"""Test double of the `rclpy` client library (documented API only), for CI machines without ROS 2.

Covers what the a2world nodes use: `init`, `shutdown`, `ok`, `spin`, `spin_once`, `create_node`,
`rclpy.node.Node` with publishers, subscriptions, services, timers, logging and parameters,
`rclpy.qos` profiles, `rclpy.parameter.Parameter` and `rclpy.executors`. Message packages are built
from the rosbags typestore by `rclpy.testing.install_ros_doubles()`.
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.context import Context, get_default_context
from rclpy.node import Node


def init(*, args: list[str] | None = None, context: Context | None = None, domain_id: int | None = None,
         signal_handler_options: Any = None) -> None:
    (context or get_default_context()).init(args)


def ok(*, context: Context | None = None) -> bool:
    return (context or get_default_context()).ok()


def shutdown(*, context: Context | None = None, uninstall_handlers: bool | None = None) -> None:
    (context or get_default_context()).shutdown()


def try_shutdown(*, context: Context | None = None, uninstall_handlers: bool | None = None) -> None:
    (context or get_default_context()).try_shutdown()


def create_node(node_name: str, **kwargs: Any) -> Node:
    return Node(node_name, **kwargs)


def spin_once(node: Node, *, executor: Any = None, timeout_sec: float | None = None) -> None:
    """Deliver every pending message of `node`'s subscriptions, then fire its due timers."""
    for sub in list(node.subscriptions):
        while sub.pending:
            sub.callback(sub.pending.popleft())
    now = time.monotonic()
    for timer in list(node.timers):
        if timer.due(now):
            timer.fire()
    if timeout_sec:
        time.sleep(min(timeout_sec, 0.001))


def spin(node: Node, executor: Any = None) -> None:
    """Spin until the context shuts down or the node is destroyed."""
    while node.context.ok() and not node.destroyed:
        spin_once(node, timeout_sec=0.001)


__all__ = ["Node", "create_node", "init", "ok", "shutdown", "spin", "spin_once", "try_shutdown"]
