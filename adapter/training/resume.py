"""Resuming a run that failed: the last epoch's weights and optimizer state, found in the model's artifacts.

After every epoch, checkpoints/last of output_path holds the model's weights
(save_finetuned), the optimizer's variables (a tf.train.Checkpoint: Adam's moments and its
step) and resume.json: the epochs done, the run's best-so-far record and history, and what
the weights fit (variant, labels, input). When a run fails, the SDK's save-on-failure
uploads output_path, checkpoints included, as the model's artifacts; the next train_model
downloads them, and find_resume_state() hands the state to the fit loop, which restores
model and optimizer and continues at the next epoch.

A state is used only when it fits the new run (variant, labels, imgz, n_frames, fps,
freeze_backbone); otherwise it is ignored with a warning naming the difference, and so is a
state whose run finished (its training_history.json says so: the checkpoints of a finished
run are stale).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence

import tensorflow as tf
import tf_keras

from adapter.core.config import MovinetConfig
from adapter.model.loading import FineTunedFolderError, find_finetuned
from adapter.training.outputs import BEST_CHECKPOINT, HISTORY_FILENAME, LAST_CHECKPOINT, checkpoint_dir

logger = logging.getLogger(__name__)

RESUME_FILENAME = "resume.json"
OPTIMIZER_CHECKPOINT = "optimizer"  # prefix of the tf.train.Checkpoint files in checkpoints/last

# Settings the saved weights and optimizer state are only valid for.
MATCHED_SETTINGS = ("model_id", "labels", "imgz", "n_frames", "fps", "freeze_backbone", "multi_label")


@dataclasses.dataclass
class ResumeState:
    run_id: str  # one per run; a resumed run keeps it
    epochs_done: int  # epochs finished; the checkpoint is of the last of them
    num_epochs: int  # what that run was set to
    optimizer_step: int
    model_id: str
    labels: list[str]
    imgz: int
    n_frames: int
    fps: float
    freeze_backbone: bool
    best_epoch: int | None  # 0-based
    best_val_accuracy: float
    best_val_loss: float
    history: dict[str, list[float]]
    artifacts_path: str = ""  # where it was found (not saved)
    multi_label: bool = False  # absent from states written before multi-label training existed

    def settings(self) -> dict:
        """The settings the state is valid for.

        Returns:
            MATCHED_SETTINGS -> value.
        """
        return {name: getattr(self, name) for name in MATCHED_SETTINGS}


def run_settings(config: MovinetConfig, labels: Sequence[str]) -> dict:
    """The settings a new run would need a resume state to match.

    Args:
        config: the new run's configuration.
        labels: its label map.

    Returns:
        MATCHED_SETTINGS -> value.
    """
    return dict(
        model_id=config.model_id,
        labels=list(labels),
        imgz=config.imgz,
        n_frames=config.n_frames,
        fps=config.frame_rate,
        freeze_backbone=config.freeze_backbone,
        multi_label=config.multi_label,
    )


def write_resume_state(last_dir: str, model: tf_keras.Model, state: ResumeState) -> None:
    """Save the optimizer's variables and resume.json next to the last epoch's weights.

    Args:
        last_dir: checkpoints/last of the run's output_path (its weights already written).
        model: the compiled model being trained (its optimizer is saved).
        state: the record to write.

    Returns:
        None.
    """
    tf.train.Checkpoint(optimizer=model.optimizer).write(os.path.join(last_dir, OPTIMIZER_CHECKPOINT))
    record = {key: value for key, value in dataclasses.asdict(state).items() if key != "artifacts_path"}
    partial = os.path.join(last_dir, RESUME_FILENAME + ".partial")
    with open(partial, "w") as file:
        json.dump(record, file, indent=2)
    os.replace(partial, os.path.join(last_dir, RESUME_FILENAME))  # a state is whole or absent


def read_resume_state(folder: str) -> ResumeState | None:
    """The resume state a run left in folder (its output_path, or the model's downloaded artifacts), unchecked.

    Args:
        folder: the folder holding checkpoints/last.

    Returns:
        The state, or None when there is none; raises ValueError/TypeError when resume.json is not one.
    """
    path = os.path.join(checkpoint_dir(folder, LAST_CHECKPOINT), RESUME_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        return ResumeState(**json.load(file), artifacts_path=folder)


def find_resume_state(artifacts_path: str | None, config: MovinetConfig, labels: Sequence[str]) -> ResumeState | None:
    """The resume state in a model's downloaded artifacts, when it fits this run.

    Args:
        artifacts_path: the folder load() was given (the model's downloaded artifacts), or None.
        config: the new run's configuration.
        labels: the new run's label map.

    Returns:
        The state to resume from, or None (nothing there, or ignored with a warning saying why).
    """
    if not artifacts_path:
        return None
    last_dir = checkpoint_dir(artifacts_path, LAST_CHECKPOINT)
    try:
        state = read_resume_state(artifacts_path)
    except (OSError, ValueError, TypeError) as err:
        logger.warning(
            "Ignoring the resume state in %s and training from the start: it cannot be read (%s)", last_dir, err
        )
        return None
    if state is None:
        return None
    if _run_finished(artifacts_path, state.run_id):
        logger.warning(
            "Ignoring the resume state in %s: its run finished (%s says so), so its checkpoints are stale",
            last_dir,
            HISTORY_FILENAME,
        )
        return None
    current = run_settings(config, labels)
    differing = {name: (value, current[name]) for name, value in state.settings().items() if value != current[name]}
    if differing:
        reasons = "; ".join(
            f"{name} was {_short(saved)}, now {_short(now)}" for name, (saved, now) in differing.items()
        )
        logger.warning("Ignoring the resume state in %s and training from the start: %s", last_dir, reasons)
        return None
    missing = _missing_files(artifacts_path, state)
    if missing:
        logger.warning("Ignoring the resume state in %s and training from the start: %s", last_dir, missing)
        return None
    return state


def resume_weights_path(state: ResumeState) -> str:
    """The last epoch's weights file of a resume state.

    Args:
        state: from find_resume_state.

    Returns:
        The path of the weights file.
    """
    last_dir = checkpoint_dir(state.artifacts_path, LAST_CHECKPOINT)
    return os.path.join(last_dir, find_finetuned(last_dir).weights_filename)


def restore_training_state(
    model: tf_keras.Model, state: ResumeState, config: MovinetConfig, load_weights: bool = True
) -> None:
    """Load the last epoch's weights and optimizer state into a compiled model built for the run.

    Args:
        model: from build_training_model and compile_for_training (same variant, labels, freezing).
        state: from find_resume_state.
        config: the run's configuration; its learning_rate wins over the saved one.
        load_weights: false when the caller already set the weights (resume_weights_path's).

    Returns:
        None; raises when the checkpoint does not fit the model.
    """
    last_dir = checkpoint_dir(state.artifacts_path, LAST_CHECKPOINT)
    if load_weights:
        model.load_weights(resume_weights_path(state))
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)  # the slots the checkpoint fills
    status = tf.train.Checkpoint(optimizer=optimizer).read(os.path.join(last_dir, OPTIMIZER_CHECKPOINT))
    status.assert_existing_objects_matched()
    saved_rate = float(tf_keras.backend.get_value(optimizer.learning_rate))
    if abs(saved_rate - config.learning_rate) > 1e-12 * max(1.0, abs(saved_rate)):
        logger.info(
            "Resumed optimizer: learning rate %g (configuration) instead of the saved %g",
            config.learning_rate,
            saved_rate,
        )
        optimizer.learning_rate = config.learning_rate


def _run_finished(artifacts_path: str, run_id: str) -> bool:
    try:
        with open(os.path.join(artifacts_path, HISTORY_FILENAME)) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("run_id") == run_id and record.get("finished") is True


def _missing_files(artifacts_path: str, state: ResumeState) -> str | None:
    last_dir = checkpoint_dir(artifacts_path, LAST_CHECKPOINT)
    try:
        if find_finetuned(last_dir) is None:
            return f"{last_dir} has no movinet.json"
        if state.best_epoch is not None and find_finetuned(checkpoint_dir(artifacts_path, BEST_CHECKPOINT)) is None:
            return f"the best epoch's checkpoint {checkpoint_dir(artifacts_path, BEST_CHECKPOINT)} is missing"
    except FineTunedFolderError as err:
        return str(err)
    if not os.path.isfile(os.path.join(last_dir, OPTIMIZER_CHECKPOINT + ".index")):
        return f"the optimizer checkpoint {OPTIMIZER_CHECKPOINT}.index is missing"
    return None


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 5:
        return f"{len(value)} labels [{', '.join(map(str, value[:5]))}, ...]"
    return repr(value)


class ResumeCheckpoint(tf_keras.callbacks.Callback):
    """After each epoch: the optimizer state and resume.json next to the last epoch's weights.

    Runs after BestCheckpoint (which wrote the weights and holds the best record) and
    TrainingCurves (which holds the history).
    """

    def __init__(self, last_dir: str, run_id: str, num_epochs: int, settings: dict, best, curves):
        super().__init__()
        self.last_dir = last_dir
        self.run_id = run_id
        self.num_epochs = num_epochs
        self.settings = settings
        self.best = best
        self.curves = curves

    def on_epoch_end(self, epoch, logs=None):
        best_accuracy, negative_best_loss = self.best.best_key
        state = ResumeState(
            run_id=self.run_id,
            epochs_done=epoch + 1,
            num_epochs=self.num_epochs,
            optimizer_step=int(self.model.optimizer.iterations.numpy()),
            **self.settings,
            best_epoch=self.best.best_epoch,
            best_val_accuracy=best_accuracy,
            best_val_loss=-negative_best_loss,
            history=self.curves.history,
        )
        write_resume_state(self.last_dir, self.model, state)


def log_resume_state(output_path: str) -> None:
    """Say, after a failed run, which checkpoint the next train_model resumes from.

    Args:
        output_path: the run's output folder (uploaded with the artifacts).

    Returns:
        None; an unreadable state is left for the next run's find_resume_state to report.
    """
    try:
        state = read_resume_state(output_path)
    except (OSError, ValueError, TypeError):
        return
    if state is not None:
        logger.info(
            "Training stopped after epoch %d of %d: %s keeps that checkpoint with its optimizer state; "
            "uploaded with the artifacts, the next train_model resumes from it",
            state.epochs_done,
            state.num_epochs,
            output_path,
        )
