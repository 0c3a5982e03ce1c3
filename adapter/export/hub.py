"""Hub-format export: a TF-Hub-format SavedModel of the official architecture (random or from a checkpoint).

This is how users convert official checkpoints, and how the tests make pretrained-format models
offline (model.hub resolves them like the published handles).
"""

from __future__ import annotations

import logging

from adapter.core.variants import architecture

logger = logging.getLogger(__name__)


def export_hub_model(
    output_dir: str,
    model_id: str,
    model_mode: str,
    num_classes: int = 600,
    checkpoint_path: str | None = None,
) -> str:
    """Write a TF-Hub-format SavedModel of the official architecture.

    Random initialisation, or an official checkpoint's weights when checkpoint_path
    is given. This is how users convert checkpoints, and how tests get models offline.
    """
    # Imported here: the tool module defines absl flags at import time.
    from official.projects.movinet.tools import export_saved_model

    arch = architecture(model_id, model_mode)
    export_saved_model.build_and_export_saved_model(
        export_path=output_dir,
        model_id=model_id,
        causal=arch["causal"],
        conv_type=arch["conv_type"],
        se_type=arch["se_type"],
        activation=arch["activation"],
        classifier_activation="swish",
        gating_activation=arch["gating_activation"],
        use_positional_encoding=arch["use_positional_encoding"],
        num_classes=num_classes,
        input_shape=(None, None, None, None, 3),
        bundle_input_init_states_fn=True,
        checkpoint_path=checkpoint_path or None,
    )
    return output_dir
