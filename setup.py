"""Build script: an ament_python ROS 2 package (`a2world_ros`) that is also a pip-installable project.

colcon runs this file directly; `pip install -e .` uses it through setuptools. Launch files, YAML
config and the ament resource marker go to `share/a2world_ros/` so `ros2 launch` finds them.
"""

import os
import sys
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "a2world_ros"
TOP_LEVEL = ["a2world_ros", "policy", "worldmodel", "teleop", "calibration", "rig"]

# Heavy parts are optional so the robot workstation, CI and a laptop install only what they use.
EXTRAS = {
    "sim": ["mujoco>=3.3,<4", "mink>=0.0.10"],
    "train": [
        "torch>=2.4",
        "hydra-core>=1.3,<1.4",
        "safetensors>=0.4",
        "av>=12",
        "pyarrow>=15",
        "onnx>=1.16",
        "onnxruntime>=1.18",
    ],
    "data": ["rosbags>=0.10,<0.12", "mcap>=1.1", "mcap-ros2-support>=0.5", "pyarrow>=15", "av>=12"],
    # flexivrdk v2.0 changed the API (joint groups, dict states); rig/drivers/flexiv.py speaks v1.x and
    # was written against the v1.9.1 headers (tests/doubles/flexivrdk.py mirrors that API).
    "flexiv": ["flexivrdk>=1.9,<2.0"],
    # shadow predictor reports: metric plots and Rerun recordings (rerun-sdk range as LeRobot's)
    "shadow": ["matplotlib>=3.7", "rerun-sdk>=0.24,<0.27"],
    "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "mcap-ros2-support>=0.5", "rosbags>=0.10,<0.12",
            "websockets>=13",  # the openpi-style transport baseline of bench/bench_policy.py
            "scikit-image>=0.22"],  # reference implementation the world-model metrics are checked against
}
# Nested config folders (config/worldmodel/net, ...) keep their layout under share/<package>/.
CONFIG_SUBDIRS = sorted({os.path.dirname(p) for p in glob("config/*/**/*.yaml", recursive=True)})
EXTRAS["teleop"] = ["aiohttp>=3.9", "cryptography>=42"]  # the WebXR page: HTTPS + WebSocket, self-signed cert
EXTRAS["dev"].append("playwright>=1.40")  # drives Debian's chromium in the WebXR page test (no browser download)
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name != "flexiv" for req in reqs})
# colcon (`setup.py ... install`): bin/a2world goes to <workspace>/bin (on PATH once sourced). Wheels
# (pip, editable or not) carry the `a2world` console script in bin already, so they skip it.
ROS_BIN = [] if {"bdist_wheel", "editable_wheel", "dist_info"} & set(sys.argv) else [("bin", ["bin/a2world"])]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[p for top in TOP_LEVEL for p in (top, f"{top}.*")]),
    package_data={"": ["*.yaml", "*.xml", "*.json", "*.html", "*.js"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        *[(f"share/{PACKAGE}/{d}", glob(f"{d}/*.yaml")) for d in CONFIG_SUBDIRS],
        *ROS_BIN,
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6",
        "pyserial>=3.5",
        "pyzmq>=25",
        "msgpack>=1.0",
        "tqdm>=4.66",
        # 5.0.0.x wheels lack calibrateHandEye (opencv/opencv#29565); 4.x has it.
        "opencv-python-headless>=4.8,<5",
        "psutil>=5.9",
        # librealsense publishes wheels for x86_64 Linux/Windows; on other platforms build it from source.
        "pyrealsense2>=2.55; platform_machine == 'x86_64' or platform_machine == 'AMD64'",
    ],
    extras_require=EXTRAS,
    zip_safe=True,
    maintainer="A2World robot team",
    maintainer_email="robot-team@a2world.invalid",
    description="A2World robot stack: drivers, MuJoCo twin, world model, policy and ROS 2 nodes",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "a2world = a2world_ros.cli.main:main",
            # ROS 2 node executables (`ros2 run a2world_ros <name>`; launch/policy.launch.py).
            "cameras_node = a2world_ros.nodes.cameras_node:main",
            "arms_node = a2world_ros.nodes.arms_node:main",
            "policy_node = a2world_ros.nodes.policy_node:main",
            "sim_node = a2world_ros.nodes.sim_node:main",
            "static_tf_node = a2world_ros.nodes.static_tf_node:main",
            "teleop_node = a2world_ros.nodes.teleop_node:main",
            "shadow_node = a2world_ros.nodes.shadow_node:main",
        ],
    },
)
