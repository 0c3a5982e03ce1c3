"""MovinetAdapter: wires the Dataloop model-adapter hooks to the pipeline modules.

predict: item -> items.download_item -> video.VideoReader -> preprocessing -> clips ->
inference -> annotations. embed: the same path up to inference, which returns the pooled
feature instead. load/save: loading. train: training.
"""
from __future__ import annotations

import logging
import traceback
from typing import Callable, Iterator

import dtlpy as dl
import numpy as np

from adapter import items as item_inputs
from adapter.annotations import build_annotations
from adapter.clips import Clip, base_clips, stream_windows
from adapter.config import MovinetConfig
from adapter.errors import MovinetError
from adapter.inference import BaseVideoClassifier, StreamVideoClassifier, VideoPrediction
from adapter.loading import LoadedModel, load_model
from adapter.prefetch import prefetch
from adapter.preprocessing import preprocess_frame
from adapter.video import VideoError, VideoReader

logger = logging.getLogger(__name__)


class VideosFailed(MovinetError, RuntimeError):
    """Some videos could not be processed; the others were."""

    action = "processed"

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "\n".join(f"- {name}: {reason}" for name, reason in failures)
        super().__init__(f"{len(failures)} video(s) could not be {self.action}:\n{lines}")


class PredictionFailed(VideosFailed):
    action = "predicted"


class EmbeddingFailed(VideosFailed):
    action = "embedded"


class MovinetAdapter(dl.BaseModelAdapter):
    """MoViNet video classification (TensorFlow) for Dataloop."""

    def __init__(self, model_entity: dl.Model | None = None):
        self.config: MovinetConfig | None = None
        self.loaded: LoadedModel | None = None
        self.failures: list[tuple[str, str]] = []
        self._classifier = None
        # Called with (video, prediction, reader) after each video is classified (the CLI's --plot).
        self.on_video_predicted = None
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
        from adapter.training import save_trained  # TensorFlow training code is only needed here

        save_trained(self, local_path)

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
        return self._each_video(batch, self.predict_video, lambda video: dl.AnnotationCollection(item=video.item))

    def _each_video(self, batch: list, process: Callable, failed_result: Callable) -> list:
        """process(video) for each video; a failure is logged, recorded and answered by failed_result(video)."""
        results = []
        for video in batch:
            try:
                results.append(process(video))
            except (VideoError, item_inputs.ItemError) as err:
                # Bad input: the message already names the video and the reason.
                logger.error("%s", err)
                self.failures.append((video.name, str(err)))
                results.append(failed_result(video))
            except Exception as err:
                logger.error("Processing failed for %s:\n%s", video.name, traceback.format_exc())
                self.failures.append((video.name, f"{type(err).__name__}: {err}"))
                results.append(failed_result(video))
            finally:
                video.cleanup()
        return results

    def video_clips(self, video: item_inputs.VideoInput) -> tuple[Iterator[Clip], VideoReader]:
        """Decode and preprocess one video into the clips (base) or windows (stream) the model takes.

        Args:
            video: a downloaded item or a local file.
        Returns:
            The clips, produced lazily as frames decode, and the reader (finished once they are consumed).
        """
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
        sampler = base_clips if config.model_mode == "base" else stream_windows
        return sampler(frames, config.n_frames), reader

    def classify_video(self, video: item_inputs.VideoInput) -> tuple[VideoPrediction, VideoReader]:
        """Decode, preprocess and classify one video; returns the prediction and the finished reader."""
        clips, reader = self.video_clips(video)
        return self._classifier.classify(clips), reader

    def predict_video(self, video: item_inputs.VideoInput) -> dl.AnnotationCollection:
        prediction, reader = self.classify_video(video)
        if self.on_video_predicted is not None:
            self.on_video_predicted(video, prediction, reader)
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

    # ------------------------------------------------------------------ embeddings
    def embed_items(self, items: list, upload_features=None, batch_size=None, progress=None, **kwargs):
        """The SDK's flow (vectors go to the model's feature set), then one error naming every failed video."""
        self.failures = []
        config = self.read_config()  # the configuration now, which the SDK sizes the feature set from
        size = config.check_embeddings_size()
        if config.embeddings_size is None:
            # The SDK sizes the feature set with this key (256 when absent) and skips other lengths.
            self.configuration["embeddings_size"] = size
        result = super().embed_items(items, upload_features=upload_features, batch_size=batch_size, progress=progress, **kwargs)
        if self.failures:
            raise EmbeddingFailed(self.failures)
        return result

    def embed(self, batch, **kwargs):
        """One unit-length vector (list of floats) per video; None for a video that failed (see failures)."""
        return self._each_video(batch, lambda video: self.embed_video(video).tolist(), lambda video: None)

    def embed_video(self, video: item_inputs.VideoInput) -> np.ndarray:
        """The video's embedding: its pooled backbone feature over the clips predict uses, unit length."""
        clips, _ = self.video_clips(video)
        return self._classifier.embed(clips)

    # ------------------------------------------------------------------ training
    def train(self, data_path, output_path, **kwargs):
        from adapter.training import train_model_on_folder

        train_model_on_folder(self, data_path, output_path, **kwargs)
