"""MovinetAdapter: wires the Dataloop model-adapter hooks to the pipeline modules.

predict: item -> platform.items.download_item -> video.reader.VideoReader -> video.preprocessing ->
video.clips -> runtime.backend's classifier -> platform.annotations. embed: the same path up to the
classifier, which returns the pooled feature instead. load/save: model.loading and training.outputs.
train: training.fit.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import os
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator

from adapter.core.native_logs import initialize_devices_quietly, quiet_tensorflow_logs

# Before anything imports TensorFlow: the agent imports this module when a service starts.
quiet_tensorflow_logs()

import dtlpy as dl
import numpy as np

from adapter.core.config import MovinetConfig
from adapter.core.errors import (
    ClassifierUnavailable,
    EmbeddingFailed,
    InputError,
    PredictionFailed,
    failure_reason,
)
from adapter.model.loading import LoadedModel, load_model
from adapter.platform.annotations import (
    build_annotations,
    changed_prediction,
    evaluation_name,
    failed_video_predictions,
    is_failed_video,
    name_predictions,
    prediction_name,
    replace_model_annotations,
    stamp_prediction_name,
)
from adapter.platform.calls import Call, call_scope, current_call
from adapter.platform.dataset_runs import (
    SCORING_MODULE,
    ChildExecutions,
    DatasetRun,
    downloading_annotations_to,
    progress_bars_on_terminal_only,
    subset_limit_sized_by_duration,
)
from adapter.platform.feature_sets import check_feature_set, write_embeddings_size
from adapter.platform.items import ItemError, check_subsets_fit, download_item, local_item
from adapter.platform.offline_model import OfflineModel
from adapter.runtime.backend import make_classifier, runtime_for
from adapter.runtime.results import VideoPrediction
from adapter.runtime.segments import SegmentOptions
from adapter.video.clips import Clip, base_clips, spaced_clips, spaced_starts, stream_windows
from adapter.video.inputs import VideoInput
from adapter.video.prefetch import prefetch
from adapter.video.preprocessing import preprocess_frame, preprocess_views
from adapter.video.reader import VideoReader

logger = logging.getLogger(__name__)
initialize_devices_quietly()


def _preview(labels: list[str], shown: int = 5) -> str:
    return ", ".join(labels[:shown]) + (", ..." if len(labels) > shown else "")


class MovinetAdapter(dl.BaseModelAdapter):
    """MoViNet video classification (TensorFlow) for Dataloop."""

    def __init__(self, model_entity: dl.Model | None = None):
        self.config: MovinetConfig | None = None
        self.loaded: LoadedModel | None = None
        # Failures of predict()/embed() called directly (the command line); an SDK call has its own.
        self._direct_call = Call()
        self._classifier = None
        self._classifier_lock = threading.Lock()
        self._classifier_error: Exception | None = None
        # Called with (video, prediction, reader) after each video is classified (the CLI's --plot).
        self.on_video_predicted = None
        self._artifacts_path: str | None = None  # what load() was given: where a resume state may be
        self._finished_output: str | None = None  # output_path of the last train() that finished
        super().__init__(model_entity=model_entity)

    # ------------------------------------------------------------------ per-call state
    def _call(self) -> Call:
        # Each SDK call (an execution, maybe one of several at once) has its own (platform.calls).
        return current_call() or self._direct_call

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(video name, reason) of each video that failed in the current call (or in direct calls)."""
        return self._call().failures

    @failures.setter
    def failures(self, value):
        self._call().failures = list(value)

    # ------------------------------------------------------------------ configuration
    def read_config(self) -> MovinetConfig:
        # dict() copies the mapping without the SDK's get(), which writes defaults back.
        return MovinetConfig.from_dict(dict(self.configuration))

    def _label_map(self, config: MovinetConfig) -> list[str] | None:
        """The model's labels when set, else the configuration's id_to_label_map.

        The model's labels win: a model cloned with new labels may carry its source's
        configuration, map included, unchanged (the presets ship the 600 Kinetics labels).
        """
        map_labels = config.labels_from_map()
        entity = self._model_entity
        model_labels = list(entity.labels) if entity is not None and entity.labels else None
        if model_labels and map_labels and model_labels != map_labels:
            logger.warning(
                "The model's labels (%d: %s) differ from the configuration's id_to_label_map (%d: %s); "
                "using the model's labels",
                len(model_labels),
                _preview(model_labels),
                len(map_labels),
                _preview(map_labels),
            )
        return model_labels or map_labels

    @property
    def model(self):
        """The Keras network, built on first use (the TF Lite runtime's cached conversion needs none)."""
        return self.loaded.model if self.loaded is not None else None

    @model.setter
    def model(self, value):  # the SDK's constructor sets it to None; load() sets self.loaded
        if value is not None:
            raise AttributeError("MovinetAdapter.model comes from load()")

    # ------------------------------------------------------------------ load / save
    def load(self, local_path, **kwargs):
        self._artifacts_path = local_path
        self.config = self.read_config()
        self.loaded = load_model(self.config, local_path, labels=self._label_map(self.config))
        info = self.loaded.finetuned
        if info is not None:
            # The weights were trained on this input; predicting on any other would be wrong.
            trained_input = dict(imgz=info.imgz, n_frames=info.n_frames, fps=info.fps)
            current_input = dict(imgz=self.config.imgz, n_frames=self.config.n_frames, fps=self.config.frame_rate)
            differing = {k: v for k, v in trained_input.items() if current_input[k] != v}
            if differing:
                logger.warning("Using the fine-tuned model's input settings %s over the configuration's", differing)
                self.config = self.config.replace(**differing)
        classes = len(self.loaded.labels)
        if self.config.top_k > classes:
            logger.warning(
                "Configuration key 'top_k' is %d but the model has %d classes: predictions list all %d",
                self.config.top_k,
                classes,
                classes,
            )
        # Built on first use: training needs no classifier, and a TF Lite conversion costs seconds to a minute.
        self._classifier, self._classifier_error = None, None
        logger.info(
            "Loaded %s from %s (%d labels, runtime %s)",
            self.config.model_name,
            self.loaded.source,
            len(self.loaded.labels),
            runtime_for(self.config),
        )

    def save(self, local_path, **kwargs):
        """Write the fine-tuned model for upload; a finished run drops its checkpoints and adds its TF Lite conversion.

        Args:
            local_path: the folder the SDK uploads (train_model: the run's output_path).

        Returns:
            None.
        """
        from adapter.training.outputs import remove_checkpoints, save_trained  # training code only needed here

        recorded = save_trained(self.loaded, local_path)
        if recorded is not None:
            self.configuration.update(recorded)  # the SDK writes it back to the platform
        if self._is_finished_output(local_path):
            from adapter.runtime.conversion_cache import convert_into_artifacts

            remove_checkpoints(local_path)
            convert_into_artifacts(self.loaded, self.config, local_path)
        else:
            from adapter.training.resume import log_resume_state

            log_resume_state(local_path)

    def save_to_model(self, local_path=None, cleanup=False, replace=True, **kwargs):
        """The SDK's upload; after a finished run, the model's stale checkpoints on the platform go too.

        Args:
            local_path, cleanup, replace: as BaseModelAdapter.save_to_model.

        Returns:
            None.
        """
        super().save_to_model(local_path=local_path, cleanup=cleanup, replace=replace, **kwargs)
        if self._is_finished_output(local_path):
            from adapter.training.outputs import delete_stale_checkpoints

            delete_stale_checkpoints(self.model_entity)

    def _is_finished_output(self, local_path) -> bool:
        return bool(local_path) and self._finished_output == os.path.realpath(local_path)

    # ------------------------------------------------------------------ prediction
    def prepare_item_func(self, item: dl.Item):
        from adapter.core.presets import longest_video_seconds

        config = self.config if self.config is not None else self.read_config()
        return download_item(item, max_seconds=longest_video_seconds(config.predict_embed_subset_limit))

    def predict_items(self, items: list, batch_size=None, **kwargs):
        """The SDK's flow, then one error naming every video that failed (after the others).

        Inside predict_dataset or evaluate_model the failures go to the run's report instead,
        so the remaining pages are still predicted (and scored).
        """
        with call_scope() as call, progress_bars_on_terminal_only():
            result = super().predict_items(items, batch_size=batch_size, **kwargs)
        if call.dataset_run is not None:
            call.dataset_run.record(len(items), call.failures, call.failed_item_ids)
        elif call.failures:
            raise PredictionFailed(call.failures)
        return result

    def _update_predictions_metadata(self, item, predictions):
        super()._update_predictions_metadata(item, predictions)
        stamp_prediction_name(predictions)  # an evaluation's predictions keep their own name

    def _upload_model_annotations(self, item, predictions):
        """Replace only this model's unchanged annotations; a failed video keeps the ones it had.

        Runs on the SDK's pool threads: what the call decided travels on the predictions.
        """
        if is_failed_video(predictions):
            # The SDK would delete this model's earlier annotations and upload none: keep them.
            logger.info("Kept the earlier annotations of item %r (id %s): its video failed", item.name, item.id)
            return dl.AnnotationCollection(item=item)
        entity = self.model_entity
        return replace_model_annotations(
            item, predictions, name=prediction_name(predictions, entity.name), model_id=entity.id
        )

    def predict(self, batch, **kwargs):
        failures = self.failures
        failed_before = len(failures)
        collections = self._each_video(batch, self.predict_video, lambda video: failed_video_predictions(video.item))
        logger.info("Predicted a batch of %d video(s), %d failed", len(batch), len(failures) - failed_before)
        return collections

    def predict_dataset(self, dataset, filters=None, batch_size=None, progress=None, **kwargs):
        """The SDK's flow over the filtered items; failed items are reported, not fatal.

        Returns:
            The run's report: {"items", "succeeded", "failed": [{"item", "reason"}]}.
        """
        run = DatasetRun("prediction")
        with call_scope(dataset_run=run):
            super().predict_dataset(dataset, filters=filters, batch_size=batch_size, progress=progress, **kwargs)
        return run.finish()

    def _execute_dataset_operation(
        self, dataset, operation_type, filters=None, progress=None, batch_size=None, multiple_executions=True
    ):
        """The SDK's dataset run, with a limit sized by video duration and its children's reports counted.

        A run over more items than the limit starts child executions and waits for them; their
        items and failures go into the run's report (predict_dataset) as if predicted here.

        Returns:
            True, as the SDK's.
        """
        if not multiple_executions:  # evaluate_model: every item in this process
            return super()._execute_dataset_operation(
                dataset, operation_type, filters, progress, batch_size, multiple_executions
            )
        limit = self.read_config().predict_embed_subset_limit
        children = ChildExecutions(self.model_entity)
        with subset_limit_sized_by_duration(self.model_entity, dataset, filters, limit), children.recording():
            try:
                result = super()._execute_dataset_operation(
                    dataset, operation_type, filters, progress, batch_size, multiple_executions
                )
            except ValueError:
                if not children.created:
                    raise
                result = True  # "failed to predict entire dataset": each child's report says what failed
        if children.created:
            parent_run = self._call().dataset_run  # predict_dataset's report, if this is one
            run = parent_run if parent_run is not None else DatasetRun(operation_type)
            children.report_into(run, self.project, dataset)
            if run is not parent_run:
                run.finish()  # embed: no report to return, but a run where everything failed is an error
        return result

    def evaluate_model(self, model, dataset, filters=None, progress=None, context=None):
        """The SDK's flow: predict top-1 over the filtered items (failed ones reported), then score.

        The predictions carry evaluation_name(model.name), not the model's name: the items'
        earlier predictions of the model stay as they were, and only this run's are scored.

        Returns:
            (model, dataset), as the SDK's.
        """
        from adapter.core.devices import check_devices

        check_devices("evaluation")
        run = DatasetRun("evaluation")
        with call_scope(dataset_run=run, evaluation_name=evaluation_name(model.name)):
            return super().evaluate_model(model, dataset, filters=filters, progress=progress, context=context)

    def evaluate(self, model, dataset, filters):
        """Score with dtlpymetrics the run's items that were predicted now (failed items are left out).

        Within evaluate_model the predictions scored are those named evaluation_name(model.name).

        Returns:
            The model entity, as the SDK's.
        """
        call = current_call()
        scored_as, unscored = model, None
        if call is not None and call.dataset_run is not None:
            call.dataset_run.finish()  # nothing to score when every item failed
            filters = call.dataset_run.scoring_filters(filters)
        if call is not None and call.evaluation_name is not None:
            # dtlpymetrics matches predictions by model.name and names its files by model.id.
            scored_as = copy.copy(model)
            scored_as.name = call.evaluation_name
            # An earlier evaluation's prediction a person changed is kept, but is not this run's.
            unscored = functools.partial(changed_prediction, name=call.evaluation_name)
        scoring_bars = progress_bars_on_terminal_only(SCORING_MODULE)
        with tempfile.TemporaryDirectory(prefix="movinet-scoring-") as folder, scoring_bars:
            super().evaluate(scored_as, downloading_annotations_to(dataset, folder, unscored), filters)
            if self.config.evaluate_temporal_annotations:
                self._report_segment_metrics(folder, scored_as)
        return model

    def _report_segment_metrics(self, folder: str, model) -> None:
        """Log the temporal segment metrics of the run's items and send them as the model's metrics."""
        from adapter.evaluation.segment_metrics import format_segment_report
        from adapter.platform.segment_scoring import segment_summary

        summary = segment_summary(folder, model.name)
        if summary is None:
            logger.warning("No item had both labelled ranges and temporal annotations: no segment metrics")
            return
        logger.info("%s", format_segment_report(summary))
        values = [("frame accuracy", summary["frame_accuracy"]), ("segment F1@0.5", summary["f1_at_50"])]
        values.append(("edit", summary["edit"]))
        samples = [
            dl.PlotSample(figure="temporal segments", legend=legend, x=0, y=value)
            for legend, value in values
            if value is not None
        ]
        if self._reports_to_platform():
            model.metrics.create(samples=samples, dataset_id=model.dataset_id)

    def _each_video(self, batch: list, process: Callable, failed_result: Callable) -> list:
        """process(video) for each video; a failure is logged, recorded and answered by failed_result(video)."""
        results = []
        call = self._call()
        for video in batch:
            try:
                results.append(process(video))
            except Exception as err:
                if isinstance(err, InputError):  # the message already names the video and the reason
                    logger.error("%s", err)
                else:
                    logger.error("Processing failed for %s:\n%s", video.name, traceback.format_exc())
                call.failures.append((video.name, failure_reason(err)))
                if video.item is not None:
                    call.failed_item_ids.add(video.item.id)
                results.append(failed_result(video))
            finally:
                video.cleanup()
        return results

    @property
    def classifier(self):
        """The classifier for the loaded model's mode and runtime (clips or windows -> probabilities).

        Returns:
            The classifier (the tflite runtime's conversion reused or made on the first call);
            stream classifiers also classify windows one by one (segments()).
        """
        if self.loaded is None:
            raise RuntimeError("No model loaded: call load() (or load_from_model) before predicting")
        if self._classifier_error is not None:
            raise self._classifier_error  # a failed conversion is not retried for every video
        if self._classifier is None:
            with self._classifier_lock:  # executions running at once build it once
                return self._build_classifier()
        return self._classifier

    def _build_classifier(self):
        if self._classifier_error is not None:
            raise self._classifier_error
        if self._classifier is None:
            try:
                self._classifier = make_classifier(self.config, self.loaded)
            except Exception as err:
                config = self.config
                advice = (
                    "set runtime to 'tensorflow' to run it without TF Lite"
                    if config.precision == "float32"
                    else "check calibration_videos, or set precision to 'float32'"
                )
                self._classifier_error = ClassifierUnavailable(
                    f"{config.model_name} cannot run on the "
                    f"{runtime_for(config)!r} runtime: {err}. Received: runtime={config.runtime!r}, "
                    f"precision={config.precision!r}; {advice}"
                )
                raise self._classifier_error from err
        return self._classifier

    def video_clips(self, video: VideoInput) -> tuple[Iterator[Clip], VideoReader]:
        """Decode and preprocess one video into the clips (base) or windows (stream) the model takes.

        Args:
            video: a downloaded item or a local file.
        Returns:
            The clips, produced lazily as frames decode, and the reader (finished once they are consumed).
        """
        if video.error:
            raise ItemError(video.error)
        if self.loaded is None:
            raise RuntimeError("No model loaded: call load() (or load_from_model) before predicting")
        config = self.config
        # FFmpeg resizes the shorter side to imgz while decoding; preprocessing crops the view(s).
        reader = VideoReader(video.path, fps=config.frame_rate, name=video.name, shorter_side=config.imgz)
        if config.test_crops > 1:
            # Multi-view testing: each frame becomes views x imgz x imgz x 3, a clip T x views x ...
            preprocess = functools.partial(preprocess_views, imgz=config.imgz, crops=config.test_crops)
        else:
            preprocess = functools.partial(preprocess_frame, imgz=config.imgz)
        # Decode one clip ahead of the model; the bound keeps memory flat.
        frames = prefetch(
            ((frame.index, preprocess(frame.image)) for frame in reader),
            buffer_size=2 * config.n_frames,
        )
        if config.model_mode != "base":
            return stream_windows(frames, config.n_frames), reader
        if config.test_clips > 0:
            expected = reader.expected_kept_frames
            if expected is not None:
                starts = spaced_starts(expected, config.n_frames, config.test_clips)
                return spaced_clips(frames, config.n_frames, starts), reader
            logger.warning(
                "Video %r declares no frame count or duration: its clips tile it instead of %d spaced clips (test_clips)",
                video.name,
                config.test_clips,
            )
        return base_clips(frames, config.n_frames), reader

    def classify_video(self, video: VideoInput) -> tuple[VideoPrediction, VideoReader]:
        """Decode, preprocess and classify one video; returns the prediction and the finished reader."""
        clips, reader = self.video_clips(video)
        if self.config.test_crops > 1:
            return self.classifier.classify_views(clips, self.config.view_fusion), reader
        return self.classifier.classify(clips), reader

    def predict_video(self, video: VideoInput) -> dl.AnnotationCollection:
        prediction, reader = self.classify_video(video)
        if self.on_video_predicted is not None:
            self.on_video_predicted(video, prediction, reader)
        item = video.item if video.item is not None else local_item(video.path, reader.source_fps)
        entity = self._model_entity
        evaluating_as = self._call().evaluation_name
        collection = build_annotations(
            prediction,
            self.loaded.labels,
            item=item,
            num_frames=reader.num_frames,
            # Evaluation scores each whole-video annotation: top-1 only, or precision could not pass 1/top_k.
            top_k=1 if evaluating_as else self.config.top_k,
            temporal=self.config.evaluate_temporal_annotations if evaluating_as else self.config.temporal_annotations,
            model_name=evaluating_as or (entity.name if entity is not None else None),
            model_id=entity.id if entity is not None else None,
            segment_options=SegmentOptions.from_config(self.config),
            source_fps=reader.source_fps,
            scoring=self.classifier.scoring,
        )
        return name_predictions(collection, evaluating_as) if evaluating_as else collection

    # ------------------------------------------------------------------ embeddings
    def embed_items(self, items: list, upload_features=None, batch_size=None, progress=None, **kwargs):
        """The SDK's flow (vectors go to the model's feature set), then one error naming every failed video."""
        with call_scope() as call, progress_bars_on_terminal_only():
            result = super().embed_items(
                items, upload_features=upload_features, batch_size=batch_size, progress=progress, **kwargs
            )
        if call.failures:
            raise EmbeddingFailed(call.failures)
        return result

    @property
    def feature_set(self):
        """The model's feature set, as the SDK resolves it, sized and checked for this variant's embeddings.

        The SDK asks for it before any embed() call (embed_dataset: before listing items) and
        creates a missing one sized from configuration['embeddings_size'] (256 when absent):
        the variant's size is written first, and an existing set of another size is an error.

        Returns:
            The dl.FeatureSet.
        """
        size = self.read_config().check_embeddings_size()
        write_embeddings_size(self.configuration, size)
        if self._feature_set is not None and self._feature_set.model_id != self.model_entity.id:
            self._feature_set = None  # the SDK's cache belongs to the model loaded before
        return check_feature_set(super().feature_set, size, self.model_entity.name)

    def embed(self, batch, **kwargs):
        """One unit-length vector (list of floats) per video; None for a video that failed (see failures)."""
        return self._each_video(batch, lambda video: self.embed_video(video).tolist(), lambda video: None)

    def embed_video(self, video: VideoInput) -> np.ndarray:
        """The video's embedding: its pooled backbone feature over the clips predict uses, unit length."""
        clips, _ = self.video_clips(video)
        if self.config.test_crops > 1:
            return self.classifier.embed_views(clips, self.config.view_fusion)
        return self.classifier.embed(clips)

    # ------------------------------------------------------------------ training
    def train_model(self, model, cleanup=False, progress=None, context=None):
        """The SDK's training flow, after the checks that need no download.

        A stream model, or a GPU service TensorFlow cannot use, fails here: before the
        artifacts and the whole dataset are downloaded, and before the model is marked training.

        Args:
            model: the dl.Model to train (or its JSON), cleanup, progress, context: as the SDK's.

        Returns:
            The trained model entity.
        """
        from adapter.core.devices import check_devices
        from adapter.training.model import check_trainable

        if isinstance(model, dict):
            model = dl.models.get(model_id=model["id"])
        check_trainable(MovinetConfig.from_dict(dict(model.configuration)))
        check_devices("training")
        return super().train_model(model, cleanup=cleanup, progress=progress, context=context)

    def prepare_data(self, dataset, root_path=None, data_path=None, output_path=None, overwrite=False, **kwargs):
        """The SDK's download of the model's subsets, after checking that they fit on the disk.

        Returns:
            (root_path, data_path, output_path), as the SDK's.
        """
        from dtlpy import service_defaults

        subsets = ((self.model_entity.metadata or {}).get("system") or {}).get("subsets")
        if subsets:  # the SDK itself says when there are none
            check_subsets_fit(dataset, subsets, data_path or root_path or service_defaults.DATALOOP_PATH)
        return super().prepare_data(
            dataset, root_path=root_path, data_path=data_path, output_path=output_path, overwrite=overwrite, **kwargs
        )

    def convert_from_dtlpy(self, data_path, **kwargs):
        """Nothing to convert: datasets.layout reads prepare_data's layout (items/ and json/) as it is.

        Args:
            data_path: the folder prepare_data filled.

        Returns:
            None.
        """
        return None

    def train(self, data_path, output_path, on_epoch_end_callback=None, seed=None, **kwargs):
        """Fine-tune on data_path (prepare_data's layout); then the kept epoch is the loaded model.

        The newest complete checkpoint of a stopped run, in the artifacts load() was given or
        in output_path itself, is continued (adapter.training.resume). On the platform the
        checkpoints are uploaded to the model's artifacts while the run trains
        (checkpoint_upload_minutes), so a run killed without a Python exception loses little.

        Args:
            data_path: the downloaded train and validation subsets.
            output_path: where checkpoints, history and curves go (the SDK uploads it).
            on_epoch_end_callback: the SDK's (epoch, num_epochs) progress callback.
            seed: makes the run repeatable.

        Returns:
            The training.fit.TrainingResult.
        """
        from adapter.datasets.layout import train_and_validation_subsets
        from adapter.training import fit
        from adapter.training import model as training_model
        from adapter.training.resume import find_resume_state

        self._finished_output = None
        config = self.read_config()
        training_model.check_trainable(config)
        if kwargs:
            logger.debug("train() ignores the arguments %s", sorted(kwargs))
        entity = self._model_entity
        labels = training_model.training_labels(self._label_map(config))
        model_entity_id = entity.id if self._reports_to_platform() else None
        job = fit.TrainingJob(
            config=config,
            labels=labels,
            subsets=train_and_validation_subsets(entity.metadata if entity is not None else None),
            starting_model=lambda: training_model.starting_model(config, self.loaded, self.config),
            metrics_sink=self._send_epoch_metrics if self._reports_to_platform() else None,
            on_epoch_end_callback=on_epoch_end_callback,
            seed=seed,
            resume=find_resume_state([self._artifacts_path, output_path], config, labels, model_entity_id),
            on_checkpoint=self._checkpoint_uploader(config),
            model_entity_id=model_entity_id,
        )
        result = fit.fine_tune(data_path, output_path, job)
        self._finished_output = os.path.realpath(output_path)
        # Reload the kept epoch the way a deployed model is loaded, so predict() now uses it.
        self.load(result.checkpoint_dir)
        if result.calibrated and self.loaded.finetuned is not None:
            # The temperature and thresholds fitted at the end: predict() scores with them (the
            # classifier is built after load()), and save() writes them into movinet.json.
            self.loaded.finetuned = dataclasses.replace(self.loaded.finetuned, **result.calibrated)
        return result

    def _checkpoint_uploader(self, config: MovinetConfig):
        """The fit loop's checkpoint sink: uploads to the model's artifacts (None offline: nothing to upload to)."""
        if not self._reports_to_platform():
            return None
        from adapter.platform.checkpoint_upload import CheckpointUploader

        return CheckpointUploader(self._model_entity, config.checkpoint_upload_minutes)

    def _reports_to_platform(self) -> bool:
        # An offline model (command line) has no platform to send metrics to.
        return self._model_entity is not None and not isinstance(self._model_entity, OfflineModel)

    def _send_epoch_metrics(self, epoch: int, values: list[tuple[str, str, float]]) -> bool:
        """The training metrics sink: one epoch's (figure, legend, value) as the model's plot samples."""
        samples = [dl.PlotSample(figure=figure, legend=legend, x=epoch, y=value) for figure, legend, value in values]
        entity = self._model_entity
        return entity.metrics.create(samples=samples, dataset_id=entity.dataset_id)
