"""Uploading the resume checkpoint to the model's artifacts while train_model runs.

The SDK uploads output_path only when train() returns or raises a Python exception; a pod
that is OOM-killed, evicted, preempted or timed out uploads nothing. So after an epoch's
checkpoint, when at least checkpoint_upload_minutes passed since the last upload (0: every
epoch), the kept checkpoint folders (newest and best: adapter.training.resume) go to the
model's artifacts under checkpoints/epoch-NNNN/, and then the model's other checkpoint files
are deleted (dtlpy never replaces: it only adds files). A new folder name per checkpoint
means a kill during an upload leaves the previous upload whole; the half-uploaded folder is
skipped by the next run's find_resume_state (its files do not match its resume.json) or
deleted by the next upload.

A failed upload is a warning: training goes on, and the next epoch tries again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable

from adapter.training.checkpoints import CHECKPOINTS_DIRNAME
from adapter.training.outputs import delete_stale_checkpoints

logger = logging.getLogger(__name__)


class CheckpointUploader:
    """A fit loop's checkpoint sink (training.resume.CheckpointSink) that uploads to a model's artifacts.

    Args:
        entity: the dl.Model being trained.
        period_minutes: upload when at least this long passed since the last upload (or the
            run's start); 0 uploads after every epoch.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, entity, period_minutes: float, clock: Callable[[], float] = time.monotonic):
        self.entity = entity
        self.period_s = 60.0 * period_minutes
        self.clock = clock
        self.last_upload = clock()
        self.uploaded: set[str] = set()  # checkpoint folder names this run has uploaded

    def __call__(self, output_path: str, kept: list[str]) -> None:
        """Upload the kept checkpoint folders when the period has passed, then delete the model's others.

        Args:
            output_path: the run's output folder.
            kept: the kept checkpoint folders, newest first.

        Returns:
            None; a failure is logged, never raised.
        """
        if self.period_s > 0 and self.clock() - self.last_upload < self.period_s:
            return
        names = [os.path.basename(path) for path in kept]
        started = time.perf_counter()
        try:
            self._upload([path for path in kept if os.path.basename(path) not in self.uploaded], output_path)
        except Exception as err:  # a lost upload must not end the training run
            logger.warning("Could not upload the checkpoint %s to the model's artifacts: %s", names[0], err)
            return
        self.uploaded.update(names)
        self.last_upload = self.clock()
        delete_stale_checkpoints(self.entity, keep=set(names))
        logger.info(
            "Uploaded the checkpoint %s to the model's artifacts (%.1f s): a new run resumes from it if this one dies",
            " and ".join(names),
            time.perf_counter() - started,
        )

    def _upload(self, folders: list[str], output_path: str) -> None:
        if not folders:
            return
        # The SDK uploads a folder's contents under the model's root; a staging folder of
        # links gives them their checkpoints/epoch-NNNN/ path. Beside output_path (same
        # filesystem, so links work), never inside it: the SDK uploads output_path itself.
        staging = tempfile.mkdtemp(
            prefix=".checkpoint-upload-", dir=os.path.dirname(os.path.abspath(output_path)) or None
        )
        try:
            for folder in folders:
                target = os.path.join(staging, CHECKPOINTS_DIRNAME, os.path.basename(folder))
                os.makedirs(target)
                for name in os.listdir(folder):
                    _link_or_copy(os.path.join(folder, name), os.path.join(target, name))
            self.entity.artifacts.upload(filepath=os.path.join(staging, "*"), overwrite=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
