"""Test-wide settings: headless MuJoCo rendering and a repository-root import path."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# Tiny models on a small shared machine: torch's default pool (every logical CPU, spinning) oversubscribes
# the cores; set before torch is first imported. Tests that check thread handling set their own counts.
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
