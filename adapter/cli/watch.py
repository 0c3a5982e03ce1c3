"""Watch: a live source's frames -> the stream model frame by frame -> one result per period.

Each kept frame is a window of one frame for the stream classifier (whichever runtime the
configuration selected), so a frame's result is ready one model step after it arrives.
Results are grouped into periods of ``every`` seconds of source time; a period is reported
as soon as its last frame has run:

    {"start": 0.0, "end": 1.0, "frames": 5,
     "top_k": [{"label": "...", "probability": 0.41}, ...],
     "top1": {"label": "...", "probability": 0.37}}

``start``/``end``: the period, seconds since the stream's first frame (the last period ends
at its last frame's slot end). ``frames``: frames the model saw in it. ``top_k``: the
stream model's output after the period's last frame (it pools every frame seen so far,
what predict reports for a whole video). ``top1``: the period's own label, the mean of
its frames' own probabilities; with ``temporal_smoothing`` (seconds) the mean also takes in
the frames of that many seconds before the period's last frame (a causal window: nothing
later than the period is waited for).
"""

from __future__ import annotations

import collections
import dataclasses
import fractions
import math
from collections.abc import Iterable, Iterator

import numpy as np

from adapter.runtime.results import top_k_labels
from adapter.video.clips import Clip
from adapter.video.live import LiveFrame


@dataclasses.dataclass(frozen=True)
class PeriodResult:
    """What the model saw in one period of the source."""

    start: float
    end: float
    frames: int
    top_k: list[tuple[str, float]]  # over everything seen so far, best first
    top1: tuple[str, float]  # the period's own

    def to_json(self) -> dict:
        """The JSON line's fields.

        Returns:
            A dict of start, end, frames, top_k and top1 (labels with probabilities).
        """
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "frames": self.frames,
            "top_k": [{"label": label, "probability": round(p, 6)} for label, p in self.top_k],
            "top1": {"label": self.top1[0], "probability": round(self.top1[1], 6)},
        }


@dataclasses.dataclass
class _OpenPeriod:
    """The period frames are being added to: its own probabilities' sum and the stream's output so far."""

    index: int
    own_sum: np.ndarray
    first_slot: int = 0
    frames: int = 0
    last_slot: int = -1
    so_far: np.ndarray | None = None

    def add(self, slot: int, own: np.ndarray, so_far: np.ndarray) -> None:
        self.own_sum = self.own_sum + own
        self.frames += 1
        self.last_slot, self.so_far = slot, so_far


class _Periods:
    """Which period a slot falls in, on exact fractions (5 fps, every 0.2 s: no float drift)."""

    def __init__(self, fps: float, every: float):
        self.fps = fractions.Fraction(fps).limit_denominator(1_000_000)
        self.every = fractions.Fraction(every).limit_denominator(1_000_000)

    def of(self, slot: int) -> int:
        return math.floor(slot / self.fps / self.every)

    def last_slot(self, period: int) -> int:
        """The last slot whose time k/fps is before the period's end."""
        return math.ceil((period + 1) * self.every * self.fps) - 1


def warm_up(classifier, imgz: int) -> None:
    """Run one blank frame through the classifier, so its first call (tracing, allocation) is paid
    before the source opens and not by a live stream's first frames, which would queue up behind it.

    Args:
        classifier: a stream classifier; each segments() call starts from fresh states, so this
            one leaves nothing behind.
        imgz: the model's frame size.
    Returns:
        None.
    """
    blank = Clip(np.zeros((1, imgz, imgz, 3), np.float32), 0, 0)
    for _ in classifier.segments([blank]):
        pass


def watch_periods(
    frames: Iterable[LiveFrame],
    classifier,
    labels: list[str],
    *,
    fps: float,
    every: float = 1.0,
    top_k: int = 3,
    smoothing_seconds: float = 0.0,
) -> Iterator[PeriodResult]:
    """Run the stream classifier frame by frame and yield one result per period, as each closes.

    Args:
        frames: preprocessed frames in order, each with its slot at ``fps``; may be endless.
        classifier: a stream classifier (its segments() takes windows and yields
            (window's segment, probabilities so far) per window).
        labels: the model's labels, by class index.
        fps: the rate the frames' slots count in.
        every: the period length, seconds of source time.
        top_k: labels per result.
        smoothing_seconds: top1 also averages the frames of this many seconds up to the
            period's last frame (0: the period's own frames only).
    Returns:
        An iterator of PeriodResult; the last, possibly partial, period when the frames end.
    """
    if not (every > 0 and math.isfinite(every)):
        raise ValueError(f"every must be a positive number of seconds, got {every!r}")
    periods = _Periods(fps, every)
    windows = (Clip(frame.image[None], frame.slot, frame.slot) for frame in frames)
    current: _OpenPeriod | None = None
    window_slots = smoothing_seconds * fps
    # The latest frames' own probabilities, enough for the smoothing window and one period.
    recent = collections.deque(maxlen=math.ceil(window_slots) + math.ceil(every * fps) + 2)

    def close(period: _OpenPeriod) -> PeriodResult:
        start = float(period.index * periods.every)
        end = float(min((period.index + 1) * periods.every, (period.last_slot + 1) / periods.fps))
        own = period.own_sum / period.frames
        if window_slots > 0:  # causal: the frames of the window up to the period's last one
            since = min(period.first_slot, period.last_slot - window_slots + 1)
            own = np.mean([p for slot, p in recent if since <= slot <= period.last_slot], axis=0)
        # Ties: the lower class index first, as argmax.
        return PeriodResult(
            start, end, period.frames, top_k_labels(period.so_far, labels, top_k), top_k_labels(own, labels, 1)[0]
        )

    for segment, so_far in classifier.segments(windows):
        slot = segment.first_index
        index = periods.of(slot)
        if current is not None and current.index != index:  # frames were missing up to here
            yield close(current)
            current = None
        if current is None:
            current = _OpenPeriod(index, np.zeros_like(segment.probabilities), first_slot=slot)
        if window_slots > 0:
            recent.append((slot, segment.probabilities))
        current.add(slot, segment.probabilities, so_far)
        if slot >= periods.last_slot(index):
            yield close(current)
            current = None
    if current is not None:
        yield close(current)
