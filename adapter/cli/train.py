"""`python -m adapter train`: the adapter's own load, train() and save() on a local folder, without a platform."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from adapter.core.config import ConfigError
from adapter.datasets.layout import TRAIN_SUBSET, DatasetError, labels_in_subset
from adapter.training.model import check_trainable

logger = logging.getLogger(__name__)


def run_offline_training(
    adapter,
    data_dir: str,
    output_dir: str,
    labels: Sequence[str] | None = None,
    weights: str | None = None,
    **train_kwargs,
) -> str:
    """Load, train() and save() on a local folder in prepare_data's layout.

    Args:
        adapter: a MovinetAdapter bound to an offline model entity.
        data_dir: the folder with the train and validation subsets.
        output_dir: where training outputs and the saved weights go.
        labels: the label map; default the sorted labels of the train subset's class annotations.
        weights: a folder of fine-tuned weights (movinet.json) to start from, as train_model starts
            from the model's artifacts: same labels continue, other labels get a new class layer.
        train_kwargs: passed to train() (e.g. seed).

    Returns:
        The path of the saved weights.
    """
    config = adapter.read_config()
    check_trainable(config)
    if labels is None:
        labels = labels_in_subset(data_dir, TRAIN_SUBSET)
        if not labels:
            raise DatasetError(f"The {TRAIN_SUBSET!r} subset of {data_dir} has no class annotation to take labels from")
        logger.info("Label map from the %r subset: %s", TRAIN_SUBSET, ", ".join(labels))
    if weights is not None:
        if not config.pretrained:
            raise ConfigError(
                f"--weights {weights!r} asks to start from fine-tuned weights, but the configuration sets "
                "pretrained=false (random initialisation); drop one of them"
            )
        adapter.load(weights)  # as train_model loads the model's artifacts before train()
    elif config.pretrained:
        adapter.load(None)  # the pretrained hub model (its Kinetics labels are replaced below)
    # The model's labels win over the map (MovinetAdapter._label_map): set both.
    adapter.model_entity.labels = list(labels)
    adapter.configuration.update({"id_to_label_map": {index: label for index, label in enumerate(labels)}})
    adapter.train(data_dir, output_dir, **train_kwargs)
    adapter.save(output_dir)
    weights_path = os.path.join(output_dir, adapter.loaded.finetuned.weights_filename)
    logger.info(
        "Fine-tuned weights written to %s; predict with: python -m adapter predict --weights %s VIDEO...",
        weights_path,
        output_dir,
    )
    return weights_path
