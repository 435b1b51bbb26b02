"""Sequence classification over a LARNN or the LSTM baseline, behind one interface."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor, nn

from larnn.baseline import LSTMConfig, LSTMEncoder
from larnn.config_base import JsonConfig, require
from larnn.errors import ConfigError
from larnn.input_features import check_asinh_scale, encoder_input_size, input_features
from larnn.model import LARNN, AttentionRecord, InferenceKnobs, LARNNConfig
from larnn.stem import ConvStem, StemConfig

ARCHITECTURES = ("larnn", "lstm")
# What the linear head reads: "last", the hidden state at a series' last real step (the
# paper's); "mean", the mean of the hidden states over its real steps.
READOUTS = ("last", "mean")


@dataclass(frozen=True)
class ClassifierConfig(JsonConfig):
    """Architecture, its encoder's fields, the data's channels and the number of classes.

    What the encoder reads per step is derived here only (`encoder_input_size`): the stem's
    width where there is a stem, else the C channels and, with `asinh_scale`, their asinh.
    """

    architecture: Literal["larnn", "lstm"]
    encoder: dict  # the encoder's fields but input_size (derived: `encoder_input_size`)
    num_classes: int
    channels: int  # C: the data's channels
    readout: Literal["last", "mean"] = "last"
    asinh_scale: float = 0.0  # > 0: the encoder also reads asinh(x / scale) (input_features)
    stem: dict = field(default_factory=dict)  # StemConfig fields; {} = no stem

    def __post_init__(self) -> None:
        owner = "ClassifierConfig"
        require(
            self.architecture in ARCHITECTURES,
            owner,
            "architecture",
            f"must be one of {ARCHITECTURES}, got {self.architecture!r}",
        )
        for name, low in (("num_classes", 2), ("channels", 1)):
            value = getattr(self, name)
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= low
            require(valid, owner, name, f"must be an integer >= {low}, got {value!r}")
        require(
            self.readout in READOUTS,
            owner,
            "readout",
            f"must be one of {READOUTS}, got {self.readout!r}",
        )
        check_asinh_scale(self.asinh_scale, owner)
        require("input_size" not in self.encoder, owner, "encoder", "input_size is derived")
        stem = self.stem_config()  # validates the stem's fields
        encoder = self.encoder_config()  # validates the encoder's fields too
        require(
            not (stem and stem.residual) or stem.width == encoder.hidden_size,
            owner,
            "stem",
            "a residual stem adds its features to the encoder's output: its width must equal "
            f"the hidden size, got {stem and stem.width} and {encoder.hidden_size}",
        )

    def stem_config(self) -> StemConfig | None:
        try:
            return StemConfig.from_dict(self.stem) if self.stem else None
        except ConfigError as error:
            raise ConfigError(f"ClassifierConfig.stem: {error}") from None

    @property
    def patch(self) -> int:
        """Samples per encoder step (1 without a stem)."""
        stem = self.stem_config()
        return stem.patch if stem else 1

    @property
    def encoder_input_size(self) -> int:
        stem = self.stem_config()
        return stem.width if stem else encoder_input_size(self.channels, self.asinh_scale)

    def encoder_config(self) -> LARNNConfig | LSTMConfig:
        kind = LARNNConfig if self.architecture == "larnn" else LSTMConfig
        fields = {**self.encoder, "input_size": self.encoder_input_size, "batch_first": True}
        return kind.from_dict(fields)

    @property
    def input_size(self) -> int:
        """The number of data channels (C) the classifier takes."""
        return self.channels

    @classmethod
    def build(
        cls,
        encoder: LARNNConfig | LSTMConfig,
        num_classes: int,
        readout: str = "last",
        asinh_scale: float = 0.0,
        stem: StemConfig | None = None,
    ) -> ClassifierConfig:
        """`encoder.input_size` is the data's channel count C; what the encoder really reads
        (C, 2C with asinh, the stem's width) is derived from it."""
        architecture = "larnn" if isinstance(encoder, LARNNConfig) else "lstm"
        fields = {
            k: v for k, v in encoder.to_dict().items() if k not in ("input_size", "batch_first")
        }
        stem_fields = stem.to_dict() if stem else {}
        return cls(
            architecture, fields, num_classes, encoder.input_size, readout, asinh_scale, stem_fields
        )


@dataclass(frozen=True)
class ClassifierOutput:
    logits: Tensor  # (B, classes) at each series' last real step
    step_logits: Tensor | None  # (B, T, classes): the running prediction, when asked
    attention: AttentionRecord | None  # LARNN only, when asked


class SequenceClassifier(nn.Module):
    """Encoder (LARNN or LSTM, batch first) and a linear head on its hidden state (the last
    step's, or the mean up to it: `ClassifierConfig.readout`). The encoder reads the series'
    channels, and their asinh where `ClassifierConfig.asinh_scale` asks (input_features), or
    the output of a convolutional stem (larnn.stem) that gives it one step per `patch` samples,
    and with a residual stem the head reads the encoder's output plus the stem's.
    Everything still speaks in samples: `knobs.hidden_steps` are samples (hiding one hides its
    patch's cell state, so all the patch's samples), and the per-step logits and the attention
    record have one row per sample, that of the encoder step whose patch holds it; a slot's
    time is the first sample of its patch (`larnn.stem.patch_span`).

    Input: x (B, T, C) and optional lengths (B,): series right-padded to T, series b real for
    its first lengths[b] steps (None: all T). Output: ClassifierOutput with the class logits at
    each series' last real step and, on request, the per-step logits and the attention record
    (both over all T steps: those past a series' length are padding, to be ignored).

    Both encoders are causal, so padding after a series changes nothing at its real steps,
    except through batch statistics: a LARNN with batch norm (kv_norm or hidden_norm "batch")
    in training mode refuses a batch whose series differ in length.
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
        stem = config.stem_config()
        features = encoder_input_size(config.channels, config.asinh_scale)  # what the stem reads
        self.stem = ConvStem(features, stem) if stem else None
        self.head = nn.Linear(encoder_config.hidden_size, config.num_classes)

    @property
    def architecture(self) -> str:
        return self.config.architecture

    @property
    def uses_batch_norm(self) -> bool:
        """True when training-mode statistics mix the series of a batch (LARNN batch norm)."""
        return any(isinstance(m, nn.BatchNorm1d) for m in self.encoder.modules())

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        knobs: InferenceKnobs | None = None,
        return_attention: bool = False,
        all_steps: bool = False,
    ) -> ClassifierOutput:
        if x.dim() != 3 or x.shape[-1] != self.config.input_size:
            raise ValueError(
                f"expected input of shape (B, T, {self.config.input_size}), got {tuple(x.shape)}"
            )
        B, T, _ = x.shape
        if lengths is not None:
            self._check_lengths(lengths, B, T)
        x = input_features(x, self.config.asinh_scale)  # (B, T, C) or (B, T, 2C)
        samples, patch = T, self.config.patch
        if self.stem is not None:
            x, lengths = self.stem(x, lengths)  # (B, S, W): S = ceil(T / patch) steps
            T = x.shape[1]
            if knobs is not None and knobs.hidden_steps and patch > 1:
                knobs = replace(knobs, hidden_steps=_patches_of(knobs.hidden_steps, patch))
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
        if self.stem is not None and self.stem.config.residual:
            hidden = hidden + x  # the stem's features around the encoder: (B, T, H), W = H
        if self.config.readout == "mean":  # the mean of steps 0..t, at every t
            steps = torch.arange(1, T + 1, device=x.device, dtype=hidden.dtype)  # (T,)
            hidden = hidden.cumsum(dim=1) / steps[:, None]  # (B, T, H)
        if lengths is None:
            summary = hidden[:, -1]  # (B, H)
        else:
            summary = hidden[torch.arange(B, device=x.device), lengths.to(x.device) - 1]
        logits = self.head(summary)  # (B, classes)
        step_logits = self.head(hidden) if all_steps else None  # (B, T, classes)
        if patch > 1:  # back to samples: sample t reads encoder step t // patch
            step = torch.arange(samples, device=x.device) // patch  # (samples,)
            step_logits = None if step_logits is None else step_logits[:, step]
            if attention is not None:
                weights = tuple(w[:, step] for w in attention.weights)  # (B, samples, NH, K)
                first = torch.where(attention.slot_time >= 0, attention.slot_time * patch, -1)
                attention = AttentionRecord(weights, first[step])  # (samples, K)
        return ClassifierOutput(logits, step_logits, attention)

    def _check_lengths(self, lengths: Tensor, B: int, T: int) -> None:
        if lengths.shape != (B,) or lengths.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"lengths must be {B} integers (one per series), got {lengths.dtype} of shape "
                f"{tuple(lengths.shape)}"
            )
        if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
            raise ValueError(
                f"lengths must lie in 1..{T} (the padded length), found "
                f"{int(lengths.min())}..{int(lengths.max())}"
            )
        if self.training and self.uses_batch_norm and B and int(lengths.min()) < T:
            raise ConfigError(RAGGED_BATCH_NORM)


def _patches_of(hidden_steps: tuple, patch: int) -> tuple:
    """Hidden samples -> the encoder steps whose patches hold them (per sample where nested)."""
    if hidden_steps and isinstance(hidden_steps[0], tuple):
        return tuple(tuple(sorted({s // patch for s in row})) for row in hidden_steps)
    return tuple(sorted({s // patch for s in hidden_steps}))


RAGGED_BATCH_NORM = (
    "series of different lengths are padded in a batch, and batch norm in training computes "
    "its statistics over every series at each step, padded steps included; choose "
    "model.kv_norm and model.hidden_norm 'layer' or 'none' (e.g. --set model.kv_norm=layer)"
)
