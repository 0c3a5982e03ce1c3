"""MovinetAdapter: wires the Dataloop model-adapter hooks to the pipeline modules.

predict: item -> items.download_item -> video.VideoReader -> preprocessing -> clips ->
inference -> annotations. load/save: loading. train: training.
"""
from __future__ import annotations

import logging
import traceback

import dtlpy as dl

from adapter import items as item_inputs
from adapter.annotations import build_annotations
from adapter.clips import base_clips, stream_windows
from adapter.config import MovinetConfig
from adapter.errors import MovinetError
from adapter.inference import BaseVideoClassifier, StreamVideoClassifier, VideoPrediction
from adapter.loading import LoadedModel, load_model
from adapter.offline import OfflineModel
from adapter.prefetch import prefetch
from adapter.preprocessing import preprocess_frame
from adapter.video import VideoError, VideoReader

logger = logging.getLogger(__name__)


class PredictionFailed(MovinetError, RuntimeError):
    """Some videos could not be predicted; the others were."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "\n".join(f"- {name}: {reason}" for name, reason in failures)
        super().__init__(f"{len(failures)} video(s) could not be predicted:\n{lines}")


class MovinetAdapter(dl.BaseModelAdapter):
    """MoViNet video classification (TensorFlow) for Dataloop."""

    def __init__(self, model_entity: dl.Model | None = None):
        self.config: MovinetConfig | None = None
        self.loaded: LoadedModel | None = None
        self.failures: list[tuple[str, str]] = []
        self._classifier = None
        super().__init__(model_entity=model_entity)

    # ------------------------------------------------------------------ configuration
    def read_config(self) -> MovinetConfig:
        # dict() copies the mapping without the SDK's get(), which writes defaults back.
        return MovinetConfig.from_dict(dict(self.configuration))

    def _entity_labels(self) -> list[str] | None:
        config_labels = self.config.labels_from_map()
        if config_labels:
            return config_labels
        if self._model_entity is not None and self._model_entity.labels:
            return list(self._model_entity.labels)
        return None

    # ------------------------------------------------------------------ load / save
    def load(self, local_path, **kwargs):
        self.config = self.read_config()
        self.loaded = load_model(self.config, local_path, labels=self._entity_labels())
        info = self.loaded.finetuned
        if info is not None:
            # The weights were trained on this input; predicting on any other would be wrong.
            trained_input = dict(imgz=info.imgz, n_frames=info.n_frames, fps=info.fps)
            current_input = dict(imgz=self.config.imgz, n_frames=self.config.n_frames, fps=self.config.frame_rate)
            differing = {k: v for k, v in trained_input.items() if current_input[k] != v}
            if differing:
                logger.warning("Using the fine-tuned model's input settings %s over the configuration's", differing)
                self.config = self.config.replace(**differing)
        self.model = self.loaded.model
        if self.config.model_mode == "base":
            self._classifier = BaseVideoClassifier(self.model, self.config.batch_size)
        else:
            self._classifier = StreamVideoClassifier(self.model)
        logger.info(
            "Loaded movinet-%s-%s from %s (%d labels)",
            self.config.model_id,
            self.config.model_mode,
            self.loaded.source,
            len(self.loaded.labels),
        )

    def save(self, local_path, **kwargs):
        from adapter.training.outputs import save_trained  # training code is only needed here

        recorded = save_trained(self.loaded, local_path)
        if recorded is not None:
            self.configuration.update(recorded)  # the SDK writes it back to the platform

    # ------------------------------------------------------------------ prediction
    def prepare_item_func(self, item: dl.Item):
        return item_inputs.download_item(item)

    def predict_items(self, items: list, batch_size=None, **kwargs):
        """The SDK's flow, then one error naming every video that failed (after the others)."""
        self.failures = []
        result = super().predict_items(items, batch_size=batch_size, **kwargs)
        if self.failures:
            raise PredictionFailed(self.failures)
        return result

    def predict(self, batch, **kwargs):
        collections = []
        for video in batch:
            try:
                collections.append(self.predict_video(video))
            except (VideoError, item_inputs.ItemError) as err:
                # Bad input: the message already names the video and the reason.
                logger.error("%s", err)
                self.failures.append((video.name, str(err)))
                collections.append(dl.AnnotationCollection(item=video.item))
            except Exception as err:
                logger.error("Prediction failed for %s:\n%s", video.name, traceback.format_exc())
                self.failures.append((video.name, f"{type(err).__name__}: {err}"))
                collections.append(dl.AnnotationCollection(item=video.item))
            finally:
                video.cleanup()
        return collections

    def classify_video(self, video: item_inputs.VideoInput) -> tuple[VideoPrediction, VideoReader]:
        """Decode, preprocess and classify one video; returns the prediction and the finished reader."""
        if video.error:
            raise item_inputs.ItemError(video.error)
        if self._classifier is None:
            raise RuntimeError("No model loaded: call load() (or load_from_model) before predicting")
        config = self.config
        reader = VideoReader(video.path, fps=config.frame_rate, name=video.name)
        # Decode one clip ahead of the model; the bound keeps memory flat.
        frames = prefetch(
            ((frame.index, preprocess_frame(frame.image, config.imgz)) for frame in reader),
            buffer_size=2 * config.n_frames,
        )
        if config.model_mode == "base":
            prediction = self._classifier.classify(base_clips(frames, config.n_frames))
        else:
            prediction = self._classifier.classify(stream_windows(frames, config.n_frames))
        return prediction, reader

    def predict_video(self, video: item_inputs.VideoInput) -> dl.AnnotationCollection:
        prediction, reader = self.classify_video(video)
        item = video.item if video.item is not None else item_inputs.local_item(video.path, reader.source_fps)
        entity = self._model_entity
        return build_annotations(
            prediction,
            self.loaded.labels,
            item=item,
            num_frames=reader.num_frames,
            top_k=self.config.top_k,
            temporal=self.config.temporal_annotations,
            model_name=entity.name if entity is not None else None,
            model_id=entity.id if entity is not None else None,
        )

    # ------------------------------------------------------------------ training
    def train(self, data_path, output_path, on_epoch_end_callback=None, seed=None, **kwargs):
        """Fine-tune on data_path (prepare_data's layout); then the kept epoch is the loaded model.

        seed: makes the run repeatable. Returns the training.fit.TrainingResult.
        """
        from adapter.dataset import train_and_validation_subsets
        from adapter.training import fit
        from adapter.training import model as training_model

        config = self.read_config()
        training_model.check_trainable(config)
        if kwargs:
            logger.debug("train() ignores the arguments %s", sorted(kwargs))
        entity = self._model_entity
        job = fit.TrainingJob(
            config=config,
            labels=training_model.training_labels(config, entity.labels if entity is not None else None),
            subsets=train_and_validation_subsets(entity.metadata if entity is not None else None),
            starting_model=lambda: training_model.starting_model(config, self.loaded, self.config),
            metrics_sink=self._send_epoch_metrics if self._reports_to_platform() else None,
            on_epoch_end_callback=on_epoch_end_callback,
            seed=seed,
        )
        result = fit.fine_tune(data_path, output_path, job)
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
