"""Running a scripted expert on the twin: one episode at the policy rate, with an optional per-step hook.

The hook receives the observation taken before each command and that command, the pairing the recorder
stores (`EpisodeRecorder.add(observation, command)`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, POLICY_HZ
from rig.sim.experts.base import ScriptedExpert

StepHook = Callable[[Any, NDArray[np.float64]], None]


@dataclass(frozen=True)
class EpisodeResult:
    """Outcome of one expert episode: success at the end, progress at the end and its best value."""

    seed: int
    success: bool
    progress: float
    best_progress: float
    steps: int
    sim_seconds: float


def apply_command(env: Any, command: NDArray[np.float64]) -> None:
    """Send a `(2, 8)` command (per arm: pose in its base frame, opening) to the rig."""
    for i, arm in enumerate(ARM_NAMES):
        env.set_arm_target(arm, command[i, :7])
        env.set_gripper(arm, float(np.clip(command[i, 7], 0.0, 1.0)))


def run_episode(
    env: Any,
    expert: ScriptedExpert,
    seed: int,
    max_seconds: float,
    settle_seconds: float = 1.0,
    on_step: StepHook | None = None,
    render: bool = False,
) -> EpisodeResult:
    """Reset `env` with `seed`, run `expert` at 30 Hz until its script ends (plus `settle_seconds`)
    or `max_seconds` pass, and report the task outcome.

    With `on_step`, every step's observation (`env.observe(render=render)`) and command are passed to it;
    without it no observation is built, which keeps benchmark runs fast.
    """
    env.reset(seed)
    expert.reset(env, np.random.default_rng([seed, 0xE1]))
    dt = 1.0 / POLICY_HZ
    max_steps = round(max_seconds * POLICY_HZ)
    settle_steps = round(settle_seconds * POLICY_HZ)
    best = 0.0
    after_done = 0
    steps = 0
    for steps in range(1, max_steps + 1):  # noqa: B007 - `steps` is reported after the loop
        command = expert.act(env)
        if on_step is not None:
            on_step(env.observe(render=render), command)
        apply_command(env, command)
        env.step(dt)
        best = max(best, float(env.task_progress()))
        if expert.done:
            after_done += 1
            if after_done >= settle_steps:
                break
    return EpisodeResult(seed=seed, success=bool(env.task_success()), progress=float(env.task_progress()),
                         best_progress=best, steps=steps, sim_seconds=steps * dt)


def episode_limit(task: Any) -> float:
    """Episode time limit (simulated seconds) of a task: its expert section's `max_seconds`."""
    from rig.sim.tasks.base import cfg_float

    return cfg_float(task.cfg.get("expert", {}), "max_seconds", f"tasks.yaml:{task.name}.expert")
