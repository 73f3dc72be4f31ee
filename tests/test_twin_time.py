"""Twin time: the physics step divides the camera frame, control and executor periods exactly (checked
at load), so a 6 s episode is exactly 180 frames of 1/30 s (before: 17 x 2 ms = 34 ms frames, 2% drift)."""

from __future__ import annotations

import pytest

from rig.config import ConfigError
from rig.sim.twin import Twin

SMALL = {"render": {"height": 48, "width": 64}}


def test_frame_period_is_a_whole_number_of_physics_steps_and_time_does_not_drift():
    twin = Twin(SMALL)
    assert twin.steps_per_frame * twin.timestep == pytest.approx(1 / 30, abs=1e-12)
    assert twin.decimation * twin.timestep == pytest.approx(1 / twin.cfg.number("physics.control_hz"), abs=1e-12)
    twin.reset_state(0)
    for _ in range(180):  # 6 s at the dataset's 30 fps, stepped as the sim recorder steps
        twin.step(1 / 30)
    assert twin.sim_time == pytest.approx(6.0, abs=1e-9)  # was 6.12 s (180 x 34 ms)


@pytest.mark.parametrize("physics, what", [
    ({"timestep": 0.002, "control_hz": 250}, "cameras.fps"),  # the old default: 16.67 steps a frame
    ({"timestep": 0.001, "control_hz": 300}, "control_hz"),
    ({"timestep": 1 / 480, "control_hz": 240}, "100 Hz"),
])
def test_a_step_that_does_not_divide_a_period_is_refused_at_load(physics, what):
    with pytest.raises(ConfigError, match=f"physics.timestep = .* does not divide .*{what}"):
        Twin({"physics": physics, **SMALL})
