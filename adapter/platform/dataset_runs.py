"""Dataset-wide runs (predict_dataset, evaluate_model): go on over the good items, report the bad.

The SDK runs predict_items page by page inside one execution; an error from one page would
abort the pages after it, and evaluate_model would never score. A DatasetRun collects each
page's failures instead, and the run's end reports them (log and return value). Only a run
in which every item failed is an error: there is nothing to keep or to score. A failed item
keeps the annotations it had, which are not this run's predictions, so evaluation scores the
run's items without the failed ones (scoring_filters), from a download of their annotations
into a fresh folder (downloading_annotations_to).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import importlib
import json
import logging
import pathlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from adapter.core.errors import MovinetError
from adapter.core.files import write_json
from adapter.platform.items import video_seconds

logger = logging.getLogger(__name__)


class EveryItemFailed(MovinetError):
    """A dataset run in which no item could be processed."""


class ChildrenUnfinished(MovinetError):
    """A dataset run whose child executions had not all finished when the parent's wait ended."""


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
        self.failed_item_ids: set[str] = set()

    def record(self, attempted: int, failures: Sequence[tuple[str, str]], failed_item_ids: Iterable[str] = ()) -> None:
        """Add one predict_items call: how many items it was given and which failed (name, reason).

        Args:
            attempted: items in the call.
            failures: (item name, reason) of each failed item.
            failed_item_ids: the platform ids of those items.
        """
        self.attempted += attempted
        self.failures.extend(failures)
        self.failed_item_ids.update(failed_item_ids)
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
            raise EveryItemFailed(
                f"{self.action.capitalize()} failed for every one of the {self.attempted} item(s):\n{lines}"
            )
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

    def scoring_filters(self, filters):
        """The run's item filters without the items that failed, for scoring.

        A failed item kept its earlier annotations of this model (another run's, maybe another
        top_k or weights); scoring them as this run's predictions would report a result the run
        did not produce.

        Args:
            filters: the run's dl.Filters, a DQL dict, or None (every item).

        Returns:
            filters itself when nothing failed, else a dl.Filters of its query AND id not in the failed ids.
        """
        import dtlpy as dl

        if not self.failed_item_ids:
            return filters
        if filters is None:
            filters = dl.Filters()
        elif isinstance(filters, dict):  # a DQL query, or only its "filter" part, as the SDK accepts it
            filters = dl.Filters(custom_filter=copy.deepcopy(filters))
        query = copy.deepcopy(filters.prepare())
        excluded = {"id": {"$nin": sorted(self.failed_item_ids)}}
        query["filter"] = {"$and": [query.get("filter") or {}, excluded]}
        return dl.Filters(custom_filter=query)


def downloading_annotations_to(dataset, folder: str, unscored: Callable[[dict], bool] | None = None):
    """A copy of the dataset entity whose download_annotations writes into folder.

    dtlpymetrics' create_model_score downloads the filtered items' annotations to the SDK's
    default folder for the dataset and scores every item JSON it finds there, so files left by
    an earlier run (other filters, items that failed now) would be scored too. Given an
    empty folder, it scores exactly what this download brings.

    Args:
        dataset: the dl.Dataset being evaluated.
        folder: an empty folder.
        unscored: which annotations (platform JSON) to leave out of the downloaded item files,
            so they count neither as ground truth nor as predictions.

    Returns:
        A shallow copy of dataset (same id, items, client) with that one method bound to folder.
    """

    def download_annotations(*args, **kwargs):
        path = dataset.download_annotations(*args, **{**kwargs, "local_path": folder})
        if unscored is not None:
            _leave_out(path, unscored)
        return path

    scoring_dataset = copy.copy(dataset)
    scoring_dataset.download_annotations = download_annotations
    return scoring_dataset


SUBSET_LIMIT_KEY = "predict_embed_subset_limit"
# The unit the presets' subset limits count in: one-minute videos (core.presets).
LIMIT_VIDEO_SECONDS = 60.0


def subset_limit_for(limit: int, durations: Iterable[float | None]) -> int:
    """Videos per child execution for a run: the limit counts one-minute videos, so longer ones lower it.

    The SDK splits a dataset by item count, in id order, so any chunk may hold the longest
    videos: the limit is sized on the longest one known. Videos without a duration count as one
    minute.

    Args:
        limit: the configuration's predict_embed_subset_limit (one-minute videos).
        durations: the run's videos' durations in seconds (None: unknown).

    Returns:
        max(1, floor(limit * 60 / longest)) when the longest exceeds a minute, else limit.
    """
    longest = max((seconds for seconds in durations if seconds is not None), default=LIMIT_VIDEO_SECONDS)
    if longest <= LIMIT_VIDEO_SECONDS:
        return limit
    return max(1, int(limit * LIMIT_VIDEO_SECONDS // longest))


@contextlib.contextmanager
def subset_limit_sized_by_duration(model_entity, dataset, filters, limit: int) -> Iterator[int]:
    """Within the block, the model's predict_embed_subset_limit is the run's (subset_limit_for).

    The SDK reads the limit from the model's configuration; it is changed in the entity's own
    dict, without model.update, so the platform's copy (and the children's) keeps the
    configured limit, and restored at the end. One run per replica at a time (the deploy
    service's concurrency is 1), so no other run reads it meanwhile.

    Args:
        model_entity: the dl.Model whose configuration the SDK reads.
        dataset: the dl.Dataset of the run.
        filters: the run's dl.Filters, a DQL dict, or None.
        limit: the configured limit.

    Returns:
        A context manager giving the run's limit.
    """
    import dtlpy as dl

    if filters is None:
        filters = dl.Filters()
    elif isinstance(filters, dict):
        filters = dl.Filters(custom_filter=copy.deepcopy(filters))
    query = copy.deepcopy(filters.prepare())
    query["pageSize"] = 1000
    durations = [
        video_seconds(item) for page in dataset.items.list(filters=dl.Filters(custom_filter=query)) for item in page
    ]
    run_limit = subset_limit_for(limit, durations)
    configuration = model_entity.configuration
    had_key, previous = SUBSET_LIMIT_KEY in configuration, configuration.get(SUBSET_LIMIT_KEY)
    if run_limit != limit:
        logger.info(
            "The longest video of this run is %.0f s: %d per execution instead of %d one-minute videos",
            max(seconds for seconds in durations if seconds is not None),
            run_limit,
            limit,
        )
    configuration[SUBSET_LIMIT_KEY] = run_limit
    try:
        yield run_limit
    finally:
        if had_key:
            configuration[SUBSET_LIMIT_KEY] = previous
        else:
            configuration.pop(SUBSET_LIMIT_KEY, None)


class ChildExecutions:
    """The child executions a dataset run's parent creates (the SDK's models.predict/embed per chunk).

    The SDK does not return them; within the block, the model entity's models repository
    records each execution it creates, with the chunk's filters, for the calling thread only.
    report_into() then reads each child's report (its execution output) or, for a child that
    left none, its items and status, into the parent's DatasetRun.
    """

    def __init__(self, model_entity):
        self.model_entity = model_entity
        self.created: list[tuple[object, object]] = []  # (dl.Execution, dl.Filters of its chunk)
        self._thread = threading.get_ident()

    @contextlib.contextmanager
    def recording(self) -> Iterator[ChildExecutions]:
        models = self.model_entity.models
        originals = {name: getattr(models, name) for name in ("predict", "embed")}

        def recorder(original):
            @functools.wraps(original)
            def create(*args, **kwargs):
                execution = original(*args, **kwargs)
                if threading.get_ident() == self._thread and execution is not None:
                    self.created.append((execution, kwargs.get("filters")))
                return execution

            return create

        for name, original in originals.items():
            setattr(models, name, recorder(original))
        try:
            yield self
        finally:
            for name in originals:
                # The instance attributes go; the repository's own methods show again.
                models.__dict__.pop(name, None)

    def report_into(self, run: DatasetRun, project, dataset) -> None:
        """Add every child's items and failures to run; raise ChildrenUnfinished for children still running.

        Args:
            run: the parent's DatasetRun.
            project: the dl.Project the executions are in (the SDK's adapter.project).
            dataset: the run's dl.Dataset (lists a chunk's items for a child that left no report).
        """
        unfinished = []
        for created, filters in self.created:
            execution = project.executions.get(execution_id=created.id)
            status = (execution.latest_status or {}).get("status")
            report = execution.output if isinstance(execution.output, dict) else {}
            if execution.in_progress():
                unfinished.append((execution.id, len(self._chunk_items(dataset, filters))))
            elif status == "success" and isinstance(report.get("items"), int):
                failed = [(entry["item"], entry["reason"]) for entry in report.get("failed") or []]
                run.record(report["items"], failed)
            else:
                # A child that ended without a report (it failed as a whole, was killed or timed
                # out): each of its items failed with the platform's reason.
                message = (execution.latest_status or {}).get("message") or status
                items = self._chunk_items(dataset, filters)
                reason = f"child execution {execution.id} ended {status}: {message}"
                if status == "success":
                    run.record(len(items), [])
                else:
                    run.record(len(items), [(f"item {item.name!r} (id {item.id})", reason) for item in items])
        if unfinished:
            items = sum(count for _, count in unfinished)
            raise ChildrenUnfinished(
                f"{len(unfinished)} of {len(self.created)} child executions ({items} items) had not finished when "
                "this execution stopped waiting for them (predict_embed_timeout); they go on running and "
                f"annotate their items: {', '.join(execution_id for execution_id, _ in unfinished)}. "
                "Lower predict_embed_subset_limit or raise the deploy service's maxReplicas so a run fits "
                "(docs/deploy.md, Dataset-scale runs)."
            )

    @staticmethod
    def _chunk_items(dataset, filters) -> list:
        import dtlpy as dl

        query = copy.deepcopy(filters.prepare()) if filters is not None else {}
        query["pageSize"] = 1000
        return [
            item
            for page in dataset.items.list(filters=dl.Filters(custom_filter=query))
            for item in page
            if item.type == "file"
        ]


def _leave_out(path: str, unscored: Callable[[dict], bool]) -> None:
    for item_file in pathlib.Path(path).rglob("*.json"):
        with open(item_file) as file:
            item = json.load(file)
        annotations = item.get("annotations") if isinstance(item, dict) else None
        if not annotations:
            continue
        kept = [annotation for annotation in annotations if not unscored(annotation)]
        if len(kept) < len(annotations):
            logger.info(
                "Scoring leaves out %d annotation(s) of item %r (id %s)",
                len(annotations) - len(kept),
                item.get("filename"),
                item.get("id"),
            )
            write_json(item_file, {**item, "annotations": kept})


SDK_FLOWS_MODULE = "dtlpy.ml.base_model_adapter"
SCORING_MODULE = "dtlpymetrics.scoring.models"


class _TqdmSwitch:
    """Stands in for a module's `tqdm` name: its tqdm.tqdm(...) bars follow the calling context.

    Installed once per module and never removed, so calls running at once on several threads
    (a service with concurrency above 1) cannot undo each other's patch; whether a bar shows
    only on a terminal is each call's own (a context variable).
    """

    def __init__(self, original):
        self._original = original

    def tqdm(self, *args, **kwargs):
        if _terminal_only.get():
            kwargs["disable"] = None  # tqdm's own "off unless the stream is a terminal"
        return self._original.tqdm(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._original, name)


_terminal_only: contextvars.ContextVar[bool] = contextvars.ContextVar("movinet_bars_terminal_only", default=False)
_switch_lock = threading.Lock()


@contextlib.contextmanager
def progress_bars_on_terminal_only(module_name: str = SDK_FLOWS_MODULE) -> Iterator[None]:
    """Within the block (in this thread's context), a library module's tqdm bars show only on a terminal.

    A service's log is not a terminal: there the bars would be carriage-return fragments,
    and the adapter logs a line per batch instead. The SDK's flows (SDK_FLOWS_MODULE) and
    dtlpymetrics' scoring (SCORING_MODULE) call tqdm.tqdm(...) through their module's tqdm
    name, from the calling thread.

    Args:
        module_name: the module whose tqdm calls change.

    Returns:
        A context manager.
    """
    module = importlib.import_module(module_name)
    with _switch_lock:
        if not isinstance(module.tqdm, _TqdmSwitch):
            module.tqdm = _TqdmSwitch(module.tqdm)
    token = _terminal_only.set(True)
    try:
        yield
    finally:
        _terminal_only.reset(token)
