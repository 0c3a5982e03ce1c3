"""The model's feature set, sized for the variant before the SDK first needs it.

dtlpy resolves the adapter's feature set before any embed() call (embed_dataset even before
listing items) and creates a missing one with configuration['embeddings_size'], writing 256
into the configuration when the key is absent. A MoViNet embedding has the variant's width
(480 for a0 ... 992 for a5), so the size is written first; and a feature set that already
exists with another size (made by an older version, or by hand) is refused by name: the SDK
would skip every vector with only a warning.
"""

from __future__ import annotations

from adapter.core.errors import MovinetError


class FeatureSetMismatch(MovinetError, ValueError):
    """The model's existing feature set holds vectors of another length than the variant's embeddings."""


def write_embeddings_size(configuration, size: int) -> None:
    """Set configuration['embeddings_size'] to size when it is absent (the SDK writes it back to the model).

    Args:
        configuration: the adapter's configuration mapping (the SDK's, which updates the model entity).
        size: the variant's embeddings size (already checked against a set value).
    """
    if "embeddings_size" not in configuration:
        configuration["embeddings_size"] = size


def check_feature_set(feature_set, size: int, model_name: str):
    """The feature set itself when its vectors have size values; else a FeatureSetMismatch naming it.

    Args:
        feature_set: the dl.FeatureSet the SDK found or created for the model.
        size: the length of this model's embeddings.
        model_name: the model's name, for the message.

    Returns:
        feature_set.
    """
    if feature_set.size != size:
        raise FeatureSetMismatch(
            f"feature set {feature_set.name!r} (id {feature_set.id}) of model {model_name!r} holds vectors of "
            f"size {feature_set.size!r}, but this model's embeddings have {size} values; delete that feature "
            "set (its vectors cannot be compared with this model's) and embed again to create one of the right size"
        )
    return feature_set
