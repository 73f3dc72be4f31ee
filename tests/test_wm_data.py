"""World-model training data: clip geometry, frames and actions from a real recording, action statistics,
dataset-consistent batching, latent-cache mode and the official actions.npz format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recording_data import command, observation, smooth_image
from test_wm_data_fixtures import one_thread, synthetic_recording

from rig.conventions import CAMERA_NAMES
from rig.dataformats.video import psnr
from worldmodel.actions import ActionStats, poses_to_actions
from worldmodel.data import (
    ClipConfig,
    ClipDataset,
    DatasetConsistentBatchSampler,
    MixedClipDataset,
    RecordingSource,
    SampleError,
    clip_frame_indices,
    clip_starts,
    collate_clips,
    load_actions_npz,
    load_official_sample,
)
from worldmodel.data.clips import DataError

CAMS = ["wrist_left", "wrist_right", "front"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return synthetic_recording(tmp_path_factory.mktemp("wm_data") / "rec", lengths=(70, 64))


def test_clip_geometry_is_21_frames_at_10fps():
    cfg = ClipConfig()
    assert cfg.span == 61 and cfg.num_actions == 20
    assert clip_frame_indices(6, cfg).tolist() == list(range(6, 67, 3))
    assert clip_starts(60, cfg) == [] and clip_starts(61, cfg) == [0]
    assert clip_starts(187, ClipConfig(clip_hop=20)) == [0, 60, 120]
    assert clip_starts(187, ClipConfig(clip_hop=10)) == [0, 30, 60, 90, 120]
    with pytest.raises(DataError, match="clip_frames=20"):
        ClipConfig(clip_frames=20)
    with pytest.raises(DataError, match="action_source"):
        ClipConfig(action_source="joints")


def test_clips_frames_and_actions_from_recorder(recording):
    source = RecordingSource(recording.parent)  # a recorder root resolves to its lerobot/ folder
    assert source.root == recording and source.fps == 30
    cfg = ClipConfig(clip_hop=1)
    ds = ClipDataset(source, cfg, CAMS, ActionStats.identity(), (32, 32))
    # episode 0: 70 frames -> starts 0, 3, 6, 9; episode 1: 64 frames -> starts 0, 3
    assert [(r.episode, r.start) for r in ds.refs] == [(0, 0), (0, 3), (0, 6), (0, 9), (1, 0), (1, 3)]
    item = ds[2]
    assert item["pixels"].shape == (3, 21, 32, 32, 3) and item["pixels"].dtype == torch.uint8
    assert item["view_ids"].tolist() == [0, 1, 2]
    assert item["actions"].shape == (20, 14) and item["actions"].dtype == torch.float32
    # frame k of the clip is source frame 6 + 3k (10 fps from 30 fps), per camera
    for v, cam in enumerate(CAMS):
        for k in (0, 1, 20):
            expect = smooth_image(6 + 3 * k, CAMERA_NAMES.index(cam), 32, 32)
            assert psnr(item["pixels"][v, k].numpy(), expect) > 28
    # actions: the release's convention on the measured poses of frames 6, 9, ..., 66
    obs = [observation(i, height=32, width=32) for i in range(6, 67, 3)]
    poses = np.array([[o.arms[a].tcp_pose for a in ("left", "right")] for o in obs])
    grips = np.array([[o.grippers[a].opening for a in ("left", "right")] for o in obs])
    np.testing.assert_allclose(item["actions"].numpy(), poses_to_actions(poses, grips), atol=2e-6)
    # episode 1 starts at global frame 70 in the recording helpers
    obs1 = [observation(70 + i, height=32, width=32) for i in range(0, 61, 3)]
    p1 = np.array([[o.arms[a].tcp_pose for a in ("left", "right")] for o in obs1])
    g1 = np.array([[o.grippers[a].opening for a in ("left", "right")] for o in obs1])
    np.testing.assert_allclose(ds[4]["actions"].numpy(), poses_to_actions(p1, g1), atol=2e-6)
    # decoding on demand gives the same clips as the preloaded episodes
    lazy = ClipDataset(source, cfg, CAMS, ActionStats.identity(), (32, 32), preload=False)
    assert torch.equal(lazy[2]["pixels"], item["pixels"])


def test_command_action_source_uses_targets(recording):
    source = RecordingSource(recording)
    cfg = ClipConfig(action_source="command")
    got = source.actions(0, 3, cfg)
    first = observation(3, height=32, width=32)
    seq = [np.concatenate([[first.arms[a].tcp_pose for a in ("left", "right")]], axis=0)]
    grip = [[first.grippers[a].opening for a in ("left", "right")]]
    for k in range(1, 21):
        c = command(3 + 3 * k - 1)
        seq.append(c[:, :7])
        grip.append(c[:, 7])
    np.testing.assert_allclose(got, poses_to_actions(np.array(seq), np.array(grip)), atol=2e-6)


def test_meanstd_stats_normalise_each_dataset(recording):
    source = RecordingSource(recording)
    cfg = ClipConfig(clip_hop=1)
    stats = source.fit_stats(cfg, "meanstd")
    assert stats.kind == "meanstd" and stats.name == source.name and stats.count == 6 * 20
    ds = ClipDataset(source, cfg, CAMS, stats, (32, 32))
    norm = ds.actions.reshape(-1, 14).double().numpy()
    moving = [c for c in range(14) if c not in (6, 13) and ds.raw_actions.reshape(-1, 14)[:, c].std() > 1e-9]
    np.testing.assert_allclose(norm[:, moving].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(norm[:, moving].std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(norm[:, [6, 13]], ds.raw_actions.reshape(-1, 14)[:, [6, 13]], atol=1e-6)
    with pytest.raises(DataError, match="normalization"):
        source.fit_stats(cfg, "minmax")


def test_batch_sampler_keeps_each_batch_in_one_dataset():
    sizes = [5, 50, 3]
    s = DatasetConsistentBatchSampler(sizes, batch_size=4, weights=[1, 1, 2], seed=3, batches_per_epoch=400)
    batches = list(s)
    assert len(batches) == 400 and all(len(b) == 4 for b in batches)
    owners = []
    for b in batches:
        d = {int(np.searchsorted([5, 55, 58], i, side="right")) for i in b}
        assert len(d) == 1
        owners.append(d.pop())
    freq = np.bincount(owners, minlength=3) / len(owners)
    np.testing.assert_allclose(freq, [0.25, 0.25, 0.5], atol=0.07)  # weights, not sizes, decide the mix
    assert batches == list(s)  # deterministic for an epoch
    s.set_epoch(1)
    assert list(s) != batches
    # ranks split one global sequence without overlap; skip resumes mid-epoch
    r0 = DatasetConsistentBatchSampler(sizes, 4, seed=1, rank=0, world_size=2, batches_per_epoch=6)
    r1 = DatasetConsistentBatchSampler(sizes, 4, seed=1, rank=1, world_size=2, batches_per_epoch=6)
    one = DatasetConsistentBatchSampler(sizes, 4, seed=1, batches_per_epoch=12)
    full = list(one)
    assert list(r0) == full[0::2] and list(r1) == full[1::2]
    r0.set_epoch(0, skip=4)
    assert list(r0) == full[0::2][4:] and len(r0) == 2
    default = DatasetConsistentBatchSampler(sizes, 4)
    assert len(default) == 58 // 4  # one epoch ~ every clip once
    with pytest.raises(DataError, match="weights"):
        DatasetConsistentBatchSampler(sizes, 4, weights=[1, 2])
    with pytest.raises(DataError, match="at least one clip"):
        DatasetConsistentBatchSampler([3, 0], 4)


def test_mixed_datasets_with_different_views(recording, tmp_path):
    two_cam = synthetic_recording(tmp_path / "rec2", lengths=(64,), cameras=("front", "wrist_left"))
    a = ClipDataset(RecordingSource(recording), ClipConfig(clip_hop=1), CAMS, ActionStats.identity(), (32, 32))
    b = ClipDataset(RecordingSource(two_cam, name="two"), ClipConfig(clip_hop=1), ["front", "wrist_left"],
                    ActionStats.identity("two"), (32, 32))
    mix = MixedClipDataset([a, b])
    assert mix.sizes == [6, 2] and len(mix) == 8 and mix.locate(7) == (1, 1)
    sampler = DatasetConsistentBatchSampler(mix.sizes, 2, seed=0, batches_per_epoch=8)
    loader = torch.utils.data.DataLoader(mix, batch_sampler=sampler, collate_fn=collate_clips)
    seen = set()
    for batch in loader:
        V = 3 if batch["dataset"] == 0 else 2
        assert batch["pixels"].shape == (2, V, 21, 32, 32, 3)
        assert batch["view_ids"].tolist()[0] == ([0, 1, 2] if V == 3 else [2, 0])
        seen.add(batch["dataset"])
    assert seen == {0, 1}
    with pytest.raises(DataError, match="mixes datasets"):
        collate_clips([mix[0], mix[7]])


@pytest.fixture
def single_thread():
    with one_thread():
        yield


def test_latent_cache_mode(recording, tmp_path, single_thread):
    from worldmodel.data.latents import ensure_latent_cache
    from worldmodel.vae import WanVAE

    torch.manual_seed(0)
    vae = WanVAE.from_config("tiny")
    source = RecordingSource(recording)
    cfg = ClipConfig(clip_hop=20)
    cache = ensure_latent_cache(source, vae, tmp_path / "cache", cfg, CAMS, (32, 32))
    ds = ClipDataset(source, cfg, CAMS, ActionStats.identity(), (32, 32), latent_cache=cache)
    assert ds.mode == "latents" and [(r.episode, r.start) for r in ds.refs] == [(0, 0), (1, 0)]
    item = ds[0]
    assert item["latents"].shape == (3, 4, 6, 4, 4) and "pixels" not in item
    pixels = ClipDataset(source, cfg, CAMS, ActionStats.identity(), (32, 32))[0]["pixels"]
    video = pixels.permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    with torch.no_grad():
        torch.testing.assert_close(item["latents"], vae.encode(video), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(item["actions"], ClipDataset(source, cfg, CAMS, ActionStats.identity(),
                                                            (32, 32))[0]["actions"])
    with pytest.raises(DataError, match="resize"):
        ClipDataset(source, cfg, CAMS, ActionStats.identity(), (64, 64), latent_cache=cache)
    other = WanVAE.from_config("tiny")  # different random weights
    with pytest.raises(DataError, match="VAE weights"):
        ensure_latent_cache(source, other, cache, cfg, CAMS, (32, 32))


def test_bad_roots_and_cameras_are_named(recording, tmp_path):
    with pytest.raises(DataError, match="no meta/info.json"):
        RecordingSource(tmp_path)
    with pytest.raises(DataError, match=r"cameras \['top'\] not recorded"):
        ClipDataset(RecordingSource(recording), ClipConfig(), ["top"], ActionStats.identity(), (32, 32))
    with pytest.raises(DataError, match="no clip of 21 frames"):
        ClipDataset(RecordingSource(recording), ClipConfig(frame_stride=4), CAMS, ActionStats.identity(), (32, 32))


def test_official_actions_npz(tmp_path):
    good = tmp_path / "actions.npz"
    np.savez(good, actions=np.linspace(-0.01, 0.01, 20 * 14, dtype=np.float32).reshape(20, 14))
    a = load_actions_npz(good)
    assert a.shape == (20, 14) and a.dtype == np.float64
    bad = tmp_path / "bad.npz"
    np.savez(bad, actions=np.zeros((20, 7), np.float32))
    with pytest.raises(SampleError, match=r"bad\.npz: field 'actions' has shape \(20, 7\), expected \(T, 14\)"):
        load_actions_npz(bad)
    short = tmp_path / "short.npz"
    np.savez(short, actions=np.zeros((19, 14)))
    with pytest.raises(SampleError, match="19 actions, need at least 20"):
        load_actions_npz(short)
    nokey = tmp_path / "nokey.npz"
    np.savez(nokey, act=np.zeros((20, 14)))
    with pytest.raises(SampleError, match=r"no field 'actions' \(fields: \['act'\]\)"):
        load_actions_npz(nokey)
    libero = tmp_path / "libero.npz"
    servo = np.zeros((40, 2, 7), np.float32)
    servo[:, 0, :6] = 0.5
    servo[:, 0, 6] = -1.0  # LIBERO -1 = open
    np.savez(libero, actions=servo)
    conv = load_actions_npz(libero, "libero-servo")
    assert conv.shape == (40, 14) and np.allclose(conv[:, :6], 0.025) and np.allclose(conv[:, 6], 1.0)
    with pytest.raises(SampleError, match="repeat"):
        load_official_sample([good, good], [0, 0], good)
    with pytest.raises(SampleError, match="no such image"):
        load_official_sample([tmp_path / "x.png"], [2], good)
