"""The MuJoCo twin of the rig: scene, Cartesian arm control, grippers, cameras, task hooks, sim devices.

Entry points: `rig.sim.twin.Twin`, `rig.sim.task_spec.TaskSpec`, `rig.sim.devices.make_sim_rig`.
Submodules import mujoco; this package file does not, so `import rig.sim` stays cheap.
"""
