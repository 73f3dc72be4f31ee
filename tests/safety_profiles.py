"""Hypothesis settings profiles for the safety property tests (guard, executor, policy-loop timing).

`safety-ci` (default) runs enough examples to matter and stays within a few seconds per test on the
2-core CI box; `safety-thorough` runs ten times more (set `A2WORLD_SAFETY_PROFILE=safety-thorough`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "safety-ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "safety-thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

SAFETY = settings.get_profile(os.environ.get("A2WORLD_SAFETY_PROFILE", "safety-ci"))
"""Use as a decorator: `@SAFETY` above `@given(...)`."""
