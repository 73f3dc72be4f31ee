"""`a2world policy train` checks its overrides and its datasets before loading anything (no torch work,
no video decoding): a typo or a wrong folder fails at once with a message naming the value or the file."""

from __future__ import annotations

import pytest
from recording_data import command, observation

import policy.data
from a2world_ros.cli.main import main
from policy.config import load_policy_config
from rig.config import ConfigError
from teleop.recorder import EpisodeRecorder, RecorderSettings


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A real two-episode LeRobot v3.0 dataset (the recorder's synthetic observations, three cameras)."""
    root = tmp_path_factory.mktemp("rec")
    with EpisodeRecorder(root, formats=("lerobot",), settings=RecorderSettings(min_free_bytes=1)) as rec:
        for _ in range(2):
            rec.start_episode("lift the box high")
            for i in range(12):
                rec.add(observation(i, height=32, width=40), command(i))
            rec.end_episode(success=True)
        rec.wait()
    return root / "lerobot"


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if training would start loading clips (the slow part the checks must precede)."""
    def refuse(*args, **kwargs):
        raise AssertionError("training data was loaded before the inputs were checked")

    monkeypatch.setattr(policy.data.PolicyClipDataset, "__init__", refuse)


def train(capsys, data, *overrides):
    rc = main(["policy", "train", "--data", str(data), "--out", "/nonexistent/never-written", *overrides])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("override, expected", [
    ("train.steps=abc", "train.steps='abc': expected an integer"),
    ("train.steps=0", "train.steps=0, expected a positive integer"),
    ("train.lr=fast", "train.lr='fast': expected a number"),
    ("train.bf16=maybe", "train.bf16='maybe': expected true or false"),
    ("train.threads=many", "train.threads: 'many' is not a thread count"),
    ("policy.image_size=32", "policy.image_size=32: expected a list"),
    ("train.stepz=3", "train.stepz"),
    ("train.early_weight=0", "train.early_weight=0.0: expected seconds >= 0 and a positive weight"),
])
def test_bad_overrides_fail_before_loading(override, expected, dataset, capsys, no_loading):
    rc, err = train(capsys, dataset, override)
    assert rc == 2
    assert expected in err and "Traceback" not in err


def test_bad_data_fails_before_loading(tmp_path, dataset, capsys, no_loading):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = train(capsys, empty)
    assert rc == 2 and f"{empty}: no meta/info.json" in err

    rc, err = train(capsys, tmp_path / "missing")
    assert rc == 2 and "not a directory" in err

    rec_root = dataset.parent
    rc, err = train(capsys, rec_root)
    assert rc == 2 and f"pass its LeRobot dataset {dataset}" in err

    broken = tmp_path / "broken"
    (broken / "meta").mkdir(parents=True)
    (broken / "meta" / "info.json").write_text('{"codebase_version": "v3.0", "fps": ')
    rc, err = train(capsys, broken)
    assert rc == 2 and f"{broken / 'meta' / 'info.json'}: not valid JSON" in err

    rc, err = train(capsys, dataset, "policy.cameras=[front]", "policy.action_hz=20", "policy.video_fps=10")
    assert rc == 2 and "fps 30, the policy expects 20 Hz data" in err


def test_corrupt_parquet_names_the_dataset(tmp_path, dataset, capsys, no_loading):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    for f in (copy / "meta" / "episodes").rglob("*.parquet"):
        f.write_bytes(b"not parquet")
    rc, err = train(capsys, copy)
    assert rc == 2 and str(copy) in err and "Traceback" not in err


def test_good_inputs_pass_the_checks(dataset):
    from policy.data import check_training_inputs

    config = check_training_inputs("tiny", ["train.steps=7", "train.threads=1"], [dataset])
    assert config.train.steps == 7 and config.train.threads == 1
    assert isinstance(config.train.lr, float) and config.policy.image_size == (32, 32)


def test_config_checks_without_hydra():
    with pytest.raises(ConfigError, match="train.batch_size=0"):
        load_policy_config("tiny", ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="train.ema_decay=1.5"):
        load_policy_config("tiny", ["train.ema_decay=1.5"])


def test_early_clips_are_drawn_more_often(dataset):
    """`train.early_seconds`/`early_weight` weight the clips by their start time; the defaults keep the
    uniform draw (None)."""
    import numpy as np
    import torch

    from policy.data import PolicyClipDataset
    from policy.train import clip_sampling_weights

    plain = load_policy_config("tiny", ["policy.image_size=[32,32]", "train.sample_stride=3"])
    ds = PolicyClipDataset([dataset], plain)
    assert clip_sampling_weights(ds.start_seconds(), plain) is None
    config = load_policy_config("tiny", ["policy.image_size=[32,32]", "train.sample_stride=3",
                                         "train.early_seconds=0.2", "train.early_weight=4"])
    w = clip_sampling_weights(ds.start_seconds(), config)
    starts = [s for _, s in ds.samples]  # frames at 30 Hz: 0.2 s = frames 0..5
    assert np.allclose(ds.start_seconds(), np.array(starts) / 30.0)
    assert w.tolist() == [4.0 if s < 6 else 1.0 for s in starts]
    assert 4.0 in w.tolist() and 1.0 in w.tolist()
    draws = torch.multinomial(w, 20000, replacement=True, generator=torch.Generator().manual_seed(0))
    early = torch.tensor([s < 6 for s in starts])[draws].float().mean().item()
    expected = float((w * torch.tensor([s < 6 for s in starts])).sum() / w.sum())
    assert abs(early - expected) < 0.02
