"""Behaviour of adapter.config.MovinetConfig: documented defaults, rejected values, key hints."""

import logging
import re

import pytest

from adapter.core.config import ConfigError, MovinetConfig

CONFIG_LOGGER = "adapter.core.config"


def config_warnings(caplog):
    return [record for record in caplog.records if record.name == CONFIG_LOGGER and record.levelno >= logging.WARNING]


@pytest.fixture
def caplog_config(caplog):
    caplog.set_level(logging.DEBUG, logger=CONFIG_LOGGER)
    return caplog


# --- defaults ---------------------------------------------------------------------------


@pytest.mark.parametrize("configuration", [None, {}], ids=["none", "empty"])
def test_defaults_are_the_documented_values(configuration, caplog_config):
    config = MovinetConfig.from_dict(configuration)

    # The product's documented defaults, spelled out.
    assert config.hub_version == 3
    assert config.model_id == "a0"
    assert config.model_mode == "base"
    assert config.imgz == 224
    assert config.batch_size == 2
    assert config.num_epochs == 8
    assert config.n_frames == 13
    assert config.top_k == 3
    assert config.learning_rate == 0.001
    assert config.fps is None
    assert config.id_to_label_map is None
    assert config.predict_embed_subset_limit == 1000  # the SDK's own default
    assert config.predict_embed_timeout == 86400  # the SDK's own default
    assert config.precision == "float32" and config.calibration_videos is None
    assert config_warnings(caplog_config) == []


def test_given_values_override_defaults():
    config = MovinetConfig.from_dict({"model_id": "a3", "model_mode": "stream", "imgz": 256, "top_k": 5, "fps": 12})

    assert (config.model_id, config.model_mode, config.imgz, config.top_k, config.fps) == ("a3", "stream", 256, 5, 12)
    # Untouched keys keep their defaults.
    assert config.n_frames == 13
    assert config.batch_size == 2


def test_to_dict_round_trips():
    config = MovinetConfig.from_dict({"model_id": "a2", "fps": 7.5, "id_to_label_map": {"0": "a", "1": "b"}})

    assert MovinetConfig.from_dict(config.to_dict()) == config


# --- rejected values --------------------------------------------------------------------

BAD_VALUES = [
    ("model_id", "a9"),
    ("model_mode", "live"),
    ("imgz", 0),
    ("imgz", "224"),
    ("imgz", True),
    ("n_frames", 0),
    ("learning_rate", 0),
    ("learning_rate", -0.001),
    ("fps", -5),
    ("top_k", 0),
    ("embeddings_size", 0),
    ("embeddings_size", "480"),
    ("predict_embed_subset_limit", 0),
    ("predict_embed_subset_limit", "50"),
    ("predict_embed_timeout", 0),
    ("predict_embed_timeout", "3600"),
    ("evaluate_temporal_annotations", "yes"),
    ("weights_filename", "../outside.weights.h5"),
    ("weights_filename", "/etc/w.weights.h5"),
    ("weights_filename", ".."),
    ("imgz", 100000),
    ("n_frames", 100000),
    ("precision", "int4"),
    ("precision", "FLOAT16"),
    ("calibration_videos", 3),
    ("calibration_videos", ""),
]


@pytest.mark.parametrize("key, value", BAD_VALUES, ids=[f"{key}={value!r}" for key, value in BAD_VALUES])
def test_bad_value_raises_config_error_naming_key_and_value(key, value):
    with pytest.raises(ConfigError) as raised:
        MovinetConfig.from_dict({key: value})

    message = str(raised.value)
    assert repr(key) in message
    # The offending value is quoted after the key, as a whole token (repr keeps "224" apart
    # from 224, and 0 must not be found inside the bound "0.0").
    after_key = message.split(repr(key), 1)[1]
    assert re.search(rf"(?<![\w.\-]){re.escape(repr(value))}(?![\w.])", after_key), message


def test_imgz_past_the_memory_bound_is_refused_naming_the_bound():
    from adapter.core.config import MAX_IMGZ

    with pytest.raises(ConfigError, match=rf"'imgz': 100000 .* at most {MAX_IMGZ}\b"):
        MovinetConfig.from_dict({"imgz": 100000})
    # The bound is where one frame alone fills the clip budget: an imgz just under it passes with one frame.
    MovinetConfig.from_dict({"imgz": MAX_IMGZ, "n_frames": 1})


def test_n_frames_bound_depends_on_imgz_and_names_both():
    from adapter.core.config import ACTIVATION_BYTES_PER_PIXEL, CLIP_MEMORY_BOUND_BYTES

    imgz = 1024
    bound = CLIP_MEMORY_BOUND_BYTES // ACTIVATION_BYTES_PER_PIXEL // imgz**2
    MovinetConfig.from_dict({"imgz": imgz, "n_frames": bound})  # the largest clip that fits
    with pytest.raises(ConfigError, match=rf"'n_frames': {bound + 1} .* at most {bound} at imgz={imgz}"):
        MovinetConfig.from_dict({"imgz": imgz, "n_frames": bound + 1})


def test_the_largest_published_movinet_inputs_are_within_the_bounds():
    # a5 at 320 px over 120 frames and a3 at 256 px over 120 frames (the MoViNet paper's Kinetics inputs).
    MovinetConfig.from_dict({"model_id": "a5", "imgz": 320, "n_frames": 120})
    MovinetConfig.from_dict({"model_id": "a3", "imgz": 256, "n_frames": 120})


def test_config_error_is_a_value_error():
    # Callers that only know ValueError still catch it.
    with pytest.raises(ValueError):
        MovinetConfig.from_dict({"top_k": 0})


def test_replace_validates_too():
    config = MovinetConfig.from_dict({})

    assert config.replace(top_k=5).top_k == 5
    with pytest.raises(ConfigError, match="n_frames"):
        config.replace(n_frames=0)


def test_id_to_label_map_without_gaps_gives_labels_in_index_order():
    config = MovinetConfig.from_dict({"id_to_label_map": {"1": "archery", "0": "abseiling", "2": "arguing"}})

    assert config.labels_from_map() == ["abseiling", "archery", "arguing"]


# --- unknown and platform keys ------------------------------------------------------------


def test_unknown_key_num_frames_warns_and_suggests_n_frames(caplog_config):
    config = MovinetConfig.from_dict({"num_frames": 16})

    warnings = config_warnings(caplog_config)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "'num_frames'" in message
    assert "'n_frames'" in message
    # Ignored, not applied.
    assert config.n_frames == 13


def test_unknown_key_resolution_warns_and_names_a_known_key(caplog_config):
    MovinetConfig.from_dict({"resolution": 256})

    warnings = config_warnings(caplog_config)
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "'resolution'" in message
    assert "did you mean" in message


@pytest.mark.parametrize(
    "unknown, meant",
    [
        ("resolution", "imgz"),
        ("image_size", "imgz"),
        ("frame_rate", "fps"),
        ("lr", "learning_rate"),
        ("epochs", "num_epochs"),
    ],
)
def test_unknown_key_from_other_tools_suggests_the_key_meant(unknown, meant, caplog_config):
    MovinetConfig.from_dict({unknown: 1})

    (warning,) = config_warnings(caplog_config)
    assert f"'{unknown}'" in warning.getMessage()
    assert f"'{meant}'" in warning.getMessage()


@pytest.mark.parametrize("key", ["learning_rate", "fps", "dropout_rate", "checkpoint_upload_minutes"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        MovinetConfig.from_dict({key: value})


@pytest.mark.parametrize("value", [-1, "ten", True])
def test_a_checkpoint_upload_period_that_is_not_a_number_of_minutes_is_refused(value):
    with pytest.raises(ConfigError, match=r"'checkpoint_upload_minutes'.*>= 0"):
        MovinetConfig.from_dict({"checkpoint_upload_minutes": value})


def test_a_checkpoint_upload_period_of_zero_means_every_epoch_and_is_allowed():
    assert MovinetConfig.from_dict({"checkpoint_upload_minutes": 0}).checkpoint_upload_minutes == 0
    assert MovinetConfig.from_dict({}).checkpoint_upload_minutes > 0  # a default that bounds lost work


@pytest.mark.parametrize("configuration", ["abc", 5, [("imgz", 96)]])
def test_a_configuration_that_is_not_a_mapping_is_a_config_error(configuration):
    with pytest.raises(ConfigError, match="mapping"):
        MovinetConfig.from_dict(configuration)


@pytest.mark.parametrize(
    "mapping, phrase",
    [
        ({"0": "a", "1": ""}, "non-empty strings"),
        ({"0": "a", "1": 7}, "non-empty strings"),
        ({"0": "a", "1": "a"}, "more than once"),
        ({"0": "a", "x": "b"}, "not integers"),
    ],
)
def test_bad_label_maps_are_refused_with_the_reason(mapping, phrase):
    with pytest.raises(ConfigError, match=phrase):
        MovinetConfig.from_dict({"id_to_label_map": mapping})


def test_a_gap_in_a_label_map_is_refused():
    with pytest.raises(ConfigError, match=r"id_to_label_map.*missing \[1\]"):
        MovinetConfig.from_dict({"id_to_label_map": {"0": "abseiling", "2": "archery"}})


def test_a_gap_in_a_large_label_map_names_the_missing_index_briefly():
    mapping = {str(i): f"label {i}" for i in range(600) if i != 123}

    with pytest.raises(ConfigError) as error:
        MovinetConfig.from_dict({"id_to_label_map": mapping})

    assert "123" in str(error.value)
    assert len(str(error.value)) < 300


@pytest.mark.parametrize(
    "key, value",
    [
        ("include_background", False),
        ("upload_annotations", True),
        ("label_to_id_map", {"abseiling": 0}),
        ("output_path", "/tmp/out"),
    ],
)
def test_platform_keys_do_not_warn(key, value, caplog_config):
    MovinetConfig.from_dict({key: value})

    assert config_warnings(caplog_config) == []


@pytest.mark.parametrize("model_id", ["a0", "a3"])
def test_embeddings_size_must_be_the_variants_when_set(model_id):
    unset = MovinetConfig.from_dict({"model_id": model_id})
    given = MovinetConfig.from_dict({"model_id": model_id, "embeddings_size": 480})

    # a0's feature has 480 values, a3's 744.
    expected = {"a0": 480, "a3": 744}[model_id]
    assert unset.check_embeddings_size() == expected
    if model_id == "a0":
        assert given.check_embeddings_size() == 480
    else:
        with pytest.raises(ConfigError, match=r"'embeddings_size': 480 .*744"):
            given.check_embeddings_size()


# --- frame rate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_id, expected_fps",
    [("a0", 5.0), ("a1", 5.0), ("a2", 5.0), ("a3", 12.0), ("a4", 8.0), ("a5", 12.0)],
)
def test_frame_rate_falls_back_to_the_variant_fps(model_id, expected_fps):
    config = MovinetConfig.from_dict({"model_id": model_id})

    assert config.fps is None
    assert config.frame_rate == expected_fps


def test_frame_rate_uses_fps_when_given():
    config = MovinetConfig.from_dict({"model_id": "a3", "fps": 7.5})

    assert config.frame_rate == 7.5
    assert isinstance(MovinetConfig.from_dict({"fps": 6}).frame_rate, float)


# --- training on devices and imbalanced labels (mixed_precision, class_weighting) -----------


@pytest.mark.parametrize(
    "key, value",
    [("mixed_precision", "on"), ("mixed_precision", 1), ("mixed_precision", None), ("class_weighting", "inverse")],
)
def test_training_scale_keys_refuse_other_values_naming_them(key, value):
    with pytest.raises(ConfigError, match=rf"'{key}': {re.escape(repr(value))} is not allowed"):
        MovinetConfig.from_dict({key: value})


def test_training_scale_keys_default_to_auto_precision_and_unweighted_classes():
    config = MovinetConfig.from_dict({})
    assert (config.mixed_precision, config.class_weighting) == ("auto", "none")
    for value in ("auto", True, False):
        assert MovinetConfig.from_dict({"mixed_precision": value}).mixed_precision == value
    assert MovinetConfig.from_dict({"class_weighting": "balanced"}).class_weighting == "balanced"


# --- multi-view testing and temporal segments -------------------------------------------


def test_view_and_segment_keys_default_to_todays_behaviour():
    config = MovinetConfig.from_dict({})

    assert (config.test_crops, config.view_fusion, config.test_clips) == (1, "mean", 0)
    assert (config.temporal_smoothing, config.min_segment_seconds, config.segment_min_confidence) == (0, 0, 0)


@pytest.mark.parametrize(
    "key, value",
    [
        ("test_crops", 2),
        ("test_crops", True),
        ("test_crops", 3.0),
        ("view_fusion", "vote"),
        ("test_clips", -1),
        ("test_clips", 2.5),
        ("temporal_smoothing", -0.5),
        ("temporal_smoothing", "1s"),
        ("min_segment_seconds", float("nan")),
        ("segment_min_confidence", 1.0),
        ("segment_min_confidence", -0.1),
    ],
)
def test_bad_view_and_segment_values_name_the_key_and_the_value(key, value):
    with pytest.raises(ConfigError, match=re.escape(repr(key)) + r".*" + re.escape(repr(value))):
        MovinetConfig.from_dict({key: value})


@pytest.mark.parametrize("key, value", [("test_crops", 3), ("test_clips", 4)])
def test_multi_view_and_spaced_clips_are_refused_for_stream_models(key, value):
    with pytest.raises(ConfigError, match=f"'{key}': {value} applies to base models only"):
        MovinetConfig.from_dict({"model_mode": "stream", key: value})
    assert getattr(MovinetConfig.from_dict({"model_mode": "base", key: value}), key) == value


def test_int8_needs_calibration_videos_and_the_tflite_runtime():
    with pytest.raises(ConfigError, match="'int8' needs 'calibration_videos'"):
        MovinetConfig.from_dict({"precision": "int8"})
    for precision in ("float16", "int8"):
        with pytest.raises(ConfigError, match=f"{precision!r} needs the tflite runtime.*'tensorflow'"):
            MovinetConfig.from_dict({"precision": precision, "runtime": "tensorflow", "calibration_videos": "v"})
    config = MovinetConfig.from_dict({"precision": "int8", "calibration_videos": "videos/"})
    assert config.resolved_runtime == "tflite" and config.calibration_videos == "videos/"


# --- multi-label and calibration (multi_label, calibrate, min_confidence, temperature, class_thresholds) ---


def test_multi_label_and_calibration_keys_default_to_todays_behaviour():
    config = MovinetConfig.from_dict({})
    assert (config.multi_label, config.calibrate, config.min_confidence) == (False, True, 0.0)
    assert (config.temperature, config.class_thresholds) == (None, None)
    chosen = MovinetConfig.from_dict(
        {
            "multi_label": True,
            "calibrate": False,
            "min_confidence": 0.4,
            "temperature": 1.7,
            "class_thresholds": [0.3, 1],
        }
    )
    assert (chosen.multi_label, chosen.calibrate, chosen.min_confidence) == (True, False, 0.4)
    assert (chosen.temperature, chosen.class_thresholds) == (1.7, [0.3, 1])


@pytest.mark.parametrize(
    "key, value",
    [
        ("multi_label", "yes"),
        ("calibrate", 1),
        ("min_confidence", 1.5),
        ("min_confidence", -0.1),
        ("min_confidence", "high"),
        ("temperature", 0),
        ("temperature", -2.0),
        ("class_thresholds", []),
        ("class_thresholds", [0.5, 1.2]),
        ("class_thresholds", "0.5"),
        ("class_thresholds", [True]),
    ],
)
def test_multi_label_and_calibration_keys_refuse_bad_values_naming_them(key, value):
    with pytest.raises(ConfigError, match=rf"'{key}': {re.escape(repr(value))} is not allowed"):
        MovinetConfig.from_dict({key: value})


def test_balanced_class_weighting_is_refused_for_multi_label_training():
    with pytest.raises(ConfigError, match=r"'class_weighting'.*multi_label"):
        MovinetConfig.from_dict({"multi_label": True, "class_weighting": "balanced"})
