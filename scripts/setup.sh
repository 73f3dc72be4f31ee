#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for the A2World stack (no ROS 2 needed): system libraries,
# a virtual environment in .venv with the CPU torch wheel and the project with all extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    libusb-1.0-0 libosmesa6 libegl1 libgl1 libglfw3 >/dev/null
fi
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip setuptools wheel
if ! python -c "import torch" 2>/dev/null; then
  # On a GPU workstation install the CUDA build of torch yourself before running this script.
  python -m pip install -q torch==2.13.0
fi
python -m pip install -q -e ".[all,dev]"
echo "set up: activate with '. .venv/bin/activate'"
