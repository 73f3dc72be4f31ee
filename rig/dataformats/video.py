"""MP4 video for datasets with PyAV: streaming encoder, lossless concatenation of episode files into
a shared file (packet remux, no re-encode), and frame-indexed decoding.

Frames of a file are at pts = `from_timestamp + i / fps` (LeRobot v3.0 convention); encoded without
B-frames so presentation order equals decode order and a concatenation only shifts timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

CODEC_NAMES = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1", "h264": "h264"}


class VideoError(RuntimeError):
    """A video cannot be encoded, joined or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoSettings:
    """Encoder settings (from `config/recording.yaml`, section `video`)."""

    codec: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    gop: int = 10
    pix_fmt: str = "yuv420p"
    threads: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, str]:
        opts = {"crf": str(self.crf), "g": str(self.gop)}
        if self.codec == "libx264":
            opts.update({"preset": self.preset, "bf": "0"})
        elif self.codec == "libsvtav1":
            opts.update({"preset": self.preset})
        opts.update({k: str(v) for k, v in self.extra.items()})
        return opts

    @property
    def codec_name(self) -> str:
        """Canonical codec name as LeRobot records it in `video.codec`."""
        return CODEC_NAMES.get(self.codec, self.codec)


class VideoEncoder:
    """Encodes RGB frames (H, W, 3) uint8 one at a time into an MP4 at a fixed frame rate."""

    def __init__(self, path: Path, width: int, height: int, fps: int, settings: VideoSettings):
        import av

        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        try:
            self._container = av.open(str(self.path), "w", format="mp4")
            self._stream = self._container.add_stream(settings.codec, rate=self.fps, options=settings.options())
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"{self.path}: cannot open {settings.codec} encoder ({exc})") from None
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = settings.pix_fmt
        self._stream.codec_context.thread_count = max(1, settings.threads)
        self._stream.codec_context.time_base = Fraction(1, self.fps)
        self.frames = 0
        self._av = av

    def encode(self, rgb: NDArray[np.uint8]) -> None:
        if rgb.shape != (self.height, self.width, 3):
            raise VideoError(f"{self.path}: frame {self.frames} has shape {rgb.shape}, "
                             f"expected ({self.height}, {self.width}, 3)")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        frame.time_base = Fraction(1, self.fps)
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> int:
        """Flush and finish the file; returns the number of frames."""
        if self._container is not None:
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = None
        return self.frames


def _stream_signature(stream: Any) -> tuple:
    ctx = stream.codec_context
    return (ctx.name, ctx.width, ctx.height, str(ctx.pix_fmt), bytes(ctx.extradata or b""))


def can_append(existing: Path, new: Path) -> bool:
    """True when `new` has the same codec, size, pixel format and parameter sets as `existing`."""
    import av

    with av.open(str(existing)) as a, av.open(str(new)) as b:
        return _stream_signature(a.streams.video[0]) == _stream_signature(b.streams.video[0])


def concat(inputs: Sequence[tuple[Path, float]], out: Path) -> None:
    """Write `out` holding the packets of each input shifted to start at its given offset (seconds).

    Remux only (no re-encode), `moov` first for streaming. Offsets must be multiples of the frame
    period; the first input's stream parameters are used for the output.
    """
    import av

    if not inputs:
        raise VideoError(f"{out}: nothing to concatenate")
    with av.open(str(inputs[0][0])) as first:
        template = first.streams.video[0]
        with av.open(str(out), "w", format="mp4", options={"movflags": "faststart"}) as oc:
            ostream = oc.add_stream_from_template(template)
            for path, offset_s in inputs:
                with av.open(str(path)) as ic:
                    stream = ic.streams.video[0]
                    tb = stream.time_base
                    shift = round(Fraction(offset_s).limit_denominator(1_000_000) / tb)
                    for pkt in ic.demux(stream):
                        if pkt.dts is None:
                            continue
                        pkt.pts += shift
                        pkt.dts += shift
                        pkt.stream = ostream
                        oc.mux(pkt)


def decode_frames(
    path: Path, from_timestamp: float, fps: int, indices: Sequence[int], seek_gap: int = 30
) -> dict[int, NDArray[np.uint8]]:
    """Decode frames `indices` (frame numbers counted from `from_timestamp`) as RGB uint8 arrays.

    Seeks to the keyframe before the first wanted frame and decodes forward; seeks again when the next
    wanted frame is more than `seek_gap` frames ahead.
    """
    import av

    wanted = sorted(set(int(i) for i in indices))
    out: dict[int, NDArray[np.uint8]] = {}
    if not wanted:
        return out
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        pos = 0
        while pos < len(wanted):
            target = from_timestamp + wanted[pos] / fps
            container.seek(max(0, int((target - 0.5 / fps) / tb)), stream=stream, backward=True)
            progressed = False
            for frame in _frames(container, stream):
                idx = round((float(frame.pts * tb) - from_timestamp) * fps)
                if idx < wanted[pos]:
                    continue
                if idx == wanted[pos]:
                    out[idx] = frame.to_ndarray(format="rgb24")
                    pos += 1
                    progressed = True
                    if pos == len(wanted):
                        break
                    if wanted[pos] - idx > seek_gap:
                        break
                else:  # decoded past a wanted frame that does not exist in the file
                    missing = wanted[pos]
                    raise VideoError(f"{path}: frame {missing} (t={from_timestamp + missing / fps:.4f} s) "
                                     "not found in the video")
            else:
                if pos < len(wanted):
                    raise VideoError(f"{path}: video ends before frame {wanted[pos]} "
                                     f"(t={from_timestamp + wanted[pos] / fps:.4f} s)")
            if not progressed and pos < len(wanted):
                raise VideoError(f"{path}: cannot reach frame {wanted[pos]}")
    return out


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    for frame in container.decode(stream):
        if frame.pts is not None:
            yield frame


def iter_frames(path: Path, from_timestamp: float, fps: int, count: int) -> Iterator[tuple[int, NDArray]]:
    """Sequentially decode frames 0..count-1 of an episode segment."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        if from_timestamp > 0:
            container.seek(max(0, int((from_timestamp - 0.5 / fps) / tb)), stream=stream, backward=True)
        for frame in _frames(container, stream):
            idx = round((float(frame.pts * tb) - from_timestamp) * fps)
            if idx < 0:
                continue
            if idx >= count:
                break
            yield idx, frame.to_ndarray(format="rgb24")


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
