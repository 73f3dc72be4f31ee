"""Checkpoint I/O: official-layout .pt files (full size on meta, tiny with real values), our safetensors
format, Cosmos-Predict2 initialisation, mismatch reports and `a2world worldmodel inspect`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from a2world_ros.cli.main import main as cli_main
from worldmodel.checkpoint import (
    CheckpointError,
    init_from_cosmos,
    inspect_checkpoint,
    load_checkpoint,
    load_official,
    load_state_dict_into,
    read_official,
    save_checkpoint,
)
from worldmodel.configs import load_net_config
from worldmodel.network import A2WorldNet, build_net

PRETRAINED_PARAMS = 2_527_345_180
KEYS_FILE = Path(__file__).parent / "data" / "a2world_pretrained_keys.txt"


def official_layout() -> dict[str, list[int]]:
    out = {}
    for line in KEYS_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split(" [")
            out[key] = [int(s) for s in shape.rstrip("]").split(", ")]
    return out


@pytest.fixture(scope="module")
def full_layout_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with the release's exact names, shapes and dtype (bf16): one random value per tensor,
    expanded with stride 0, so the 2.5B-parameter layout takes ~150 kB on disk."""
    g = torch.Generator().manual_seed(0)
    state = {f"net.{k}": torch.randn(1, generator=g).to(torch.bfloat16).expand(shape)
             for k, shape in official_layout().items()}
    state["net.accum_iteration"] = torch.zeros((), dtype=torch.bfloat16)  # training metadata: dropped
    path = tmp_path_factory.mktemp("official") / "a2world-pretrained.pt"
    torch.save(state, path)
    return path


def tiny_random(seed: int = 0) -> A2WorldNet:
    torch.manual_seed(seed)
    net = build_net(load_net_config("tiny"))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
    return net


def test_full_size_official_layout_loads_on_meta(full_layout_pt: Path) -> None:
    state = read_official(full_layout_pt)
    assert len(state) == 826 and "accum_iteration" not in state
    net = build_net(load_net_config("a2world_2b"), device="meta")
    report = load_state_dict_into(net, state, str(full_layout_pt))
    assert report.ok
    params = list(net.parameters())
    assert not any(p.is_meta for p in params)
    assert {p.dtype for p in params} == {torch.bfloat16}
    assert sum(p.numel() for p in params) == PRETRAINED_PARAMS
    raw = torch.load(full_layout_pt, weights_only=True, mmap=True)
    for key in ("blocks.27.mlp.layer2.weight", "x_embedder_multiview.proj.1.weight", "view_embeddings.weight"):
        assert torch.equal(net.get_parameter(key), raw[f"net.{key}"])


def test_mismatches_are_named(tmp_path: Path) -> None:
    net = tiny_random()
    state = {f"net.{k}": v.clone() for k, v in net.state_dict().items()}
    del state["net.blocks.1.mlp.layer2.weight"]
    state["net.blocks.0.bogus.weight"] = torch.zeros(3)
    state["net.final_layer.linear.weight"] = torch.zeros(7, 64)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_official(path, config="tiny")
    msg = str(err.value)
    assert "1 missing keys: blocks.1.mlp.layer2.weight" in msg
    assert "1 unexpected keys: blocks.0.bogus.weight" in msg
    assert "final_layer.linear.weight (file [7, 64], network [64, 64])" in msg
    with pytest.raises(CheckpointError, match="no such file"):
        read_official(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only"):
        read_official(tmp_path / "junk.pt")


def test_tiny_official_layout_round_trip(tmp_path: Path) -> None:
    net = tiny_random()
    state = {f"net.{k}": v.to(torch.bfloat16) for k, v in net.state_dict().items()}
    state["net.blocks.0.self_attn.q_norm._extra_state"] = torch.zeros(2)  # TE metadata: dropped
    path = tmp_path / "tiny.pt"
    torch.save(state, path)
    loaded, report = load_official(path, config="tiny")
    assert report.ok
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[f"net.{key}"]), key
    x = torch.randn(1, 16, 12, 8, 8)
    with torch.no_grad():
        out = loaded(x, torch.rand(1, 12), torch.zeros(1, 20, 14), torch.tensor([[0, 2]]))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_own_safetensors_round_trip(tmp_path: Path) -> None:
    net = tiny_random()
    weights = save_checkpoint(tmp_path / "ckpt", net, metadata={"step": 12})
    assert weights.name == "model.safetensors"
    info = yaml.safe_load((tmp_path / "ckpt" / "config.yaml").read_text())
    assert info["net"]["model_channels"] == 64 and info["metadata"] == {"step": 12}
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["dtype"] == "float32"
    for (k1, v1), (k2, v2) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    loaded_bf16, _ = load_checkpoint(weights, dtype=torch.bfloat16)
    assert loaded_bf16.dtype == torch.bfloat16
    (tmp_path / "ckpt" / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match="config.yaml"):
        load_checkpoint(tmp_path / "ckpt")


def test_init_from_cosmos_extends_patch_embedding(tmp_path: Path) -> None:
    donor = tiny_random(seed=1)
    cosmos = {}
    for key, value in donor.state_dict().items():
        if key.startswith(("action_", "view_embeddings", "black_")) or ".cross_view_attn" in key \
                or "layer_norm_cross_view" in key:
            continue
        if key == "x_embedder_multiview.proj.1.weight":
            cosmos["net.x_embedder.proj.1.weight"] = value[:, :72].clone()  # 18 channels x 2 x 2
        elif key.startswith("pos_embedder_options.n_cameras_1."):
            cosmos["net.pos_embedder." + key.split(".", 2)[2]] = value.clone()
        elif not key.startswith("pos_embedder_options."):
            cosmos[f"net.{key}"] = value.clone()
    cosmos["net.accum_video_sample_counter"] = torch.zeros(())  # training metadata: dropped silently
    cosmos["net.logvar.0.weight"] = torch.zeros(1, 64)  # no A2World counterpart: reported
    path = tmp_path / "model-720p-10fps.pt"
    torch.save(cosmos, path)
    net = build_net(load_net_config("tiny"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    report, fresh = init_from_cosmos(net, path)
    assert report.unexpected == ["logvar.0.weight"] and not report.missing and not report.mismatched
    w = net.x_embedder_multiview.proj[1].weight
    assert torch.equal(w[:, :72], donor.x_embedder_multiview.proj[1].weight[:, :72])
    assert torch.count_nonzero(w[:, 72:]) == 0  # view-embedding inputs start at zero
    assert torch.equal(net.blocks[1].self_attn.q_proj.weight, donor.blocks[1].self_attn.q_proj.weight)
    assert "blocks.0.cross_view_attn.q_proj.weight" in fresh and "view_embeddings.weight" in fresh
    assert torch.equal(net.view_embeddings.weight, before["view_embeddings.weight"])


def test_inspect_reports_variant_dtype_count_and_config(full_layout_pt: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rep = inspect_checkpoint(full_layout_pt)
    assert rep.variant == "a2world" and rep.matches == ["a2world_2b"]
    assert rep.n_parameters == PRETRAINED_PARAMS and rep.n_buffer_elements == 684
    assert rep.dtypes == {"bfloat16": 826}

    assert cli_main(["worldmodel", "inspect", str(full_layout_pt)]) == 0
    out = capsys.readouterr().out
    assert "2,527,345,180" in out and "matches a2world_2b" in out and "bfloat16" in out

    save_checkpoint(tmp_path / "ours", tiny_random())
    assert cli_main(["worldmodel", "inspect", str(tmp_path / "ours"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["matches"] == ["tiny"] and data["dtypes"] == {"float32": len(tiny_random().state_dict())}

    # a libero-style file that misses a key: variant detected, no config matches
    one = torch.zeros(1, dtype=torch.bfloat16)
    libero = {f"net.{k}": one.expand(s) for k, s in official_layout().items() if "black_" not in k}
    libero["net.history_tokenizer.pe2d_proj.weight"] = one.expand(1024, 128)
    torch.save(libero, tmp_path / "a2world-libero-broken.pt")
    assert cli_main(["worldmodel", "inspect", str(tmp_path / "a2world-libero-broken.pt"), "--require-match"]) == 2
    out = capsys.readouterr().out
    assert "a2world_sim" in out and "no known config matches" in out
    assert cli_main(["worldmodel", "inspect", str(tmp_path / "missing.pt")]) == 1
    capsys.readouterr()
    assert cli_main(["worldmodel"]) == 0 and "inspect" in capsys.readouterr().out  # group help
