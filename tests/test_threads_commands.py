"""Every command that computes sets torch's thread count through `worldmodel.threads` (config value,
`--threads`, `A2WORLD_THREADS`, physical cores): the count reaches torch, from config and from the flag."""

from __future__ import annotations

import pytest
import torch
from policy_demo_data import random_checkpoint

import worldmodel.threads
import worldmodel.train as wm_train  # imported before any patching: it binds configure_torch_threads at import
from a2world_ros.cli.main import main


class StopCommandError(Exception):
    """Raised by the recording stand-in to end a command right after it set the threads."""


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[object, str]] = []

    def record(requested=None, *, source="threads"):
        seen.append((requested, source))
        raise StopCommandError

    monkeypatch.setattr(worldmodel.threads, "configure_torch_threads", record)
    return seen


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_serve_flag_reaches_torch(tmp_path, capsys, restore_threads):
    ckpt = random_checkpoint(tmp_path / "ckpt")
    torch.set_num_threads(2)
    # A public address without CURVE keys is refused after the model is loaded: threads are set by then.
    assert main(["policy", "serve", str(ckpt), "--address", "tcp://0.0.0.0:5999", "--threads", "1"]) == 2
    assert torch.get_num_threads() == 1


def test_env_reaches_torch_when_no_flag(tmp_path, capsys, monkeypatch, restore_threads):
    ckpt = random_checkpoint(tmp_path / "ckpt")
    monkeypatch.setenv(worldmodel.threads.ENV_VAR, "1")
    torch.set_num_threads(2)
    assert main(["policy", "serve", str(ckpt), "--address", "tcp://0.0.0.0:5999"]) == 2
    assert torch.get_num_threads() == 1


def test_bad_flag_is_a_clear_error(tmp_path, capsys):
    ckpt = random_checkpoint(tmp_path / "ckpt")
    assert main(["policy", "export-onnx", str(ckpt), str(tmp_path / "x.onnx"), "--threads", "lots"]) == 2
    assert "--threads: 'lots' is not a thread count" in capsys.readouterr().err


def test_policy_training_uses_the_config_value(calls, tmp_path):
    from policy.config import load_policy_config
    from policy.train import train

    with pytest.raises(StopCommandError):
        train(load_policy_config("tiny", ["train.threads=3"]), [tmp_path], tmp_path / "out")
    assert calls == [(3, "train.threads")]


def test_world_model_training_uses_the_config_value(calls, monkeypatch, tmp_path):
    monkeypatch.setattr(wm_train, "configure_torch_threads", worldmodel.threads.configure_torch_threads)
    cfg = wm_train.load_train_config([f"data.roots=[{tmp_path}]", "trainer.threads=2"])
    with pytest.raises(StopCommandError):
        wm_train.Trainer(cfg)
    assert calls == [(2, "trainer.threads")]


def test_predict_and_run_pass_the_flag(calls, tmp_path):
    with pytest.raises(StopCommandError):
        main(["worldmodel", "predict", "--checkpoint", str(tmp_path), "--images", "a.png", "--actions", "a.npz",
              "--out", str(tmp_path / "o.mp4"), "--threads", "4"])
    pytest.importorskip("mujoco")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    with pytest.raises(StopCommandError):
        main(["run", "policy", "--task", "lift_box_high", "--policy", str(ckpt), "--no-cameras", "--threads", "5"])
    assert calls == [("4", "--threads"), ("5", "--threads")]
