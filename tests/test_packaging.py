"""The repository installs as an ament_python package: what colcon would put in share/ and lib/."""

import configparser
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "a2world_ros"
REQUIRED_EXEC_DEPENDS = {
    "rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "trajectory_msgs", "std_srvs",
    "diagnostic_msgs", "launch", "launch_ros", "python3-numpy", "python3-scipy", "python3-yaml",
    "tf2_ros_py", "ros2bag", "rosbag2_storage_mcap",
}


def test_package_xml_is_format_3_with_exec_depends():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    depends = {e.text for e in root.findall("exec_depend")}
    assert depends >= REQUIRED_EXEC_DEPENDS, REQUIRED_EXEC_DEPENDS - depends
    assert root.find("export/build_type").text == "ament_python"


def test_setup_cfg_puts_scripts_where_ros2_run_looks():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PACKAGE}"
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PACKAGE}"
    assert (ROOT / "resource" / PACKAGE).is_file()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """Build a wheel from a copy of the sources (keeps the checkout free of build output)."""
    src = tmp_path_factory.mktemp("src")
    for name in ["setup.py", "setup.cfg", "package.xml", "README.md"]:
        shutil.copy(ROOT / name, src / name)
    for name in ["resource", "launch", "config", "a2world_ros", "policy", "worldmodel", "teleop",
                 "calibration", "rig"]:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
    )
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_wheel_installs_share_files_like_colcon(wheel):
    names = set(wheel.namelist())
    data = f"{PACKAGE}-0.1.0.data/data/share"
    assert f"{data}/ament_index/resource_index/packages/{PACKAGE}" in names
    assert f"{data}/{PACKAGE}/package.xml" in names
    for launch_file in (ROOT / "launch").glob("*.launch.py"):
        assert f"{data}/{PACKAGE}/launch/{launch_file.name}" in names
    configs = sorted((ROOT / "config").glob("*.yaml"))
    assert configs, "config/ holds the YAML parameter files"
    for config in configs:
        assert f"{data}/{PACKAGE}/config/{config.name}" in names


def test_wheel_has_every_layer_and_the_console_script(wheel):
    names = wheel.namelist()
    for top in ["a2world_ros", "rig", "policy", "worldmodel", "teleop", "calibration"]:
        if (ROOT / top / "__init__.py").exists():
            assert f"{top}/__init__.py" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "a2world = a2world_ros.cli.main:main" in wheel.read(entry_points).decode()


def test_policy_launch_file_is_installed(wheel):
    assert f"{PACKAGE}-0.1.0.data/data/share/{PACKAGE}/launch/policy.launch.py" in wheel.namelist()
