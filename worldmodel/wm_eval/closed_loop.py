"""A policy run closed loop inside the world model: the world model's predicted frames are the policy's
next observations (no simulator, no robot).

Each step: the policy gets the current images (one per camera, at the world model's resolution; the
policy resizes them to its own input size) and the current state, returns a 30 Hz chunk of absolute
targets; the chunk is downsampled to the world model's 10 fps and converted to model actions exactly as
the shadow predictor does (`ShadowWork.model_actions`: target by time, the one conversion of
worldmodel/actions.py); the world model predicts the next `horizon` frames per view; the last predicted
frame of each view and the target due at it become the next observation and state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from policy.interface import Policy, PolicyRequest
from worldmodel.shadow.work import ShadowWork


@dataclass
class WorldModelEpisode:
    """Frames per camera over the whole episode (start frame + every predicted frame) and the states."""

    frames: dict[str, NDArray[np.uint8]]
    states: list[NDArray[np.float64]] = field(default_factory=list)
    requests: list[PolicyRequest] = field(default_factory=list)
    actions: list[NDArray[np.float64]] = field(default_factory=list)

    def final_frames(self, camera: str, count: int) -> NDArray[np.uint8]:
        return self.frames[camera][-count:]


def rollout_in_world_model(policy: Policy, predictor: Any, images: Mapping[str, NDArray[np.uint8]],
                           state: NDArray[np.float64], instruction: str, seconds: float, *, horizon: int = 20,
                           offset_steps: int = 1, seed: int = 0, steps: int | None = None,
                           keep_requests: bool = False, history: str | None = "arc_dual") -> WorldModelEpisode:
    """Run `policy` for `seconds` (whole chunks of horizon / fps seconds) inside `predictor`.

    An A2World-sim predictor runs as a `RolloutSession` with the `history` sampler: its generated frames
    and the actions become the history of the next chunks, as in the paper's evaluator."""
    from worldmodel.predict import resize_image
    from worldmodel.shadow.history import is_history_model

    fps = float(predictor.fps)
    current = {c: resize_image(np.asarray(img), tuple(predictor.resolution)) for c, img in images.items()}
    state = np.asarray(state, dtype=np.float64)
    frames: dict[str, list[NDArray[np.uint8]]] = {c: [img[None]] for c, img in current.items()}
    episode = WorldModelEpisode({}, [state.copy()])
    chunks = max(1, round(seconds * fps / horizon))
    session = None
    if history and is_history_model(predictor):
        from worldmodel.rollout import RolloutSession

        session = RolloutSession(predictor, current, history=history, seed=seed, steps=steps,
                                 start_poses=state[:, :7])
    t = 0.0
    for k in range(chunks):
        request = PolicyRequest(images=dict(current), state=state.copy(), instruction=instruction, t_obs=t)
        result = policy.infer(request)
        work = ShadowWork(k, t, dict(current), state, np.asarray(result.chunk, dtype=np.float64), t, float(result.dt))
        actions = work.model_actions(fps, horizon, offset_steps)
        if session is not None:
            predicted = dict(session.step(actions).frames)
        else:
            predicted = predictor.predict(dict(current), actions, steps=steps, seed=seed + k, include_condition=False)
        for c in current:
            frames[c].append(predicted[c])
            current[c] = predicted[c][-1]
        state = work.model_targets(fps, horizon, offset_steps)[-1].copy()
        episode.states.append(state)
        episode.actions.append(actions)
        if keep_requests:
            episode.requests.append(request)
        t += horizon / fps
    episode.frames = {c: np.concatenate(v) for c, v in frames.items()}
    return episode
