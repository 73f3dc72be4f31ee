"""Test double of `rclpy.context.Context`: init state plus the in-process topic graph of the double."""

from __future__ import annotations

from typing import Any

from rclpy.qos import compatible


class Context:
    """Holds the nodes created under one `rclpy.init()`; routes published messages to subscriptions."""

    def __init__(self) -> None:
        self._ok = False
        self.nodes: list[Any] = []

    def init(self, args: list[str] | None = None) -> None:
        if self._ok:
            raise RuntimeError("Context.init() must only be called once")
        self._ok = True

    def ok(self) -> bool:
        return self._ok

    def shutdown(self) -> None:
        if not self._ok:
            raise RuntimeError("Context must be initialized before it can be shutdown")
        self._ok = False
        self.nodes.clear()

    def try_shutdown(self) -> None:
        if self._ok:
            self.shutdown()

    def add_node(self, node: Any) -> None:
        self.nodes.append(node)

    def remove_node(self, node: Any) -> None:
        if node in self.nodes:
            self.nodes.remove(node)

    def subscriptions(self, topic: str) -> list[Any]:
        return [s for n in self.nodes for s in n.subscriptions if s.topic == topic]

    def route(self, publisher: Any, msg: Any) -> None:
        for sub in self.subscriptions(publisher.topic):
            if sub.msg_type is not publisher.msg_type:
                continue  # a type mismatch never matches in DDS either
            if compatible(publisher.qos_profile, sub.qos_profile):
                sub.enqueue(msg)


_default_context = Context()


def get_default_context() -> Context:
    return _default_context
