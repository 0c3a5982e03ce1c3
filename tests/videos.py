"""Fixture videos for the tests: real files in real containers, written on the fly.

Every writer returns the path it wrote. The container is chosen by the file
extension (.mp4, .mov, .avi, .mkv, .webm), so tests exercise the same demuxers
and decoders that user uploads go through.

Patterns (all frames are BGR, the cv2 convention):

* ``"moving_square"``: a bright square on a dark, fixed, textured background,
  moving by ``direction`` = (dx, dy) pixels per frame and wrapping around. The
  background texture and the square's start position depend only on ``seed``,
  so two videos with the same seed and different directions differ in the
  motion alone (frame 0 is identical). Motion-only classification datasets rely
  on that. :func:`square_position` gives where the square is in any frame.
* ``"noise"``: independent uniform random frames drawn from ``seed``.
* ``"color_bars"``: three vertical bands of pure blue, green and red (in that
  order, left to right), for checking the channel order of decoded frames.
"""

from __future__ import annotations

import fractions
import os
import struct
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

PATTERNS = ("moving_square", "noise", "color_bars")

# Extension -> (writer, codec). cv2 writes what it can; PyAV writes WebM, since
# OpenCV's FFMPEG writer maps its fourccs poorly onto the WebM muxer (it warns
# that the tag is not supported and falls back), and VP9 is what WebM uploads use.
_CONTAINERS = {
    ".mp4": ("cv2", "mp4v"),
    ".mov": ("cv2", "mp4v"),
    ".mkv": ("cv2", "mp4v"),
    ".avi": ("cv2", "MJPG"),
    ".webm": ("av", "libvpx-vp9"),
    ".ts": ("av", "libx264"),
}

# Background intensity range of "moving_square" and the square's intensity:
# far apart, so the square survives lossy compression and is easy to locate.
_BACKGROUND_MAX = 60
_SQUARE_VALUE = 230


def square_size(width: int, height: int) -> int:
    """Side of the square drawn by the "moving_square" pattern."""
    return max(2, min(width, height) // 4)


def square_position(
    frame_index: int, *, width: int, height: int, direction: tuple[int, int] = (1, 0), seed: int = 0
) -> tuple[int, int]:
    """(x, y) of the square's top-left corner in frame ``frame_index`` (wrapped into the frame)."""
    rng = np.random.default_rng(seed)
    rng.integers(0, _BACKGROUND_MAX + 1, size=(height, width, 3))  # the background draw comes first
    x0 = int(rng.integers(0, width))
    y0 = int(rng.integers(0, height))
    dx, dy = direction
    return (x0 + dx * frame_index) % width, (y0 + dy * frame_index) % height


def generate_frames(
    *,
    frames: int = 16,
    width: int = 64,
    height: int = 48,
    pattern: str = "moving_square",
    direction: tuple[int, int] = (1, 0),
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """The H x W x 3 uint8 BGR frames that :func:`write_video` encodes."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; expected one of {PATTERNS}")
    if frames < 1 or width < 2 or height < 2:
        raise ValueError(f"need frames >= 1 and a size of at least 2x2, got {frames} frames of {width}x{height}")
    rng = np.random.default_rng(seed)
    if pattern == "noise":
        for _ in range(frames):
            yield rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        return
    if pattern == "color_bars":
        image = np.zeros((height, width, 3), np.uint8)
        bounds = np.linspace(0, width, 4).round().astype(int)
        for channel in range(3):  # 0 = blue, 1 = green, 2 = red in BGR
            image[:, bounds[channel] : bounds[channel + 1], channel] = 255
        for _ in range(frames):
            yield image.copy()
        return
    # moving_square: keep the draw order in step with square_position().
    background = rng.integers(0, _BACKGROUND_MAX + 1, size=(height, width, 3)).astype(np.uint8)
    # A smooth, low-frequency texture compresses without smearing into the square.
    background = cv2.GaussianBlur(background, (0, 0), sigmaX=1.0)
    side = square_size(width, height)
    for i in range(frames):
        x, y = square_position(i, width=width, height=height, direction=direction, seed=seed)
        image = background.copy()
        rows = (y + np.arange(side)) % height
        cols = (x + np.arange(side)) % width
        image[np.ix_(rows, cols)] = _SQUARE_VALUE
        yield image


def locate_square(image: np.ndarray) -> tuple[int, int]:
    """(x, y) top-left corner of the bright square in a decoded "moving_square" frame.

    Handles a square that wraps around the frame edge.
    """
    gray = image.astype(np.float32).mean(axis=2)
    threshold = (_BACKGROUND_MAX + _SQUARE_VALUE) / 2

    def start(profile: np.ndarray) -> int:
        bright = profile > threshold
        if not bright.any():
            raise AssertionError("no bright square found in the frame")
        # First bright cell whose (circular) predecessor is dark.
        starts = np.flatnonzero(bright & ~np.roll(bright, 1))
        return int(starts[0]) if starts.size else 0

    return start(gray.max(axis=0)), start(gray.max(axis=1))


def write_video(
    path: str | os.PathLike,
    *,
    frames: int = 16,
    fps: float = 10.0,
    width: int = 64,
    height: int = 48,
    pattern: str = "moving_square",
    direction: tuple[int, int] = (1, 0),
    seed: int = 0,
    codec: str | None = None,
    rotation: int = 0,
    codec_options: dict[str, str] | None = None,
) -> str:
    """Write a real video file; its container follows the extension of ``path``.

    ``codec`` overrides the default codec: a PyAV encoder name such as "libx264"
    or "libvpx-vp9" is written with PyAV, anything else is taken as a cv2 fourcc
    such as "MJPG".
    ``rotation`` (counter-clockwise degrees, a multiple of 90) stores a display
    rotation the way phones do: the pixels are written unrotated (width x height)
    and players turn them; it needs PyAV, so the default codec becomes libx264.
    ``codec_options`` go to a PyAV encoder (e.g. {"bf": "0"} for libx264 without B-frames).
    Odd sizes are not supported by the 4:2:0 encoders; use even width and height.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _CONTAINERS:
        raise ValueError(f"unsupported video extension {ext!r}; expected one of {sorted(_CONTAINERS)}")
    writer, default_codec = _CONTAINERS[ext]
    if codec is not None:
        import av

        writer = "av" if codec in av.codecs_available else "cv2"
    if rotation % 360 and writer == "cv2":
        if codec is not None:
            raise ValueError(f"rotation needs a PyAV codec, not the cv2 fourcc {codec!r}")
        writer, codec = "av", "libx264"
    codec = codec or default_codec
    images = generate_frames(frames=frames, width=width, height=height, pattern=pattern, direction=direction, seed=seed)
    if writer == "cv2":
        write_frames(path, images, fps=fps, width=width, height=height, fourcc=codec)
    else:
        _write_av(path, images, codec, fps, width, height, rotation, codec_options)
    return path


def write_frames(
    path: str, images: Iterable[np.ndarray], *, fps: float, width: int, height: int, fourcc: str = "MJPG"
) -> str:
    """Encode BGR frames with cv2.VideoWriter (MJPEG by default: keeps sharp edges)."""
    out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
    if not out.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {fourcc} to {path}")
    try:
        for image in images:
            out.write(image)
    finally:
        out.release()
    return path


def _write_av(
    path: str,
    images: Iterator[np.ndarray],
    codec: str,
    fps: float,
    width: int,
    height: int,
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> None:
    import av

    rate = fractions.Fraction(fps).limit_denominator(100_000)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if codec == "libvpx-vp9":
            # Fast settings: these are tiny test clips, not a quality benchmark.
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        if options:
            stream.options = {**stream.options, **options}
        if rotation % 360:
            stream.set_display_rotation(rotation % 360)
        for image in images:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_variable_rate(
    path: str | os.PathLike,
    times: Iterable[float],
    *,
    width: int = 64,
    height: int = 48,
    direction: tuple[int, int] = (3, 0),
    codec: str = "libx264",
    nominal_fps: int = 30,
    codec_options: dict[str, str] | None = None,
) -> str:
    """A variable-frame-rate video: frame i ("moving_square", square at square_position(i)) shown at times[i] s.

    The timestamps are written explicitly, in the container's usual unit (Matroska/WebM: 1 ms,
    rounded as their muxers do; others: 1/15360 s); nominal_fps is the rate the stream declares.
    """
    import av

    path = os.fspath(path)
    times = list(times)
    millisecond = path.lower().endswith((".mkv", ".webm"))
    time_base = fractions.Fraction(1, 1000) if millisecond else fractions.Fraction(1, 15360)
    images = generate_frames(frames=len(times), width=width, height=height, direction=direction)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=nominal_fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        if codec_options:
            stream.options = dict(codec_options)
        for seconds, image in zip(times, images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(fractions.Fraction(seconds) / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_audio_only(
    path: str | os.PathLike, *, seconds: float = 1.0, sample_rate: int = 16_000, cover_art: bool = False
) -> str:
    """Write an audio-only file: a sine tone as AAC in MP4 (.mp4 or .m4a).

    ``cover_art`` adds an album picture the way music files carry one: a one-frame
    MJPEG stream marked ``attached_pic``, which FFmpeg lists as a video stream.
    """
    import av

    path = os.fspath(path)
    samples = int(seconds * sample_rate)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / sample_rate)).astype(np.float32)
    with av.open(path, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        if cover_art:
            cover = container.add_stream("mjpeg", rate=1)
            cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
            cover.disposition = av.stream.Disposition.attached_pic
            picture = next(generate_frames(frames=1, width=32, height=32))
            container.mux(cover.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
            container.mux(cover.encode(None))
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples, frame_size):
            chunk = tone[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_text_as_video(path: str | os.PathLike) -> str:
    """Write a plain text file (under whatever video-looking name the caller picks)."""
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write("This is not a video, whatever its name says.\n" * 20)
    return path


def write_empty(path: str | os.PathLike) -> str:
    """Write a zero-byte file."""
    path = os.fspath(path)
    open(path, "wb").close()
    return path


def write_truncated(src_video_path: str | os.PathLike, dst_path: str | os.PathLike, keep_fraction: float = 0.3) -> str:
    """Copy the first ``keep_fraction`` of ``src_video_path``'s bytes to ``dst_path``.

    What this does to a video depends on where the container keeps its index:
    cv2's .mp4/.mov keep it (the moov atom) at the end, so they cannot be
    opened at all; .avi/.mkv/.webm open and decode the frames before the cut.
    """
    if not 0 <= keep_fraction < 1:
        raise ValueError(f"keep_fraction must be in [0, 1), got {keep_fraction}")
    src_video_path, dst_path = os.fspath(src_video_path), os.fspath(dst_path)
    with open(src_video_path, "rb") as f:
        data = f.read()
    with open(dst_path, "wb") as f:
        f.write(data[: int(len(data) * keep_fraction)])
    return dst_path


def write_no_decodable_frames(path: str | os.PathLike, *, frames: int = 10) -> str:
    """Write an .mp4 whose container is intact but whose video frames cannot be decoded.

    A valid MPEG-4 video is written with cv2, then the payload of its media data
    box (``mdat``, where the coded frames live) is overwritten with zeros, leaving
    the file headers and the sample index (``moov``) untouched: the file opens, has
    a video stream with the right frame count and rate, and every packet is garbage
    to the decoder.
    """
    path = os.fspath(path)
    if not path.lower().endswith((".mp4", ".mov")):
        raise ValueError(f"write_no_decodable_frames writes MP4/MOV only, got {path!r}")
    write_video(path, frames=frames, codec="mp4v")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        offset, found = 0, False
        while offset + 8 <= len(data):
            size, kind = struct.unpack(">I4s", data[offset : offset + 8])
            header = 8
            if size == 1:  # 64-bit box size follows the type
                size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
                header = 16
            elif size == 0:  # box runs to the end of the file
                size = len(data) - offset
            if kind == b"mdat":
                data[offset + header : offset + size] = bytes(size - header)
                found = True
            offset += size
        if not found:
            raise RuntimeError(f"no mdat box in {path}")
        f.seek(0)
        f.write(data)
    return path


# MPEG-TS carries its payload in fixed 188-byte packets, each starting with this byte.
TS_PACKET_SIZE = 188
_TS_SYNC = 0x47


def mpegts_bytes(
    *,
    frames: int = 40,
    fps: float = 10.0,
    width: int = 64,
    height: int = 48,
    pattern: str = "moving_square",
    seed: int = 0,
) -> bytes:
    """An H.264 MPEG-TS stream, as a live encoder sends it (no B-frames: each frame decodes on arrival)."""
    import io

    import av

    buffer = io.BytesIO()
    rate = fractions.Fraction(fps).limit_denominator(100_000)
    with av.open(buffer, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(max(1, round(fps)))}
        for image in generate_frames(frames=frames, width=width, height=height, pattern=pattern, seed=seed):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def mark_ts_packets_corrupt(data: bytes, start_fraction: float, count: int = 3) -> bytes:
    """Damage `count` transport packets from start_fraction of the stream on, as a lossy link does.

    Each is flagged with the transport error indicator (what a receiver's demodulator sets) and its
    payload is scrambled, so the demuxer marks the packet that carries it corrupt.
    """
    if len(data) % TS_PACKET_SIZE or data[0] != _TS_SYNC:
        raise ValueError("not an MPEG-TS stream of whole 188-byte packets")
    damaged = bytearray(data)
    first = int(len(data) // TS_PACKET_SIZE * start_fraction)
    rng = np.random.default_rng(first)
    for packet in range(first, first + count):
        offset = packet * TS_PACKET_SIZE
        damaged[offset + 1] |= 0x80  # transport_error_indicator
        damaged[offset + 4 : offset + TS_PACKET_SIZE] = rng.integers(
            0, 256, TS_PACKET_SIZE - 4, dtype=np.uint8
        ).tobytes()
    return bytes(damaged)


def write_switching_video(
    path: str | os.PathLike,
    parts: Iterable[tuple[tuple[int, int], int]],
    *,
    fps: float = 10.0,
    width: int = 48,
    height: int = 48,
    seed: int = 0,
) -> list[tuple[int, int]]:
    """A "moving_square" video whose motion switches: parts is [(direction, frames)] in order.

    The background is the same throughout (one seed) and the square goes on from where it
    was, so only its motion changes at each switch ((0, 0): it stands still). Written as
    MJPEG .avi (sharp edges, every frame a key frame).

    Returns:
        Each part's (first frame, last frame), the ground truth of its switch times.
    """
    # The background and first position of "moving_square" with this seed.
    rng = np.random.default_rng(seed)
    background = rng.integers(0, _BACKGROUND_MAX + 1, size=(height, width, 3)).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), sigmaX=1.0)
    x, y = square_position(0, width=width, height=height, seed=seed)
    side = square_size(width, height)

    def frames():
        nonlocal x, y
        for (dx, dy), count in parts:
            for _ in range(count):
                image = background.copy()
                image[np.ix_((y + np.arange(side)) % height, (x + np.arange(side)) % width)] = _SQUARE_VALUE
                yield image
                x, y = (x + dx) % width, (y + dy) % height

    parts = list(parts)
    bounds, start = [], 0
    for _, count in parts:
        bounds.append((start, start + count - 1))
        start += count
    write_frames(os.fspath(path), frames(), fps=fps, width=width, height=height)
    return bounds


def generate_wide_action_frames(
    *,
    frames: int,
    width: int,
    height: int,
    region: int,
    direction: tuple[int, int],
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Wide frames (width >= 3 x height) whose action happens in one third only.

    A static textured background over the whole frame; a bright square moves by direction
    per frame inside third `region` (0 left, 1 centre, 2 right), wrapping within it. A
    centre crop sees region 1 only, so the action of regions 0 and 2 is cut off by it.
    """
    if width < 3 * height:
        raise ValueError(f"need width >= 3 x height for three thirds, got {width}x{height}")
    rng = np.random.default_rng(seed)
    background = rng.integers(0, _BACKGROUND_MAX + 1, size=(height, width, 3)).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), sigmaX=1.0)
    third = width // 3
    left = region * third
    side = square_size(third, height)
    x0, y0 = int(rng.integers(0, third)), int(rng.integers(0, height))
    dx, dy = direction
    for i in range(frames):
        image = background.copy()
        rows = (y0 + dy * i + np.arange(side)) % height
        cols = left + (x0 + dx * i + np.arange(side)) % third
        image[np.ix_(rows, cols)] = _SQUARE_VALUE
        yield image
