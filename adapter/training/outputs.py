"""What a training run leaves in output_path, and save() of the fine-tuned model.

    <output_path>/checkpoints/best/     the epoch with the best validation accuracy (save_finetuned format)
    <output_path>/checkpoints/last/     the last finished epoch, with its optimizer state (adapter.training.resume)
    <output_path>/training_curves.png   loss and accuracy per epoch
    <output_path>/confusion_matrix.png  the kept epoch's validation predictions against the true labels
    <output_path>/training_history.json the per-epoch values, the kept epoch, the run and whether it finished,
                                        the calibration and (multi-label) the validation mAP, AP, F1, thresholds
    <output_path>/reliability_diagram.png the kept epoch's validation confidence against accuracy, before/after
                                        the fitted temperature (calibrate true)

The SDK uploads output_path as the model's artifacts. After a run that finished, save()
writes the kept weights and movinet.json there and remove_checkpoints() leaves only those,
the two pictures and the history: what load() needs and what the run was. After a failed run the
checkpoints stay, so the upload carries what the next run resumes from.
"""

from __future__ import annotations

import logging
import os
import shutil

from adapter.model.loading import LoadedModel, save_finetuned

logger = logging.getLogger(__name__)

CHECKPOINTS_DIRNAME = "checkpoints"
BEST_CHECKPOINT = "best"  # the epoch with the best validation accuracy: what training keeps
LAST_CHECKPOINT = "last"
CURVES_FILENAME = "training_curves.png"
CONFUSION_FILENAME = "confusion_matrix.png"
HISTORY_FILENAME = "training_history.json"
RELIABILITY_FILENAME = "reliability_diagram.png"  # the kept epoch's validation clips, before/after calibration


def checkpoint_dir(output_path: str, name: str) -> str:
    """Where a run keeps one of its checkpoints.

    Args:
        output_path: the run's output folder.
        name: BEST_CHECKPOINT or LAST_CHECKPOINT.

    Returns:
        The checkpoint's folder.
    """
    return os.path.join(output_path, CHECKPOINTS_DIRNAME, name)


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
        "Saved fine-tuned movinet-%s-%s (%d labels) to %s",
        info.model_id,
        info.model_mode,
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


def _artifact_relative_path(artifact) -> str:
    # Artifact filenames are /artifacts/models/<model name>/<path in the uploaded folder>.
    return "/".join((getattr(artifact, "filename", None) or "").split("/")[4:])


def delete_stale_checkpoints(entity) -> None:
    """Delete the checkpoints an earlier failed run uploaded; they would come down on every deploy.

    Args:
        entity: the dl.Model whose artifacts a finished run has just replaced.

    Returns:
        None; a failed delete is logged (the next run ignores a finished run's checkpoints).
    """
    stale = [a for a in entity.model_artifacts if _artifact_relative_path(a).startswith(CHECKPOINTS_DIRNAME + "/")]
    if not stale:
        return
    try:
        for artifact in stale:
            entity.artifacts.delete(artifact_id=artifact.id)
        entity.model_artifacts = [a for a in entity.model_artifacts if a not in stale]
        entity.update(reload_services=False)
    except Exception as err:  # the upload itself succeeded
        logger.warning("Could not delete %d stale checkpoint file(s) from the artifacts: %s", len(stale), err)
    else:
        logger.info("Deleted %d stale checkpoint file(s) of an earlier failed run from the artifacts", len(stale))
