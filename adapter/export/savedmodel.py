"""SavedModel export: the loaded model (fine-tuned or hub) -> a SavedModel in the TF Hub MoViNet format.

The SavedModel has the signatures of the published TF Hub models, written by the official
exporter (official.projects.movinet.tools.export_saved_model) as `export-hub` writes them:

- base: serving_default, a batch of clips (batch x frames x height x width x 3, RGB in
  [0, 1]) -> logits;
- stream: init_states (the input shape, 5 integers) -> zero states, and call (image and
  states) -> logits and the next states.

The label map is an asset, assets/labels.txt (one label a line, by class index), tracked
by the SavedModel (`loaded.labels_file.asset_path` after tf.saved_model.load). Base networks
are exported with the stock Conv3D layers (the weights are the same as the adapter's
temporal-tap layers use), so the SavedModel holds only official layers. Its variables
restore into this adapter as a `hub_handle` again (loading.load_model reads the class
count from them and the labels from the asset).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import tensorflow as tf

from adapter.core.config import MovinetConfig
from adapter.core.errors import UsageError
from adapter.core.files import PARTIAL_PREFIX
from adapter.model import network
from adapter.model.loading import LABELS_ASSET, LoadedModel

logger = logging.getLogger(__name__)


class ExportTargetExists(UsageError, FileExistsError):
    """The output folder exists and is not empty."""


def export_savedmodel(loaded: LoadedModel, config: MovinetConfig, output_dir: str) -> dict:
    """Write loaded's model as a TF-Hub-format SavedModel with its label map as an asset.

    Args:
        loaded: the adapter's loaded model (fine-tuned or hub).
        config: its variant (model_id, model_mode).
        output_dir: the SavedModel folder to create (must not exist, or be empty).

    Returns:
        What was written: model_id, model_mode, labels, path.
    """
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise ExportTargetExists(f"the export folder {output_dir!r} exists and is not empty; choose a new folder")
    # Imported here: the tool module defines absl flags at import time.
    from official.projects.movinet.tools import export_saved_model

    labels = list(loaded.labels)
    model = network.build_classifier(config.model_id, config.model_mode, len(labels), tap_convolutions=False)
    model.set_weights(loaded.model.get_weights())
    with tempfile.TemporaryDirectory(prefix="movinet-labels-") as scratch:
        labels_path = os.path.join(scratch, LABELS_ASSET)
        with open(labels_path, "w", encoding="utf-8") as file:
            file.write("".join(f"{label}\n" for label in labels))
        # A tracked asset: copied into assets/ and reachable from the loaded object.
        model.labels_file = tf.saved_model.Asset(labels_path)
        # Exported into a temporary folder beside output_dir, renamed into place when complete: a
        # failed or killed export never leaves a half SavedModel under the name.
        parent = os.path.dirname(os.path.abspath(output_dir))
        os.makedirs(parent, exist_ok=True)
        partial = tempfile.mkdtemp(
            prefix=PARTIAL_PREFIX + os.path.basename(os.path.abspath(output_dir)) + ".", dir=parent
        )
        try:
            export_saved_model.export_saved_model(
                model=model,
                input_shape=(None, None, None, None, 3),
                export_path=partial,
                causal=config.model_mode == "stream",
                bundle_input_init_states_fn=True,
            )
            os.chmod(partial, 0o755)  # mkdtemp makes it private; a model folder is shared like any other
            if os.path.isdir(output_dir):
                os.rmdir(output_dir)  # empty (checked above)
            os.replace(partial, output_dir)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    logger.info(
        "Exported %s (%d labels, from %s) to %s",
        config.model_name,
        len(labels),
        loaded.source,
        output_dir,
    )
    return dict(model_id=config.model_id, model_mode=config.model_mode, labels=labels, path=output_dir)
