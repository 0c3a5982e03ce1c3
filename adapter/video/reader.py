"""Video decoding stage: a video file in, the frames the model should see out.

A :class:`VideoReader` decodes a video as a stream and resamples it to a target
frame rate (MoViNet's published weights expect 5-12 fps, most uploads are 25-60
fps). Frames are yielded one at a time as BGR ``uint8`` arrays. Frames that the
resampling drops are never converted to arrays, and are decoded only where other
frames may need them (inter-coded video): H.264 pictures that no other picture refers
to are not decoded at all (video/decoders.py). Memory stays at a few frames
whatever the video's length, and the conversion cost is paid only for kept frames.

A video that cannot be used at all raises :class:`VideoError`, naming the video
and the reason, before any frame is yielded. A video that breaks after it has
produced frames (a truncated upload) is kept as far as it decoded, with a
warning: a clip that ends early is still a usable clip, and the warning keeps the
loss visible.

Decoding is done by FFmpeg through PyAV (video/decoders.py). PyAV tells a decoding
error from the end of the stream (OpenCV's grab() returns False for both), names the
codec error, gives the exact rational frame rate and lets the decoder leave pictures
out. OpenCV's ``VideoCapture`` remains as a second decoder for comparison
(``benchmarks/decode_backends.py``, figures in docs/benchmarks.md), and the tests keep the two
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

from adapter.core.errors import InputError
from adapter.video.decoders import DECODERS, DEFAULT_DECODER, DecodeError, ffmpeg_reason

logger = logging.getLogger(__name__)

MIME_PREFIX = "video/"

# A frame rate of this or above is not a frame rate but a container time base leaking
# through (1/1000 for Matroska, 1/90000 for MPEG-TS), so it is treated as unknown.
_MAX_PLAUSIBLE_FPS = 1000


def is_video_mimetype(mimetype: str | None) -> bool:
    """True for "video/..." mimetypes (case-insensitive); False for None and anything else."""
    return bool(mimetype) and mimetype.strip().lower().startswith(MIME_PREFIX)


class VideoError(InputError):
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
    # Presentation time, seconds since the video's first frame (None when the rate and timestamps are unknown).
    time: float | None = None


@dataclasses.dataclass(frozen=True)
class _Probe:
    stream_index: int
    fps: fractions.Fraction | None
    declared_frames: int | None
    # Whether declared_frames is the container's own count (exact) or duration x fps.
    declared_exact: bool
    # The container's duration in seconds (None if it gives none) and the stream's timestamp unit.
    duration: fractions.Fraction | None = None
    time_base: fractions.Fraction | None = None


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
        fps = stream_frame_rate(stream)
        duration = None
        if container.duration and container.duration > 0:
            duration = fractions.Fraction(container.duration, av.time_base)
        declared, exact = None, False
        if stream.frames and stream.frames > 0:
            declared, exact = int(stream.frames), True
        elif fps is not None and duration is not None:
            # Matroska/WebM do not store a frame count; estimate it from the duration.
            declared = round(duration * fps)
        time_base = fractions.Fraction(stream.time_base) if stream.time_base else None
        return _Probe(stream.index, fps, declared, exact, duration=duration, time_base=time_base)


def stream_frame_rate(stream) -> fractions.Fraction | None:
    """A PyAV video stream's frame rate (average, else guessed), or None when it gives no plausible one.

    Args:
        stream: an av.VideoStream.
    Returns:
        The rate as an exact fraction (30000/1001 for NTSC), or None.
    """
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and 0 < rate < _MAX_PLAUSIBLE_FPS:
            return fractions.Fraction(rate)
    return None


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


class TimeResampler:
    """Resampling by presentation time: keep the first frame shown at or after each target time k/fps.

    Frame times are seconds since the video's first frame. VideoReader (files) and LiveSource
    (watch) both resample with it, so a video keeps the same frames whichever reads it, and a
    variable-frame-rate video keeps one frame per 1/fps of its own time, wherever its rate changes.

    Timestamps are whole multiples of the stream's time base, so a constant-rate video's are
    rounded (Matroska: to the millisecond); a time within one time base of the source's frame
    grid (k/source_fps) is taken as that grid point, so such a video keeps exactly the frames
    its frame numbers say (frame i at i/source_fps), as an exact-timestamp video does.

    Args:
        fps: the rate to resample to; None keeps every frame.
        source_fps: the video's own rate, if known; a target at or above it keeps every frame
            (frames are never duplicated).
        time_base: the timestamps' unit, if known: how far a rounded timestamp can be from its frame's time.
    """

    def __init__(
        self,
        fps: float | None,
        source_fps: fractions.Fraction | None = None,
        time_base: fractions.Fraction | None = None,
    ):
        target = fractions.Fraction(fps).limit_denominator(1_000_000) if fps is not None else None
        self.target = target
        # The rate frames are dropped to; None when every frame is kept.
        self.rate = None if target is None or (source_fps is not None and target >= source_fps) else target
        self.source_fps = source_fps
        self.tolerance = time_base or fractions.Fraction(0)
        self._last_slot = -1

    @property
    def keeps_every_frame(self) -> bool:
        return self.rate is None

    def slot(self, seconds: fractions.Fraction) -> int:
        """The target slot k a frame shown at this time falls in: floor(seconds x fps), after snapping.

        Args:
            seconds: the frame's time since the first frame (a Fraction for exactness, or a float).
        Returns:
            k (each frame kept stands for the time k/fps).
        """
        seconds = fractions.Fraction(seconds)
        if self.source_fps:
            nearest = round(seconds * self.source_fps)
            on_grid = fractions.Fraction(nearest) / self.source_fps
            if abs(seconds - on_grid) <= self.tolerance:
                seconds = on_grid
        return math.floor(seconds * self.target)

    def starts_slot(self, seconds, previous_seconds) -> bool:
        """Whether a frame is the first of its slot, given the time of the frame shown just before it.

        Stateless, for decisions made out of display order (the decoder leaving pictures out).

        Args:
            seconds: the frame's time.
            previous_seconds: the previous frame's time in display order; None for the first frame.
        Returns:
            True when the frame is kept.
        """
        if self.rate is None or previous_seconds is None:
            return True
        return self.slot(seconds) > self.slot(previous_seconds)

    def keep(self, seconds) -> int | None:
        """The slot a frame at this time fills when it is kept (frames in display order), else None.

        Args:
            seconds: the frame's time; frames must come in display order.
        Returns:
            The slot, or None when the slot is already taken. When every frame is kept, the slot
            of a frame's time at fps, moved on to the next free one if taken (no fps: a running count).
        """
        if self.rate is None:
            at = math.floor(fractions.Fraction(seconds) * self.target) if self.target is not None else -1
            self._last_slot = max(at, self._last_slot + 1)
            return self._last_slot
        slot = self.slot(seconds)
        if slot <= self._last_slot:
            return None
        self._last_slot = slot
        return slot


class VideoReader:
    """Streams the frames of one video, resampled to ``fps``.

    ``path``: a local video file. ``fps``: the frame rate to resample to; None keeps
    every frame, and so does an ``fps`` at or above the video's own rate (frames are
    never duplicated). ``name``: how errors and warnings refer to the video (default:
    ``path``); pass the platform's item name so users recognise it. ``shorter_side``:
    the frames come out resized so their shorter side is this (the model's imgz; see
    adapter/video/preprocessing.py), resized while they are converted from the decoded
    picture so the full-size frame is never made; None keeps the video's size.

    Resampling keeps a frame when it is the first frame shown at or after a target time
    k/fps (k = 0, 1, 2, ...), by presentation time (TimeResampler, which watch's LiveSource
    uses too): a frame's time is its timestamp minus the first frame's, so a video that
    starts late counts from its first frame, and a variable-frame-rate video keeps one
    frame per 1/fps of its own time wherever its rate changes. A frame without a timestamp
    (and every frame of the cv2 decoder) is taken to be at index/source_fps; for a
    constant-rate video that is where its timestamps put it, so both decoders keep the same
    frames. Frame.index is the frame's display position: counted as frames come out of the
    decoder, except where the decoder leaves pictures out (resampled H.264), where it is
    the packet's rank by timestamp (the same count for a file whose timestamps are all
    present and distinct, and used only then).

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
        self._source_rate = probe.fps
        self._time_base = probe.time_base
        self._duration = probe.duration
        self.num_frames: int | None = None
        self._last_times: tuple[fractions.Fraction | None, fractions.Fraction | None] = (None, None)

    @property
    def expected_kept_frames(self) -> int | None:
        """The frames iteration is expected to yield (after resampling), from declared_frames; None when unknown.

        Only a hint, as declared_frames is: decoding may end a frame or two off, or early.
        """
        if not self.declared_frames:
            return None
        resampler = self.resampler()
        if resampler.keeps_every_frame:
            return self.declared_frames
        # A constant-rate video's last frame is at (n-1)/source_fps: the slots 0..its slot are kept.
        return resampler.slot(fractions.Fraction(self.declared_frames - 1) / self._source_rate) + 1

    def __repr__(self) -> str:
        return f"VideoReader({self.name!r}, fps={self.fps!r}, source_fps={self.source_fps:g})"

    def resampler(self) -> TimeResampler:
        """A fresh TimeResampler for one pass over this video (keeps every frame without a known rate).

        Returns:
            The resampler VideoReader's iteration uses.
        """
        if self._source_rate is None:
            return TimeResampler(None)
        return TimeResampler(self.fps, self._source_rate, self._time_base)

    def _frame_time(self, index: int, seconds: fractions.Fraction | None) -> fractions.Fraction | None:
        if seconds is not None:
            return seconds
        return fractions.Fraction(index) / self._source_rate if self._source_rate else None

    def __iter__(self) -> Iterator[Frame]:
        decoder = DECODERS[self._decoder_name](self.path, self._stream_index, shorter_side=self.shorter_side)
        self.num_frames = 0
        self._last_times = (None, None)
        resampler = self.resampler()
        frames = decoder.timed_frames(None if resampler.keeps_every_frame else resampler.starts_slot)
        try:
            while True:
                try:
                    index, seconds, lazy = next(frames)
                except StopIteration:
                    break
                except DecodeError as err:
                    self._decoding_broke(str(err))
                    return
                self.num_frames = max(self.num_frames, index + 1)
                # lazy is None only for a frame the decoder left out because it is not kept.
                if lazy is None:
                    continue
                seconds = self._frame_time(index, seconds)
                self._last_times = (self._last_times[1], seconds)
                if resampler.keep(seconds if seconds is not None else 0) is None:
                    continue
                try:
                    image = lazy()
                except DecodeError as err:
                    self._decoding_broke(str(err))
                    return
                yield Frame(index=index, image=image, time=None if seconds is None else float(seconds))
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
        if self._declared_exact:
            if self.num_frames < declared:
                logger.warning(
                    "Video %r ended after %d frames but its container declares %d; the file may be truncated",
                    self.name,
                    self.num_frames,
                    declared,
                )
            return
        # No frame count in the container (Matroska/WebM): compare times, not counts, since a
        # variable-rate video has fewer frames than duration x average rate. The last frame lasts
        # about as long as the gap before it; a real shortfall (a file cut short) is much larger
        # than the 5% (at least two frames) of slack.
        previous, last = self._last_times
        if last is None or self._duration is None:
            return
        last_duration = last - previous if previous is not None else 0
        slack = max(2 / self._source_rate, self._duration / 20)
        if last + last_duration < self._duration - slack:
            logger.warning(
                "Video %r ended after %d frames (%.2f s) but its container declares %.2f s; the file may be truncated",
                self.name,
                self.num_frames,
                float(last + last_duration),
                float(self._duration),
            )
