"""MP4 helpers: streaming encode, lossless concatenation at frame offsets, seeking decode."""

from __future__ import annotations

import av
import numpy as np
import pytest
from recording_data import smooth_image

from rig.dataformats.video import VideoEncoder, VideoError, VideoSettings, can_append, concat, decode_frames, psnr


def encode(path, n, cam, settings=None):
    enc = VideoEncoder(path, 80, 64, 30, settings or VideoSettings())
    for i in range(n):
        enc.encode(smooth_image(i, cam, 64, 80))
    assert enc.close() == n
    return [smooth_image(i, cam, 64, 80) for i in range(n)]


def test_concat_keeps_packets_and_shifts_time(tmp_path):
    a = encode(tmp_path / "a.mp4", 70, 0)
    b = encode(tmp_path / "b.mp4", 12, 1)
    assert can_append(tmp_path / "a.mp4", tmp_path / "b.mp4")
    concat([(tmp_path / "a.mp4", 0.0), (tmp_path / "b.mp4", 70 / 30)], tmp_path / "ab.mp4")
    with av.open(str(tmp_path / "ab.mp4")) as c:
        stream = c.streams.video[0]
        times = [float(f.pts * stream.time_base) for f in c.decode(stream)]
    np.testing.assert_allclose(times, np.arange(82) / 30, atol=1e-6)
    # far-apart indices take the re-seek path; the result equals the source within codec tolerance
    got = decode_frames(tmp_path / "ab.mp4", 0.0, 30, [69, 2, 45])
    for i in (2, 45, 69):
        assert psnr(got[i], a[i]) > 33
    got_b = decode_frames(tmp_path / "ab.mp4", 70 / 30, 30, [0, 11])
    assert psnr(got_b[0], b[0]) > 33 and psnr(got_b[11], b[11]) > 33
    with pytest.raises(VideoError, match="ends before"):
        decode_frames(tmp_path / "ab.mp4", 70 / 30, 30, [12])


def test_encoder_rejects_wrong_frame_size(tmp_path):
    enc = VideoEncoder(tmp_path / "x.mp4", 80, 64, 30, VideoSettings())
    with pytest.raises(VideoError, match="expected"):
        enc.encode(np.zeros((48, 80, 3), np.uint8))
    enc.close()
    with pytest.raises(VideoError, match="encoder"):
        VideoEncoder(tmp_path / "y.mp4", 80, 64, 30, VideoSettings(codec="no-such-codec"))


def test_different_parameters_are_not_appended(tmp_path):
    encode(tmp_path / "a.mp4", 3, 0)
    encode(tmp_path / "b.mp4", 3, 0, VideoSettings(crf=30, preset="ultrafast"))
    assert not can_append(tmp_path / "a.mp4", tmp_path / "b.mp4")
