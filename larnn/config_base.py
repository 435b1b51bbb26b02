"""Frozen, JSON-round-tripping configuration dataclasses, validated on construction."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar

from larnn.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="JsonConfig")


class JsonConfig:
    """Mixin for frozen dataclasses: `to_dict`/`from_dict` and `to_json`/`from_json`.

    `from_dict` names unknown and missing keys and checks each value's type against the
    field's annotation, so a hand-edited or uploaded config fails with a message a person
    can act on rather than deep inside a constructor.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls: type[ConfigT], text: str) -> ConfigT:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{cls.__name__}: not valid JSON ({error})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls: type[ConfigT], data: Any) -> ConfigT:
        name = cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(f"{name}: expected a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{name}: unknown field(s) {unknown}; known: {sorted(fields)}")
        required = [
            f.name
            for f in fields.values()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [key for key in required if key not in data]
        if missing:
            raise ConfigError(f"{name}: missing required field(s) {missing}")
        hints = typing.get_type_hints(cls)
        for key, value in data.items():
            _check_type(name, key, value, hints[key])
        return cls(**data)


def _check_type(owner: str, field: str, value: Any, annotation: Any) -> None:
    allowed = _allowed_types(annotation)
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    elif float in allowed and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    else:
        ok = isinstance(value, tuple(allowed))
    if not ok:
        names = " or ".join(sorted(t.__name__ for t in allowed))
        raise ConfigError(f"{owner}.{field}: expected {names}, got {value!r}")


def _allowed_types(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_allowed_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    if annotation is None or annotation is type(None):
        return {type(None)}
    if origin is not None:
        return {origin}
    return {annotation}


def require(condition: bool, owner: str, field: str, message: str) -> None:
    """Raise a ConfigError naming `owner.field` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{owner}.{field}: {message}")
