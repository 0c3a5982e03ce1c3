"""MovinetAdapter: wires the Dataloop model-adapter hooks to the pipeline modules.

predict: item -> items.download_item -> video.VideoReader -> preprocessing -> clips ->
inference -> annotations. embed: the same path up to inference, which returns the pooled
feature instead. load/save: loading. train: training.
"""

from __future__ import annotations

import logging
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator

import dtlpy as dl
import numpy as np

from adapter.core.config import MovinetConfig
from adapter.core.errors import ClassifierUnavailable, EmbeddingFailed, PredictionFailed
from adapter.model.loading import LoadedModel, load_model
from adapter.platform.annotations import build_annotations
from adapter.platform.dataset_runs import (
    SCORING_MODULE,
    DatasetRun,
    downloading_annotations_to,
    progress_bars_on_terminal_only,
)
from adapter.platform.items import ItemError, download_item, local_item
from adapter.platform.offline_model import OfflineModel
from adapter.runtime.backend import make_classifier, runtime_for
from adapter.runtime.results import VideoPrediction
from adapter.video.clips import Clip, base_clips, stream_windows
from adapter.video.inputs import VideoInput
from adapter.video.prefetch import prefetch
from adapter.video.preprocessing import preprocess_frame
from adapter.video.reader import VideoError, VideoReader

logger = logging.getLogger(__name__)


def _preview(labels: list[str], shown: int = 5) -> str:
    return ", ".join(labels[:shown]) + (", ..." if len(labels) > shown else "")


class MovinetAdapter(dl.BaseModelAdapter):
    """MoViNet video classification (TensorFlow) for Dataloop."""

    def __init__(self, model_entity: dl.Model | None = None):
        self.config: MovinetConfig | None = None
        self.loaded: LoadedModel | None = None
        self.failures: list[tuple[str, str]] = []
        self._classifier = None
        self._classifier_error: Exception | None = None
        # Called with (video, prediction, reader) after each video is classified (the CLI's --plot).
        self.on_video_predicted = None
        self._artifacts_path: str | None = None  # what load() was given: where a resume state may be
        self._finished_output: str | None = None  # output_path of the last train() that finished
        self._failed_item_ids: set[str] = set()  # items of this predict_items call that failed
        self._dataset_run: DatasetRun | None = None  # set during predict_dataset and evaluate_model
        self._evaluating = False
        super().__init__(model_entity=model_entity)

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
        # Built on first use: training needs no classifier, and a TF Lite conversion costs seconds to a minute.
        self._classifier, self._classifier_error = None, None
        logger.info(
            "Loaded movinet-%s-%s from %s (%d labels, runtime %s)",
            self.config.model_id,
            self.config.model_mode,
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
        return download_item(item)

    def predict_items(self, items: list, batch_size=None, **kwargs):
        """The SDK's flow, then one error naming every video that failed (after the others).

        Inside predict_dataset or evaluate_model the failures go to the run's report instead,
        so the remaining pages are still predicted (and scored).
        """
        self.failures = []
        self._failed_item_ids = set()
        with progress_bars_on_terminal_only():
            result = super().predict_items(items, batch_size=batch_size, **kwargs)
        if self._dataset_run is not None:
            self._dataset_run.record(len(items), self.failures, self._failed_item_ids)
        elif self.failures:
            raise PredictionFailed(self.failures)
        return result

    def _upload_model_annotations(self, item, predictions):
        if item.id in self._failed_item_ids:
            # The SDK would delete this model's earlier annotations and upload none: keep them.
            logger.info("Kept the earlier annotations of item %r (id %s): its video failed", item.name, item.id)
            return dl.AnnotationCollection(item=item)
        return super()._upload_model_annotations(item, predictions)

    def predict(self, batch, **kwargs):
        failed_before = len(self.failures)
        collections = self._each_video(
            batch, self.predict_video, lambda video: dl.AnnotationCollection(item=video.item)
        )
        logger.info("Predicted a batch of %d video(s), %d failed", len(batch), len(self.failures) - failed_before)
        return collections

    def predict_dataset(self, dataset, filters=None, batch_size=None, progress=None, **kwargs):
        """The SDK's flow over the filtered items; failed items are reported, not fatal.

        Returns:
            The run's report: {"items", "succeeded", "failed": [{"item", "reason"}]}.
        """
        run = self._dataset_run = DatasetRun("prediction")
        try:
            super().predict_dataset(dataset, filters=filters, batch_size=batch_size, progress=progress, **kwargs)
        finally:
            self._dataset_run = None
        return run.finish()

    def evaluate_model(self, model, dataset, filters=None, progress=None, context=None):
        """The SDK's flow: predict top-1 over the filtered items (failed ones reported), then score.

        Returns:
            (model, dataset), as the SDK's.
        """
        from adapter.core.devices import check_devices

        check_devices("evaluation")
        self._dataset_run, self._evaluating = DatasetRun("evaluation"), True
        try:
            return super().evaluate_model(model, dataset, filters=filters, progress=progress, context=context)
        finally:
            self._dataset_run, self._evaluating = None, False

    def evaluate(self, model, dataset, filters):
        """Score with dtlpymetrics the run's items that were predicted now (failed items are left out).

        Returns:
            The model entity, as the SDK's.
        """
        if self._dataset_run is not None:
            self._dataset_run.finish()  # nothing to score when every item failed
            filters = self._dataset_run.scoring_filters(filters)
        scoring_bars = progress_bars_on_terminal_only(SCORING_MODULE)
        with tempfile.TemporaryDirectory(prefix="movinet-scoring-") as folder, scoring_bars:
            return super().evaluate(model, downloading_annotations_to(dataset, folder), filters)

    def _each_video(self, batch: list, process: Callable, failed_result: Callable) -> list:
        """process(video) for each video; a failure is logged, recorded and answered by failed_result(video)."""
        results = []
        for video in batch:
            try:
                results.append(process(video))
            except Exception as err:
                if isinstance(err, (VideoError, ItemError)):
                    # Bad input: the message already names the video and the reason.
                    logger.error("%s", err)
                    self.failures.append((video.name, str(err)))
                else:
                    logger.error("Processing failed for %s:\n%s", video.name, traceback.format_exc())
                    self.failures.append((video.name, f"{type(err).__name__}: {err}"))
                if video.item is not None:
                    self._failed_item_ids.add(video.item.id)
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
            try:
                self._classifier = make_classifier(self.config, self.loaded)
            except Exception as err:
                self._classifier_error = ClassifierUnavailable(
                    f"movinet-{self.config.model_id}-{self.config.model_mode} cannot run on the "
                    f"{runtime_for(self.config)!r} runtime: {err}. Received: runtime={self.config.runtime!r}; "
                    "set runtime to 'tensorflow' to run it without TF Lite"
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
        reader = VideoReader(video.path, fps=config.frame_rate, name=video.name)
        # Decode one clip ahead of the model; the bound keeps memory flat.
        frames = prefetch(
            ((frame.index, preprocess_frame(frame.image, config.imgz)) for frame in reader),
            buffer_size=2 * config.n_frames,
        )
        sampler = base_clips if config.model_mode == "base" else stream_windows
        return sampler(frames, config.n_frames), reader

    def classify_video(self, video: VideoInput) -> tuple[VideoPrediction, VideoReader]:
        """Decode, preprocess and classify one video; returns the prediction and the finished reader."""
        clips, reader = self.video_clips(video)
        return self.classifier.classify(clips), reader

    def predict_video(self, video: VideoInput) -> dl.AnnotationCollection:
        prediction, reader = self.classify_video(video)
        if self.on_video_predicted is not None:
            self.on_video_predicted(video, prediction, reader)
        item = video.item if video.item is not None else local_item(video.path, reader.source_fps)
        entity = self._model_entity
        return build_annotations(
            prediction,
            self.loaded.labels,
            item=item,
            num_frames=reader.num_frames,
            # Evaluation scores each whole-video annotation: top-1 only, or precision could not pass 1/top_k.
            top_k=1 if self._evaluating else self.config.top_k,
            temporal=self.config.evaluate_temporal_annotations
            if self._evaluating
            else self.config.temporal_annotations,
            model_name=entity.name if entity is not None else None,
            model_id=entity.id if entity is not None else None,
            scoring=self.classifier.scoring,
        )

    # ------------------------------------------------------------------ embeddings
    def embed_items(self, items: list, upload_features=None, batch_size=None, progress=None, **kwargs):
        """The SDK's flow (vectors go to the model's feature set), then one error naming every failed video."""
        self.failures = []
        config = self.read_config()  # the configuration now, which the SDK sizes the feature set from
        size = config.check_embeddings_size()
        if config.embeddings_size is None:
            # The SDK sizes the feature set with this key (256 when absent) and skips other lengths.
            self.configuration["embeddings_size"] = size
        with progress_bars_on_terminal_only():
            result = super().embed_items(
                items, upload_features=upload_features, batch_size=batch_size, progress=progress, **kwargs
            )
        if self.failures:
            raise EmbeddingFailed(self.failures)
        return result

    def embed(self, batch, **kwargs):
        """One unit-length vector (list of floats) per video; None for a video that failed (see failures)."""
        return self._each_video(batch, lambda video: self.embed_video(video).tolist(), lambda video: None)

    def embed_video(self, video: VideoInput) -> np.ndarray:
        """The video's embedding: its pooled backbone feature over the clips predict uses, unit length."""
        clips, _ = self.video_clips(video)
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

    def convert_from_dtlpy(self, data_path, **kwargs):
        """Nothing to convert: adapter.dataset reads prepare_data's layout (items/ and json/) as it is.

        Args:
            data_path: the folder prepare_data filled.

        Returns:
            None.
        """
        return None

    def train(self, data_path, output_path, on_epoch_end_callback=None, seed=None, **kwargs):
        """Fine-tune on data_path (prepare_data's layout); then the kept epoch is the loaded model.

        A resume state in the artifacts load() was given (a failed run's) is continued.

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
        job = fit.TrainingJob(
            config=config,
            labels=labels,
            subsets=train_and_validation_subsets(entity.metadata if entity is not None else None),
            starting_model=lambda: training_model.starting_model(config, self.loaded, self.config),
            metrics_sink=self._send_epoch_metrics if self._reports_to_platform() else None,
            on_epoch_end_callback=on_epoch_end_callback,
            seed=seed,
            resume=find_resume_state(self._artifacts_path, config, labels),
        )
        result = fit.fine_tune(data_path, output_path, job)
        self._finished_output = os.path.realpath(output_path)
        # Reload the kept epoch the way a deployed model is loaded, so predict() now uses it.
        self.load(result.checkpoint_dir)
        return result

    def _reports_to_platform(self) -> bool:
        # An offline model (command line) has no platform to send metrics to.
        return self._model_entity is not None and not isinstance(self._model_entity, OfflineModel)

    def _send_epoch_metrics(self, epoch: int, values: list[tuple[str, str, float]]) -> bool:
        """The training metrics sink: one epoch's (figure, legend, value) as the model's plot samples."""
        samples = [dl.PlotSample(figure=figure, legend=legend, x=epoch, y=value) for figure, legend, value in values]
        entity = self._model_entity
        return entity.metrics.create(samples=samples, dataset_id=entity.dataset_id)
