#!/usr/bin/env bash
# Real-ROS 2 tests in CI (docs/ros.md, "CI on a real ROS 2"). When the prebuilt minimal ROS 2 Jazzy is
# beside the clone (../shared/ros2, or $A2WORLD_ROS2_DIR), extract it, install its runtime
# dependencies into the project's Python 3.11 venv (.venv, made by scripts/setup.sh), colcon-build this
# package into a temporary workspace, source both and run the `ros`-marked tests against them.
# Without the prebuilt tree it says so and exits 0 (those tests skip in the main pytest run too).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROS_DIR=${A2WORLD_ROS2_DIR:-$REPO/../shared/ros2}
TARBALL="$ROS_DIR/ros2-jazzy-min-bookworm-py311.tar.zst"
if [ ! -f "$TARBALL" ]; then
  echo "ci_ros: no prebuilt ROS 2 at $TARBALL: the real-ROS tests are skipped"
  exit 0
fi
command -v zstd >/dev/null || {
  SUDO=""; [ "$(id -u)" != "0" ] && command -v sudo >/dev/null && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq zstd >/dev/null
}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/a2world-ci-ros.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "ci_ros: extracting ROS 2 Jazzy into $WORK"
tar -C "$WORK" -xf "$TARBALL"
PREFIX="$WORK/jazzy"

# The venv first, then ROS: the ros2 entry scripts run `python3` from PATH (the venv's).
set +u
. .venv/bin/activate
set -u
sh "$PREFIX/install-runtime-deps.sh" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import colcon_core" # the deps script must have installed colcon

mkdir -p "$WORK/ws/src"
ln -s "$REPO" "$WORK/ws/src/a2world_ros"
set +u
. "$PREFIX/setup.bash"
set -u
(cd "$WORK/ws" && colcon --log-base "$WORK/log" build --packages-select a2world_ros \
   --build-base "$WORK/ws/build" --install-base "$WORK/ws/install" --event-handlers console_direct- >/dev/null)
set +u
. "$WORK/ws/install/setup.bash"
set -u

export RMW_IMPLEMENTATION=rmw_cyclonedds_cpp ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# A domain of our own (0..101) so parallel jobs on one host do not see each other's graphs.
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}
export OMP_NUM_THREADS=1 MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
export ROS_LOG_DIR="$WORK/roslog"
# pytest 9 (the dev extras) cannot load Jazzy's launch_testing plugin, which sourcing puts on the path:
# these tests use plain pytest + `ros2 launch`, so no plugin is autoloaded.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
echo "ci_ros: ROS_DISTRO=$ROS_DISTRO ROS_DOMAIN_ID=$ROS_DOMAIN_ID; running the ros-marked tests"
status=0
python -m pytest -q -m ros -p no:cacheprovider tests/test_launch_ros2.py tests/test_ros_graph.py tests/test_ros_teleop.py || status=$?
ros2 daemon stop >/dev/null 2>&1 || true
exit $status
