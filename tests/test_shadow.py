"""Shadow predictor core: 30 -> 10 fps downsampling by time, alignment of real frames by capture time,
metrics and divergence with a known-good model double, dropping work when the model is slow."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shadow_scene as scene

from worldmodel.shadow.config import DivergenceConfig, ShadowConfig
from worldmodel.shadow.divergence import DivergenceDetector, calibrate_threshold
from worldmodel.shadow.engine import ShadowEngine
from worldmodel.shadow.frames import RealFrameBuffer
from worldmodel.shadow.work import ShadowWork, ShadowWorkError

START = np.array([0.4, 0.0])


def _config(**kw) -> ShadowConfig:
    return ShadowConfig.from_mapping({"cameras": ["front"], **kw})


def _work(seq: int, step: int, t_start: float = 100.0, velocity=(1, 0), image=None) -> ShadowWork:
    """Work at global 30 Hz step `step` of the constant-velocity scene; the chunk moves at `velocity`."""
    t = t_start + step * scene.DT
    here = START + np.array((1, 0)) * scene.STEP_M * step  # the true motion is always +1 px per step
    chunk = scene.trajectory(t, 60, here, velocity)
    current = scene.state(here)
    return ShadowWork(seq, t, {"front": scene.render(here) if image is None else image}, current,
                      chunk.targets, chunk.t0, chunk.dt)


def test_downsampling_picks_targets_by_time_and_holds_the_end():
    work = _work(0, 0)
    targets = work.model_targets(10.0, 20, offset_steps=1)
    np.testing.assert_array_equal(targets, work.targets[np.arange(1, 21) * 3 - 1])
    np.testing.assert_array_equal(work.model_targets(10.0, 20, offset_steps=0)[:19], work.targets[3:60:3])
    assert np.array_equal(work.model_targets(10.0, 20, offset_steps=0)[19], work.targets[59])  # held
    # A chunk that began 10 ms before its observation: the times, not the indices, decide.
    early = ShadowWork(1, work.t_obs, work.images, work.current, work.targets, work.t_obs - 0.01, work.dt)
    index = np.rint((work.t_obs + np.arange(1, 21) / 10 - work.dt - early.t0) / work.dt).astype(int)
    np.testing.assert_array_equal(early.model_targets(10.0, 20, 1), work.targets[np.minimum(index, 59)])
    actions = work.model_actions(10.0, 20, 1)
    assert actions.shape == (20, 14)
    np.testing.assert_allclose(actions[:, 0], 3 * scene.STEP_M)  # 3 px of +x per 10 fps frame
    late = ShadowWork(2, work.t_obs, work.images, work.current, work.targets, work.t_obs + 0.2, work.dt)
    with pytest.raises(ShadowWorkError, match="must start at its observation"):
        late.model_targets(10.0, 20, 1)


def test_real_frames_are_matched_by_capture_time_not_index():
    buffer = RealFrameBuffer(keep_s=5.0)
    period = 0.034  # a camera at 29.4 fps: index 3k drifts a whole frame away from t + k/10 within 2 s
    for j in range(80):
        buffer.add("front", 50.0 + j * period, np.full((4, 4, 3), j, np.uint8))
    wanted = 50.0 + np.arange(21) / 10
    frames, stamps = buffer.match("front", wanted, tolerance_s=0.02)
    nearest = 50.0 + np.rint((wanted - 50.0) / period) * period
    np.testing.assert_allclose(stamps, nearest)
    assert [int(f[0, 0, 0]) for f in frames] == [round(k / 10 / period) for k in range(21)]
    by_index = 50.0 + np.arange(21) * 3 * period
    assert np.abs(by_index - wanted).max() > period  # what index alignment would have scored
    _, none = buffer.match("front", np.array([49.0, 60.0]), tolerance_s=0.02)
    assert np.isnan(none).all()


def _run_episode(engine: ShadowEngine, chunks: int, wrong_from: int | None = None, noise: int = 3):
    """Chunks every 1 s on the scene with 30 fps real frames; returns the scored results."""
    rng = np.random.default_rng(0)
    buffer = RealFrameBuffer(keep_s=6.0)
    t_start = 100.0
    results = []
    steps = 30 * (chunks + 2)
    preds = []
    for j in range(steps):
        here = START + np.array((1, 0)) * scene.STEP_M * j
        image = scene.render(here)
        if noise:
            image = np.clip(image.astype(int) + rng.integers(-noise, noise + 1, image.shape), 0, 255).astype(np.uint8)
        buffer.add("front", t_start + j * scene.DT, image)
        if j % 30 == 0 and j // 30 < chunks:
            velocity = (-1, 0) if wrong_from is not None and j // 30 >= wrong_from else (1, 0)
            preds.append(engine.predict(_work(j // 30, j, t_start, velocity, image)))
        for p in list(preds):
            if engine.ready(p, buffer):
                preds.remove(p)
                results.append(engine.score(p, buffer))
    return results


def test_known_good_prediction_scores_perfectly_and_divergence_fires_only_on_wrong_actions():
    engine = ShadowEngine(scene.KinematicPredictor(), _config())
    exact = _run_episode(engine, chunks=2, noise=0)
    m = exact[0].metrics["front"]
    assert m.psnr.shape == (20,) and np.isinf(m.psnr).all()  # pixel-identical: aligned to the right frames
    np.testing.assert_allclose(m.flow_epe, 0.0, atol=1e-9)
    assert exact[0].missing == {"front": 0}
    np.testing.assert_allclose(exact[0].real_times["front"], exact[0].times)

    good = _run_episode(engine, chunks=4)
    assert all(np.isfinite(r.metrics["front"].psnr).all() and np.isfinite(r.metrics["front"].flow_epe).all()
               for r in good)
    threshold = calibrate_threshold(np.concatenate([r.series_mean("flow_epe")[1] for r in good]), True, 0.99)
    cfg = DivergenceConfig(metric="flow_epe", threshold=threshold, higher_is_worse=True, hold_s=0.5)

    def fires(results) -> list:
        detector = DivergenceDetector(cfg)
        events = []
        for r in results:
            events += detector.update(*r.series_mean("flow_epe"))
        return events

    assert fires(_run_episode(engine, chunks=4)) == []
    wrong = _run_episode(engine, chunks=4, wrong_from=2)
    events = fires(wrong)
    assert len(events) == 1 and events[0].since >= 100.0 + 2.0
    assert wrong[-1].metrics["front"].flow_cos.mean() < 0  # the predicted motion goes the other way


def test_detector_needs_the_error_to_last():
    detector = DivergenceDetector(DivergenceConfig(metric="psnr", threshold=20.0, higher_is_worse=False, hold_s=0.3))
    assert detector.update([0.0, 0.1, 0.2], [10, 10, 30]) == []  # 0.2 s low, then back
    assert detector.update([0.1, 0.3, 0.4, 0.5, 0.6], [5, 10, 10, 10, 10])[0].since == pytest.approx(0.3)
    assert detector.active and detector.update([0.7, 0.8], [10, 10]) == []  # once per excursion
    unarmed = DivergenceDetector(DivergenceConfig(threshold=None))
    assert unarmed.update(np.arange(10.0), np.full(10, 1e9)) == []


def test_worker_drops_work_instead_of_queueing_when_the_model_is_slow():
    from worldmodel.shadow.worker import ShadowWorker

    predictor = scene.KinematicPredictor(delay_s=0.3)
    worker = ShadowWorker(ShadowEngine(predictor, _config())).start()
    try:
        t_submit = []
        for i in range(10):
            t0 = time.perf_counter()
            worker.submit(_work(i, 30 * i))
            t_submit.append(time.perf_counter() - t0)
        assert max(t_submit) < 0.1  # never waits for the 0.3 s model (slack for a loaded machine)
        assert worker.wait_idle(5.0)
        status = worker.status()
        assert status["submitted"] == 10
        assert status["predicted"] + status["dropped"] == 10
        assert status["predicted"] <= 2 and status["dropped"] >= 8  # the first (maybe) and the newest
        assert predictor.calls == status["predicted"]
        assert status["lag_s"] >= 0.3 and status["predictions_per_s"] > 0
    finally:
        worker.stop()
