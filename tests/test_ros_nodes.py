"""ROS nodes through the rclpy test double: wiring (topics, types, QoS, services), and that callbacks
produce the right messages end to end (cameras -> policy -> arms, e-stop, reset, diagnostics, tf)."""

from __future__ import annotations

import numpy as np
import pytest

from a2world_ros.params import flatten, load_node_params
from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.schema import CommandChunk
from rig.timing import LockstepClock
from tests.doubles.rig_devices import HOME, RecordingArm, RecordingGripper, StillCamera
from tests.ros_env import ros_doubles

ros_module = pytest.fixture(scope="module", autouse=True)(ros_doubles)


def overrides(node: str, **extra):
    from rclpy.parameter import Parameter

    params = {**load_node_params("policy.yaml", node), **extra}
    return [Parameter(k, value=v) for k, v in flatten(params).items()]


class FakeLoop:
    """A PolicyLoop: records observations, returns queued chunks once."""

    def __init__(self) -> None:
        self.observations = []
        self.chunks = []
        self.started = 0
        self.stopped = 0

    def on_observation(self, obs) -> None:
        self.observations.append(obs)

    def next_chunk(self):
        return self.chunks.pop(0) if self.chunks else None

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def diagnostics(self):
        return {"inference_ms": 12.5}


@pytest.fixture
def clock():
    import time

    return LockstepClock(time.monotonic())


@pytest.fixture
def rig(clock):
    cameras = {c: StillCamera(c) for c in CAMERA_NAMES}
    arms = {a: RecordingArm(a, clock=clock) for a in ARM_NAMES}
    grippers = {a: RecordingGripper(a, clock=clock) for a in ARM_NAMES}
    return cameras, arms, grippers


@pytest.fixture
def nodes(rig, clock):
    from a2world_ros.nodes.arms_node import ArmsNode
    from a2world_ros.nodes.cameras_node import CamerasNode
    from a2world_ros.nodes.policy_node import PolicyNode

    cameras, arms, grippers = rig
    cam_node = CamerasNode(cameras, overrides("cameras"))
    arm_node = ArmsNode(arms, grippers, overrides("arms"), start_control=False)
    loop = FakeLoop()
    pol_node = PolicyNode(loop, overrides("policy", instruction="stack the cups"))
    for bridge in (cam_node.bridge, arm_node.bridge, pol_node.bridge):
        bridge.clock = clock
    yield cam_node, arm_node, pol_node, loop
    for node in (cam_node, arm_node, pol_node):
        node.close()
        node.destroy_node()


def test_wiring_topics_types_and_qos(nodes):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    from rclpy.testing import topics

    cam_node, arm_node, pol_node, _ = nodes
    cam = topics(cam_node)
    for c in CAMERA_NAMES:
        assert cam[f"/cameras/{c}/image_raw"][:2] == ("pub", "sensor_msgs/msg/Image")
        assert cam[f"/cameras/{c}/camera_info"][:2] == ("pub", "sensor_msgs/msg/CameraInfo")
        assert cam[f"/cameras/{c}/image_raw"][2].reliability == ReliabilityPolicy.BEST_EFFORT
    arms = topics(arm_node)
    for a in ARM_NAMES:
        assert arms[f"/arms/{a}/joint_states"][:2] == ("pub", "sensor_msgs/msg/JointState")
        assert arms[f"/arms/{a}/tcp_pose"][:2] == ("pub", "geometry_msgs/msg/PoseStamped")
        assert arms[f"/arms/{a}/gripper_state"][:2] == ("pub", "sensor_msgs/msg/JointState")
    assert arms["/policy/command/poses"][:2] == ("sub", "trajectory_msgs/msg/MultiDOFJointTrajectory")
    assert arms["/policy/command/grippers"][:2] == ("sub", "trajectory_msgs/msg/JointTrajectory")
    assert arms["/policy/command/poses"][2].reliability == ReliabilityPolicy.RELIABLE
    assert arms["/estop"][:2] == ("sub", "std_msgs/msg/Bool")
    assert arms["/diagnostics"][:2] == ("pub", "diagnostic_msgs/msg/DiagnosticArray")
    assert arms["/cameras/front/camera_info"][2].reliability == ReliabilityPolicy.BEST_EFFORT
    pol = topics(pol_node)
    assert pol["/cameras/wrist_left/image_raw"][0] == "sub"
    assert pol["/policy/command/poses"][:2] == ("pub", "trajectory_msgs/msg/MultiDOFJointTrajectory")
    assert pol["/policy/command/poses"][2].durability == DurabilityPolicy.VOLATILE
    services = {s.srv_name for n in (arm_node, pol_node) for s in n.services}
    assert services == {"/arms/start", "/arms/stop", "/arms/reset", "/policy/start", "/policy/stop"}


def test_camera_messages_are_stamped_with_capture_time(nodes, rig, clock):
    from rclpy.testing import fire_timers, published

    from rig.dataformats import ros_messages as rm

    cam_node, *_ = nodes
    cameras, _, _ = rig
    frame = cameras["front"].capture(clock.now() - 0.03)
    fire_timers(cam_node)
    fire_timers(cam_node)  # the same frame is not published twice
    images = published(cam_node, "/cameras/front/image_raw")
    infos = published(cam_node, "/cameras/front/camera_info")
    assert len(images) == 1 and len(infos) == 1
    stamp = images[0].header.stamp.sec * 1_000_000_000 + images[0].header.stamp.nanosec
    assert stamp == cam_node.clock_map.to_ros_ns(frame.t) == infos[0].header.stamp.sec * 10**9 + \
        infos[0].header.stamp.nanosec
    assert images[0].encoding == "rgb8" and images[0].header.frame_id == "front_color_optical_frame"
    from a2world_ros.nodes.convert import from_ros

    back = rm.image_array(from_ros(images[0], rm.IMAGE))
    assert np.array_equal(back, frame.color)
    assert infos[0].k[0] == 50.0 and published(cam_node, "/cameras/wrist_left/image_raw") == []


def _spin(*nodes):
    import rclpy

    for node in nodes:
        rclpy.spin_once(node)


def _chunk(t0: float) -> CommandChunk:
    targets = np.zeros((10, 2, 8))
    targets[:, :, :7] = HOME
    targets[:, :, 0] += np.linspace(0, 0.02, 10)[:, None]
    targets[:, :, 7] = 0.5
    return CommandChunk(targets, t0=t0, dt=1 / 30)


def test_end_to_end_observation_chunk_execution_estop_reset(nodes, rig, clock):
    from rclpy.testing import call_service, deliver, fire_timers, published
    from std_msgs.msg import Bool

    cam_node, arm_node, pol_node, loop = nodes
    cameras, arms, _ = rig
    bridge = arm_node.bridge

    # States and frames flow: arms tick (lockstep), publish; cameras publish; policy assembles.
    assert call_service(pol_node, "/policy/start").success and loop.started == 1
    for _ in range(3):
        clock.advance(0.01)
        bridge.tick(clock.now())
    fire_timers(arm_node)
    for cam in cameras.values():
        cam.capture(clock.now() - 0.005)
    fire_timers(cam_node)
    _spin(pol_node, arm_node)
    assert len(loop.observations) == 1
    obs = loop.observations[0]
    assert set(obs.frames) == set(CAMERA_NAMES) and set(obs.arms) == set(ARM_NAMES)
    assert obs.task == "stack the cups" and obs.max_skew() <= 0.02
    assert np.allclose(obs.arms["left"].tcp_pose, HOME)

    # The policy's chunk reaches the arms node over the (double's) graph; ignored until /arms/start.
    loop.chunks.append(_chunk(clock.now()))
    fire_timers(pol_node)
    assert len(published(pol_node, "/policy/command/poses")) == 1
    _spin(arm_node)
    assert not bridge.executor.has_plan()
    response = call_service(arm_node, "/arms/start")
    assert response.success, response.message
    loop.chunks.append(_chunk(clock.now()))
    fire_timers(pol_node)
    _spin(arm_node)
    assert bridge.executor.has_plan()
    sent_before = len(arms["left"].sent)
    for _ in range(5):
        clock.advance(0.01)
        for cam in cameras.values():
            cam.capture(clock.now())
        fire_timers(cam_node)
        _spin(arm_node)  # camera_info stamps feed the watchdog
        bridge.tick(clock.now())
    assert len(arms["left"].sent) == sent_before + 5

    # E-stop: nothing is sent, start is refused until reset.
    deliver(arm_node, "/estop", Bool(data=True))
    deliver(pol_node, "/estop", Bool(data=True))
    assert loop.stopped == 1 and not pol_node.bridge.running
    n = len(arms["left"].sent)
    for _ in range(5):
        clock.advance(0.01)
        bridge.tick(clock.now())
    assert len(arms["left"].sent) == n
    refused = call_service(arm_node, "/arms/start")
    assert not refused.success and "reset" in refused.message
    assert call_service(arm_node, "/arms/reset").success
    assert call_service(arm_node, "/arms/start").success

    # Diagnostics carry the e-stop count and rates.
    from a2world_ros.nodes.convert import from_ros
    from rig.dataformats import ros_messages as rm

    fire_timers(arm_node)
    diag = rm.diagnostic_entries(from_ros(published(arm_node, "/diagnostics")[-1], rm.DIAGNOSTIC_ARRAY))
    values = dict(diag[0].values)
    assert diag[0].name == "arms" and values["guard.estop"] == "1" and "chunk_rate_hz" in values
    fire_timers(pol_node)
    pdiag = rm.diagnostic_entries(from_ros(published(pol_node, "/diagnostics")[-1], rm.DIAGNOSTIC_ARRAY))
    assert dict(pdiag[0].values)["loop.inference_ms"] == "12.5"


def test_states_published_with_arm_time_and_gripper_state(nodes, clock):
    from rclpy.testing import fire_timers, published

    from a2world_ros.nodes.convert import from_ros
    from rig.dataformats import ros_messages as rm

    _, arm_node, _, _ = nodes
    clock.advance(0.01)
    arm_node.bridge.tick(clock.now())
    fire_timers(arm_node)
    js = from_ros(published(arm_node, "/arms/right/joint_states")[-1], rm.JOINT_STATE)
    pose = from_ros(published(arm_node, "/arms/right/tcp_pose")[-1], rm.POSE_STAMPED)
    assert rm.stamp_ns(js.header.stamp) == arm_node.clock_map.to_ros_ns(clock.now())
    assert list(js.name) == rm.joint_names("right") and pose.header.frame_id == "right_base_link"
    grip = from_ros(published(arm_node, "/arms/left/gripper_state")[-1], rm.JOINT_STATE)
    assert list(grip.name) == rm.gripper_names("left") and grip.position[0] == 1.0


def test_bad_chunk_is_rejected_not_executed(nodes, clock):
    from rclpy.testing import call_service, deliver

    from a2world_ros.nodes.convert import to_ros
    from rig.dataformats import ros_messages as rm

    _, arm_node, _, _ = nodes
    call_service(arm_node, "/arms/start")
    targets = _chunk(clock.now()).targets.copy()
    targets[3, 0, 3:7] = (0.0, 0.0, 0.0, 3.0)  # not a unit quaternion
    poses, grippers = rm.chunk_msgs(targets, arm_node.clock_map.to_ros_ns(clock.now()), 1 / 30)
    deliver(arm_node, "/policy/command/poses", to_ros(poses))
    deliver(arm_node, "/policy/command/grippers", to_ros(grippers))
    assert arm_node.bridge.rejected_chunks == 1 and not arm_node.bridge.executor.has_plan()


def test_sensor_topics_do_not_reach_a_reliable_subscriber(nodes, rig, clock):
    """The double matches QoS like DDS: why every sensor subscriber here uses sensor-data QoS."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile
    from rclpy.testing import fire_timers
    from sensor_msgs.msg import Image

    cam_node, *_ = nodes
    got = []
    listener = Node("listener")
    listener.create_subscription(Image, "/cameras/front/image_raw", got.append, QoSProfile(depth=10))
    rig[0]["front"].capture(clock.now())
    fire_timers(cam_node)
    _spin(listener)
    assert got == []
    listener.destroy_node()


def test_static_tf_node_broadcasts_calibration():
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy
    from rclpy.testing import publisher

    from a2world_ros.nodes.static_tf_node import StaticTfNode

    params = load_node_params("calibration.yaml", "static_tf")
    node = StaticTfNode([Parameter(k, value=v) for k, v in flatten(params).items()])
    pub = publisher(node, "/tf_static")
    assert pub.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    tfs = pub.published[-1].transforms
    frames = {(t.header.frame_id, t.child_frame_id) for t in tfs}
    assert ("world", "left_base_link") in frames and ("right_flange", "wrist_right_color_optical_frame") in frames
    left = next(t for t in tfs if t.child_frame_id == "left_base_link").transform
    right = next(t for t in tfs if t.child_frame_id == "right_base_link").transform
    assert left.translation.y == -right.translation.y and left.rotation.x == pytest.approx(-right.rotation.x)
    node.destroy_node()


def test_sim_node_with_injected_rig(rig, clock):
    from rclpy.testing import call_service, fire_timers, published, topics

    from a2world_ros.nodes.sim_node import SimNode
    from rig.factory import Rig

    cameras, arms, grippers = rig
    node = SimNode(Rig(cameras, arms, grippers), overrides("sim"), start_control=False)
    node.cameras.clock = node.arms.clock = clock
    names = topics(node)
    assert "/cameras/front/image_raw" in names and "/arms/left/joint_states" in names
    assert "/cameras/front/camera_info" in names and names["/cameras/front/camera_info"][0] == "pub"
    assert call_service(node, "/arms/start").success
    node.arms.executor.submit(_chunk(clock.now()), clock.now())
    for _ in range(3):
        clock.advance(0.01)
        for cam in cameras.values():
            cam.capture(clock.now())
        fire_timers(node)  # camera poll feeds the watchdog in-process
        node.arms.tick(clock.now())
    assert len(arms["left"].sent) == 3
    assert len(published(node, "/cameras/wrist_right/image_raw")) == 3
    fire_timers(node)
    names = [s.name for s in published(node, "/diagnostics")[-1].status]
    assert names == ["cameras/front", "cameras/wrist_left", "cameras/wrist_right", "arms"]
    node.close()
    node.destroy_node()


def test_policy_node_builds_loop_from_factory_parameter():
    from a2world_ros.nodes.policy_node import PolicyNode

    node = PolicyNode(None, overrides("policy", policy_loop_factory="tests.test_ros_nodes:make_fake_loop",
                                      policy="tcp://localhost:5555", instruction="wipe"))
    assert type(node.bridge.loop).__name__ == "FakeLoop" and node.bridge.loop.spec == ("tcp://localhost:5555", "wipe")
    node.destroy_node()
    # A factory that cannot be loaded leaves the node idle with the reason (it does not die).
    node = PolicyNode(None, overrides("policy", policy_loop_factory="no_such_module:make", policy="tcp://x:1"))
    assert node.bridge.loop is None and "policy_loop_factory" in node.bridge.load_error
    node.destroy_node()


def test_policy_node_without_policy_is_idle_until_one_is_set():
    from rclpy.parameter import Parameter
    from rclpy.testing import call_service, fire_timers, published

    from a2world_ros.nodes.policy_node import PolicyNode

    node = PolicyNode(None, overrides("policy", policy_loop_factory="tests.test_ros_nodes:make_fake_loop",
                                      policy=""))
    assert node.bridge.loop is None
    reply = call_service(node, "/policy/start")
    assert not reply.success and "no policy loaded" in reply.message
    fire_timers(node)
    status = published(node, "/diagnostics")[-1].status[0]
    assert status.level == b"\x01" and "no policy loaded" in status.message
    # A bad value is refused with the reason; a good one loads the loop, and start then works.
    [refused] = node.set_parameters([Parameter("policy", value="tcp://bad:0")])
    assert not refused.successful and "cannot reach" in refused.reason and node.bridge.loop is None
    [result] = node.set_parameters([Parameter("policy", value="tcp://localhost:5555")])
    assert result.successful and node.bridge.loop.spec == ("tcp://localhost:5555", "")
    assert call_service(node, "/policy/start").success
    node.close()
    node.destroy_node()


def make_fake_loop(policy: str, instruction: str, params: dict) -> FakeLoop:
    from rig.config import ConfigError

    if policy == "tcp://bad:0":
        raise ConfigError("policy: cannot reach tcp://bad:0")
    loop = FakeLoop()
    loop.spec = (policy, instruction)
    assert params["publish_hz"] == 30.0
    return loop


def test_sim_node_on_the_twin_in_lockstep():
    """The sim node built from `rig.factory.build_rig(rig="sim")` (lockstep clock: this test steps it)."""
    pytest.importorskip("mujoco", reason="the twin needs mujoco (pip install -e '.[sim]')")
    from rclpy.testing import call_service, fire_timers, published

    from a2world_ros.nodes.sim_node import SimNode

    node = SimNode(None, overrides("sim", sim={"clock": "lockstep"}), start_control=False)
    try:
        twin = node.rig.arms["left"].twin
        clock = LockstepClock(twin.now())
        node.cameras.clock = node.arms.clock = clock
        assert call_service(node, "/arms/start").success
        start = node.rig.arms["left"].read_state().tcp_pose
        targets = np.tile(np.r_[start, 1.0], (30, 2, 1))
        targets[:, 1, :7] = node.rig.arms["right"].read_state().tcp_pose
        targets[:, 0, 2] += np.linspace(0.0, 0.02, 30)  # lift the left TCP by 2 cm over 1 s
        node.arms.executor.submit(CommandChunk(targets, twin.now(), 1 / 30), twin.now())
        for _ in range(40):
            twin.step(0.01)
            clock.set(twin.now())
            fire_timers(node)  # renders (1/30 s cadence), publishes, feeds the watchdog
            node.arms.tick(twin.now())
        images = published(node, "/cameras/front/image_raw")
        assert images and (images[-1].height, images[-1].width) == (480, 640)
        assert node.arms.guard.counters["stale_data"] == 0
        lifted = node.rig.arms["left"].read_state().tcp_pose[2] - start[2]
        assert 0.005 < lifted < 0.03
    finally:
        node.close()
        node.destroy_node()


def test_sim_watchdog_must_cover_two_frame_periods_and_the_shipped_config_does():
    from a2world_ros.nodes.sim_node import check_watchdog_period
    from rig.config import ConfigError

    params = load_node_params("policy.yaml", "sim")
    # The sim section's guard.stale_timeout_s is merged key by key: /**'s per-arm limits stay.
    assert set(params["guard"]["arms"]) == set(ARM_NAMES) and params["guard"]["stale_timeout_s"] == 0.5
    check_watchdog_period(params["guard"]["stale_timeout_s"], params["sim"]["cameras"]["fps"], "sim")
    with pytest.raises(ConfigError, match=r"stale_timeout_s = 0.1 s .*sim\.cameras\.fps = 10"):
        check_watchdog_period(0.1, 10.0, "sim")
