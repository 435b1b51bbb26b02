"""The LSTM baseline: a thin wrapper over `nn.LSTM` with an optional input projection."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from larnn.config_base import JsonConfig, require


@dataclass(frozen=True)
class LSTMConfig(JsonConfig):
    """Every constructor argument of the baseline encoder."""

    input_size: int  # C
    hidden_size: int  # H
    num_layers: int = 1
    dropout: float = 0.0  # between layers, as nn.LSTM
    input_projection: int | None = None  # width of a Linear applied to x first; None = none
    batch_first: bool = False

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                "LSTMConfig",
                name,
                f"must be an integer >= 1, got {value!r}",
            )
        require(
            self.input_projection is None
            or (isinstance(self.input_projection, int) and self.input_projection >= 1),
            "LSTMConfig",
            "input_projection",
            f"must be None or an integer >= 1, got {self.input_projection!r}",
        )
        require(
            isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0,
            "LSTMConfig",
            "dropout",
            f"must be a number in [0, 1), got {self.dropout!r}",
        )


class LSTMEncoder(nn.Module):
    """`nn.LSTM` behind the same `forward(x, state=None) -> (output, state)` as `LARNN`."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        width = config.input_projection
        self.input_projection = nn.Linear(config.input_size, width) if width else nn.Identity()
        self.lstm = nn.LSTM(
            width or config.input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=config.batch_first,
        )

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        return self.lstm(self.input_projection(x), state)
