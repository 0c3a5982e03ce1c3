"""Video decoding stage: a video file in, the frames the model should see out.

A :class:`VideoReader` decodes a video as a stream and resamples it to a target
frame rate (MoViNet's published weights expect 5-12 fps, most uploads are 25-60
fps). Frames are yielded one at a time as BGR ``uint8`` arrays. Frames that the
resampling drops are never converted to arrays, and are decoded only where other
frames may need them (inter-coded video): H.264 pictures that no other picture refers
to are not decoded at all (adapter/decoders.py). Memory stays at a few frames
whatever the video's length, and the conversion cost is paid only for kept frames.

A video that cannot be used at all raises :class:`VideoError`, naming the video
and the reason, before any frame is yielded. A video that breaks after it has
produced frames (a truncated upload) is kept as far as it decoded, with a
warning: a clip that ends early is still a usable clip, and the warning keeps the
loss visible.

Decoding is done by FFmpeg through PyAV (adapter/decoders.py). PyAV tells a decoding
error from the end of the stream (OpenCV's grab() returns False for both), names the
codec error, gives the exact rational frame rate and lets the decoder leave pictures
out. OpenCV's ``VideoCapture`` remains as a second decoder for comparison
(``benchmarks/decode_backends.py``, figures in the README), and the tests keep the two
in agreement.
"""

from __future__ import annotations

import dataclasses
import fractions
import logging
import math
import numbers
import os
from collections.abc import Iterator

import numpy as np

from adapter.core.errors import MovinetError
from adapter.video.decoders import DECODERS, DEFAULT_DECODER, DecodeError, ffmpeg_reason

logger = logging.getLogger(__name__)

MIME_PREFIX = "video/"

# A frame rate of this or above is not a frame rate but a container time base leaking
# through (1/1000 for Matroska, 1/90000 for MPEG-TS), so it is treated as unknown.
_MAX_PLAUSIBLE_FPS = 1000


def is_video_mimetype(mimetype: str | None) -> bool:
    """True for "video/..." mimetypes (case-insensitive); False for None and anything else."""
    return bool(mimetype) and mimetype.strip().lower().startswith(MIME_PREFIX)


class VideoError(MovinetError, ValueError):
    """A video that cannot be used. ``str(err)`` names the source and the reason."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"video {name!r} {reason}")


@dataclasses.dataclass(frozen=True)
class Frame:
    """One decoded frame kept by the resampling."""

    # Index of this frame in the source video's own frame numbering: 0-based, and
    # every frame counts, kept or not (decoded or left out by the decoder).
    index: int
    # H x W x 3 uint8, BGR (the cv2 convention); the preprocessing stage converts to RGB.
    # Already resized to the reader's shorter_side when it has one.
    image: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Probe:
    stream_index: int
    fps: fractions.Fraction | None
    declared_frames: int | None
    # Whether declared_frames is the container's own count (exact) or duration x fps.
    declared_exact: bool


def video_streams(container) -> list:
    """The video streams of an open PyAV container, without cover art.

    Args:
        container: an av.container.InputContainer.
    Returns:
        Its video streams in container order; cover art in music files (MP3, M4A), a
        one-picture "video" stream marked attached_pic, is not a video and is left out.
    """
    import av

    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def _probe(path: str, name: str) -> _Probe:
    """Open the container with PyAV and check it holds a video stream."""
    import av

    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise VideoError(name, _unopenable_reason(path, ffmpeg_reason(err))) from err
    with container:
        videos = video_streams(container)
        if not videos:
            kinds = sorted({stream.type for stream in container.streams})
            if container.streams.audio:
                cover = " with cover art" if container.streams.video else ""
                raise VideoError(name, f"has no video stream (it is audio-only{cover})")
            found = ", ".join(kinds) if kinds else "none"
            raise VideoError(name, f"has no video stream (streams found: {found})")
        stream = videos[0]
        fps = None
        for rate in (stream.average_rate, stream.guessed_rate):
            if rate is not None and 0 < rate < _MAX_PLAUSIBLE_FPS:
                fps = fractions.Fraction(rate)
                break
        declared, exact = None, False
        if stream.frames and stream.frames > 0:
            declared, exact = int(stream.frames), True
        elif fps is not None and container.duration and container.duration > 0:
            # Matroska/WebM do not store a frame count; estimate it from the duration.
            declared = round(container.duration / av.time_base * fps)
        return _Probe(stream_index=stream.index, fps=fps, declared_frames=declared, declared_exact=exact)


# Leading bytes of the containers users upload, to tell a damaged video from a file
# that never was one: FFmpeg reports both as "Invalid data found".
def _container_kind(head: bytes) -> str | None:
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "MP4/QuickTime"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    return None


def _unopenable_reason(path: str, reason: str) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    kind = _container_kind(head)
    if kind is not None:
        return f"cannot be opened as a video: it looks like a truncated or corrupt {kind} file ({reason})"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as err:
            # A multi-byte character cut at the 512th byte is still text.
            is_text = err.start >= len(head) - 3
        else:
            is_text = True
        if is_text:
            return "cannot be opened as a video: it is not a video file (it contains text)"
    return f"cannot be opened as a video: it is not a video file FFmpeg can read ({reason})"


def _keep_ratio(fps: float | None, source_fps: fractions.Fraction | None) -> fractions.Fraction | None:
    """target/source rate as an exact fraction, or None to keep every frame."""
    if fps is None or source_fps is None:
        return None
    target = fractions.Fraction(fps).limit_denominator(1_000_000)
    if target >= source_fps:
        return None
    return target / source_fps


def _is_kept(index: int, ratio: fractions.Fraction | None) -> bool:
    """Whether source frame ``index`` is the first frame at or after some target time k/fps.

    Frame i is shown at i/source_fps. The target times k/fps at or before it number
    floor(i * fps/source_fps) + 1, so frame i is the first at or after a new target
    time exactly when that count grows from frame i-1 to frame i. Exact fractions
    keep 29.97 (30000/1001) fps sources from drifting by float rounding.
    """
    if ratio is None or index == 0:
        return True
    return (index * ratio.numerator) // ratio.denominator > ((index - 1) * ratio.numerator) // ratio.denominator


class VideoReader:
    """Streams the frames of one video, resampled to ``fps``.

    ``path``: a local video file. ``fps``: the frame rate to resample to; None keeps
    every frame, and so does an ``fps`` at or above the video's own rate (frames are
    never duplicated). ``name``: how errors and warnings refer to the video (default:
    ``path``); pass the platform's item name so users recognise it. ``shorter_side``:
    the frames come out resized so their shorter side is this (the model's imgz; see
    adapter/video/preprocessing.py), resized while they are converted from the decoded
    picture so the full-size frame is never made; None keeps the video's size.

    Resampling keeps source frame i when it is the first frame at or after a target
    time k/fps (k = 0, 1, 2, ...), with frame i's time taken as i/source_fps. Frame
    indices (display positions) rather than timestamps are used because they are the
    same whichever decoder reads the file, and do not depend on timestamp quirks
    (streams that start late, uneven pts); the price is that a variable-frame-rate
    video is treated as if it had its average rate. Positions are counted as frames
    come out of the decoder, except where the decoder leaves pictures out (resampled
    H.264): there they are the packets' ranks by timestamp, which is the same count for
    a file whose timestamps are all present and distinct, and is used only then.

    Construction checks the file and probes the container, raising VideoError for a
    missing, empty, non-video or unopenable file and for a file without a video
    stream. Decoding starts when iteration does; a video whose stream yields no
    frame raises VideoError before anything is yielded. If decoding breaks after
    some frames (a truncated or damaged file), iteration stops there, keeps the
    frames read, and logs a warning naming the video and how many frames were read:
    a partial clip is usable, and the warning makes the loss visible.

    Each iteration decodes the file afresh.

    Attributes:
        source_fps: the container's frame rate, known after construction; 0.0 if the
            container reports no usable rate (every frame is then kept, with a warning).
        num_frames: frames read so far in the current iteration, kept or not (None
            before the first iteration); after a full iteration it is the exact number
            of frames in the video, so the last Frame.index is num_frames - 1.
        declared_frames: the frame count the container declares, or an estimate from
            its duration; None if it gives neither. Only a hint (e.g. for progress bars).
    """

    def __init__(
        self,
        path: str,
        fps: float | None = None,
        name: str | None = None,
        *,
        shorter_side: int | None = None,
        _decoder: str | None = None,
    ):
        self.path = os.fspath(path)
        self.name = name if name is not None else self.path
        if fps is not None and not (
            isinstance(fps, numbers.Real) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0
        ):
            raise ValueError(f"fps must be a positive number or None, got {fps!r}")
        if shorter_side is not None and not (
            isinstance(shorter_side, numbers.Integral) and not isinstance(shorter_side, bool) and shorter_side > 0
        ):
            raise ValueError(f"shorter_side must be a positive whole number of pixels or None, got {shorter_side!r}")
        self.fps = fps
        self.shorter_side = shorter_side
        self._decoder_name = _decoder or DEFAULT_DECODER
        if self._decoder_name not in DECODERS:
            raise ValueError(f"unknown decoder {self._decoder_name!r}; expected one of {sorted(DECODERS)}")

        if not os.path.exists(self.path):
            raise VideoError(self.name, "does not exist")
        if not os.path.isfile(self.path):
            raise VideoError(self.name, "is not a file")
        if os.path.getsize(self.path) == 0:
            raise VideoError(self.name, "is empty (0 bytes)")
        probe = _probe(self.path, self.name)

        self._stream_index = probe.stream_index
        self._declared_exact = probe.declared_exact
        self.declared_frames = probe.declared_frames
        self.source_fps = float(probe.fps) if probe.fps is not None else 0.0
        if probe.fps is None and fps is not None:
            logger.warning(
                "Video %r reports no usable frame rate; keeping every frame instead of resampling to %s fps",
                self.name,
                fps,
            )
        self._ratio = _keep_ratio(fps, probe.fps)
        self.num_frames: int | None = None

    def __repr__(self) -> str:
        return f"VideoReader({self.name!r}, fps={self.fps!r}, source_fps={self.source_fps:g})"

    def __iter__(self) -> Iterator[Frame]:
        decoder = DECODERS[self._decoder_name](self.path, self._stream_index, shorter_side=self.shorter_side)
        self.num_frames = 0
        ratio = self._ratio
        frames = decoder.frames(None if ratio is None else lambda index: _is_kept(index, ratio))
        try:
            while True:
                try:
                    index, lazy = next(frames)
                except StopIteration:
                    break
                except DecodeError as err:
                    self._decoding_broke(str(err))
                    return
                self.num_frames = max(self.num_frames, index + 1)
                # lazy is None only for a frame the decoder left out because it is not kept.
                if lazy is None or not _is_kept(index, ratio):
                    continue
                try:
                    image = lazy()
                except DecodeError as err:
                    self._decoding_broke(str(err))
                    return
                yield Frame(index=index, image=image)
        finally:
            frames.close()
        self._check_complete()

    def _decoding_broke(self, reason: str) -> None:
        if self.num_frames == 0:
            raise VideoError(self.name, f"has a video stream but no frame could be decoded from it: {reason}")
        logger.warning(
            "Decoding video %r broke after %d frames (%s); keeping the frames read so far",
            self.name,
            self.num_frames,
            reason,
        )

    def _check_complete(self) -> None:
        if self.num_frames == 0:
            raise VideoError(self.name, "has a video stream but no frame could be decoded from it")
        declared = self.declared_frames
        if declared is None:
            return
        # An estimate from the duration can be off by a frame or two; a real shortfall
        # (a file cut short) is much larger.
        slack = 0 if self._declared_exact else max(2, declared // 20)
        if self.num_frames < declared - slack:
            logger.warning(
                "Video %r ended after %d frames but its container declares %d%s; the file may be truncated",
                self.name,
                self.num_frames,
                declared,
                "" if self._declared_exact else " (estimated from its duration)",
            )
