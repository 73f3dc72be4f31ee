"""Test-only helpers of the rclpy double (not part of rclpy): install the ROS Python packages the
nodes import (message packages from the rosbags typestore, `tf2_ros`, `launch`, `launch_ros`) and
inspect or drive nodes (published messages, delivering messages, calling services, firing timers).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import rclpy
from rclpy.messages import install_message_packages, message_class
from rclpy.node import Node, Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

STATIC_TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class StaticTransformBroadcaster:
    """Double of `tf2_ros.StaticTransformBroadcaster(node, qos=...)`: publishes tf2_msgs/TFMessage on
    /tf_static (transient local) and keeps every transform sent so far, as tf2_ros does."""

    def __init__(self, node: Node, qos: QoSProfile | int = STATIC_TF_QOS) -> None:
        self._tf_msg = message_class("tf2_msgs/msg/TFMessage")
        self.pub_tf = node.create_publisher(self._tf_msg, "/tf_static", qos)
        self._net: dict[str, Any] = {}

    def sendTransform(self, transform: Any) -> None:
        items = transform if isinstance(transform, list) else [transform]
        for t in items:
            self._net[t.child_frame_id] = t
        self.pub_tf.publish(self._tf_msg(transforms=list(self._net.values())))


def install_ros_doubles() -> None:
    """Make `import sensor_msgs.msg`, `std_srvs.srv`, `tf2_ros`, `launch`, `launch_ros` work."""
    install_message_packages()
    tf2 = types.ModuleType("tf2_ros")
    tf2.StaticTransformBroadcaster = StaticTransformBroadcaster
    sys.modules["tf2_ros"] = tf2
    from rclpy import launch_double

    launch_double.install()


def uninstall_ros_doubles() -> None:
    """Remove the modules `install_ros_doubles` added (keeps other tests' imports clean)."""
    prefixes = ("tf2_ros", "launch", "launch_ros", "std_srvs")
    for name in list(sys.modules):
        mod = sys.modules[name]
        if name.split(".")[0] in prefixes or (name.endswith(".msg") and getattr(mod, "__file__", None) is None):
            del sys.modules[name]


def publisher(node: Node, topic: str) -> Publisher:
    matches = [p for p in node.publishers if p.topic == topic]
    if not matches:
        raise KeyError(f"{node.get_name()}: no publisher on {topic} (have {[p.topic for p in node.publishers]})")
    return matches[0]


def published(node: Node, topic: str) -> list[Any]:
    return publisher(node, topic).published


def topics(node: Node) -> dict[str, tuple[str, str, QoSProfile]]:
    """{topic: ('pub'|'sub', message type name, qos)} of a node."""
    out = {p.topic: ("pub", p.msg_type._msgtype_, p.qos_profile) for p in node.publishers}
    out.update({s.topic: ("sub", s.msg_type._msgtype_, s.qos_profile) for s in node.subscriptions})
    return out


def deliver(node: Node, topic: str, msg: Any) -> int:
    """Hand `msg` to every subscription of `node` on `topic` now; returns how many callbacks ran."""
    subs = [s for s in node.subscriptions if s.topic == topic]
    if not subs:
        raise KeyError(f"{node.get_name()}: no subscription on {topic}")
    for sub in subs:
        if not isinstance(msg, sub.msg_type):
            raise TypeError(f"{topic}: expects {sub.msg_type.__name__}, got {type(msg).__name__}")
        sub.callback(msg)
    return len(subs)


def call_service(node: Node, name: str, request: Any = None) -> Any:
    srv = [s for s in node.services if s.srv_name == name]
    if not srv:
        raise KeyError(f"{node.get_name()}: no service {name} (have {[s.srv_name for s in node.services]})")
    service = srv[0]
    response = service.callback(request if request is not None else service.srv_type.Request(),
                                service.srv_type.Response())
    if not isinstance(response, service.srv_type.Response):
        raise TypeError(f"{name}: callback returned {type(response).__name__}, expected the Response")
    return response


def fire_timers(node: Node) -> None:
    for timer in list(node.timers):
        if not timer.is_canceled():
            timer.callback()


def spin_some(*nodes: Node) -> None:
    for node in nodes:
        rclpy.spin_once(node)
