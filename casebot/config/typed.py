"""Generic, schema-driven loading: a parsed TOML table -> the settings dataclasses, with key paths in errors.

Owns the conversion of TOML values to the schema's types (`mailbox.port: expected an integer, got a string
('x')`) and the refusal of unknown keys, naming the known ones. Must not know any particular key: `validate`
checks values, `schema` declares them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from casebot.config.schema import ConfigError

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _convert(path: str, hint: Any, value: object) -> object:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        # `OAuth2Settings | str`: a table goes to the dataclass, anything else to the other type.
        tables = [a for a in args if dataclasses.is_dataclass(a)]
        others = [a for a in args if not dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and tables:
            return _convert(path, tables[0], value)
        return _convert(path, (others or args)[0], value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {_describe(value)}")
        return build(path, typing.cast(type, hint), value)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected an array, got {_describe(value)}")
        return tuple(_convert(f"{path}[{i}]", item, v) for i, v in enumerate(value))
    if origin is dict:
        _key, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {_describe(value)}")
        return {k: _convert(f"{path}.{k}", item, v) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _TYPE_NAMES:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: expected {_TYPE_NAMES[hint]}, got {_describe(value)}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {hint!r}")  # a schema bug, not the admin's


def build(prefix: str, cls: type, data: dict[str, object]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{where}: unknown key (known keys: {', '.join(sorted(names))})")
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            where = f"{prefix}.{f.name}" if prefix else f.name
            kwargs[f.name] = _convert(where, hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}.{f.name}: missing required key")
    return cls(**kwargs)

