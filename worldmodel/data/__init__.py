"""World-model training data: clips of 1 + 20 frames at 10 fps with their 20 model actions, cut from our
LeRobot v3.0 recordings (pixels or cached VAE latents), mixed over datasets with one dataset per batch,
and the official sample format (`actions.npz` + one image per view)."""

from worldmodel.data.clips import ClipConfig, ClipRef, clip_actions, clip_frame_indices, clip_starts
from worldmodel.data.dataset import ClipDataset, MixedClipDataset, collate_clips
from worldmodel.data.official import SampleError, load_actions_npz, load_image, load_official_sample
from worldmodel.data.sampler import DatasetConsistentBatchSampler
from worldmodel.data.source import RecordingSource, resolve_dataset_root

__all__ = [
    "ClipConfig",
    "ClipDataset",
    "ClipRef",
    "DatasetConsistentBatchSampler",
    "MixedClipDataset",
    "RecordingSource",
    "SampleError",
    "clip_actions",
    "clip_frame_indices",
    "clip_starts",
    "collate_clips",
    "load_actions_npz",
    "load_image",
    "load_official_sample",
    "resolve_dataset_root",
]
