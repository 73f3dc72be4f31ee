"""teleop_node through the rclpy double (over a real TeleopRunner on recording arms) and
launch/teleop.launch.py through the launch double: services queue episode actions, /estop latches the
guard and releases the clutches, /diagnostics carries the status; the launch passes its arguments as
strings to the node."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rig.conventions import ARM_NAMES
from rig.factory import Rig
from rig.timing import LockstepClock
from teleop.config import load_teleop_config
from teleop.runner import TeleopRunner
from tests.doubles.rig_devices import RecordingArm, RecordingGripper
from tests.ros_env import ros_doubles
from tests.teleop_helpers import frame

ROOT = Path(__file__).resolve().parent.parent
ros_module = pytest.fixture(scope="module", autouse=True)(ros_doubles)


class App:
    """What TeleopNode needs of a TeleopApp: the runner, run() and close()."""

    def __init__(self) -> None:
        clock = LockstepClock(0.0)
        rig = Rig({}, {a: RecordingArm(a, clock=clock) for a in ARM_NAMES},
                  {a: RecordingGripper(a) for a in ARM_NAMES})
        self.runner = TeleopRunner(rig, load_teleop_config(), "lift the box high")
        self.clock = clock


def test_services_estop_and_diagnostics():
    from rclpy.parameter import Parameter
    from rclpy.testing import call_service, deliver, fire_timers, published

    from a2world_ros.nodes.convert import from_ros
    from a2world_ros.nodes.teleop_node import ACTIONS, TeleopNode
    from rig.dataformats import ros_messages as rm

    app = App()
    node = TeleopNode(app, parameter_overrides=[Parameter("autostart", value=False)])
    assert {s.srv_name for s in node.services} == {f"/teleop/{a}" for a in ACTIONS}
    for action in ("start", "success", "stop", "recenter"):
        assert call_service(node, f"/teleop/{action}").success
    assert app.runner.session.take_actions() == ["start", "success", "stop"]  # recenter is done in the session
    session = app.runner.session
    for k in range(5):
        session.handle(frame(k, k * 0.01, grip={"left": 1.0}), k * 0.01)
    assert session.engaged()["left"]
    from std_msgs.msg import Bool, String

    deliver(node, "/teleop/instruction", String(data="lift the red box"))
    (queued,) = app.runner.session.take_actions()
    assert app.runner.apply(queued).startswith("instruction of the next episodes")
    assert app.runner.episodes.instruction == "lift the red box"

    deliver(node, "/estop", Bool(data=True))
    assert app.runner.guard.estopped and not session.engaged()["left"]
    fire_timers(node)
    entries = rm.diagnostic_entries(from_ros(published(node, "/diagnostics")[-1], rm.DIAGNOSTIC_ARRAY))
    (teleop,) = [e for e in entries if e.name == "teleop"]
    assert teleop.level == "WARN" and dict(teleop.values)["estop"] == "True"
    node.close()


def _launch():
    spec = importlib.util.spec_from_file_location("teleop_launch", ROOT / "launch" / "teleop.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def test_launch_starts_teleop_and_tf_with_string_arguments():
    from launch import LaunchContext
    from launch_ros.actions import Node

    desc = _launch()
    ctx = LaunchContext()
    ctx.package_share["a2world_ros"] = str(ROOT)
    ctx.launch_configurations.update({"rig": "sim", "vr": "zmq://0.0.0.0:5600", "record_dir": "/tmp/x",
                                      "task": "lift_box_high", "operator": "1234"})
    for arg in desc.launch_arguments:
        arg.apply(ctx)
    nodes = {e.node_name: e for e in desc.entities if isinstance(e, Node) and e.enabled(ctx)}
    assert set(nodes) == {"static_tf", "teleop"}
    (params,) = nodes["teleop"].parameter_sources(ctx)
    assert params["vr"] == "zmq://0.0.0.0:5600" and params["record_dir"] == "/tmp/x"
    assert params["operator"] == "1234" and params["rig"] == "sim"  # strings, not an int
    assert nodes["teleop"].executable == "teleop_node"
