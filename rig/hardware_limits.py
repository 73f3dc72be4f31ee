"""Published limits of the rig's hardware, and the sane ranges of settings without a published figure:
the bounds every safety-relevant configuration value is checked against (docs/control.md,
"Configuration bounds").

Sources:
- Flexiv Rizon 4S: reach 780 mm (Flexiv Rizon 4s data sheet); Cartesian streaming limits from
  flexiv_rdk issue #64 (summarised in /work/shared/reference/robot_stack_anchors.md 4.4): linear
  velocity typically 1 m/s, at most 2.2 m/s; linear acceleration typically 1.5 m/s^2, at most 3 m/s^2;
  angular velocity 300 deg/s. NRT commands 1-100 Hz from Python (RDK v1.x examples), the RT loop 1 kHz.
- Robotiq 2F-85: 85 mm stroke, 20-150 mm/s closing speed (Robotiq 2F-85/2F-140 manual), so a full
  stroke takes at least 0.57 s (1.76 opening units per second).
"""

from __future__ import annotations

import math
from typing import Final

RIZON4S_REACH_M: Final = 0.78
RIZON4S_MAX_LINEAR_VEL: Final = 2.2
"""m/s (flexiv_rdk #64)."""
RIZON4S_MAX_LINEAR_ACC: Final = 3.0
"""m/s^2 (flexiv_rdk #64)."""
RIZON4S_MAX_ANGULAR_VEL: Final = math.radians(300.0)
"""rad/s (flexiv_rdk #64: 300 deg/s)."""
MAX_ANGULAR_ACC: Final = 20.0
"""rad/s^2: stated sane range (no published Cartesian figure); ~4x the angular velocity limit per second."""
WORKSPACE_ABS_MAX_M: Final = 1.0
"""Every workspace-box coordinate in an arm's base frame lies within +- this (reach 0.78 m + margin)."""
FLEXIV_RT_HZ: Final = 1000.0
"""Highest command rate any Flexiv interface runs (the RT loop); the executor's command rate is bounded by it."""

ROBOTIQ_2F85_STROKE_M: Final = 0.085
ROBOTIQ_2F85_MAX_SPEED_M_S: Final = 0.150
GRIPPER_MAX_RATE: Final = 5.0
"""Opening units/s: stated sane range for the guard's gripper rate limit (the 2F-85 itself does at most
150/85 = 1.76/s, so a larger limit only means the guard does not bind)."""

STALE_TIMEOUT_MAX_S: Final = 1.0
"""Longest accepted stale-data timeout: 30 camera periods; beyond it the watchdog protects nothing."""
MAX_STEP_DT_MAX_S: Final = 0.1
"""Longest interval one guarded command may cover (10 periods of a 100 Hz stream)."""
COMMAND_LATENCY_MAX_S: Final = 0.5
"""Longest command latency the executor compensates (a chunk step is 33 ms; 0.5 s is 15 steps)."""
FUTURE_TOLERANCE_MAX_S: Final = 0.1

WORLD_TRANSLATION_MAX_M: Final = 5.0
"""Calibration: a base or the front camera further than this from the world origin is not a bench rig."""
FLANGE_CAMERA_TRANSLATION_MAX_M: Final = 0.3
"""Calibration: a wrist camera further than this from its flange is not mounted on it."""
