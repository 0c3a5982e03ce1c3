"""What a training run leaves in output_path, and save() of the fine-tuned model.

    <output_path>/checkpoints/epoch-NNNN/  the newest epoch's and the best epoch's checkpoints: weights
                                        (save_finetuned format), optimizer state, resume.json
                                        (adapter.training.checkpoints, adapter.training.resume)
    <output_path>/training_curves.png   loss and accuracy per epoch
    <output_path>/confusion_matrix.png  the kept epoch's validation predictions against the true labels
    <output_path>/training_history.json the per-epoch values, the kept epoch, the run and whether it finished,
                                        the calibration and (multi-label) the validation mAP, AP, F1, thresholds
    <output_path>/reliability_diagram.png the kept epoch's validation confidence against accuracy, before/after
                                        the fitted temperature (calibrate true)

The SDK uploads output_path as the model's artifacts. After a run that finished, save()
writes the kept weights and movinet.json there and remove_checkpoints() leaves only those,
the two pictures and the history: what load() needs and what the run was. While the run
trains, and after a failed run, the checkpoints are uploaded too: what the next run resumes from.
"""

from __future__ import annotations

import logging
import os
import shutil

from adapter.core.variants import model_name
from adapter.model.loading import LoadedModel, save_finetuned
from adapter.training.checkpoints import CHECKPOINTS_DIRNAME

logger = logging.getLogger(__name__)

CURVES_FILENAME = "training_curves.png"
CONFUSION_FILENAME = "confusion_matrix.png"
HISTORY_FILENAME = "training_history.json"
RELIABILITY_FILENAME = "reliability_diagram.png"  # the kept epoch's validation clips, before/after calibration


def save_trained(loaded: LoadedModel | None, local_path: str) -> dict | None:
    """MovinetAdapter.save: the fine-tuned weights and movinet.json in local_path.

    Args:
        loaded: the model the adapter holds.
        local_path: the folder to write (the SDK uploads it as the model's artifacts).

    Returns:
        The configuration keys to record (weights_filename, id_to_label_map, and temperature and
        class_thresholds when training fitted them), or None when
        the adapter holds no fine-tuned model (nothing is written).
    """
    if loaded is None or loaded.finetuned is None:
        logger.warning(
            "Nothing fine-tuned to save in %s: the adapter holds the pretrained model, which load() resolves "
            "from TF Hub without any artifact",
            local_path,
        )
        return None
    info = loaded.finetuned
    weights_path = save_finetuned(loaded.model, local_path, info)
    logger.info(
        "Saved fine-tuned %s (%d labels) to %s",
        model_name(info.model_id, info.model_mode),
        len(info.labels),
        weights_path,
    )
    recorded = {
        "weights_filename": info.weights_filename,
        "id_to_label_map": {index: label for index, label in enumerate(info.labels)},
    }
    # For the platform's view: predict reads them from movinet.json.
    if info.temperature is not None:
        recorded["temperature"] = info.temperature
    if info.thresholds is not None:
        recorded["class_thresholds"] = list(info.thresholds)
    return recorded


def remove_checkpoints(output_path: str) -> bool:
    """Drop a finished run's checkpoints, so the uploaded artifacts are what load() needs, the curves and history.

    Args:
        output_path: the finished run's output folder (save() has written the kept weights there).

    Returns:
        Whether there were checkpoints to remove.
    """
    checkpoints = os.path.join(output_path, CHECKPOINTS_DIRNAME)
    if not os.path.isdir(checkpoints):
        return False
    shutil.rmtree(checkpoints)
    logger.info(
        "Removed the training checkpoints from %s: it keeps the fine-tuned weights, movinet.json, the pictures and %s",
        output_path,
        HISTORY_FILENAME,
    )
    return True


def artifact_relative_path(artifact, model_name: str) -> str | None:
    """Where a model artifact sits in the folder that was uploaded, or None when it is not this model's.

    Artifact filenames are /artifacts/models/<model name>/<path in the uploaded folder>; the
    SDK also lists the files of any model whose name starts with this one's, which are not ours.

    Args:
        artifact: an item artifact of the model entity.
        model_name: the model's name.

    Returns:
        The relative path, e.g. "checkpoints/epoch-0003/resume.json".
    """
    prefix = f"/artifacts/models/{model_name}/"
    filename = getattr(artifact, "filename", None) or ""
    return filename[len(prefix) :] if filename.startswith(prefix) else None


def delete_stale_checkpoints(entity, keep: set[str] = frozenset()) -> int:
    """Delete the model's checkpoint artifacts other than the kept checkpoint folders.

    After a finished run (keep empty) no checkpoint is needed: they would come down on every
    deploy. While a run trains, its upload keeps the newest and best checkpoints only.

    Args:
        entity: the dl.Model whose artifacts to clean.
        keep: checkpoint folder names to keep (e.g. {"epoch-0003"}).

    Returns:
        How many files were deleted; a failed delete is logged (a reader skips stale checkpoints).
    """
    stale = []
    for artifact in entity.model_artifacts:
        relative = artifact_relative_path(artifact, entity.name)
        parts = (relative or "").split("/")
        if len(parts) > 1 and parts[0] == CHECKPOINTS_DIRNAME and parts[1] not in keep:
            stale.append(artifact)
    if not stale:
        return 0
    try:
        for artifact in stale:
            entity.artifacts.delete(artifact_id=artifact.id)
        entity.model_artifacts = [a for a in entity.model_artifacts if a not in stale]
        entity.update(reload_services=False)
    except Exception as err:  # the upload itself succeeded
        logger.warning("Could not delete %d stale checkpoint file(s) from the artifacts: %s", len(stale), err)
        return 0
    logger.info("Deleted %d stale checkpoint file(s) from the model's artifacts", len(stale))
    return len(stale)
