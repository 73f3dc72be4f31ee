"""Evaluation inside the world model: the closed loop feeds predicted frames back and downsamples
30 -> 10 fps by time; Wilson intervals and rank agreement; the success classifier's held-out accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import shadow_scene as scene

from policy.interface import PolicyResult
from worldmodel.wm_eval.classifier import ClassifierConfig, SuccessClassifier, accuracy, train_classifier
from worldmodel.wm_eval.closed_loop import rollout_in_world_model
from worldmodel.wm_eval.stats import rank_agreement, wilson_interval


class TintedPredictor(scene.KinematicPredictor):
    """The scene model, but every predicted frame is one grey level brighter than its input: frames fed
    back into the policy can be told apart from any real (rendered) frame."""

    def predict(self, images, actions, **kw):
        out = super().predict(images, actions, **kw)
        return {k: np.clip(v.astype(int) + 1, 0, 255).astype(np.uint8) for k, v in out.items()}


class MovingPolicy:
    """Moves the left tool +1 px per 30 Hz step from the state it is given; records its requests."""

    def __init__(self) -> None:
        self.requests = []

    def metadata(self):
        return {"name": "moving"}

    def infer(self, request):
        self.requests.append(request)
        start = request.state[0, :2]
        targets = np.stack([scene.state(start + np.array((1, 0)) * scene.STEP_M * (i + 1)) for i in range(60)])
        return PolicyResult(chunk=targets, dt=1 / 30)


def test_closed_loop_feeds_predicted_frames_back_and_downsamples_by_time():
    policy, predictor = MovingPolicy(), TintedPredictor()
    start = np.array([0.4, 0.0])
    image = scene.render(start)
    episode = rollout_in_world_model(policy, predictor, {"front": image}, scene.state(start), "move", seconds=6.0)
    assert len(policy.requests) == 3 and predictor.calls == 3
    assert episode.frames["front"].shape == (1 + 3 * 20, scene.H, scene.W, 3)
    np.testing.assert_array_equal(policy.requests[0].images["front"], image)
    for k in (1, 2):
        fed = policy.requests[k].images["front"]
        np.testing.assert_array_equal(fed, episode.frames["front"][20 * k])  # the last predicted frame
        real = scene.render(start + np.array((60 * k, 0)) * scene.STEP_M)  # what a camera would have seen
        np.testing.assert_array_equal(fed, np.clip(real.astype(int) + k, 0, 255))  # k predictions deep
        assert not np.array_equal(fed, real)
    # 30 Hz -> 10 fps: 3 steps (3 px) per model frame; the state advances by the 59th target (2 s - 1 step)
    for actions in episode.actions:
        np.testing.assert_allclose(actions[:, 0], 3 * scene.STEP_M)
    np.testing.assert_allclose(policy.requests[1].state[0, 0] - policy.requests[0].state[0, 0], 60 * scene.STEP_M)
    assert policy.requests[1].t_obs == pytest.approx(2.0)


def test_wilson_interval_and_rank_agreement():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    agree = rank_agreement([0.1, 0.3, 0.5, 0.9, 0.7], [0.0, 0.2, 0.6, 1.0, 0.8])
    assert agree["spearman"] == pytest.approx(1.0) and agree["pearson"] > 0.95 and agree["policies"] == 5
    with pytest.raises(ValueError, match=">= 3 policies"):
        rank_agreement([0.1, 0.2], [0.1, 0.2])


def _episodes(n: int, seed: int):
    """Final frames of synthetic episodes: success = a bright box high in the image, failure = low."""
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for i in range(n):
        success = i % 2 == 0
        clip = rng.integers(0, 60, (5, 48, 64, 3), dtype=np.uint8)
        top = rng.integers(2, 12) if success else rng.integers(30, 40)
        left = rng.integers(5, 45)
        clip[:, top:top + 8, left:left + 12] = 230
        frames.append(clip)
        labels.append(success)
    return frames, labels


def test_success_classifier_reports_held_out_accuracy(tmp_path):
    config = ClassifierConfig(size=(48, 64), steps=150, channels=8)
    classifier = train_classifier(_episodes(12, 0), _episodes(8, 1), config, progress=False)
    assert classifier.heldout_accuracy is not None and classifier.heldout_accuracy >= 0.875
    loaded = SuccessClassifier.load(classifier.save(tmp_path / "clf"))
    assert loaded.heldout_accuracy == classifier.heldout_accuracy
    assert accuracy(loaded, *_episodes(8, 1)) == classifier.heldout_accuracy
    with pytest.raises(ValueError, match="both successes and failures"):
        train_classifier((_episodes(4, 2)[0], [True] * 4), None, config, progress=False)
