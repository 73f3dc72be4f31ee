"""The MuJoCo twin of the rig: scene, Cartesian arm control, grippers, cameras, task hooks, sim devices.

Entry points: `rig.sim.twin.Twin`, `rig.sim.task_spec.TaskSpec`, `rig.sim.devices.make_sim_rig`.
Submodules import mujoco; this package file does not, so `import rig.sim` stays cheap. It does pick a
headless OpenGL backend before any submodule loads mujoco (`ensure_headless_gl`), because mujoco reads
MUJOCO_GL once, at import.
"""

import os


def ensure_headless_gl() -> None:
    """Use OSMesa for MuJoCo rendering when the user chose no backend and there is no display.

    On a machine with a GPU, `export MUJOCO_GL=egl` is much faster.
    """
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ.get("MUJOCO_GL", "osmesa"))


ensure_headless_gl()
