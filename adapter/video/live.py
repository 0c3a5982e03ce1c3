"""Live sources: a stream FFmpeg opens (network, capture device, standard input, a file) -> frames as they arrive.

:class:`LiveSource` differs from :class:`adapter.video.VideoReader` in what live input needs:

* it opens anything FFmpeg opens (``rtsp://``, ``tcp://``, ``udp://``, ``http(s)://``, a
  capture device, ``-`` for standard input) and never probes for a length;
* it resamples by timestamps (seconds since the stream's first frame) with VideoReader's
  TimeResampler, so a file gives the frames `predict` keeps, whatever its frame rate does;
* a damaged packet (flagged corrupt by the demuxer, or refused by the decoder) is logged
  with the source's name and skipped: the stream goes on;
* a source that sends nothing for ``stall_timeout`` seconds ends the stream, with the
  reason in :attr:`LiveSource.end_reason`.

Decoding runs in a background thread that hands frames over through a queue of one or
two frames, so the stream is never buffered, a stall is noticed while FFmpeg is blocked in
a read, and Ctrl-C reaches the main thread at once. Frames are converted the way
VideoReader converts them (BGR, display rotation applied, resized in the same pass when asked).
"""

from __future__ import annotations

import dataclasses
import fractions
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from adapter.video.decoders import ffmpeg_reason, pyav_converter
from adapter.video.reader import TimeResampler, VideoError, stream_frame_rate, video_streams

logger = logging.getLogger(__name__)

STDIN = "-"

# Why a stream ended (LiveSource.end_reason).
END_OF_STREAM = "end of stream"
STALLED = "stalled"
FAILED = "source failed"
STOPPED = "stopped"

# FFmpeg reads 5 s of a stream by default to learn its codecs before the first frame comes
# out; a live stream would start that late. One second finds the video stream's parameters.
_OPEN_OPTIONS = {"analyzeduration": "1000000"}

# Frames handed from the decoding thread to the consumer: one being used, one ready.
_HANDOVER_FRAMES = 1


@dataclasses.dataclass(frozen=True)
class LiveFrame:
    """One frame kept by the resampling."""

    # Target-rate slot: the frame stands for time slot / fps (seconds since the stream's first frame).
    slot: int
    # Its own time, seconds since the stream's first frame.
    time: float
    # What the source's transform made of the BGR H x W x 3 uint8 image (the image itself by default).
    image: np.ndarray


def ffmpeg_url(source: str) -> str:
    """The URL FFmpeg opens for a source as the user writes it ("-" is standard input).

    Args:
        source: a file path, an FFmpeg URL or device, or "-".
    Returns:
        The URL for av.open.
    """
    return "pipe:0" if source == STDIN else source


def source_name(source: str) -> str:
    """How logs and errors name a source ("-" reads as "<stdin>").

    Args:
        source: as the user wrote it.
    Returns:
        A readable name.
    """
    return "<stdin>" if source == STDIN else source


class LiveSource:
    """The frames of a live source, resampled to ``fps`` by their timestamps, as they arrive.

    Iterate once. Iteration ends at the end of the stream, when the source stalls longer
    than ``stall_timeout`` seconds, when it fails for good, or after :meth:`stop`;
    :attr:`end_reason` and :attr:`end_detail` say which. A source that cannot be opened
    raises VideoError from the iteration.

    Args:
        source: a file path, an FFmpeg URL or capture device, or "-" for standard input.
        fps: the rate to resample to; None keeps every frame.
        stall_timeout: seconds without any data from the source after which it counts as stalled.
        transform: applied to each kept BGR image in the decoding thread (e.g. the model's preprocessing).
        input_format: FFmpeg's demuxer name, for inputs it cannot guess (e.g. "v4l2", "mpegts").
        shorter_side: resize each kept frame to this shorter side while converting it (before
            ``transform``), as VideoReader does; None keeps the source's size.
    """

    def __init__(
        self,
        source: str,
        fps: float | None,
        *,
        stall_timeout: float = 10.0,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        input_format: str | None = None,
        shorter_side: int | None = None,
    ):
        if not (isinstance(stall_timeout, (int, float)) and stall_timeout > 0 and math.isfinite(stall_timeout)):
            raise ValueError(f"stall_timeout must be a positive number of seconds, got {stall_timeout!r}")
        self.source = source
        self.name = source_name(source)
        self.fps = fps
        self.stall_timeout = float(stall_timeout)
        self.input_format = input_format
        self._transform = transform
        self.shorter_side = shorter_side
        self.end_reason: str | None = None
        self.end_detail = ""
        self.corrupt_packets = 0
        self.frames_decoded = 0
        self._stop = threading.Event()
        self._frames: queue.Queue = queue.Queue(maxsize=_HANDOVER_FRAMES)
        self._last_activity = time.monotonic()

    def stop(self) -> None:
        """Ask the iteration to end after the current frame (e.g. on Ctrl-C)."""
        self._stop.set()

    def __iter__(self) -> Iterator[LiveFrame]:
        self._last_activity = time.monotonic()
        thread = threading.Thread(target=self._decode, name=f"live-source {self.name}", daemon=True)
        thread.start()
        try:
            yield from self._handed_over()
        finally:
            self._stop.set()  # the consumer left (or the stream ended): the thread stops at its next frame

    def _handed_over(self) -> Iterator[LiveFrame]:
        while True:
            try:
                kind, value = self._frames.get(timeout=min(0.2, self.stall_timeout))
            except queue.Empty:
                if self._stop.is_set():
                    self._end(STOPPED, "")
                    return
                silent = time.monotonic() - self._last_activity
                if silent > self.stall_timeout:
                    # The decoding thread may be blocked in a read it cannot leave; it is a
                    # daemon and stops at its next packet.
                    self._stop.set()
                    self._end(STALLED, f"no data for {silent:.1f} s (stall timeout {self.stall_timeout:g} s)")
                    return
                continue
            if kind == "frame":
                yield value
                if self._stop.is_set():
                    self._end(STOPPED, "")
                    return
            elif kind == "error":
                raise value
            else:
                self._end(*value)
                return

    def _end(self, reason: str, detail: str) -> None:
        if self.end_reason is None:
            self.end_reason, self.end_detail = reason, detail

    def _put(self, item) -> bool:
        """Hand an item to the consumer; False once it has stopped listening."""
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.2)
            except queue.Full:
                continue
            self._last_activity = time.monotonic()
            return True
        return False

    def _decode(self) -> None:
        import av

        try:
            # FFmpeg's own read timeout ends a blocked network read; the consumer's watchdog
            # covers inputs FFmpeg cannot interrupt (pipes).
            container = av.open(
                ffmpeg_url(self.source),
                format=self.input_format,
                options=_OPEN_OPTIONS,
                timeout=(self.stall_timeout, self.stall_timeout),
            )
        except av.error.ExitError:  # FFmpeg's open timeout fired
            self._put(
                ("end", (STALLED, f"nothing received within {self.stall_timeout:g} s of opening (stall timeout)"))
            )
            return
        except av.error.FFmpegError as err:
            self._put(("error", VideoError(self.name, f"cannot be opened: {ffmpeg_reason(err)}")))
            return
        try:
            self._put(("end", self._demux(container)))
        except Exception as err:  # hand any surprise to the consumer instead of dying silently
            self._put(("error", err))
        finally:
            container.close()

    def _demux(self, container) -> tuple[str, str]:
        """Decode until the stream ends; returns (end reason, detail)."""
        import av
        from av.video.reformatter import VideoReformatter

        streams = video_streams(container)
        if not streams:
            return FAILED, "it has no video stream"
        stream = streams[0]
        # Frame threads hold frames back; a live frame should come out as soon as it is decoded.
        stream.thread_type = "SLICE"
        rate = stream_frame_rate(stream)
        time_base = fractions.Fraction(stream.time_base) if stream.time_base else None
        resampler = TimeResampler(self.fps, rate, time_base)
        origin = None  # the first frame's pts: times count from it
        packets = container.demux(stream)
        reformatter = VideoReformatter()
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return END_OF_STREAM, ""
            except av.error.ExitError:  # FFmpeg's read timeout fired
                return STALLED, f"no data for {self.stall_timeout:g} s (stall timeout {self.stall_timeout:g} s)"
            except av.error.EOFError:
                return END_OF_STREAM, ""
            except av.error.FFmpegError as err:
                return FAILED, ffmpeg_reason(err)
            if self._stop.is_set():
                return STOPPED, ""
            self._last_activity = time.monotonic()
            if packet.is_corrupt:
                self.corrupt_packets += 1
                at = f" at {float(packet.pts * packet.time_base):.2f} s" if packet.pts is not None else ""
                logger.warning("Source %r: skipped a corrupt packet%s; watching on", self.name, at)
                continue
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as err:
                logger.warning(
                    "Source %r: a packet could not be decoded (%s); watching on", self.name, ffmpeg_reason(err)
                )
                continue
            for frame in decoded:
                if frame.pts is not None and time_base is not None:
                    origin = frame.pts if origin is None else origin
                    seconds = (frame.pts - origin) * time_base
                else:  # no timestamp: count frames at the stream's rate
                    seconds = fractions.Fraction(self.frames_decoded) / (rate or 1)
                self.frames_decoded += 1
                slot = resampler.keep(seconds)
                if slot is None:
                    continue
                image = pyav_converter(frame, self.shorter_side, reformatter)()
                if self._transform is not None:
                    image = self._transform(image)
                if not self._put(("frame", LiveFrame(slot, float(seconds), image))):
                    return STOPPED, ""
