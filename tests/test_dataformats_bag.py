"""rosbag2 MCAP bags: written by the recorder / McapBagWriter, read back identically by two
independent readers (rosbags AnyReader and mcap + mcap_ros2), metadata v8 for Humble and Jazzy."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml
from recording_data import command, observation

from rig.dataformats import ros_messages as rm
from rig.dataformats.rosbag_mcap import BagError, McapBagWriter, bag_summary, read_bag
from teleop.recorder import EpisodeRecorder, RecorderSettings, bag_topics


def plain(value):
    """Reader-independent plain-Python form of a decoded message (rosbags or mcap_ros2)."""
    if isinstance(value, np.ndarray):
        return hashlib.sha1(value.tobytes()).hexdigest() if value.dtype == np.uint8 else value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return hashlib.sha1(bytes(value)).hexdigest()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    fields = getattr(value, "__slots__", None) or getattr(value, "__dataclass_fields__", None)
    if fields is not None and not isinstance(value, (int, float, str)):
        return {f: plain(getattr(value, f)) for f in fields if not f.startswith("__")}
    return value


def read_with_mcap(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    (mcap_file,) = path.glob("*.mcap")
    with open(mcap_file, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        return [(ch.topic, msg.log_time, plain(dec)) for _, ch, msg, dec in reader.iter_decoded_messages()]


def read_with_rosbags(path):
    return [(m.topic, m.log_ns, plain(m.msg)) for m in read_bag(path)]


def canonical(messages):
    return sorted(messages, key=lambda m: (m[1], m[0]))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    settings = RecorderSettings(min_free_bytes=1)
    with EpisodeRecorder(root, formats=("mcap",), settings=settings) as rec:
        rec.start_episode("pick the cube")
        for i in range(12):
            rec.add(observation(i), command(i))
        rec.end_episode(success=True, extra={"operator": "test"})
        rec.wait()
        clock = rec.clock
    return root, clock


def test_recorder_bag_reads_identically_with_two_readers(recorded):
    root, _ = recorded
    bag = root / "bags" / "episode_000000"
    a, b = canonical(read_with_rosbags(bag)), canonical(read_with_mcap(bag))
    assert len(a) == 12 * (3 * 2 + 2 * 3 + 2)
    assert a == b


def test_recorder_bag_content_and_stamps(recorded):
    root, clock = recorded
    bag = root / "bags" / "episode_000000"
    msgs = list(read_bag(bag))
    topics = {m.topic: m.msgtype for m in msgs}
    assert topics["/cameras/front/image_raw"] == "sensor_msgs/msg/Image"
    assert topics["/cameras/wrist_left/camera_info"] == "sensor_msgs/msg/CameraInfo"
    assert topics["/arms/left/joint_states"] == "sensor_msgs/msg/JointState"
    assert topics["/arms/right/tcp_pose"] == "geometry_msgs/msg/PoseStamped"
    assert topics["/arms/right/gripper_state"] == "sensor_msgs/msg/JointState"
    assert topics["/recorded/command/poses"] == "trajectory_msgs/msg/MultiDOFJointTrajectory"
    assert topics["/recorded/command/grippers"] == "trajectory_msgs/msg/JointTrajectory"
    images = [m for m in msgs if m.topic == "/cameras/wrist_right/image_raw"]
    for i, m in enumerate(images):
        frame = observation(i).frames["wrist_right"]
        assert m.msg.encoding == "rgb8"
        assert m.log_ns == rm.stamp_ns(m.msg.header.stamp) == clock.to_ros_ns(frame.t)
        np.testing.assert_array_equal(rm.image_array(m.msg), frame.color)
    poses = [m for m in msgs if m.topic == "/recorded/command/poses"]
    grips = [m for m in msgs if m.topic == "/recorded/command/grippers"]
    for i, (p, g) in enumerate(zip(poses, grips)):
        targets, stamp, _ = rm.chunk_targets(p.msg, g.msg)
        np.testing.assert_array_equal(targets[0], command(i))
        assert stamp == clock.to_ros_ns(observation(i).t)
    states = [m for m in msgs if m.topic == "/arms/left/joint_states"]
    tcp = [m for m in msgs if m.topic == "/arms/left/tcp_pose"]
    back = rm.arm_state_from_msgs("left", states[4].msg, tcp[4].msg, clock)
    np.testing.assert_array_equal(back.q, observation(4).arms["left"].q)


def test_sensor_topics_match_the_ros_graph():
    from rig import topics

    live = {**topics.camera_topics(), **topics.arm_state_topics()}
    recorded = bag_topics(("front", "wrist_left", "wrist_right"))
    for topic, (msgtype, _) in live.items():
        assert recorded[topic][0] == msgtype, topic
    commands = [t for t in recorded if t not in live]
    assert commands == ["/recorded/command/poses", "/recorded/command/grippers"]
    assert not set(commands) & {topics.COMMAND_POSES, topics.COMMAND_GRIPPERS}  # replay never drives the arms


def test_metadata_is_version_8_with_episode_data(recorded):
    root, _ = recorded
    bag = root / "bags" / "episode_000000"
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 8  # Humble parses <= 8 (v9 qos lists break it); Jazzy reads 8
    assert info["storage_identifier"] == "mcap"
    for topic in info["topics_with_message_count"]:
        assert isinstance(topic["topic_metadata"]["offered_qos_profiles"], str)  # the v8 (Humble) form
        assert topic["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
    summary = bag_summary(bag)
    assert summary["custom_data"]["a2world.task"] == "pick the cube"
    assert summary["custom_data"]["a2world.success"] == "true"
    assert summary["topics"]["/arms/left/tcp_pose"] == ("geometry_msgs/msg/PoseStamped", 12)


@pytest.mark.parametrize(("distro", "compression"), [("humble", "none"), ("jazzy", "none"), ("humble", "zstd")])
def test_writer_round_trip_per_distro(tmp_path, distro, compression):
    path = tmp_path / f"bag_{distro}"
    with McapBagWriter(path, distro, custom_data={"k": "v"}, chunk_compression=compression) as bag:
        bag.add_topic("/img", rm.IMAGE, "sensor")
        bag.add_topic("/js", rm.JOINT_STATE)
        for i in range(5):
            img = observation(i, height=24, width=32).frames["front"].color
            bag.write("/img", rm.image_msg(img, 10 + i, "cam", distro=distro), 10 + i)
            bag.write("/js", rm.joint_state_msg(["a", "b"], [i, 2 * i], None, None, 10 + i, distro), 10 + i)
        with pytest.raises(BagError, match="not declared"):
            bag.write("/nope", rm.time_msg(0, distro), 0)
        with pytest.raises(BagError, match="twice"):
            bag.add_topic("/js", rm.JOINT_STATE)
    assert canonical(read_with_rosbags(path)) == canonical(read_with_mcap(path))
    positions = [list(m.msg.position) for m in read_bag(path, topics=["/js"])]
    assert positions == [[i, 2 * i] for i in range(5)]
    with pytest.raises(BagError, match="chunk_compression"):
        McapBagWriter(tmp_path / "c", chunk_compression="lz4")


def test_unfinished_bag_is_rejected(tmp_path):
    bag = McapBagWriter(tmp_path / "b")
    bag.add_topic("/js", rm.JOINT_STATE)
    with pytest.raises(BagError, match="metadata.yaml"):
        list(read_bag(tmp_path / "b"))
    bag.close()
    assert list(read_bag(tmp_path / "b")) == []
