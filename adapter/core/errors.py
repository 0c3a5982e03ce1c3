"""The adapter's own errors: one base type that carries the command line's exit code.

Every error the adapter raises on purpose derives from MovinetError, so the command line
maps them to exit codes in one place (cli.main) and docs/cli.md's table holds:

    1  some videos could not be processed (the others were)
    2  a bad option, configuration key, data folder or weights folder
    3  the pretrained weights cannot be resolved (no network and no cached copy)
"""

from __future__ import annotations

EXIT_FAILED_VIDEOS = 1
EXIT_USAGE = 2
EXIT_HUB_UNAVAILABLE = 3


class MovinetError(Exception):
    """Base of the adapter's errors; exit_code is what the command line exits with."""

    exit_code = EXIT_FAILED_VIDEOS


class UsageError(MovinetError):
    """Something the user gave (option, key, folder, weights) that cannot be used as given."""

    exit_code = EXIT_USAGE


class InputError(MovinetError, ValueError):
    """Bad input for one video (unreadable, not a video, not downloadable); the message names it and the reason."""


def failure_reason(err: Exception) -> str:
    """How a video's failure is reported: bad input by its own message, anything else with its type.

    Args:
        err: what processing the video raised.

    Returns:
        The reason, for a (video, reason) failure entry.
    """
    if isinstance(err, InputError):
        return str(err)
    return f"{type(err).__name__}: {err}"


class VideosFailed(MovinetError, RuntimeError):
    """Some videos could not be processed; the others were."""

    action = "processed"

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        lines = "\n".join(f"- {name}: {reason}" for name, reason in failures)
        super().__init__(f"{len(failures)} video(s) could not be {self.action}:\n{lines}")


class PredictionFailed(VideosFailed):
    action = "predicted"


class EmbeddingFailed(VideosFailed):
    action = "embedded"


class ClassifierUnavailable(MovinetError, RuntimeError):
    """The loaded model cannot be run on the configured runtime (e.g. its TF Lite conversion failed)."""
