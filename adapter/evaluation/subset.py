"""The videos of a subset in prepare_data's layout that can be evaluated, and those left out with the reason."""

from __future__ import annotations

import dataclasses
import os

from adapter.datasets.layout import (
    SKIP_BAD_JSON,
    SKIP_NO_CLASS_ANNOTATION,
    SKIP_NOT_A_VIDEO,
    DatasetError,
    annotated_items,
)
from adapter.video.reader import is_video_mimetype

MISSING_VIDEO = "its video is not in the subset's items/ folder"


@dataclasses.dataclass
class EvaluationItem:
    name: str  # the item's remote path
    video_path: str | None
    class_ranges: list[tuple[str, object, object]]  # (label, frame, endFrame) as annotated


def evaluation_items(data_path: str | os.PathLike, subset: str) -> tuple[list[EvaluationItem], list[tuple[str, str]]]:
    """The subset's videos with class annotations, and the items left out with the reason.

    Args:
        data_path: the folder in prepare_data's layout (<data_path>/<subset>/items and json).
        subset: the subset to evaluate, e.g. "validation".

    Returns:
        (items to predict, [(item name, why it is left out)]).

    Raises:
        DatasetError: the subset has no json/ folder, or no item with a class annotation.
    """
    annotated, unreadable = annotated_items(data_path, subset)
    items, skipped = [], []
    for item in annotated:
        if item.refused is not None:
            skipped.append((item.name, item.refused))
        elif item.mimetype is not None and not is_video_mimetype(item.mimetype):
            skipped.append((item.name, f"{SKIP_NOT_A_VIDEO} (mimetype {item.mimetype!r})"))
        elif not item.class_ranges:
            skipped.append((item.name, SKIP_NO_CLASS_ANNOTATION))
        else:
            items.append(EvaluationItem(item.name, item.video_path, item.class_ranges))
    if unreadable:
        skipped.append((f"{unreadable[SKIP_BAD_JSON]} JSON file(s) (named in the log)", SKIP_BAD_JSON))
    if not items:
        raise DatasetError(
            f"Subset {subset!r} of {data_path} has no video item with a class annotation to evaluate "
            f"({len(annotated)} item JSON(s) read)"
        )
    return items, skipped
