"""Latent cache: encode a (fake, in-memory) dataset once, store per episode/camera/frame, read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest
import torch

from rig.config import ConfigError
from worldmodel.vae import WanVAE, WanVAEConfig
from worldmodel.vae.cache import (
    LatentCache,
    LatentCacheConfig,
    clip_starts,
    encode_dataset_to_cache,
    frames_to_video,
)

TINY = WanVAEConfig(dim=8, z_dim=4, num_res_blocks=1, latent_stats="identity")


class FakeReader:
    """In-memory stand-in for the dataset reader: `episode_frames(ep, cameras, stride)`."""

    def __init__(self, lengths: dict[int, dict[str, int]], size: tuple[int, int] = (16, 24)) -> None:
        rng = np.random.default_rng(0)
        self.source = {ep: {cam: rng.integers(0, 256, (n, *size, 3), dtype=np.uint8) for cam, n in cams.items()}
                       for ep, cams in lengths.items()}
        self.calls: list[tuple[int, tuple[str, ...], int]] = []

    def episode_frames(self, ep: int, cameras: Sequence[str], stride: int) -> Mapping[str, np.ndarray]:
        self.calls.append((ep, tuple(cameras), stride))
        return {cam: self.source[ep][cam][::stride] for cam in cameras if cam in self.source[ep]}


@pytest.fixture(scope="module")
def vae() -> WanVAE:
    torch.manual_seed(0)
    return WanVAE(TINY).eval()


CFG = LatentCacheConfig(clip_frames=5, frame_stride=2, clip_hop=4, resize=None, batch_size=2, store_dtype="float32")


def test_clip_starts():
    assert clip_starts(14, 5, 4) == [0, 4, 8]
    assert clip_starts(4, 5, 4) == []
    assert clip_starts(5, 5, 4) == [0]


def test_frames_to_video_range_and_resize():
    frames = np.zeros((3, 20, 28, 3), np.uint8)
    frames[..., 0] = 255
    v = frames_to_video(frames, (16, 24))
    assert v.shape == (3, 3, 16, 24) and v.dtype == torch.float32
    assert v[0].min() == 1.0 and v[1].max() == -1.0


def test_encode_dataset_to_cache_stores_every_clip(tmp_path, vae):
    reader = FakeReader({0: {"front": 28, "wrist_left": 28}, 3: {"front": 12, "wrist_left": 6}})
    summary = encode_dataset_to_cache(reader, vae, tmp_path, episodes=[0, 3], cameras=["front", "wrist_left"],
                                      config=CFG)
    assert summary.encoded_episodes == [0, 3] and summary.clips == 6 + 1
    assert reader.calls[0] == (0, ("front", "wrist_left"), 2)
    cache = LatentCache(tmp_path)
    assert cache.episodes() == [0, 3]
    # 28 source frames, stride 2 -> 14 frames -> clips at strided 0, 4, 8 = source frames 0, 8, 16
    assert cache.clip_starts(0, "front") == [0, 8, 16]
    assert cache.manifest["episodes"]["3"]["too_short"] == {"wrist_left": 3}
    ep0 = cache.load_episode(0)
    assert sorted(ep0) == ["front", "wrist_left"] and sorted(ep0["front"]) == [0, 8, 16]
    z = ep0["front"][8]
    assert z.shape == (4, 2, 2, 3)
    clip = frames_to_video(reader.source[0]["front"][8:8 + 5 * 2:2], None).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(z, vae.encode(clip)[0], atol=1e-5, rtol=1e-5)
    assert cache.settings["vae"] == TINY.to_dict() and cache.settings["normalized"] is True


def test_cache_resumes_and_refuses_other_settings(tmp_path, vae):
    reader = FakeReader({0: {"front": 10}, 1: {"front": 10}})
    encode_dataset_to_cache(reader, vae, tmp_path, episodes=[0], cameras=["front"], config=CFG)
    again = encode_dataset_to_cache(reader, vae, tmp_path, episodes=[0, 1], cameras=["front"], config=CFG)
    assert again.skipped_existing == [0] and again.encoded_episodes == [1]
    assert LatentCache(tmp_path).episodes() == [0, 1]
    other = LatentCacheConfig(clip_frames=9, frame_stride=1, clip_hop=8, resize=None, store_dtype="float32")
    with pytest.raises(ConfigError, match="other settings"):
        encode_dataset_to_cache(reader, vae, tmp_path, episodes=[0], cameras=["front"], config=other)


def test_bad_frames_and_config_are_named(tmp_path, vae):
    reader = FakeReader({0: {"front": 10}})
    reader.source[0]["front"] = reader.source[0]["front"].astype(np.float32)
    with pytest.raises(ValueError, match="episode 0 camera 'front'.*uint8"):
        encode_dataset_to_cache(reader, vae, tmp_path, episodes=[0], cameras=["front"], config=CFG)
    with pytest.raises(ValueError, match="no frames for cameras"):
        encode_dataset_to_cache(FakeReader({0: {"front": 10}}), vae, tmp_path / "b", episodes=[0],
                                cameras=["front", "wrist_right"], config=CFG)
    with pytest.raises(ConfigError, match="clip_frames=8"):
        LatentCacheConfig(clip_frames=8)
    with pytest.raises(ConfigError, match="resize"):
        LatentCacheConfig(resize=(250, 256))


def test_shipped_cache_config_loads():
    cfg = LatentCacheConfig.load("latent_cache")
    assert cfg.clip_frames == 21 and cfg.frame_stride == 3 and cfg.resize == (256, 256)
