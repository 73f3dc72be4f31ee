"""Test double of `rclpy.qos`: QoSProfile, the policy enums and the predefined profiles.

Values follow rmw's `qos_profiles.h`: sensor data is KEEP_LAST 5 / BEST_EFFORT / VOLATILE, the default
profile KEEP_LAST 10 / RELIABLE / VOLATILE.
"""

from __future__ import annotations

import enum


class HistoryPolicy(enum.IntEnum):
    """How many samples are kept (rmw_qos_history_policy_t)."""

    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2
    UNKNOWN = 3


class ReliabilityPolicy(enum.IntEnum):
    """Delivery guarantee (rmw_qos_reliability_policy_t)."""

    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2
    UNKNOWN = 3


class DurabilityPolicy(enum.IntEnum):
    """Whether late joiners get old samples (rmw_qos_durability_policy_t)."""

    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2
    UNKNOWN = 3


class QoSProfile:
    """`QoSProfile(**kwargs)`: history, depth, reliability, durability (keyword-only, like rclpy)."""

    def __init__(self, **kwargs: object) -> None:
        if "history" not in kwargs and "depth" not in kwargs:
            raise TypeError("QoSProfile: history and/or depth settings are required")
        self.history = HistoryPolicy(kwargs.get("history", HistoryPolicy.KEEP_LAST))
        self.depth = int(kwargs.get("depth", 0))  # type: ignore[arg-type]
        self.reliability = ReliabilityPolicy(kwargs.get("reliability", ReliabilityPolicy.RELIABLE))
        self.durability = DurabilityPolicy(kwargs.get("durability", DurabilityPolicy.VOLATILE))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QoSProfile) and (
            self.history, self.depth, self.reliability, self.durability
        ) == (other.history, other.depth, other.reliability, other.durability)

    def __repr__(self) -> str:
        return (f"QoSProfile(history={self.history.name}, depth={self.depth}, "
                f"reliability={self.reliability.name}, durability={self.durability.name})")


qos_profile_sensor_data = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
qos_profile_system_default = QoSProfile(
    history=HistoryPolicy.SYSTEM_DEFAULT, depth=0, reliability=ReliabilityPolicy.SYSTEM_DEFAULT,
    durability=DurabilityPolicy.SYSTEM_DEFAULT,
)
qos_profile_services_default = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
qos_profile_parameters = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def compatible(pub: QoSProfile, sub: QoSProfile) -> bool:
    """Request/offer matching: a RELIABLE reader gets nothing from a BEST_EFFORT writer, and a
    TRANSIENT_LOCAL reader nothing from a VOLATILE writer."""
    if sub.reliability == ReliabilityPolicy.RELIABLE and pub.reliability == ReliabilityPolicy.BEST_EFFORT:
        return False
    return not (sub.durability == DurabilityPolicy.TRANSIENT_LOCAL
                and pub.durability == DurabilityPolicy.VOLATILE)
