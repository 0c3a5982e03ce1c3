"""Decoders for video/reader.py: FFmpeg through PyAV (the default) and OpenCV.

A decoder turns a video file into ``(index, frame)`` pairs in display order, where
``frame`` converts the decoded picture to a BGR ``uint8`` array when called (only the
frames the resampling keeps are converted; a decoder given ``shorter_side`` resizes in
that same step) and ``index`` is the frame's place in the
video's own numbering. Errors from the codec or the demuxer raise
:class:`DecodeError`; :class:`adapter.video.reader.VideoReader` turns them into messages
naming the video.

The PyAV decoder is told which indices are wanted. For H.264 it then leaves out the
pictures that are neither wanted nor used as a reference by any other picture (see
video/h264.py): their packets are never decoded, and such a frame comes out as
``(index, None)``. The frames that are decoded are bit for bit the same as in a full
decode; the saving is in docs/benchmarks.md (Decoding backends).
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Callable, Iterator

import numpy as np

from adapter.core.devices import usable_cores
from adapter.video.h264 import length_prefix_size, slice_reference_flags
from adapter.video.preprocessing import resize_shorter_side, shorter_side_size

logger = logging.getLogger(__name__)


class DecodeError(Exception):
    """Raised by a decoder when the codec or demuxer fails (not at a clean end of stream)."""


# A decoded frame that has not been converted yet: calling it returns the BGR image. It
# is only valid until the decoder is advanced to the next frame.
LazyFrame = Callable[[], np.ndarray]
# Which frame indices the caller will convert; the others may be left undecoded.
Wanted = Callable[[int], bool]
# The same by presentation time: (the frame's seconds, the previous frame's in display order or None) -> kept.
WantedAt = Callable[[fractions.Fraction, "fractions.Fraction | None"], bool]


def ffmpeg_reason(err: Exception) -> str:
    """The reason an FFmpeg error gives, without the errno and file name.

    Args:
        err: an av.error.FFmpegError (or any exception).
    Returns:
        The strerror (or str(err)), without a trailing full stop.
    """
    reason = getattr(err, "strerror", None) or str(err)
    return str(reason).rstrip(".")


def pyav_converter(frame, shorter_side: int | None = None, reformatter=None) -> LazyFrame:
    """A LazyFrame converting one decoded av.VideoFrame to BGR, turned for display.

    Args:
        frame: an av.VideoFrame.
        shorter_side: resize in the same pass so the displayed shorter side is this many
            pixels (preprocessing.shorter_side_size); None keeps the decoded size.
        reformatter: an av.video.reformatter.VideoReformatter to reuse (it keeps FFmpeg's
            scaler set up between frames of one size); None makes one.
    Returns:
        A function returning the H x W x 3 uint8 BGR image.
    """

    def convert() -> np.ndarray:
        # Phone videos store a display rotation (counter-clockwise degrees) instead of
        # rotating the pixels; apply it so the frames look as players show them
        # (OpenCV does the same by default). Mirroring flags are rare and ignored.
        quarter_turns = round((frame.rotation or 0) / 90) % 4
        if shorter_side is None:
            image = frame.to_ndarray(format="bgr24")
        else:
            image = _scaled_bgr(frame, shorter_side, quarter_turns % 2 == 1, reformatter)
        if quarter_turns:
            image = np.ascontiguousarray(np.rot90(image, quarter_turns))
        return image

    return convert


def _scaled_bgr(frame, shorter_side: int, turned: bool, reformatter) -> np.ndarray:
    """The picture resized and converted to BGR by FFmpeg's scaler in one pass (before any rotation)."""
    from av.video.reformatter import VideoReformatter

    # The size is chosen on the displayed picture; a quarter turn swaps its sides.
    if turned:
        height, width = shorter_side_size(frame.height, frame.width, shorter_side)
    else:
        width, height = shorter_side_size(frame.width, frame.height, shorter_side)
    if (width, height) == (frame.width, frame.height):
        return frame.to_ndarray(format="bgr24")  # already the size: exactly the unresized conversion
    # Averaging when shrinking, as preprocessing's cv2 path does (INTER_AREA): the same
    # pictures within rounding and chroma sampling (tests/video/test_preprocessing.py).
    interpolation = _SHRINK if shorter_side < min(frame.width, frame.height) else _ENLARGE
    reformatter = reformatter or VideoReformatter()
    scaled = reformatter.reformat(frame, width, height, "bgr24", interpolation=interpolation)
    return scaled.to_ndarray()


# FFmpeg scaler algorithms: area averaging to shrink, bilinear to enlarge.
_SHRINK = "AREA"
_ENLARGE = "BILINEAR"


def threading_for(slices_per_picture: int, cores: int) -> str:
    """FFmpeg's threading for a stream: slice threads when the slices can keep every core busy.

    Slice threads decode the slices of one picture in parallel and frame threads
    several pictures at once; frame threads wait on each other's reference rows, so
    when there are as many slices as cores, slice threading is the faster one
    (docs/benchmarks.md), and otherwise only frame threads use every core.

    Args:
        slices_per_picture: coded slices in the stream's first picture (0 if unknown).
        cores: CPU cores this process may use.
    Returns:
        "SLICE" or "AUTO" (frame threads where the codec has them).
    """
    return "SLICE" if slices_per_picture >= max(cores, 2) else "AUTO"


def _display_timestamps(path: str, stream_index: int) -> list[int] | None:
    """The packets' timestamps in display order (sorted), read without decoding.

    Returns None (decode everything) when the timestamps cannot say it: a missing or
    repeated pts, or a demuxing error.
    """
    import av

    timestamps = []
    try:
        with av.open(path) as container:
            for packet in container.demux(container.streams[stream_index]):
                # Packets an edit list cuts are decoded (others may refer to them) but
                # not shown, so they have no display position.
                if packet.size and not packet.is_discard:
                    timestamps.append(packet.pts)
    except av.error.FFmpegError:
        return None
    if None in timestamps or len(set(timestamps)) != len(timestamps):
        return None
    return sorted(timestamps)


class PyAVDecoder:
    """Decodes with PyAV (FFmpeg); frames are converted to ndarrays only on request.

    Args:
        path: the video file.
        stream_index: the container's index of the video stream to decode.
        thread_type: FFmpeg's threading ("AUTO", "SLICE", "FRAME", "NONE"); None picks
            it from the stream with threading_for().
        skip_unreferenced: leave out H.264 pictures that are neither wanted nor
            referenced (False decodes every picture, for comparisons).
        shorter_side: frames come out resized to this shorter side, resized and converted
            in one pass (pyav_converter); None keeps the decoded size.
    """

    name = "pyav"

    def __init__(
        self,
        path: str,
        stream_index: int = 0,
        *,
        thread_type: str | None = None,
        skip_unreferenced: bool = True,
        shorter_side: int | None = None,
    ):
        self.path = path
        self.stream_index = stream_index
        self.thread_type = thread_type
        self.skip_unreferenced = skip_unreferenced
        self.shorter_side = shorter_side

    def frames(self, wanted: Wanted | None = None) -> Iterator[tuple[int, LazyFrame | None]]:
        """Yields (index, LazyFrame) for decoded frames and (index, None) for left-out ones.

        Args:
            wanted: which indices the caller converts; None means all of them.
        Returns:
            An iterator over the video's frames; decoded frames come in display order.
        Raises:
            DecodeError: the file cannot be opened, or demuxing or decoding failed.
        """
        for index, _, lazy in self._frames(None if wanted is None else lambda rank, times: wanted(rank)):
            yield index, lazy

    def timed_frames(
        self, wanted_at: WantedAt | None = None
    ) -> Iterator[tuple[int, fractions.Fraction | None, LazyFrame | None]]:
        """As frames(), with each frame's presentation time, and "wanted" decided by time.

        Args:
            wanted_at: (a frame's seconds, the previous frame's seconds in display order or None
                for the first) -> whether the caller converts it; None means all of them.
        Returns:
            An iterator of (index, seconds since the first frame or None without a timestamp,
            LazyFrame or None for a left-out frame).
        Raises:
            DecodeError: the file cannot be opened, or demuxing or decoding failed.
        """

        def by_time(rank: int, times: list[fractions.Fraction]) -> bool:
            return wanted_at(times[rank], times[rank - 1] if rank > 0 else None)

        return self._frames(None if wanted_at is None else by_time)

    def _frames(self, wanted_rank) -> Iterator[tuple[int, fractions.Fraction | None, LazyFrame | None]]:
        import av
        from av.video.reformatter import VideoReformatter

        try:
            container = av.open(self.path)
        except av.error.FFmpegError as err:
            raise DecodeError(f"cannot be opened: {ffmpeg_reason(err)}") from err
        reformatter = VideoReformatter()
        try:
            stream = container.streams[self.stream_index]
            time_base = fractions.Fraction(stream.time_base) if stream.time_base else None
            h264 = stream.codec_context.name == "h264"
            prefix_size = length_prefix_size(stream.codec_context.extradata) if h264 else None
            ranks, times = None, None
            origin = None  # the first frame's pts: times count from it
            if h264 and wanted_rank is not None and self.skip_unreferenced and time_base is not None:
                timestamps = _display_timestamps(self.path, self.stream_index)
                if timestamps is not None:
                    ranks = {pts: rank for rank, pts in enumerate(timestamps)}
                    times = [(pts - timestamps[0]) * time_base for pts in timestamps]
                    origin = timestamps[0]
            opened = False
            previous = -1
            # demux() ends with an empty packet whose decode() flushes the decoder,
            # so frames held back for reordering or by frame threads come out too.
            for packet in container.demux(stream):
                # The slices are read for the threading choice and for pictures that may be left out.
                reads_slices = h264 and packet.size and (not opened or ranks is not None)
                slices = slice_reference_flags(bytes(packet), prefix_size) if reads_slices else []
                if not opened:
                    stream.thread_type = self.thread_type or threading_for(len(slices), usable_cores())
                    opened = True
                if ranks is not None and slices and not any(slices) and not packet.is_discard:
                    rank = ranks.get(packet.pts)
                    if rank is not None and not wanted_rank(rank, times):
                        yield rank, times[rank], None
                        continue
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as err:
                    raise DecodeError(ffmpeg_reason(err)) from err
                for frame in decoded:
                    index = ranks.get(frame.pts, previous + 1) if ranks is not None else previous + 1
                    previous = index
                    seconds = None
                    if frame.pts is not None and time_base is not None:
                        origin = frame.pts if origin is None else origin
                        seconds = (frame.pts - origin) * time_base
                    yield index, seconds, pyav_converter(frame, self.shorter_side, reformatter)
        except av.error.FFmpegError as err:  # demuxing (reading the file) failed
            raise DecodeError(ffmpeg_reason(err)) from err
        finally:
            container.close()


class Cv2Decoder:
    """Decodes with OpenCV's VideoCapture: grab() decodes, retrieve() converts.

    OpenCV cannot tell a decoding error from the end of the stream (grab() returns
    False for both); VideoReader compares the frame count with the one the
    container declares to catch a video that stopped early. OpenCV picks the video
    stream itself, so ``stream_index`` is not used, and every frame is decoded.
    ``shorter_side`` resizes each converted frame with preprocessing.resize_shorter_side.
    """

    name = "cv2"

    def __init__(self, path: str, stream_index: int = 0, *, shorter_side: int | None = None):
        self.path = path
        self.shorter_side = shorter_side

    def frames(self, wanted: Wanted | None = None) -> Iterator[tuple[int, LazyFrame]]:
        """Yields (index, LazyFrame) for every frame; ``wanted`` is not used.

        Args:
            wanted: ignored (grab() decodes every frame anyway).
        Returns:
            An iterator over the video's frames in display order.
        Raises:
            DecodeError: the file cannot be opened, or a frame cannot be converted.
        """
        import cv2

        capture = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG)
        try:
            if not capture.isOpened():
                raise DecodeError("cannot be opened by OpenCV")

            def convert() -> np.ndarray:
                ok, image = capture.retrieve()
                if not ok or image is None:
                    raise DecodeError("a decoded frame could not be converted")
                return image if self.shorter_side is None else resize_shorter_side(image, self.shorter_side)

            index = 0
            while capture.grab():
                yield index, convert
                index += 1
        finally:
            capture.release()

    def timed_frames(self, wanted_at: WantedAt | None = None) -> Iterator[tuple[int, None, LazyFrame]]:
        """As frames(), with no time (OpenCV's positions are rounded milliseconds): VideoReader
        then takes frame i to be at i/source_fps.

        Args:
            wanted_at: ignored (every frame is decoded anyway).
        Returns:
            An iterator of (index, None, LazyFrame).
        """
        for index, lazy in self.frames():
            yield index, None, lazy


DECODERS = {"pyav": PyAVDecoder, "cv2": Cv2Decoder}
DEFAULT_DECODER = "pyav"
