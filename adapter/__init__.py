"""MoViNet video classification as a Dataloop model adapter.

The data flow reads from the module names:
video (frames, resampled) -> preprocessing -> clips -> network/inference -> probabilities
-> annotations; and for fine-tuning: dataset -> samples -> tf.data -> fit.
MovinetAdapter (movinet_adapter.py) only wires the platform hooks to those modules.
"""

__all__ = ["MovinetAdapter", "__version__"]

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
