"""What one SDK call (one execution) records, kept apart from every other call on the same adapter.

The agent builds one adapter per replica and runs its executions on a thread pool of
runtime.concurrency threads, so with concurrency above 1 several predict_items,
predict_dataset or evaluate_model calls use the same adapter object at once. Their failures,
failed items, dataset run and evaluation identity therefore live in a Call held by a context
variable: each execution thread sees only its own. The SDK's own pool threads
(prepare_item_func, the metadata stamp, the annotation upload) start with an empty context;
what they need travels with the predictions instead (platform.annotations marks them).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator

from adapter.platform.dataset_runs import DatasetRun


@dataclasses.dataclass
class Call:
    """One call's state: the videos that failed in it, and the run it is part of."""

    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (video name, reason)
    failed_item_ids: set[str] = dataclasses.field(default_factory=set)
    dataset_run: DatasetRun | None = None  # set within predict_dataset and evaluate_model
    evaluation_name: str | None = None  # the name evaluation predictions carry (platform.annotations)


_current: contextvars.ContextVar[Call | None] = contextvars.ContextVar("movinet_adapter_call", default=None)


def current_call() -> Call | None:
    """The Call of the innermost call_scope in this thread (context), or None outside any."""
    return _current.get()


@contextlib.contextmanager
def call_scope(**fields) -> Iterator[Call]:
    """A fresh Call for the block, inheriting the enclosing one's dataset run and evaluation name.

    Args:
        fields: Call fields to set (dataset_run, evaluation_name).

    Returns:
        A context manager giving the Call.
    """
    outer = _current.get()
    call = Call(
        dataset_run=outer.dataset_run if outer is not None else None,
        evaluation_name=outer.evaluation_name if outer is not None else None,
    )
    for name, value in fields.items():
        setattr(call, name, value)
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)
