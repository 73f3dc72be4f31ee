"""`static_tf` node: broadcasts the calibrated transforms of config/calibration.yaml on /tf_static
(tf2_ros StaticTransformBroadcaster, latched) once at start-up."""

from __future__ import annotations

from typing import Any

from tf2_ros import StaticTransformBroadcaster

from a2world_ros.params import calibration_transforms
from rig.dataformats import ros_messages as rm

from .common import A2WorldNode, rig_now, run
from .convert import to_ros


class StaticTfNode(A2WorldNode):
    """Reads the calibration parameters and sends every transform once (tf2 latches them)."""

    def __init__(self, parameter_overrides: list[Any] | None = None) -> None:
        super().__init__("static_tf", parameter_overrides)
        self.transforms = calibration_transforms(self.params, "static_tf")
        stamp = self.clock_map.to_ros_ns(rig_now())
        self.broadcaster = StaticTransformBroadcaster(self)
        self.broadcaster.sendTransform([
            to_ros(rm.transform_stamped_msg(t.parent, t.child, t.pose, stamp, self.distro)) for t in self.transforms
        ])
        for t in self.transforms:
            self.get_logger().info(f"static transform {t.parent} -> {t.child}: {[round(v, 4) for v in t.pose]}")


def main(args: list[str] | None = None) -> int:
    return run(StaticTfNode, args)
