"""Keras MoViNet -> TF Lite flatbuffers: the concrete functions and the converter call.

Stream models become a single-frame step whose states are inputs and outputs (the layout of the
official TF Lite MoViNet stream models), plus a head model; base models become a fixed-length clip
model of builtin ops (model.layer_swaps.tflite_compatible) returning the logits and the pooled
feature. The runtime caches these conversions (runtime.conversion_cache); export.tflite writes
them as files, quantized if asked.
"""

from __future__ import annotations

import logging

import tensorflow as tf
import tf_keras

from adapter.core.config import MovinetConfig
from adapter.core.errors import UsageError
from adapter.model.layer_swaps import tflite_compatible
from adapter.model.loading import LoadedModel
from adapter.model.network import classifier_head
from adapter.runtime.classifiers import _HEAD_POOL_SUM

logger = logging.getLogger(__name__)


QUANTIZATIONS = ("none", "float16", "int8")

# The runtime's `precision` key -> the converter's quantization.
QUANTIZATION_OF_PRECISION = {"float32": "none", "float16": "float16", "int8": "int8"}

# Ops kept in float in int8 conversions. XNNPACK (LiteRT's CPU delegate) has no int8 kernel for
# the first three: as int8 they run on LiteRT's single-threaded reference kernels and cut the graph
# into some 160 delegate partitions, which made full int8 2.5-3x slower than float32
# (docs/int8.md). MEAN, SUM, MUL and LOGISTIC are the squeeze-excitation and the running 3D
# global average pools, where the quantization debugger measured the largest errors
# (tensorflow/models#10809); in float they cost no measurable time. The convolutions, the
# bulk of the gain, stay int8.
INT8_FLOAT_OPS = ("HARD_SWISH", "DIV", "AVERAGE_POOL_2D", "MEAN", "SUM", "MUL", "LOGISTIC")


IMAGE_INPUT = "image"


LOGITS_OUTPUT = "logits"


POOLED_OUTPUT = "pooled"


def stream_step_function(model: tf_keras.Model, imgz: int):
    """The stream model's one-frame step as a concrete function: (image, states) -> logits and states.

    Args:
        model: a stream MovinetClassifier (output_states=True).
        imgz: frame size the model is exported for.

    Returns:
        (concrete function, initial states as a dict of numpy arrays).
    """
    shape = [1, 1, imgz, imgz, 3]
    initial = {name: value.numpy() for name, value in model.init_states(tf.constant(shape)).items()}
    state_specs = {name: tf.TensorSpec(value.shape, value.dtype, name=name) for name, value in initial.items()}

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=IMAGE_INPUT), state_specs])
    def step(image, states):
        logits, new_states = model({**states, "image": image}, training=False)
        return {LOGITS_OUTPUT: logits, **new_states}

    return step.get_concrete_function(), initial


def clip_function(model: tf_keras.Model, n_frames: int, imgz: int, with_pooled: bool = False):
    """The base model on one fixed-length clip as a concrete function of TF Lite builtin ops: image -> logits.

    Args:
        model: a base MovinetClassifier; its 3D poolings are switched in place to per-frame
            ones (tflite_compatible: same outputs, no weights touched).
        n_frames: frames per clip the model is exported for.
        imgz: frame size the model is exported for.
        with_pooled: also return the backbone's pooled "head" feature (the tflite runtime's
            embeddings), as POOLED_OUTPUT.

    Returns:
        The concrete function, taking `image` (1 x n_frames x imgz x imgz x 3) and returning
        {"logits"} (and {"pooled"}).
    """
    tflite_compatible(model)
    head = classifier_head(model)
    spec = tf.TensorSpec([1, n_frames, imgz, imgz, 3], tf.float32, name=IMAGE_INPUT)

    @tf.function(input_signature=[spec])
    def clip(image):
        # The backbone once; the head projects its pooled feature, as MovinetClassifier does.
        pooled = model.backbone(image, training=False)[0]["head"]
        outputs = {LOGITS_OUTPUT: head(pooled, training=False)}
        if with_pooled:
            outputs[POOLED_OUTPUT] = pooled
        return outputs

    return clip.get_concrete_function()


def convert(concrete_function, model: tf_keras.Model, quantize: str, representative=None) -> bytes:
    """Convert a concrete function to a TF Lite flatbuffer.

    Args:
        concrete_function: what to convert.
        model: the Keras model whose variables the function reads.
        quantize: one of QUANTIZATIONS.
        representative: for int8, a callable returning an iterator of {input name: array}.

    Returns:
        The .tflite file's bytes.
    """
    if quantize not in QUANTIZATIONS:
        raise UsageError(f"quantize must be one of {', '.join(QUANTIZATIONS)}. Received: quantize={quantize!r}")
    # The converter first saves the function with the object owning its variables as a
    # SavedModel. Given the Keras model, TF-Keras would also trace and serialise every
    # layer's call, most of a conversion's time (docs/benchmarks.md, TF Lite conversion); a module
    # holding just the variables gives the same flatbuffer.
    variables = tf.Module()
    variables.model_variables = list(model.variables)
    # Builtin ops only: the LiteRT interpreter runs no TF Select ops, so a model needing them fails here.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function], variables)
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # Selective quantization: the debugger calibrates as the converter would and builds the
        # model with the denylisted ops in float (quantize/dequantize around them, which XNNPACK runs).
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(INT8_FLOAT_OPS))
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative, debug_options=options
        )
        return debugger.get_nondebug_quantized_model()
    return converter.convert()


logger = logging.getLogger(__name__)


def convert_stream(loaded: LoadedModel, config: MovinetConfig) -> tuple[bytes, bytes]:
    """Convert a stream model's one-frame step and its classifier head to TF Lite.

    Args:
        loaded: the loaded stream model.
        config: gives imgz, and precision for the step (the head, a few hundred
            multiply-adds per window, stays float32); int8 calibrates on calibration_videos.
    Returns:
        (step flatbuffer, head flatbuffer).
    """
    import tensorflow as tf

    from adapter.model.network import classifier_head
    from adapter.runtime import conversion

    model = loaded.model
    step_function, initial = conversion.stream_step_function(model, config.imgz)
    head_layer = classifier_head(model)
    pooled = initial[_HEAD_POOL_SUM]

    @tf.function(input_signature=[tf.TensorSpec(pooled.shape, tf.float32, name="pooled")])
    def head(pooled):
        return {conversion.LOGITS_OUTPUT: head_layer(pooled, training=False)}

    representative = None
    if config.precision == "int8":
        from adapter.runtime.calibration import calibration_files, stream_calibration

        videos = calibration_files(config.calibration_videos)

        def representative():
            return stream_calibration(model, config, videos, initial)

    step = convert(step_function, model, QUANTIZATION_OF_PRECISION[config.precision], representative)
    return step, convert(head.get_concrete_function(), model, "none")


CLIP_FILE = "clip.tflite"


def convert_base(loaded: LoadedModel, config: MovinetConfig) -> tuple[bytes]:
    """Convert a base model's clip model (logits and pooled feature) to a TF Lite flatbuffer.

    Args:
        loaded: the loaded base model.
        config: gives n_frames, imgz and precision (int8 calibrates on calibration_videos).
    Returns:
        (clip flatbuffer,).
    """
    model = loaded.model
    function = clip_function(model, config.n_frames, config.imgz, with_pooled=True)
    representative = None
    if config.precision == "int8":
        from adapter.runtime.calibration import calibration_files, clip_calibration

        videos = calibration_files(config.calibration_videos)

        def representative():
            return clip_calibration(config, videos)

    return (convert(function, model, QUANTIZATION_OF_PRECISION[config.precision], representative),)
