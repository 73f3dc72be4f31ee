"""Damaged policy checkpoints give errors naming the file: a truncated model.safetensors and a
malformed policy.yaml (before: a raw SafetensorError / yaml ParserError traceback)."""

from __future__ import annotations

import pytest
from policy_demo_data import random_checkpoint

from policy.checkpoint import META, WEIGHTS, PolicyCheckpointError, load_policy


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "ckpt")


def test_truncated_weights_name_the_file(checkpoint, tmp_path):
    import shutil

    damaged = shutil.copytree(checkpoint, tmp_path / "ckpt")
    data = (damaged / WEIGHTS).read_bytes()
    (damaged / WEIGHTS).write_bytes(data[: len(data) // 3])
    with pytest.raises(PolicyCheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_policy(damaged)
    (damaged / WEIGHTS).write_bytes(data[:5])
    with pytest.raises(PolicyCheckpointError, match=r"model\.safetensors.*truncated"):
        load_policy(damaged)


def test_malformed_policy_yaml_names_the_file(checkpoint, tmp_path):
    import shutil

    damaged = shutil.copytree(checkpoint, tmp_path / "ckpt")
    (damaged / META).write_text("format: a2world-policy\nconfig: {policy: [unclosed\n")
    with pytest.raises(PolicyCheckpointError, match=r"policy\.yaml: malformed YAML at line \d"):
        load_policy(damaged)
    assert load_policy(checkpoint).meta["step"] == 0  # the intact one still loads
