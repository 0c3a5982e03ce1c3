"""Probabilities -> labelled ranges: top-k ordering, tiling and merging of temporal ranges."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.platform.annotations import LabelledRange, replaceable
from adapter.runtime.results import Segment, temporal_ranges, top_k_labels

LABELS = ["walk", "run", "jump", "swim"]


def test_top_k_orders_by_probability_and_never_exceeds_the_label_count():
    probabilities = np.array([0.1, 0.5, 0.15, 0.25])

    assert top_k_labels(probabilities, LABELS, 3) == [("run", 0.5), ("swim", 0.25), ("jump", 0.15)]
    assert [label for label, _ in top_k_labels(probabilities, LABELS, 10)] == ["run", "swim", "jump", "walk"]


def test_ranges_tile_the_video_and_equal_neighbours_merge_with_frame_weighted_confidence():
    # Sampled clips at 5 fps of a 30 fps video: they own frames from their first sampled frame on.
    segments = [
        Segment(first_index=0, last_index=18, class_index=0, confidence=0.9),
        Segment(first_index=24, last_index=42, class_index=0, confidence=0.6),
        Segment(first_index=48, last_index=66, class_index=2, confidence=0.7),
    ]

    ranges = temporal_ranges(segments, LABELS, last_frame=70)

    # walk: frames 0-23 (24 frames at 0.9) and 24-47 (24 frames at 0.6) -> one range at 0.75.
    assert ranges == [LabelledRange("walk", 0, 47, pytest.approx(0.75)), LabelledRange("jump", 48, 70, 0.7)]


def test_the_first_range_starts_at_frame_zero_even_if_its_first_sample_does_not():
    ranges = temporal_ranges([Segment(3, 9, 1, 0.4)], LABELS, last_frame=11)

    assert ranges == [LabelledRange("run", 0, 11, 0.4)]


UPLOADED_AT = "2026-11-30T10:00:00.000Z"
BOT = "movinet-service-bot@bot.dataloop.ai"


def stored(**fields) -> dict:
    """A model's prediction as the platform stores it, with the given fields changed."""
    prediction = {
        "creator": BOT,
        "createdAt": UPLOADED_AT,
        "updatedBy": BOT,
        "updatedAt": UPLOADED_AT,
        "metadata": {"system": {"model": {"model_id": "model-1", "name": "movinet", "confidence": 0.4}}},
    }
    return {**prediction, **fields}


@pytest.mark.parametrize(
    ("fields", "replaceable_now"),
    [
        ({}, True),  # as uploaded
        ({"updatedAt": "2026-11-30T10:00:01.500Z"}, True),  # times set a moment apart by the upload
        ({"updatedBy": "annotator@example.com", "updatedAt": "2026-11-30T10:00:01.000Z"}, False),
        ({"updatedAt": "2026-11-30T10:30:00.000Z"}, False),  # the same account changed it later
        ({"createdAt": None, "updatedAt": None}, True),  # no times: the account alone decides
        ({"metadata": {"system": {"model": {"model_id": "other", "name": "movinet"}}}}, False),  # a namesake's
        ({"metadata": {"system": {"model": {"model_id": "model-1", "name": "movinet-evaluation"}}}}, False),
        ({"metadata": {}}, False),  # a person's own annotation
    ],
)
def test_only_this_models_unchanged_predictions_are_replaceable(fields, replaceable_now):
    assert replaceable(stored(**fields), "movinet", "model-1") is replaceable_now


def test_min_confidence_leaves_the_video_and_unsure_spans_without_a_label():
    from adapter.platform.annotations import build_annotations
    from adapter.platform.items import local_item
    from adapter.runtime.results import Scoring, VideoPrediction

    segments = [Segment(0, 18, 0, 0.9), Segment(24, 42, 1, 0.45), Segment(48, 66, 2, 0.8)]
    unsure = VideoPrediction(np.array([0.4, 0.3, 0.2, 0.1], np.float32), segments)
    item = local_item("/videos/v.mp4", 30.0)

    def labelled(scoring):
        collection = build_annotations(
            unsure, LABELS, item=item, num_frames=71, top_k=2, temporal=True, scoring=scoring
        ).to_json()["annotations"]
        return [(a["metadata"]["user"]["movinet"]["level"], a["label"]) for a in collection]

    # Without the key: exactly the top-k and every span, as before.
    assert (
        labelled(None)
        == labelled(Scoring())
        == [
            ("video", "walk"),
            ("video", "run"),
            ("segment", "walk"),
            ("segment", "run"),
            ("segment", "jump"),
        ]
    )
    # The video's best is 0.4: no class; the 0.45 span loses its label, the others keep theirs.
    assert labelled(Scoring(min_confidence=0.5)) == [("segment", "walk"), ("segment", "jump")]
