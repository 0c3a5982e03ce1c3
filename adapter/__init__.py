"""MoViNet video classification as a Dataloop model adapter.

One package per role, in layers that import only downwards (tests/project/test_layout.py checks it):

    core -> video -> datasets -> model -> runtime -> export -> evaluation -> training
    -> platform -> adapter (movinet_adapter.py) -> cli

- core: errors, configuration, the variants table and presets, devices, atomic files.
- video: reading and decoding (H.264 skipping), live sources, preprocessing, prefetch, clips.
- datasets: prepare_data's folder layout -> labelled samples -> training clips.
- model: the official network, layer swaps, TF Hub resolution and loading.
- runtime: the one place that chooses TensorFlow or LiteRT, the classifiers, the conversion cache.
- export: TF Lite, SavedModel and hub-format exports (above the runtime, importing down).
- evaluation: metrics, the confusion matrix and the pictures.
- training: fine-tuning in base mode (tf.data -> fit), checkpoints and resume.
- platform: the only code that imports dtlpy (annotations, items, dataset runs, offline entities).
- movinet_adapter.py: MovinetAdapter, the entry point dataloop.json names; it only wires hooks.
- cli: the `movinet` command (parser, commands, options, watch's loop).

Data flow of a prediction: video.reader -> video.preprocessing -> video.clips -> runtime.backend
(a classifier) -> runtime.results -> platform.annotations. Of fine-tuning: datasets.layout ->
datasets.sample_clips -> training.pipeline (tf.data) -> training.fit.
"""

__all__ = ["LAYERS", "MovinetAdapter", "__version__"]

# The layers, lowest first: a module may import its own layer and those before it.
LAYERS = (
    "core",
    "video",
    "datasets",
    "model",
    "runtime",
    "export",
    "evaluation",
    "training",
    "platform",
    "movinet_adapter",
    "cli",
    "__main__",
)

# The one number a release bumps: the package (pyproject.toml reads it), the DPK manifest
# and the runner image tags (tools/build_manifest.py) all take their version from here.
__version__ = "0.1.0"


def __getattr__(name):
    # Imported on first use so that config, presets and the manifest tools work without
    # paying TensorFlow's import time.
    if name == "MovinetAdapter":
        from adapter.movinet_adapter import MovinetAdapter

        return MovinetAdapter
    raise AttributeError(f"module 'adapter' has no attribute {name!r}")
