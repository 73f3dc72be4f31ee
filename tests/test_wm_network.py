"""A2World network: state-dict parity with the release at full size (meta device) and tiny CPU forwards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rig.config import ConfigError
from worldmodel.configs import A2WorldNetConfig, known_net_configs, load_net_config
from worldmodel.network import A2WorldNet, build_net

KEYS_FILE = Path(__file__).parent / "data" / "a2world_pretrained_keys.txt"
PRETRAINED_PARAMS = 2_527_345_180
PRETRAINED_BUFFER_ELEMENTS = 684


def reference_layout() -> list[tuple[str, list[int]]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape = line.split(" [")
        rows.append((key, [int(s) for s in shape.rstrip("]").split(", ")]))
    return rows


@pytest.fixture(scope="module")
def full_meta() -> A2WorldNet:
    return build_net(load_net_config("a2world_2b"), device="meta")


def tiny_net(seed: int = 0, scale: float = 0.1) -> A2WorldNet:
    """Tiny network with every weight random (the release init zeroes the AdaLN/cross-view outputs)."""
    torch.manual_seed(seed)
    net = build_net(load_net_config("tiny"))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, scale)
    return net.eval()


def tiny_inputs(B: int = 2, V: int = 3, T: int = 6, H: int = 8, W: int = 8, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 16, V * T, H, W, generator=g)
    t = torch.rand(B, V * T, generator=g)
    a = torch.randn(B, 20, 14, generator=g) * 0.1
    ids = torch.tensor([[0, 2, 1], [2, 3, 0]])[:B, :V]
    return x, t, a, ids


def test_full_size_state_dict_matches_release_layout(full_meta: A2WorldNet) -> None:
    mine = [(k, list(v.shape)) for k, v in full_meta.state_dict().items()]
    ref = reference_layout()
    assert len(ref) == 826
    assert [k for k, _ in mine] == [k for k, _ in ref]  # names and order
    assert mine == ref  # shapes
    assert sum(p.numel() for p in full_meta.parameters()) == PRETRAINED_PARAMS
    assert sum(b.numel() for b in full_meta.buffers()) == PRETRAINED_BUFFER_ELEMENTS


def test_full_config_values() -> None:
    cfg = load_net_config("a2world_2b")
    assert (cfg.model_channels, cfg.num_blocks, cfg.num_heads, cfg.head_dim) == (2048, 28, 16, 128)
    assert cfg.patch_in_channels == 25 and cfg.action_dim == 280
    assert cfg == A2WorldNetConfig()  # the dataclass defaults are the release
    assert {"a2world_2b", "tiny"} <= set(known_net_configs())


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_channels: 60\nnum_heads: 7\n")
    with pytest.raises(ConfigError, match="num_heads=7"):
        load_net_config(bad)
    bad.write_text("model_chanels: 64\n")
    with pytest.raises(ConfigError, match="model_chanels"):
        load_net_config(bad)
    bad.write_text("use_black: 1\n")
    with pytest.raises(ConfigError, match="use_black"):
        load_net_config(bad)


def test_tiny_forward_shape_dtype_and_determinism() -> None:
    net = tiny_net()
    x, t, a, ids = tiny_inputs()
    with torch.no_grad():
        y1 = net(x, t, a, ids)
        y2 = net(x, t, a, ids)
    assert y1.shape == x.shape and y1.dtype == torch.float32
    assert torch.isfinite(y1).all()
    assert torch.equal(y1, y2)
    with torch.no_grad():
        yb = net.to(torch.bfloat16)(x, t, a, ids)
    assert yb.dtype == torch.bfloat16 and torch.isfinite(yb.float()).all()


def test_per_frame_timesteps_are_honoured() -> None:
    net = tiny_net()
    x, t, a, ids = tiny_inputs()
    with torch.no_grad():
        scalar = net(x, t[:, 0], a, ids)
        expanded = net(x, t[:, :1].expand_as(t), a, ids)
        per_frame = net(x, t, a, ids)
        emb_a, _ = net.t_embedder(t)
        t2 = t.clone()
        t2[:, 4] += 0.3
        emb_b, _ = net.t_embedder(t2)
    assert torch.equal(scalar, expanded)
    assert not torch.allclose(per_frame, expanded)
    # the embedding of frame k depends on t_k only
    changed = (emb_a - emb_b).abs().amax(dim=-1) > 0
    assert changed[:, 4].all() and not changed[:, :4].any() and not changed[:, 5:].any()


def test_absent_view_does_not_leak() -> None:
    net = tiny_net()
    x, t, a, ids = tiny_inputs()
    present = torch.tensor([[True, True, False], [True, False, True]])
    with torch.no_grad():
        y = net(x, t, a, ids, view_mask=present)
        x2 = x.clone()
        x2[0, :, 12:18] = torch.randn(16, 6, 8, 8) * 5  # sample 0, view 2 is absent
        x2[1, :, 6:12] += 3.0  # sample 1, view 1 is absent
        y2 = net(x2, t, a, ids, view_mask=present)
        # same result as leaving the absent view out entirely
        y_two = net(x[:1, :, :12], t[:1, :12], a[:1], ids[:1, :2])
    assert torch.equal(y[0, :, :12], y2[0, :, :12])
    assert torch.equal(y[1, :, :6], y2[1, :, :6]) and torch.equal(y[1, :, 12:], y2[1, :, 12:])
    torch.testing.assert_close(y[:1, :, :12], y_two, rtol=1e-4, atol=1e-4)


def test_views_interact_when_present() -> None:
    net = tiny_net()
    x, t, a, ids = tiny_inputs()
    with torch.no_grad():
        y = net(x, t, a, ids)
        x2 = x.clone()
        x2[:, :, 12:18] += 1.0
        y2 = net(x2, t, a, ids)
    assert not torch.allclose(y[:, :, :12], y2[:, :, :12])


def test_single_view_and_action_dependence() -> None:
    net = tiny_net()
    x, t, a, ids = tiny_inputs(V=1)
    with torch.no_grad():
        y = net(x, t, a, ids)
        y_other = net(x, t, a + 0.5, ids)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, y_other)


def test_view_id_validation() -> None:
    net = tiny_net()
    net.check_view_ids(torch.tensor([[0, 2, 1]]))
    with pytest.raises(ValueError, match="repeats"):
        net.check_view_ids(torch.tensor([[0, 0, 1]]))
    with pytest.raises(ValueError, match="outside"):
        net.check_view_ids(torch.tensor([[0, 4]]))
    x, t, a, ids = tiny_inputs()
    with pytest.raises(ValueError, match="action"):
        net(x, t, a[:, :10], ids)
    with pytest.raises(ValueError, match="not divisible"):
        net(x[:, :, :17], t[:, :17], a, ids)


def test_blacks_context_path() -> None:
    net = tiny_net()
    x, t, a, ids = tiny_inputs()
    blacks = torch.randn(2, 16, 18, 8, 8)
    with torch.no_grad():
        y = net(x, t, a, ids, blacks=blacks)
        y_action = net(x, t, a, ids)
    assert y.shape == x.shape and not torch.allclose(y, y_action)


def test_variant_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="use_black"):
        A2WorldNetConfig(variant="a2world_sim")  # the sim variant has no black tokenizer
    with pytest.raises(ConfigError, match="variant='a2world_xl'"):
        A2WorldNetConfig(variant="a2world_xl")
