"""The MoViNet variants as pure data: sizes a0..a5, their recommended input and architecture settings.

One table answers "what is movinet-a3-stream?": which official architecture to build and what
frame size and frame rate the published weights expect. Configuration (core.config) and the
presets (core.presets) both read it; it imports nothing of the package.
"""

from __future__ import annotations

import dataclasses

MODEL_IDS = ("a0", "a1", "a2", "a3", "a4", "a5")


MODEL_MODES = ("base", "stream")


@dataclasses.dataclass(frozen=True)
class Variant:
    """A MoViNet size (a0..a5) with the input its Kinetics-600 weights were trained on."""

    model_id: str
    imgz: int
    fps: float
    # a3-a5 stream models add a causal positional encoding (the published TF Hub models do).
    stream_positional_encoding: bool
    # Channels of the backbone's globally pooled "head" feature, which the classifier head
    # projects: the length of the variant's embeddings (tests check it against the network).
    embeddings_size: int


VARIANTS: dict[str, Variant] = {
    "a0": Variant("a0", imgz=172, fps=5, stream_positional_encoding=False, embeddings_size=480),
    "a1": Variant("a1", imgz=172, fps=5, stream_positional_encoding=False, embeddings_size=600),
    "a2": Variant("a2", imgz=224, fps=5, stream_positional_encoding=False, embeddings_size=640),
    "a3": Variant("a3", imgz=256, fps=12, stream_positional_encoding=True, embeddings_size=744),
    "a4": Variant("a4", imgz=290, fps=8, stream_positional_encoding=True, embeddings_size=856),
    "a5": Variant("a5", imgz=320, fps=12, stream_positional_encoding=True, embeddings_size=992),
}


def architecture(model_id: str, model_mode: str) -> dict:
    """Keyword arguments for official.projects.movinet.modeling.movinet.Movinet.

    These match how the TF Hub Kinetics-600 models were exported, so their
    variables restore one-to-one into the built network.
    """
    variant = VARIANTS[model_id]
    if model_mode == "base":
        return dict(
            model_id=model_id,
            causal=False,
            conv_type="3d",
            se_type="3d",
            activation="swish",
            gating_activation="sigmoid",
            use_positional_encoding=False,
            use_external_states=False,
        )
    if model_mode == "stream":
        return dict(
            model_id=model_id,
            causal=True,
            conv_type="2plus1d",
            se_type="2plus3d",
            activation="hard_swish",
            gating_activation="hard_sigmoid",
            use_positional_encoding=variant.stream_positional_encoding,
            use_external_states=True,
        )
    raise ValueError(f"model_mode must be one of {MODEL_MODES}, got {model_mode!r}")


def model_name(model_id: str, model_mode: str) -> str:
    """Name of the model entry in dataloop.json, e.g. movinet-a0-base."""
    return f"movinet-{model_id}-{model_mode}"
