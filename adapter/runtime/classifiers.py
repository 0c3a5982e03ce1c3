"""The results of a base or stream classifier, computed once for every runtime.

ClipClassifier (base): each clip's probabilities and segment, the video's mean probabilities and
mean pooled feature. WindowClassifier (stream): windows in order with the model's states carried;
the model pools its head feature as a running sum and frame count in the states, so a window's own
probabilities are the head applied to the mean feature of its frames, the video's are the final
output, and the embedding is the mean over every frame seen. A runtime (tf_backend, litert_backend)
only runs the model: subclasses supply logits, features or steps. Logits become probabilities
through the classifier's Scoring (softmax or sigmoids, and the calibration temperature); the
default is plain softmax, what pretrained presets always had.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from adapter.runtime.results import Scoring, Segment, VideoPrediction, unit_vector
from adapter.runtime.views import fuse_views, view_weights
from adapter.video.clips import Clip

# The head's global average pool keeps a running sum and frame count in the stream states.
_HEAD_POOL_SUM = "state_head_pool_buffer"
_HEAD_POOL_COUNT = "state_head_pool_frame_count"


def _segment(clip: Clip, probabilities: np.ndarray) -> Segment:
    best = int(np.argmax(probabilities))
    return Segment(clip.first_index, clip.last_index, best, float(probabilities[best]), probabilities)


class ClipClassifier:
    """A base-mode classifier's results, whatever runs the model (a runtime supplies the outputs).

    Subclasses yield, per group of clips, the clips with their logits (_logits) or their pooled
    "head" features (_features); the video is the clips' mean.
    """

    scoring: Scoring = Scoring()  # backend.make_classifier sets the model's own

    def _logits(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], np.ndarray]]:
        raise NotImplementedError

    def _features(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], np.ndarray]]:
        raise NotImplementedError

    def _logits_and_features(self, clips: Iterable[Clip]) -> Iterator[tuple[list[Clip], np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def _fused_views(self, clips: Iterable[Clip], fusion: str, features: bool) -> Iterator[tuple]:
        """(clip, fused uncalibrated probabilities, fused feature or None) per multi-view clip, in order.

        Each view (clip.frames[:, v]) runs as a clip of its own, so batching and the TF Lite
        clip model (one clip shape) are those of single-view clips.
        """
        waiting: list[Clip] = []  # multi-view clips whose views have gone to the model

        def views():
            for clip in clips:
                if np.ndim(clip.frames) != 5:
                    raise ValueError(f"a multi-view clip is T x views x H x W x 3. Received: {np.shape(clip.frames)}")
                waiting.append(clip)
                for view in range(clip.frames.shape[1]):
                    yield Clip(clip.frames[:, view], clip.first_index, clip.last_index)

        outputs = self._logits_and_features(views()) if features else self._logits(views())
        done_probabilities: list[np.ndarray] = []
        done_features: list[np.ndarray] = []
        for output in outputs:
            batch, logits = output[0], output[1]
            done_probabilities.extend(self.scoring.raw(logits))
            if features:
                done_features.extend(np.asarray(output[2]).reshape(len(batch), -1))
            while waiting and len(done_probabilities) >= waiting[0].frames.shape[1]:
                clip = waiting.pop(0)
                count = clip.frames.shape[1]
                probabilities = np.stack(done_probabilities[:count])
                del done_probabilities[:count]
                weights = view_weights(probabilities, fusion)
                feature = None
                if features:
                    feature = fuse_views(np.stack(done_features[:count]), weights)
                    del done_features[:count]
                yield clip, fuse_views(probabilities, weights), feature

    def classify_views(self, clips: Iterable[Clip], fusion: str = "mean") -> VideoPrediction:
        """classify() for clips seen through several views (multi-view testing).

        Args:
            clips: the video's clips, frames T x views x H x W x 3.
            fusion: how a clip's views combine (runtime.views: "mean" or "max_confidence").
        Returns:
            The VideoPrediction: each clip's segment from its fused probabilities, and their mean.
        """
        fused = [(clip, p) for clip, p, _ in self._fused_views(clips, fusion, features=False)]
        if not fused:
            raise ValueError("no clip to classify")
        segments = [_segment(clip, self.scoring.calibrate(p)) for clip, p in fused]
        # As classify(): each clip and the clips' mean are calibrated after fusing and averaging.
        return VideoPrediction(self.scoring.calibrate(np.mean([p for _, p in fused], axis=0)), segments)

    def embed_views(self, clips: Iterable[Clip], fusion: str = "mean") -> np.ndarray:
        """embed() for multi-view clips: each clip's views fused with the weights classify_views uses.

        Args:
            clips: as classify_views takes them.
            fusion: as classify_views.
        Returns:
            A 1-D float32 array of norm 1.
        """
        features = [feature for _, _, feature in self._fused_views(clips, fusion, features=True)]
        if not features:
            raise ValueError("no clip to embed")
        return unit_vector(np.mean(features, axis=0))

    def classify(self, clips: Iterable[Clip]) -> VideoPrediction:
        """The video's prediction: each clip's segment and the clips' mean probabilities.

        Args:
            clips: the video's clips of n_frames.
        Returns:
            The VideoPrediction.
        """
        probability_sum = None
        segments: list[Segment] = []
        for batch, logits in self._logits(clips):
            probabilities = self.scoring.raw(logits)
            batch_sum = probabilities.sum(axis=0)
            probability_sum = batch_sum if probability_sum is None else probability_sum + batch_sum
            segments.extend(_segment(clip, self.scoring.calibrate(p)) for clip, p in zip(batch, probabilities))
        if not segments:
            raise ValueError("no clip to classify")
        # The clips' mean is calibrated as a whole, which keeps the order of its classes.
        return VideoPrediction(self.scoring.calibrate(probability_sum / len(segments)), segments)

    def embed(self, clips: Iterable[Clip]) -> np.ndarray:
        """The video's embedding: the clips' mean pooled feature, unit length.

        Args:
            clips: the video's clips, as classify takes them.
        Returns:
            A 1-D float32 array of the variant's embeddings size and norm 1.
        """
        feature_sum = None
        count = 0
        for batch, features in self._features(clips):
            features = np.asarray(features).reshape(len(batch), -1)
            feature_sum = features.sum(axis=0) if feature_sum is None else feature_sum + features.sum(axis=0)
            count += len(batch)
        if count == 0:
            raise ValueError("no clip to embed")
        return unit_vector(feature_sum / count)


class WindowClassifier:
    """A stream-mode classifier's results, whatever runs the model (a runtime supplies the steps).

    The model pools its head feature as a running sum and frame count in its states, so a
    window's own probabilities are the head applied to the mean feature of its frames, and
    the embedding is the mean over every frame seen. Subclasses yield, per window,
    (window, logits so far, states before, states after) from _steps and apply the
    classifier head to a pooled feature in _head_logits.
    """

    scoring: Scoring = Scoring()  # backend.make_classifier sets the model's own

    def _steps(self, windows: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict, dict]]:
        raise NotImplementedError

    def _head_logits(self, feature: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def segments(self, windows: Iterable[Clip]) -> Iterator[tuple[Segment, np.ndarray]]:
        """Classify windows as they arrive, one result per window (live sources, long videos).

        Args:
            windows: the video's windows, in order; may be endless.
        Returns:
            An iterator of (the window's own segment, probabilities over everything seen so far),
            each ready as soon as its window has run.
        """
        for window, logits, before, states in self._steps(windows):
            frames_in_window = _frame_count(states) - _frame_count(before)
            pooled_sum = np.asarray(states[_HEAD_POOL_SUM]) - np.asarray(before[_HEAD_POOL_SUM])
            own = self.scoring.raw(self._head_logits((pooled_sum / frames_in_window).astype(np.float32)))[0]
            # The model's own output pools every frame seen so far.
            scoring = self.scoring
            yield _segment(window, scoring.calibrate(own)), scoring.calibrate(scoring.raw(logits)[0])

    def classify(self, windows: Iterable[Clip]) -> VideoPrediction:
        """The video's prediction: the final output (every frame pooled) and each window's segment.

        Args:
            windows: the video's windows, in order.
        Returns:
            The VideoPrediction.
        """
        return classify_stream(self.segments(windows))

    def embed(self, windows: Iterable[Clip]) -> np.ndarray:
        """The video's embedding: the pooled feature over every frame (what the final output projects).

        Args:
            windows: the video's windows, in order, as classify takes them.
        Returns:
            A 1-D float32 array of the variant's embeddings size and norm 1.
        """
        states = None
        for _, _, _, states in self._steps(windows):
            pass
        if states is None:
            raise ValueError("no window to embed")
        return unit_vector(np.asarray(states[_HEAD_POOL_SUM]) / _frame_count(states))


def _frame_count(states: dict) -> float:
    return float(np.asarray(states[_HEAD_POOL_COUNT]).reshape(-1)[0])


def classify_stream(results: Iterable[tuple[Segment, np.ndarray]]) -> VideoPrediction:
    """A whole video's prediction from a stream classifier's per-window results.

    Args:
        results: (segment, probabilities so far) per window, as a stream classifier's
            segments() yields them.
    Returns:
        The video's prediction: the last window's probabilities so far, and every segment.
    Raises:
        ValueError: there was no window.
    """
    segments: list[Segment] = []
    probabilities = None
    for segment, probabilities in results:
        segments.append(segment)
    if probabilities is None:
        raise ValueError("no window to classify")
    return VideoPrediction(probabilities, segments)
