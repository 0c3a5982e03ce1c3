"""Probability over time: a picture of what the model saw along one video.

x is the time in the source video (seconds); one line per class of the video-level top-k,
each step the class's probability in one clip (base) or window (stream), drawn over the
frames that clip or window stands for (the same tiling the temporal annotations use);
behind them, the temporal segments (each clip's top-1, equal neighbours merged) shaded; in
the title, the video-level top-k with their confidences.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from adapter.runtime.results import (  # Shading of the temporal segments: light enough for the lines to stay readable.
    Segment,
    VideoPrediction,
    temporal_ranges,
    top_k_labels,
)

SEGMENT_ALPHA = 0.15


def segment_edges(segments: Sequence[Segment], num_frames: int) -> list[int]:
    """Frame boundaries of the ranges that segments stand for, tiling 0..num_frames.

    Args:
        segments: the clips' or windows' segments, in any order.
        num_frames: frames in the source video.

    Returns:
        len(segments) + 1 increasing frame numbers: segment i covers [edges[i], edges[i + 1]).
    """
    firsts = sorted(segment.first_index for segment in segments)
    return [0, *firsts[1:], num_frames]


def probability_figure(
    prediction: VideoPrediction,
    labels: Sequence[str],
    *,
    num_frames: int,
    source_fps: float,
    top_k: int,
    title: str,
):
    """A matplotlib Figure of the top classes' probabilities over the video's time.

    Args:
        prediction: the video's prediction; every segment must carry its probabilities.
        labels: class names in the model's output order.
        num_frames: frames in the source video.
        source_fps: the source video's frame rate; 0 or less puts frame numbers on x instead.
        top_k: how many classes get a line (the video-level top-k).
        title: what the picture is of (e.g. the video's name); the top-k follow it.

    Returns:
        A matplotlib.figure.Figure (not attached to pyplot; save it with savefig).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    segments = sorted(prediction.segments, key=lambda segment: segment.first_index)
    missing = [segment.first_index for segment in segments if segment.probabilities is None]
    if not segments or missing:
        raise ValueError(f"every segment needs its probabilities to be plotted; frames {missing[:5]} have none")
    scale = 1.0 / source_fps if source_fps > 0 else 1.0
    edges = [edge * scale for edge in segment_edges(segments, num_frames)]
    top = top_k_labels(prediction.probabilities, labels, top_k)

    figure = Figure(figsize=(10, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    colours = {}
    for label, _ in top:
        values = [float(segment.probabilities[labels.index(label)]) for segment in segments]
        steps = axes.stairs(values, edges, label=label, linewidth=2, baseline=None)
        colours[label] = steps.get_edgecolor()
    for labelled in temporal_ranges(segments, labels, num_frames - 1):
        axes.axvspan(
            labelled.first_frame * scale,
            (labelled.last_frame + 1) * scale,
            color=colours.get(labelled.label, "grey"),
            alpha=SEGMENT_ALPHA,
            linewidth=0,
        )
    axes.set_xlim(edges[0], edges[-1])
    axes.set_ylim(-0.03, 1.03)  # lines at 0 and 1 stay visible
    axes.set_xlabel("time (s)" if source_fps > 0 else "frame")
    axes.set_ylabel("probability")
    axes.grid(True, alpha=0.3)
    # Outside the axes: Kinetics names are long, and lines run along 0 and 1.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    summary = ", ".join(f"{label} {confidence:.2f}" for label, confidence in top)
    axes.set_title(f"{title}\ntop-{len(top)}: {summary}", fontsize="medium")
    figure.tight_layout()
    return figure


def plot_filename(video_path: str, taken: set[str]) -> str:
    """A PNG name for video_path that no earlier video of the run took (same stem: -2, -3...).

    Args:
        video_path: the video's path.
        taken: names already used in this run; the returned name is added to it.

    Returns:
        The file name, e.g. "walk.png" or "walk-2.png".
    """
    stem = os.path.splitext(os.path.basename(video_path))[0] or "video"
    name, counter = f"{stem}.png", 1
    while name in taken:
        counter += 1
        name = f"{stem}-{counter}.png"
    taken.add(name)
    return name
