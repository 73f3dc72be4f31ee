"""Scripted twin demonstrations for the policy tests: the task's expert on the MuJoCo twin, recorded as a
LeRobot v3.0 dataset by the real `EpisodeRecorder`.

To keep the tests fast the cameras are rendered at 10 fps (every third 30 Hz step, the only frames the
policy reads when clips start on multiples of 3) and held in between; states and commands are 30 Hz.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rig.schema import CameraFrame


def record_demos(out: Path, task_name: str = "lift_box_high", episodes: int = 4, size: tuple[int, int] = (48, 64),
                 max_seconds: float = 8.0, seed0: int = 0, task_config: dict | None = None) -> Path:
    """Record `episodes` expert episodes under `out`; returns the LeRobot dataset root.

    `task_config` overrides entries of the task's `config/tasks.yaml` section (e.g. a narrower box range).
    """
    from rig.sim.experts import get_expert
    from rig.sim.experts.runner import run_episode
    from rig.sim.tasks import get_task
    from rig.sim.twin import Twin
    from teleop.recorder import EpisodeRecorder, RecorderSettings

    merged = None
    if task_config:
        from rig.config import load_yaml

        merged = {**load_yaml("tasks")[task_name], **task_config}
    task = get_task(task_name, merged)
    env = Twin(task=task, render_size=size, clock="lockstep")
    settings = RecorderSettings(min_free_bytes=1, overflow="block", block_timeout_s=5.0)
    with EpisodeRecorder(out, formats=("lerobot",), settings=settings) as rec:
        for ep in range(episodes):
            rec.start_episode(task.instruction)
            held: dict[str, np.ndarray] = {}
            count = [0]

            def hook(obs, command, held=held, count=count):
                if count[0] % 3 == 0:
                    held.update(env.render())
                count[0] += 1
                frames = {c: CameraFrame(camera=c, t=obs.t, color=img, frame_number=count[0])
                          for c, img in held.items()}
                rec.add(replace(obs, frames=frames), command)

            result = run_episode(env, get_expert(task), seed0 + ep, max_seconds, settle_seconds=0.5, on_step=hook)
            rec.end_episode(success=result.success)
        rec.wait()
    return out / "lerobot"


def random_checkpoint(out: Path, overrides: tuple[str, ...] = (), seed: int = 0) -> Path:
    """An untrained tiny policy checkpoint (weights perturbed away from the AdaLN-Zero identity) with
    normalisation statistics fitted on synthetic chunks: for shape, transport and export tests."""
    import torch

    from policy.action_repr import Normalizer
    from policy.checkpoint import build_text_encoder, build_vae, save_policy
    from policy.config import load_policy_config
    from policy.model import build_policy_net

    cfg = load_policy_config("tiny", list(overrides))
    torch.manual_seed(seed)
    net = build_policy_net(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    rng = np.random.default_rng(seed)
    actions = rng.normal(0, 0.02, (600, 14))
    actions[:, [6, 13]] = rng.uniform(0, 1, (600, 2))
    states = rng.normal(0, 0.1, (50, 2, 8))
    norm = Normalizer.fit(actions, states, action_min_std=cfg.policy.action_min_std,
                          state_min_std=cfg.policy.state_min_std)
    return save_policy(out, cfg, norm, net.eval(), build_text_encoder(cfg), build_vae(cfg.vae), {"step": 0})


def home_request(cameras=("front", "wrist_left", "wrist_right"), size=(48, 64), prefix_len: int = 0, seed: int = 0):
    """A valid PolicyRequest: random images, both arms at a plausible pose, optional committed prefix."""
    from policy.interface import PolicyRequest

    rng = np.random.default_rng(seed)
    state = np.array([[0.0, -0.07, 0.42, 0.9239, 0.0, 0.0, 0.3827, 1.0],
                      [0.0, 0.07, 0.42, -0.9239, 0.0, 0.0, 0.3827, 1.0]])
    prefix = np.repeat(state[None], prefix_len, axis=0)
    prefix[:, :, 2] += np.linspace(0.001, 0.01, prefix_len)[:, None]
    images = {c: rng.integers(0, 255, (*size, 3), dtype=np.uint8) for c in cameras}
    return PolicyRequest(images=images, state=state, instruction="lift the box high", prefix=prefix)
