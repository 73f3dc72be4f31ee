"""The shadow node through the rclpy double: it subscribes to the policy graph's topics, feeds the shadow
session (a real server with the known-good scene model), and publishes /shadow/<camera>/image (sensor QoS),
/shadow/metrics and /diagnostics."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shadow_scene as scene

from a2world_ros.params import flatten, load_node_params
from rig import topics
from rig.dataformats import ros_messages as rm
from tests.ros_env import ros_doubles

ros_module = pytest.fixture(scope="module", autouse=True)(ros_doubles)


def _ros(msg):
    from a2world_ros.nodes.convert import to_ros

    return to_ros(msg)


def test_shadow_node_publishes_side_by_side_metrics_and_diagnostics():
    from rclpy.parameter import Parameter
    from rclpy.qos import ReliabilityPolicy
    from rclpy.testing import deliver, fire_timers, published
    from rclpy.testing import topics as node_topics

    from a2world_ros.nodes.shadow_node import ShadowNode
    from a2world_ros.shadow_session import ShadowSession
    from worldmodel.shadow.config import ServerSettings, ShadowConfig
    from worldmodel.shadow.engine import ShadowEngine
    from worldmodel.shadow.service import ShadowServer
    from worldmodel.shadow.worker import ShadowWorker

    config = ShadowConfig.from_mapping({"cameras": ["front"]})
    worker = ShadowWorker(ShadowEngine(scene.KinematicPredictor(), config)).start()
    server = ShadowServer(worker, ServerSettings(address="tcp://127.0.0.1:*"))
    server.start_background()
    session = ShadowSession(config, server.address, printer=lambda _l: None, poll_s=0.1, live_panels=True)
    params = {**load_node_params("policy.yaml", "shadow"), "cameras": ["front"]}
    node = ShadowNode(session=session, parameter_overrides=[Parameter(k, value=v) for k, v in flatten(params).items()])
    try:
        graph = node_topics(node)
        assert graph["/shadow/front/image"][0:2] == ("pub", topics.IMAGE)
        assert graph["/shadow/front/image"][2].reliability == ReliabilityPolicy.BEST_EFFORT  # sensor QoS
        assert graph["/shadow/metrics"][:2] == ("pub", "std_msgs/msg/Float64MultiArray")
        assert graph[topics.COMMAND_POSES][0] == "sub"
        clock = node.clock_map
        for j, p in enumerate(scene.positions(30 * 3)):
            obs = scene.observation(100.0 + j * scene.DT, p)
            stamp = clock.to_ros_ns(obs.t)
            for arm in ("left", "right"):
                deliver(node, topics.joint_states(arm), _ros(rm.arm_joint_state_msg(obs.arms[arm], stamp)))
                deliver(node, topics.tcp_pose(arm), _ros(rm.tcp_pose_msg(obs.arms[arm].tcp_pose, stamp,
                                                                         rm.base_frame(arm))))
                deliver(node, topics.gripper_state(arm), _ros(rm.gripper_state_msg(obs.grippers[arm], stamp)))
            deliver(node, topics.image("front"), _ros(rm.image_msg(obs.frames["front"].color, stamp,
                                                                   rm.camera_frame("front"), "rgb8")))
            if j == 0:
                poses, grippers = rm.command_chunk_msgs(scene.trajectory(obs.t, 60, p), clock)
                deliver(node, topics.COMMAND_POSES, _ros(poses))
                deliver(node, topics.COMMAND_GRIPPERS, _ros(grippers))
        assert node.bridge.counters["chunks"] == 1 and node.bridge.counters["observations"] == 90
        deadline = time.monotonic() + 10
        while node.bridge.counters["results"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.bridge.counters["results"] == 1
        for _ in range(3):
            fire_timers(node)
        images = published(node, "/shadow/front/image")
        assert len(images) == 3 and (images[0].width, images[0].height) == (3 * scene.W, scene.H)
        panel = np.frombuffer(bytes(images[0].data), np.uint8).reshape(scene.H, 3 * scene.W, 3)
        assert np.array_equal(panel[:, : scene.W], panel[:, scene.W: 2 * scene.W])  # real == predicted
        assert panel[:, 2 * scene.W:].max() == 0  # |difference| is black
        assert rm.stamp_ns(images[1].header.stamp) > rm.stamp_ns(images[0].header.stamp)
        (metrics,) = published(node, "/shadow/metrics")
        assert metrics.layout.dim[1].label.startswith("metric:psnr") and len(metrics.data) == 5
        diag = published(node, topics.DIAGNOSTICS)[-1]
        assert diag.status[0].name == "shadow"
        values = {kv.key: kv.value for kv in diag.status[0].values}
        assert values["scored"] == "1" and values["dropped"] == "0"
    finally:
        node.close()
        server.stop()
        worker.stop()
