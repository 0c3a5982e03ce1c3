"""Clean temporal segments: per-clip (base) or per-window (stream) probabilities -> labelled frame ranges.

temporal_ranges (runtime.results) labels each clip with its own top-1 and merges equal
neighbours, so one noisy clip splits a long action in three. clean_temporal_ranges does, in order:

1. smoothing: each clip's probabilities become the mean of the clips that overlap a window of
   smoothing_seconds centred on its own centre (base) or ending at its own last frame (stream
   and watch: a causal window, only the past);
2. labelling: the smoothed top-1, or no label where its probability is under min_confidence;
3. runs: equal neighbours merge, stretched to tile the video as temporal_ranges does;
4. minimum length: while a run is shorter than min_segment_seconds (and there is more than
   one), the shortest joins the neighbour it fits best (the neighbour's class with the higher
   mean smoothed probability over the short run; a labelled neighbour before an unlabelled one);
5. each labelled run's confidence is the frame-weighted mean of its label's smoothed probability.
   Runs without a label make no range (a gap in the temporal annotations).

With every option off it gives exactly temporal_ranges' ranges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from adapter.runtime.results import Segment, temporal_ranges
from adapter.video.clips import LabelledRange


@dataclasses.dataclass(frozen=True)
class SegmentOptions:
    """The configuration's temporal segment keys (seconds are source time)."""

    smoothing_seconds: float = 0.0
    min_segment_seconds: float = 0.0
    min_confidence: float = 0.0
    causal: bool = False  # stream models: smooth over the past only

    @property
    def active(self) -> bool:
        return bool(self.smoothing_seconds or self.min_segment_seconds or self.min_confidence)

    @classmethod
    def from_config(cls, config) -> SegmentOptions:
        """The options a MovinetConfig sets (causal for stream models).

        Args:
            config: the MovinetConfig.
        Returns:
            The SegmentOptions.
        """
        return cls(
            smoothing_seconds=float(config.temporal_smoothing),
            min_segment_seconds=float(config.min_segment_seconds),
            min_confidence=float(config.segment_min_confidence),
            causal=config.model_mode == "stream",
        )


def smooth_probabilities(
    first: Sequence[int], last: Sequence[int], probabilities: np.ndarray, window_frames: float, causal: bool
) -> np.ndarray:
    """Each clip's probabilities averaged with its neighbours' over a window of source frames.

    Args:
        first, last: each clip's own first and last source frame, in time order.
        probabilities: (clips, classes).
        window_frames: the window's length in source frames (0: unchanged).
        causal: average the clips that overlap the window_frames up to this clip's end (the
            past only), instead of those overlapping a window of window_frames centred on it.
    Returns:
        (clips, classes) float32.
    """
    probabilities = np.asarray(probabilities, np.float32)
    if window_frames <= 0 or len(probabilities) < 2:
        return probabilities
    starts, ends = np.asarray(first, np.float64), np.asarray(last, np.float64)
    centres = (starts + ends) / 2
    smoothed = np.empty_like(probabilities)
    for i in range(len(probabilities)):
        if causal:
            members = (ends <= ends[i]) & (ends > ends[i] - window_frames)
        else:
            members = (starts <= centres[i] + window_frames / 2) & (ends >= centres[i] - window_frames / 2)
        members[i] = True
        smoothed[i] = probabilities[members].mean(axis=0)
    return smoothed


@dataclasses.dataclass
class _Run:
    label: int | None  # class index, None: under the confidence floor
    first: int
    last: int
    members: list[int]  # indices of the clips in it

    @property
    def frames(self) -> int:
        return self.last - self.first + 1


def clean_temporal_ranges(
    segments: Sequence[Segment],
    labels: Sequence[str],
    last_frame: int,
    source_fps: float,
    options: SegmentOptions,
) -> list[LabelledRange]:
    """Labelled frame ranges from clips' or windows' probabilities, smoothed and cleaned (module docstring).

    Args:
        segments: each clip's or window's Segment, with its probabilities.
        labels: the model's labels by class index.
        last_frame: the video's last source frame.
        source_fps: the video's frame rate (seconds -> source frames); 0 when unknown, then
            the frames the clips cover count as their span.
        options: the SegmentOptions.
    Returns:
        The ranges in time order, with their confidences; unlabelled spans are left out.
    """
    if not options.active:
        return temporal_ranges(segments, labels, last_frame)
    segments = sorted(segments, key=lambda segment: segment.first_index)
    if not segments:
        return []
    frames_per_second = source_fps if source_fps and source_fps > 0 else 1.0
    probabilities = np.stack([_probabilities_of(segment, len(labels)) for segment in segments])
    smoothed = smooth_probabilities(
        [s.first_index for s in segments],
        [s.last_index for s in segments],
        probabilities,
        options.smoothing_seconds * frames_per_second,
        options.causal,
    )
    # Spans tile the video as temporal_ranges': each clip from its first frame to the next one's.
    spans = [
        (0 if i == 0 else s.first_index, segments[i + 1].first_index - 1 if i + 1 < len(segments) else last_frame)
        for i, s in enumerate(segments)
    ]
    runs: list[_Run] = []
    for i, (first, last) in enumerate(spans):
        best = int(np.argmax(smoothed[i]))
        label = best if smoothed[i, best] >= options.min_confidence else None
        if runs and runs[-1].label == label:
            runs[-1].last = last
            runs[-1].members.append(i)
        else:
            runs.append(_Run(label, first, last, [i]))
    _join_short_runs(runs, smoothed, options.min_segment_seconds * frames_per_second)
    ranges = []
    for run in runs:
        if run.label is None:
            continue
        weights = np.array([spans[i][1] - spans[i][0] + 1 for i in run.members], np.float64)
        confidence = float(np.dot(weights, smoothed[run.members, run.label]) / weights.sum())
        ranges.append(LabelledRange(labels[run.label], run.first, run.last, confidence))
    return ranges


def _probabilities_of(segment: Segment, num_classes: int) -> np.ndarray:
    if segment.probabilities is not None:
        return np.asarray(segment.probabilities, np.float32)
    # A segment without its probabilities: all of its confidence on its class.
    one_hot = np.zeros(num_classes, np.float32)
    one_hot[segment.class_index] = segment.confidence
    return one_hot


def _join_short_runs(runs: list[_Run], smoothed: np.ndarray, min_frames: float) -> None:
    """Merge runs shorter than min_frames into their best-fitting neighbour, shortest first (in place)."""
    while len(runs) > 1:
        short = [i for i, run in enumerate(runs) if run.frames < min_frames]
        if not short:
            return
        i = min(short, key=lambda k: (runs[k].frames, k))
        run = runs[i]
        neighbours = [k for k in (i - 1, i + 1) if 0 <= k < len(runs)]

        def fit(k: int) -> tuple:
            label = runs[k].label
            if label is None:
                return (0, 0.0)  # a labelled neighbour first
            return (1, float(smoothed[run.members, label].mean()))

        target = max(neighbours, key=fit)  # ties: the earlier neighbour
        into = runs[target]
        into.first, into.last = min(into.first, run.first), max(into.last, run.last)
        into.members = sorted(into.members + run.members)
        del runs[i]
        # The absorbing run may now meet an equal neighbour on the other side.
        k = runs.index(into)
        for other in (k + 1, k - 1):
            if 0 <= other < len(runs) and runs[other].label == into.label:
                a, b = sorted((k, other))
                runs[a].last = runs[b].last
                runs[a].members = sorted(runs[a].members + runs[b].members)
                del runs[b]
                k = a
