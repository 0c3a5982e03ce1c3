"""Dataset-wide runs (predict_dataset, evaluate_model): go on over the good items, report the bad.

The SDK runs predict_items page by page inside one execution; an error from one page would
abort the pages after it, and evaluate_model would never score. A DatasetRun collects each
page's failures instead, and the run's end reports them (log and return value). Only a run
in which every item failed is an error: there is nothing to keep or to score.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import types
from typing import Iterator, Sequence

from adapter.errors import MovinetError

logger = logging.getLogger(__name__)


class EveryItemFailed(MovinetError):
    """A dataset run in which no item could be processed."""


class DatasetRun:
    """The items one predict_dataset or evaluate_model run attempted, and those that failed."""

    def __init__(self, action: str):
        """Start a run.

        Args:
            action: what the run does, for messages ("prediction", "evaluation").
        """
        self.action = action
        self.attempted = 0
        self.failures: list[tuple[str, str]] = []

    def record(self, attempted: int, failures: Sequence[tuple[str, str]]) -> None:
        """Add one predict_items call: how many items it was given and which failed (name, reason).

        Args:
            attempted: items in the call.
            failures: (item name, reason) of each failed item.
        """
        self.attempted += attempted
        self.failures.extend(failures)
        for name, reason in failures:
            logger.warning("%s goes on without %s: %s", self.action.capitalize(), name, reason)

    def finish(self) -> dict:
        """End the run: log the summary; raise EveryItemFailed when items were attempted and none succeeded.

        Returns:
            {"items": attempted, "succeeded": count, "failed": [{"item": name, "reason": reason}, ...]}.
        """
        succeeded = self.attempted - len(self.failures)
        if self.attempted and succeeded <= 0:
            lines = "\n".join(f"- {name}: {reason}" for name, reason in self.failures)
            raise EveryItemFailed(f"{self.action.capitalize()} failed for every one of the {self.attempted} item(s):\n{lines}")
        if self.failures:
            logger.warning(
                "%s finished over %d of %d item(s); %d failed: %s",
                self.action.capitalize(),
                succeeded,
                self.attempted,
                len(self.failures),
                "; ".join(name for name, _ in self.failures),
            )
        else:
            logger.info("%s finished over all %d item(s)", self.action.capitalize(), self.attempted)
        return {
            "items": self.attempted,
            "succeeded": succeeded,
            "failed": [{"item": name, "reason": reason} for name, reason in self.failures],
        }


@contextlib.contextmanager
def progress_bars_on_terminal_only() -> Iterator[None]:
    """Within the block, the SDK's tqdm bars show only when standard output is a terminal.

    A service's log is not a terminal: there the bars would be carriage-return fragments,
    and the adapter logs a line per batch instead. The SDK calls tqdm.tqdm(...) through its
    module's tqdm name; tqdm's own disable=None is exactly "off unless a terminal".

    Returns:
        A context manager.
    """
    from dtlpy.ml import base_model_adapter as sdk

    original = sdk.tqdm
    sdk.tqdm = types.SimpleNamespace(tqdm=functools.partial(original.tqdm, disable=None))
    try:
        yield
    finally:
        sdk.tqdm = original
