"""Embeddings: the pooled backbone feature per video, offline and through the SDK's embed_items.

The a0 models are random-weight exports (tests/conftest.py), so "similar videos are close"
is checked on videos far apart in content and motion, with a margin.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tf_keras
from official.projects.movinet.modeling import movinet, movinet_layers

from adapter import MovinetAdapter
from adapter.core.config import ConfigError
from adapter.core.variants import MODEL_IDS, VARIANTS
from adapter.movinet_adapter import EmbeddingFailed
from adapter.video.inputs import local_video
from tests.cli.test_parser import run_cli
from tests.conftest import model_entity, set_options
from tests.movinet_adapter.test_predict import decode_every_frame_rgb
from tests.videos import write_text_as_video, write_video

SMALL = {"model_id": "a0", "imgz": 48, "n_frames": 4, "batch_size": 2, "top_k": 3, "fps": 5}
VIDEO_FPS = 10  # resampled to 5 fps: every second frame is kept
A0_SIZE = VARIANTS["a0"].embeddings_size


def make_adapter(mode: str, **overrides) -> MovinetAdapter:
    entity = model_entity(
        {**SMALL, "model_mode": mode, **overrides},
        name=f"movinet-a0-{mode}",
        model_id=f"id-{mode}",
        project_id="project-1",
    )
    return MovinetAdapter(model_entity=entity)


@pytest.fixture(scope="module", params=["base", "stream"])
def adapter(request, hub_cache, module_platform):
    return make_adapter(request.param)


def classifier_head_input(model: tf_keras.Model) -> tf_keras.Model:
    """A model from the classifier's inputs to the tensor its ClassifierHead receives."""
    (head,) = [layer for layer in model.layers if isinstance(layer, movinet_layers.ClassifierHead)]
    return tf_keras.Model(model.inputs, head.input)


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_registry_size_is_the_official_networks_pooled_head_width(model_id):
    # The head block projects to project_filters channels and pools them: that is the feature.
    head_spec = movinet.BLOCK_SPECS[model_id][-1]
    assert isinstance(head_spec, movinet.HeadSpec)
    assert VARIANTS[model_id].embeddings_size == head_spec.project_filters


def test_embedding_is_the_unit_feature_the_classifier_head_receives(adapter, tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=16, fps=VIDEO_FPS, width=64, height=48, direction=(3, 1))

    vector = adapter.embed_video(local_video(path))

    # The test's own decoding: 10 -> 5 fps keeps frames 0, 2, ..., 14.
    frames = np.stack(decode_every_frame_rgb(path, 48)[::2])
    to_head = classifier_head_input(adapter.model)
    if adapter.config.model_mode == "base":
        # Two clips of four frames; the video is their mean feature.
        clips = np.stack([frames[0:4], frames[4:8]])
        feature = to_head(clips, training=False).numpy().reshape(2, -1).mean(axis=0)
    else:
        # All eight frames in one call: what the head sees after the whole video.
        states = adapter.model.init_states(frames[None].shape)
        feature = to_head({**states, "image": frames[None]}, training=False).numpy().reshape(-1)
    assert to_head.output_shape[-1] == A0_SIZE
    assert vector.shape == (A0_SIZE,)
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    np.testing.assert_allclose(vector, feature / np.linalg.norm(feature), atol=2e-5)


def test_same_motion_in_two_encodings_is_closer_than_other_motions(adapter, tmp_path):
    # The same frames as MPEG-4 Part 2 in MP4 and as VP9 in WebM.
    square_right_mp4 = write_video(tmp_path / "right.mp4", frames=20, fps=VIDEO_FPS, direction=(4, 0))
    square_right_webm = write_video(tmp_path / "right.webm", frames=20, fps=VIDEO_FPS, direction=(4, 0))
    # Same background and square, moving down instead: only the motion differs.
    square_down = write_video(tmp_path / "down.mp4", frames=20, fps=VIDEO_FPS, direction=(0, 4))
    noise = write_video(tmp_path / "noise.mp4", frames=20, fps=VIDEO_FPS, pattern="noise", seed=1)

    right, right_again, down, random_frames = (
        adapter.embed_video(local_video(path)) for path in (square_right_mp4, square_right_webm, square_down, noise)
    )

    same = cosine(right, right_again)
    # Random weights map every video into a narrow cone, so compare distances (1 - cosine):
    # re-encoding moves the vector ten times less than changing the motion.
    assert (1 - same) * 10 < 1 - cosine(right, down)
    assert (1 - same) * 10 < 1 - cosine(right, random_frames)


def test_embed_names_the_bad_video_and_embeds_the_others(adapter, tmp_path):
    good = write_video(tmp_path / "good.mp4", frames=12, fps=VIDEO_FPS)
    bad = write_text_as_video(tmp_path / "notes.mp4")
    other = write_video(tmp_path / "other.avi", frames=8, fps=VIDEO_FPS, pattern="noise")
    adapter.failures = []

    vectors = adapter.embed([local_video(good), local_video(bad), local_video(other)])

    assert vectors[1] is None
    assert [name for name, _ in adapter.failures] == [bad]
    for vector in (vectors[0], vectors[2]):
        assert len(vector) == A0_SIZE
        np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert cosine(vectors[0], vectors[2]) < 1 - 1e-4  # two different videos, two different vectors


def test_embed_items_uploads_unit_vectors_to_a_feature_set_of_the_variants_size(hub_cache, platform, tmp_path):
    adapter = make_adapter("base")  # its configuration has no embeddings_size: the variant's applies
    videos = [
        write_video(tmp_path / f"v{i}.mp4", frames=10, fps=VIDEO_FPS, direction=(2 * i + 1, i), seed=i)
        for i in range(3)
    ]
    items = [
        platform.add_item(videos[0]),
        platform.add_item(write_text_as_video(tmp_path / "broken.mp4")),
        platform.add_item(videos[1]),
    ]
    items.append(platform.add_item(videos[2], name="photo.jpg", mimetype="image/jpeg"))

    # dtlpy's own embed_items: prepare_item_func, embed, the size check, features.create.
    with pytest.raises(EmbeddingFailed) as raised:
        adapter.embed_items(items)

    (feature_set,) = platform.feature_sets
    assert feature_set.size == A0_SIZE
    assert feature_set.model_id == "id-base"
    assert adapter.configuration["embeddings_size"] == A0_SIZE
    uploaded = {feature["item_id"]: feature for feature in platform.features}
    assert set(uploaded) == {items[0].id, items[2].id}
    for feature in uploaded.values():
        assert feature["feature_set_id"] == feature_set.id
        assert len(feature["value"]) == A0_SIZE
        np.testing.assert_allclose(np.linalg.norm(feature["value"]), 1.0, atol=1e-5)
    # Each failed video is named with its reason; the upload of the others went ahead.
    message = str(raised.value)
    assert "2 video(s) could not be embedded" in message
    assert "'broken.mp4'" in message
    assert "'photo.jpg'" in message and "not a video" in message


def test_embed_items_refuses_an_embeddings_size_the_variant_does_not_produce(adapter, platform, tmp_path):
    item = platform.add_item(write_video(tmp_path / "v.mp4", frames=8, fps=VIDEO_FPS))
    adapter.configuration["embeddings_size"] = 256
    try:
        with pytest.raises(ConfigError) as raised:
            adapter.embed_items([item])
    finally:
        del adapter.configuration["embeddings_size"]

    message = str(raised.value)
    assert "'embeddings_size'" in message and "256" in message and str(A0_SIZE) in message
    # Nothing was created with the wrong size.
    assert platform.feature_sets == [] and platform.features == []


def test_cli_embed_writes_a_vector_per_video_and_fails_for_the_bad_one(hub_cache, tmp_path):
    good = write_video(tmp_path / "walk.mp4", frames=12, fps=VIDEO_FPS)
    bad = write_text_as_video(tmp_path / "notes.mp4")
    other = write_video(tmp_path / "run.mkv", frames=9, fps=VIDEO_FPS, width=48, height=64, direction=(0, 3))
    output = tmp_path / "embeddings.json"

    result = run_cli(
        "embed",
        good,
        bad,
        other,
        *set_options(imgz=48, n_frames=4),
        "--output",
        str(output),
        env_extra={"TFHUB_CACHE_DIR": str(hub_cache)},
    )

    assert result.returncode == 1, result.stderr[-3000:]
    written = json.loads(output.read_text())
    assert list(written) == [good, bad, other]  # the video after the bad one was still embedded
    assert written[bad] is None
    for path in (good, other):
        assert len(written[path]) == A0_SIZE
        np.testing.assert_allclose(np.linalg.norm(written[path]), 1.0, atol=1e-5)
    assert f"FAILED {bad}" in result.stderr


def test_cli_embed_exits_2_for_a_bad_option_naming_it(tmp_path):
    video = str(tmp_path / "x.mp4")
    output = str(tmp_path / "out.json")

    bad_value = run_cli("embed", video, "--set", "n_frames=0", "--output", output)
    no_weights = run_cli("embed", video, "--weights", str(tmp_path), "--output", output)

    assert bad_value.returncode == 2 and "'n_frames'" in bad_value.stderr
    assert (
        no_weights.returncode == 2 and str(tmp_path) in no_weights.stderr and "no fine-tuned model" in no_weights.stderr
    )
