"""Resuming a run that died: the newest complete checkpoint, found in the output or the model's artifacts.

After every epoch the run writes a checkpoint folder (adapter.training.checkpoints): the
model's weights (save_finetuned), the optimizer's variables (a tf.train.Checkpoint: Adam's
moments and its step) and resume.json: the epochs done, the run's best-so-far record and
history, the seed its data order comes from, and what the weights fit (variant, labels,
input). The run keeps its newest checkpoint and its best epoch's; on the platform they are
uploaded as the model's artifacts while it trains (adapter.platform.checkpoint_upload), and
the SDK's save-on-failure uploads them again. The next train_model downloads them, the
command line finds them in its output folder, and find_resume_state() hands the newest complete
one that fits to the fit loop, which restores model and optimizer and continues at the next
epoch.

A checkpoint is skipped, with a warning naming it and why, when a file is missing or differs
from what its resume.json lists (a kill, a partial upload), when it was written for other
settings (variant, labels, imgz, n_frames, fps, freeze_backbone), or when its run finished
(training_history.json says so: the checkpoints of a finished run are stale). The next
older complete checkpoint is then tried, so an intact checkpoint is never discarded for a
broken newer one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Sequence

import tensorflow as tf
import tf_keras

from adapter.core.config import MovinetConfig
from adapter.model.loading import FineTunedInfo, find_finetuned, save_finetuned
from adapter.training import checkpoints
from adapter.training.checkpoints import RESUME_FILENAME, IncompleteCheckpoint  # noqa: F401 (RESUME_FILENAME: re-exported)
from adapter.training.outputs import HISTORY_FILENAME

logger = logging.getLogger(__name__)

OPTIMIZER_CHECKPOINT = "optimizer"  # prefix of the tf.train.Checkpoint files in a checkpoint folder

# Settings the saved weights and optimizer state are only valid for.
# model_entity_id: the platform model the run trains (None offline). The SDK downloads as a
# model's artifacts the files of every model whose name starts with its name, into the same
# folders: another model's checkpoints must not be resumed. multi_label: a sigmoid head's
# weights and optimizer state are no start for a softmax run, nor the reverse.
MATCHED_SETTINGS = (
    "model_id",
    "labels",
    "imgz",
    "n_frames",
    "fps",
    "freeze_backbone",
    "model_entity_id",
    "multi_label",
)


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
    data_seed: int | None = None  # each epoch's order and clip draws come from (data_seed, epoch)
    model_entity_id: str | None = None
    multi_label: bool = False  # absent from states written before multi-label training existed
    checkpoint_path: str = ""  # the checkpoint folder it was read from (not saved)
    best_path: str | None = None  # the best epoch's checkpoint folder beside it, when intact (not saved)

    def settings(self) -> dict:
        """The settings the state is valid for.

        Returns:
            MATCHED_SETTINGS -> value.
        """
        return {name: getattr(self, name) for name in MATCHED_SETTINGS}

    def record(self) -> dict:
        """What resume.json stores (the paths are where it was found, not part of it)."""
        return {
            key: value for key, value in dataclasses.asdict(self).items() if key not in ("checkpoint_path", "best_path")
        }


def run_settings(config: MovinetConfig, labels: Sequence[str], model_entity_id: str | None = None) -> dict:
    """The settings a new run would need a resume state to match.

    Args:
        config: the new run's configuration.
        labels: its label map.
        model_entity_id: the platform model it trains (None offline).

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
        model_entity_id=model_entity_id,
        multi_label=config.multi_label,
    )


def write_resume_state(folder: str, model: tf_keras.Model, info: FineTunedInfo, state: ResumeState) -> str:
    """Checkpoint the model's weights, its optimizer's variables and the run's record, as a unit.

    Args:
        folder: the run's output_path.
        model: the compiled model being trained.
        info: what the weights are (save_finetuned's movinet.json).
        state: the record to write (its epochs_done names the checkpoint).

    Returns:
        The checkpoint's folder.
    """

    def write_files(partial: str) -> None:
        save_finetuned(model, partial, info)
        tf.train.Checkpoint(optimizer=model.optimizer).write(os.path.join(partial, OPTIMIZER_CHECKPOINT))

    return checkpoints.write_checkpoint(folder, state.epochs_done, write_files, state.record())


def read_resume_state(checkpoint: str) -> ResumeState:
    """The resume state of one checkpoint folder, every file checked against its resume.json.

    Args:
        checkpoint: an epoch-NNNN folder.

    Returns:
        The state; raises IncompleteCheckpoint when the folder is not whole or its record is not a state.
    """
    record = checkpoints.verify_checkpoint(checkpoint)
    fields = {field.name for field in dataclasses.fields(ResumeState)} - {"checkpoint_path", "best_path"}
    try:
        state = ResumeState(
            **{key: value for key, value in record.items() if key in fields}, checkpoint_path=checkpoint
        )
    except TypeError as err:
        raise IncompleteCheckpoint(f"its {RESUME_FILENAME} is not a resume state ({err})") from err
    if find_finetuned(checkpoint) is None:
        raise IncompleteCheckpoint("it has no movinet.json")
    if not os.path.isfile(os.path.join(checkpoint, OPTIMIZER_CHECKPOINT + ".index")):
        raise IncompleteCheckpoint(f"the optimizer checkpoint {OPTIMIZER_CHECKPOINT}.index is missing")
    return state


def newest_resume_state(folder: str) -> ResumeState | None:
    """The newest complete checkpoint in folder, without matching it to a run (tests, tools).

    Args:
        folder: a run's output_path or a model's downloaded artifacts.

    Returns:
        Its state, or None when folder holds no complete checkpoint.
    """
    for _, path in checkpoints.list_checkpoints(folder):
        try:
            return read_resume_state(path)
        except (IncompleteCheckpoint, OSError):
            continue
    return None


def find_resume_state(
    folders: Sequence[str | None],
    config: MovinetConfig,
    labels: Sequence[str],
    model_entity_id: str | None = None,
) -> ResumeState | None:
    """The newest complete checkpoint in folders that fits this run; each one skipped is named in a warning.

    Args:
        folders: where checkpoints may be: the model's downloaded artifacts (what load() was
            given) and the run's own output_path (a run killed in the same place); None entries
            are ignored.
        config: the new run's configuration.
        labels: the new run's label map.
        model_entity_id: the platform model it trains (None offline).

    Returns:
        The state to resume from, with best_path set when its best epoch's checkpoint is
        intact; None when there is none (the run starts from the beginning).
    """
    candidates = []
    seen = set()
    for folder in folders:
        for epochs_done, path in checkpoints.list_checkpoints(folder):
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                candidates.append((epochs_done, folder, path))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    current = run_settings(config, labels, model_entity_id)
    skipped = []
    for _, folder, path in candidates:
        reason = _unusable(folder, path, current)
        if isinstance(reason, ResumeState):
            state = reason
            _find_best(state, folder)
            if skipped:
                logger.warning(
                    "Resuming from %s, the newest complete checkpoint that fits this run, after skipping %d newer: %s",
                    path,
                    len(skipped),
                    "; ".join(skipped),
                )
            return state
        logger.warning("Skipping the checkpoint %s: %s", path, reason)
        skipped.append(f"{path} ({reason})")
    return None


def _unusable(folder: str, path: str, current: dict) -> ResumeState | str:
    """The checkpoint's state when it can be resumed, else the reason it cannot."""
    try:
        state = read_resume_state(path)
    except (IncompleteCheckpoint, OSError) as err:
        return f"it is incomplete: {err}"
    if _run_finished(folder, state.run_id):
        return f"its run finished ({HISTORY_FILENAME} says so), so it is stale"
    differing = {name: (value, current[name]) for name, value in state.settings().items() if value != current[name]}
    if differing:
        reasons = "; ".join(
            f"{name} was {_short(saved)}, now {_short(now)}" for name, (saved, now) in differing.items()
        )
        return f"it was written for other settings ({reasons}); run again with those settings to resume it"
    return state


def _find_best(state: ResumeState, folder: str) -> None:
    """Set state.best_path; when the best epoch's checkpoint is not intact, the resumed epoch becomes the best."""
    if state.best_epoch is None:
        return
    if state.best_epoch + 1 == state.epochs_done:
        state.best_path = state.checkpoint_path
        return
    best = checkpoints.epoch_dir(folder, state.best_epoch + 1)
    try:
        best_state = read_resume_state(best)
        if best_state.run_id != state.run_id:
            raise IncompleteCheckpoint(f"it is of another run ({best_state.run_id})")
    except (IncompleteCheckpoint, OSError) as err:
        history = state.history
        last = state.epochs_done - 1
        logger.warning(
            "The best epoch's checkpoint %s cannot be used (%s): epoch %d, the one resumed from, is the best so far",
            best,
            err,
            state.epochs_done,
        )
        state.best_epoch = last
        state.best_val_accuracy = float(history.get("val_accuracy", [float("nan")] * state.epochs_done)[last])
        state.best_val_loss = float(history.get("val_loss", [float("inf")] * state.epochs_done)[last])
        state.best_path = state.checkpoint_path
        return
    state.best_path = best


def resume_weights_path(state: ResumeState) -> str:
    """The last epoch's weights file of a resume state.

    Args:
        state: from find_resume_state.

    Returns:
        The path of the weights file.
    """
    return os.path.join(state.checkpoint_path, find_finetuned(state.checkpoint_path).weights_filename)


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
    optimizer = model.optimizer
    # The slots the checkpoint fills; built first, so the weights file's copy of them loads
    # too instead of being skipped with a warning.
    optimizer.build(model.trainable_variables)
    if load_weights:
        model.load_weights(resume_weights_path(state))
    status = tf.train.Checkpoint(optimizer=optimizer).read(os.path.join(state.checkpoint_path, OPTIMIZER_CHECKPOINT))
    status.assert_existing_objects_matched()
    saved_rate = float(tf_keras.backend.get_value(optimizer.learning_rate))
    if abs(saved_rate - config.learning_rate) > 1e-12 * max(1.0, abs(saved_rate)):
        logger.info(
            "Resumed optimizer: learning rate %g (configuration) instead of the saved %g",
            config.learning_rate,
            saved_rate,
        )
        optimizer.learning_rate = config.learning_rate


def _run_finished(folder: str, run_id: str) -> bool:
    try:
        with open(os.path.join(folder, HISTORY_FILENAME)) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("run_id") == run_id and record.get("finished") is True


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 5:
        return f"{len(value)} labels [{', '.join(map(str, value[:5]))}, ...]"
    return repr(value)


# Called after each checkpoint with (output_path, the kept checkpoint folders, newest first).
CheckpointSink = Callable[[str, list[str]], None]


class ResumeCheckpoint(tf_keras.callbacks.Callback):
    """After each epoch: a checkpoint of weights, optimizer and record; the run keeps its newest and its best.

    Runs after BestEpoch (which holds the best record) and TrainingCurves (which holds the
    history). on_saved (the platform's upload) then gets the kept folders.
    """

    def __init__(
        self,
        output_path: str,
        info: FineTunedInfo,
        run_id: str,
        num_epochs: int,
        settings: dict,
        best,
        curves,
        data_seed: int | None = None,
        on_saved: CheckpointSink | None = None,
    ):
        super().__init__()
        self.output_path = output_path
        self.info = info
        self.run_id = run_id
        self.num_epochs = num_epochs
        self.settings = settings
        self.best = best
        self.curves = curves
        self.data_seed = data_seed
        self.on_saved = on_saved

    def best_dir(self) -> str | None:
        """The best epoch's checkpoint folder (None before the first epoch)."""
        if self.best.best_epoch is None:
            return None
        return checkpoints.epoch_dir(self.output_path, self.best.best_epoch + 1)

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
            data_seed=self.data_seed,
        )
        newest = write_resume_state(self.output_path, self.model, self.info, state)
        kept = [newest] if self.best_dir() in (None, newest) else [newest, self.best_dir()]
        removed = checkpoints.prune(self.output_path, {os.path.basename(path) for path in kept})
        if removed:
            logger.debug("Removed checkpoints %s from %s", ", ".join(removed), self.output_path)
        if self.on_saved is not None:
            self.on_saved(self.output_path, kept)


def log_resume_state(output_path: str) -> None:
    """Say, after a failed run, which checkpoint the next train_model resumes from.

    Args:
        output_path: the run's output folder (uploaded with the artifacts).

    Returns:
        None; an incomplete checkpoint is left for the next run's find_resume_state to report.
    """
    state = newest_resume_state(output_path)
    if state is not None:
        logger.info(
            "Training stopped after epoch %d of %d: %s keeps that checkpoint with its optimizer state; "
            "uploaded with the artifacts, the next train_model resumes from it",
            state.epochs_done,
            state.num_epochs,
            state.checkpoint_path,
        )
