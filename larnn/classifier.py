"""Sequence classification over a LARNN or the LSTM baseline, behind one interface."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from torch import Tensor, nn

from larnn.baseline import LSTMConfig, LSTMEncoder
from larnn.config_base import JsonConfig, require
from larnn.errors import ConfigError
from larnn.model import LARNN, AttentionRecord, InferenceKnobs, LARNNConfig

ARCHITECTURES = ("larnn", "lstm")


@dataclass(frozen=True)
class ClassifierConfig(JsonConfig):
    """Architecture, its encoder's configuration (as a dict) and the number of classes."""

    architecture: Literal["larnn", "lstm"]
    encoder: dict
    num_classes: int

    def __post_init__(self) -> None:
        require(
            self.architecture in ARCHITECTURES,
            "ClassifierConfig",
            "architecture",
            f"must be one of {ARCHITECTURES}, got {self.architecture!r}",
        )
        require(
            isinstance(self.num_classes, int) and self.num_classes >= 2,
            "ClassifierConfig",
            "num_classes",
            f"must be an integer >= 2, got {self.num_classes!r}",
        )
        self.encoder_config()  # validates the encoder's fields too

    def encoder_config(self) -> LARNNConfig | LSTMConfig:
        kind = LARNNConfig if self.architecture == "larnn" else LSTMConfig
        return replace(kind.from_dict(self.encoder), batch_first=True)

    @property
    def input_size(self) -> int:
        return int(self.encoder["input_size"])

    @classmethod
    def build(cls, encoder: LARNNConfig | LSTMConfig, num_classes: int) -> ClassifierConfig:
        architecture = "larnn" if isinstance(encoder, LARNNConfig) else "lstm"
        return cls(architecture, encoder.to_dict(), num_classes)


@dataclass(frozen=True)
class ClassifierOutput:
    logits: Tensor  # (B, classes) at the last step
    step_logits: Tensor | None  # (B, T, classes): the running prediction, when asked
    attention: AttentionRecord | None  # LARNN only, when asked


class SequenceClassifier(nn.Module):
    """Encoder (LARNN or LSTM, batch first) and a linear head on its hidden state.

    Input: x (B, T, C). Output: ClassifierOutput with the class logits at the last step and,
    on request, the per-step logits and the attention record.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        encoder_config = config.encoder_config()
        self.encoder: nn.Module = (
            LARNN(encoder_config)
            if isinstance(encoder_config, LARNNConfig)
            else LSTMEncoder(encoder_config)
        )
        self.head = nn.Linear(encoder_config.hidden_size, config.num_classes)

    @property
    def architecture(self) -> str:
        return self.config.architecture

    def forward(
        self,
        x: Tensor,
        *,
        knobs: InferenceKnobs | None = None,
        return_attention: bool = False,
        all_steps: bool = False,
    ) -> ClassifierOutput:
        if x.dim() != 3 or x.shape[-1] != self.config.input_size:
            raise ValueError(
                f"expected input of shape (B, T, {self.config.input_size}), got {tuple(x.shape)}"
            )
        attention = None
        if self.architecture == "larnn":
            result = self.encoder(x, knobs=knobs, return_attention=return_attention)
            hidden = result[0]  # (B, T, H)
            attention = result[2] if return_attention else None
        else:
            knob_values = () if knobs is None else vars(knobs).values()
            if return_attention or any(value is not None for value in knob_values):
                raise ConfigError("the LSTM baseline has no attention: knobs do not apply")
            hidden, _ = self.encoder(x)  # (B, T, H)
        logits = self.head(hidden[:, -1])  # (B, classes)
        step_logits = self.head(hidden) if all_steps else None  # (B, T, classes)
        return ClassifierOutput(logits, step_logits, attention)
