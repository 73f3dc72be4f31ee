"""The ROS 2 graph on a real ROS 2 (Jazzy): `ros2 launch a2world_ros policy.launch.py rig:=sim`, as an
operator runs it, watched from a probe node (tests/ros_graph.py).

- default launch (no policy): every node alive after 20 s, topics and services there, the policy node
  idle with "no policy loaded" and /policy/start refused with that reason;
- `policy:=expert`: after /arms/start and /policy/start chunks arrive, the TCPs move and the task makes
  progress; /estop latches (diagnostics ERROR, /arms/start refused until /arms/reset); the run is
  recorded (`record_dir:=`) into a bag that `ros2 bag info` reads and `ros2 bag play` replays;
- Ctrl-C (SIGINT to the process group, twice) ends every node within 10 s, exit code 0, no escalation;
- `a2world collect` bags pass `ros2 bag info`.

Runs under a sourced Jazzy with this package built (scripts/ci_ros.sh); skipped otherwise. Rates seen
on the way are written to $A2WORLD_ROS_RATES (JSON) when set (docs/ros.md quotes them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.ros_graph import ARMS, CAMERAS, Launch, Probe, ros_unavailable

pytestmark = [pytest.mark.ros, pytest.mark.slow]
_WHY = ros_unavailable()
if _WHY:
    pytest.skip(_WHY, allow_module_level=True)

rclpy = pytest.importorskip("rclpy", reason="needs rclpy from a sourced ROS 2")
NODES = {"static_tf", "sim", "policy"}
TOPICS = {f"/cameras/{c}/image_raw" for c in CAMERAS} | {f"/cameras/{c}/camera_info" for c in CAMERAS} \
    | {f"/arms/{a}/{t}" for a in ARMS for t in ("joint_states", "tcp_pose", "gripper_state")} \
    | {"/policy/command/poses", "/policy/command/grippers", "/estop", "/diagnostics", "/tf_static"}
SERVICES = {"/arms/start", "/arms/stop", "/arms/reset", "/policy/start", "/policy/stop"}
RATES: dict[str, float | str] = {}


@pytest.fixture(scope="module")
def probe():
    rclpy.init()
    p = Probe(rclpy)
    yield p
    p.close()
    rclpy.try_shutdown()
    out = os.environ.get("A2WORLD_ROS_RATES")
    if out and RATES:
        Path(out).write_text(json.dumps(RATES, indent=2, sort_keys=True))


def _assert_clean_stop(launch: Launch) -> None:
    rc = launch.ctrl_c(timeout=10.0)
    text = launch.text()
    assert rc == 0, f"ros2 launch exit code {rc} after Ctrl-C:\n{text[-4000:]}"
    assert launch.stop_seconds < 10.0
    for bad in ("escalating to 'SIGTERM'", "process has died", "Segmentation fault", "Traceback"):
        assert bad not in text, f"{bad!r} in the launch output:\n{text[-4000:]}"
    finished = set(re.findall(r"\[INFO\] \[(\w+?)-\d+\]: process has finished cleanly", text))
    assert {"static_tf_node", "sim_node", "policy_node"} <= finished, text[-4000:]
    RATES["ctrl_c_stop_s"] = round(launch.stop_seconds, 2)


def test_default_launch_stays_up_idle_and_stops_cleanly(probe, tmp_path):
    launch = Launch(tmp_path / "launch.log", "rig:=sim")
    try:
        probe.wait_for(lambda: set(probe.node.get_node_names()) >= NODES, 60.0, f"nodes {sorted(NODES)}")
        time.sleep(20.0)
        assert launch.proc.poll() is None, launch.text()[-4000:]
        assert set(probe.node.get_node_names()) >= NODES, launch.text()[-4000:]
        topics = {name for name, _ in probe.node.get_topic_names_and_types()}
        assert topics >= TOPICS, f"missing topics {sorted(TOPICS - topics)}"
        services = {name for name, _ in probe.node.get_service_names_and_types()}
        assert services >= SERVICES, f"missing services {sorted(SERVICES - services)}"
        level, message, _ = probe.wait_for(lambda: probe.diag("policy"), 10.0, "policy diagnostics")
        assert "no policy loaded" in message and level == 1
        reply = probe.trigger("/policy/start")
        assert not reply.success and "no policy loaded" in reply.message
        probe.wait_for(lambda: probe.counts["/cameras/front/image_raw"] > 5, 20.0, "front images")
    finally:
        if launch.returncode is None and launch.proc.poll() is None:
            _assert_clean_stop(launch)
        else:
            launch.kill()


def _ros2(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ros2", *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_expert_drives_the_twin_estop_latches_and_the_bag_replays(probe, tmp_path):
    bag = tmp_path / "run_bag"
    launch = Launch(tmp_path / "launch.log", "rig:=sim", "policy:=expert", "task:=lift_box_high",
                    f"record_dir:={bag}")
    try:
        probe.wait_for(lambda: set(probe.node.get_node_names()) >= NODES, 60.0, f"nodes {sorted(NODES)}")
        probe.wait_for(lambda: probe.counts["/cameras/front/image_raw"] > 3, 30.0, "front images")
        assert probe.trigger("/arms/start").success
        reply = probe.trigger("/policy/start")
        assert reply.success, reply.message
        started = time.monotonic()
        probe.wait_for(lambda: probe.counts["/policy/command/poses"] >= 3, 30.0, "3 chunks on /policy/command/poses")
        probe.wait_for(lambda: max(probe.tcp_travel(a) for a in ARMS) > 0.03, 40.0, "a TCP moving 3 cm")

        def progressed():
            d = probe.diag("sim/task")
            return d is not None and (d[2].get("success") == "True" or float(d[2].get("progress", 0)) >= 0.25)
        probe.wait_for(progressed, 60.0, "task progress >= 0.25")
        RATES["task_progress_after_s"] = round(time.monotonic() - started, 1)
        time.sleep(3.0)  # a window of steady streaming for the rates
        for cam in CAMERAS:
            RATES[f"images_hz.{cam}"] = round(probe.rate(f"/cameras/{cam}/image_raw", 3.0), 1)
        for arm in ARMS:
            RATES[f"joint_states_hz.{arm}"] = round(probe.rate(f"/arms/{arm}/joint_states", 3.0), 1)
        RATES["chunks_hz"] = round(probe.rate("/policy/command/poses", 3.0), 2)
        arms_values = probe.diag("arms")[2]
        RATES["chunk_latency_s"] = arms_values.get("chunk_latency_s", "")
        RATES["sim_task"] = str(probe.diag("sim/task"))
        RATES["guard"] = {k: v for k, v in arms_values.items() if k.startswith("guard.")}.__repr__()

        # E-stop: latched ERROR, arms refuse to start until reset.
        probe.estop()
        probe.wait_for(lambda: probe.diag("arms") and probe.diag("arms")[0] == 2, 10.0, "arms diagnostics ERROR")
        held = {a: probe.last_tcp[a] for a in ARMS}
        time.sleep(1.0)
        for arm in ARMS:
            moved = sum((x - y) ** 2 for x, y in zip(held[arm], probe.last_tcp[arm], strict=True)) ** 0.5
            assert moved < 0.01, f"{arm} TCP moved {moved:.3f} m after the e-stop"
        refused = probe.trigger("/arms/start")
        assert not refused.success, refused.message
        assert probe.trigger("/arms/reset").success
        assert probe.trigger("/arms/start").success
    finally:
        if launch.returncode is None and launch.proc.poll() is None:
            _assert_clean_stop(launch)
        else:
            launch.kill()

    info = _ros2("bag", "info", str(bag))
    assert info.returncode == 0, info.stderr
    assert "mcap" in info.stdout and "/policy/command/poses" in info.stdout, info.stdout
    count = int(re.search(r"Messages:\s+(\d+)", info.stdout).group(1))
    assert count > 100, info.stdout
    # Replay only the gripper states (small) at 10x while a fresh probe counts what arrives.
    before = probe.counts["/arms/left/joint_states"]
    play = _ros2("bag", "play", str(bag), "--rate", "10", "--topics", "/arms/left/joint_states", timeout=120.0)
    assert play.returncode == 0, play.stderr
    probe.wait_for(lambda: probe.counts["/arms/left/joint_states"] > before + 10, 10.0, "replayed joint states")


def test_collect_bags_pass_ros2_bag_info(tmp_path):
    out = tmp_path / "collect"
    # `a2world` the ROS way: the executable of the built package, found by `ros2 run`.
    run = subprocess.run(["ros2", "run", "a2world_ros", "a2world", "collect", "--task", "toggle_switch",
                          "--episodes", "1", "--out", str(out), "--no-video", "--formats", "mcap",
                          "--max-seconds", "1.0"], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    bags = sorted((out / "bags").iterdir())
    assert bags
    info = _ros2("bag", "info", str(bags[0]))
    assert info.returncode == 0, info.stderr
    assert "/arms/left/joint_states" in info.stdout and "mcap" in info.stdout, info.stdout


def test_exec_depends_are_real_packages_of_the_sourced_ros():
    import xml.etree.ElementTree as ET

    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    root = ET.parse(Path(__file__).resolve().parent.parent / "package.xml").getroot()
    ros_depends = [e.text for e in root.findall("exec_depend") if not e.text.startswith("python3-")]
    missing = []
    for name in ros_depends:
        try:
            get_package_share_directory(name)
        except PackageNotFoundError:
            missing.append(name)
    assert not missing, f"package.xml exec_depends that the sourced ROS 2 does not have: {missing}"


def test_a2world_on_path_and_nodes_for_ros2_run():
    import shutil

    executables = _ros2("pkg", "executables", "a2world_ros")
    assert executables.returncode == 0, executables.stderr
    names = {line.split()[-1] for line in executables.stdout.splitlines() if line.strip()}
    assert {"a2world", "sim_node", "policy_node", "arms_node", "cameras_node", "static_tf_node"} <= names
    from ament_index_python.packages import get_package_prefix

    found = shutil.which("a2world")
    assert found == str(Path(get_package_prefix("a2world_ros")) / "bin" / "a2world"), found
    assert subprocess.run(["a2world", "--help"], capture_output=True, timeout=120, check=False).returncode == 0
