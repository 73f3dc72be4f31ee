"""rosbag2 bags with MCAP storage, written with `rosbags` (metadata version 8, which both Humble and
Jazzy parse; Humble cannot parse version 9) and read back with `rosbags.highlevel.AnyReader`.

A bag is a directory `<name>/` holding `metadata.yaml` and `<name>.mcap`. `rosbags` writes
`metadata.yaml` only when the writer closes, so a bag without it is an unfinished one (the recorder
stages bags and commits them only after `close`). Message definitions and RIHS01 hashes come from the
typestore of the chosen distro; both stores agree for every type the project writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QOS_PROFILES = ("sensor", "reliable")
CHUNK_COMPRESSION = ("none", "zstd")


class BagError(RuntimeError):
    """A bag cannot be written or read; the message names the path and topic."""


def _qos(kind: str) -> Any:
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    if kind not in QOS_PROFILES:
        raise BagError(f"qos: {kind!r} is not one of {list(QOS_PROFILES)}")
    zero = QosTime(sec=0, nsec=0)
    # sensor = rclpy qos_profile_sensor_data (KEEP_LAST 5, BEST_EFFORT); reliable = the default profile.
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=5 if kind == "sensor" else 10,
        reliability=QosReliability.BEST_EFFORT if kind == "sensor" else QosReliability.RELIABLE,
        durability=QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


class McapBagWriter:
    """Writes one rosbag2 bag (MCAP storage, metadata v8). Use as a context manager or call `close`.

    `add_topic` declares a topic with its message type; `write` serializes a message object (from
    `ros_messages`) to CDR and stores it with a log time in ROS nanoseconds. `chunk_compression="zstd"`
    compresses the MCAP chunks (MCAP-level, like rosbag2's zstd storage presets; metadata.yaml then
    reports no file/message compression, and every MCAP reader decompresses transparently).
    """

    def __init__(self, path: Path, distro: str = "humble", custom_data: Mapping[str, str] | None = None,
                 chunk_compression: str = "none"):
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer, WriterError

        from rig.dataformats.ros_messages import typestore

        self.path = Path(path)
        self.distro = distro
        self._store = typestore(distro)
        if chunk_compression not in CHUNK_COMPRESSION:
            raise BagError(f"{self.path}: chunk_compression {chunk_compression!r}, expected one of "
                           f"{list(CHUNK_COMPRESSION)}")
        try:
            self._writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
            if chunk_compression == "zstd":
                self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
            for key, value in (custom_data or {}).items():
                self._writer.set_custom_data(str(key), str(value))
            self._writer.open()
        except WriterError as exc:
            raise BagError(f"{self.path}: cannot create bag ({exc})") from None
        self._connections: dict[str, Any] = {}
        self.messages = 0
        self.bytes = 0
        self._closed = False

    def add_topic(self, topic: str, msgtype: str, qos: str = "reliable") -> None:
        """Declare `topic` carrying `msgtype` (e.g. `sensor_msgs/msg/Image`) with a QoS profile name."""
        if topic in self._connections:
            raise BagError(f"{self.path}: topic {topic!r} declared twice")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self._store, offered_qos_profiles=[_qos(qos)]
        )

    def set_custom_data(self, key: str, value: str) -> None:
        """Store a string in metadata.yaml `custom_data` (written at close)."""
        self._writer.set_custom_data(str(key), str(value))

    def write(self, topic: str, msg: Any, log_ns: int) -> None:
        from rig.dataformats.ros_messages import serialize

        self.write_cdr(topic, serialize(msg, self.distro), log_ns)

    def write_cdr(self, topic: str, data: bytes | memoryview, log_ns: int) -> None:
        conn = self._connections.get(topic)
        if conn is None:
            raise BagError(f"{self.path}: topic {topic!r} not declared (declared: {sorted(self._connections)})")
        self._writer.write(conn, int(log_ns), data)
        self.messages += 1
        self.bytes += len(data)

    def close(self) -> None:
        """Finish the MCAP file and write metadata.yaml; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._writer.close()

    def __enter__(self) -> McapBagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class BagMessage:
    """One decoded message of a bag."""

    topic: str
    msgtype: str
    log_ns: int
    msg: Any


def read_bag(path: Path, topics: list[str] | None = None) -> Iterator[BagMessage]:
    """Decoded messages of a bag directory in log-time order (rosbags AnyReader)."""
    from rosbags.highlevel import AnyReader

    from rig.dataformats.ros_messages import typestore

    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: no metadata.yaml, not a finished rosbag2 bag")
    with AnyReader([path], default_typestore=typestore("humble")) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, log_ns, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, int(log_ns), reader.deserialize(raw, conn.msgtype))


def bag_summary(path: Path) -> dict[str, Any]:
    """Topics with types and message counts, duration and custom_data of a bag (from metadata.yaml)."""
    import yaml

    path = Path(path)
    meta_file = path / "metadata.yaml"
    if not meta_file.is_file():
        raise BagError(f"{path}: no metadata.yaml, not a finished rosbag2 bag")
    info = yaml.safe_load(meta_file.read_text())["rosbag2_bagfile_information"]
    return {
        "version": info["version"],
        "storage": info["storage_identifier"],
        "duration_s": info["duration"]["nanoseconds"] * 1e-9,
        "messages": info["message_count"],
        "topics": {
            t["topic_metadata"]["name"]: (t["topic_metadata"]["type"], t["message_count"])
            for t in info["topics_with_message_count"]
        },
        "custom_data": info.get("custom_data") or {},
    }
