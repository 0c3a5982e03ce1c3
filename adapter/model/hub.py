"""Resolving a pretrained MoViNet to a local SavedModel directory through tensorflow_hub.

tensorflow_hub owns downloading and caching: a handle resolves to
$TFHUB_CACHE_DIR/<sha1 of the handle>, so a model placed there (or downloaded
once) is found again without a network.
"""

from __future__ import annotations

import hashlib
import logging
import os

import tensorflow_hub

from adapter.core.config import MovinetConfig
from adapter.core.errors import EXIT_HUB_UNAVAILABLE, MovinetError

logger = logging.getLogger(__name__)

HUB_HANDLE_TEMPLATE = (
    "https://tfhub.dev/tensorflow/movinet/{model_id}/{model_mode}/kinetics-600/classification/{hub_version}"
)


class HubModelUnavailable(MovinetError, RuntimeError):
    """The pretrained model could not be resolved to a local SavedModel."""

    exit_code = EXIT_HUB_UNAVAILABLE


def kinetics_handle(config: MovinetConfig) -> str:
    """The TF Hub handle of the Kinetics-600 classifier for this configuration."""
    return HUB_HANDLE_TEMPLATE.format(
        model_id=config.model_id, model_mode=config.model_mode, hub_version=config.hub_version
    )


def hub_cache_name(handle: str) -> str:
    """The folder under TFHUB_CACHE_DIR that tensorflow_hub resolves handle to: the sha1 of the handle.

    Args:
        handle: a TF Hub handle (URL).

    Returns:
        The folder's name (hex digest).
    """
    return hashlib.sha1(handle.encode("utf8")).hexdigest()


def resolve_saved_model(config: MovinetConfig) -> str:
    """Local directory of the SavedModel for config (hub_handle overrides the tfhub.dev handle)."""
    handle = config.hub_handle or kinetics_handle(config)
    if os.path.isdir(handle):
        path = handle
    else:
        try:
            path = tensorflow_hub.resolve(handle)
        except Exception as err:  # tensorflow_hub raises URL, OS and value errors alike
            raise HubModelUnavailable(_unavailable_message(handle, config, err)) from err
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise HubModelUnavailable(_unavailable_message(handle, config, f"{path} holds no saved_model.pb"))
    logger.info("Resolved %s to %s", handle, path)
    return path


def _unavailable_message(handle: str, config: MovinetConfig, reason) -> str:
    cache_dir = os.environ.get("TFHUB_CACHE_DIR", "<system temp>/tfhub_modules")
    return (
        f"Cannot load the pretrained MoViNet {config.model_id}-{config.model_mode} from {handle!r}: {reason}. "
        "To use a local copy: put the extracted SavedModel in TFHUB_CACHE_DIR "
        f"(now {cache_dir}) under the sha1 of the handle, or set the configuration key "
        "'hub_handle' to a mirror URL or a local SavedModel directory; "
        "'python -m adapter export-hub' converts an official checkpoint into one."
    )
