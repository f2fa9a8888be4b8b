"""casebot.toml.example documents every settings key with its default, and parses."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from casebot import config

EXAMPLE = Path(__file__).resolve().parents[2] / "casebot.toml.example"

# Keys the example sets to a site-specific value on purpose (the comment beside each gives the default).
SITE_SPECIFIC = {
    "mailbox.host", "mailbox.username", "mailbox.password_file", "outgoing.host", "outgoing.from_address",
}


def _schema_keys(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> default value, for every leaf of the settings schema."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source":
            continue
        key = f"{prefix}{f.name}"
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(_schema_keys(hints[f.name], key + "."))
        elif isinstance(default, dict):
            for name, value in default.items():
                for sub in dataclasses.fields(value):
                    out[f"{key}.{name}.{sub.name}"] = getattr(value, sub.name)
        else:
            out[key] = default
    return out


def _documented(text: str) -> tuple[dict[str, Any], set[str]]:
    data = tomllib.loads(text)
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = v

    walk(data, "")
    commented: set[str] = set()
    section = ""
    for line in text.splitlines():
        m = re.match(r"^\[([\w.]+)\]", line)
        if m:
            section = m.group(1)
        for key in re.findall(r"(?:^#\s*|/\s+)(\w+)\s*=", line):
            commented.add(f"{section}.{key}")
    return flat, commented


def test_example_parses_with_the_real_loader() -> None:
    settings = config.load(str(EXAMPLE))
    assert settings.mailbox.kind == "imap"
    assert set(settings.sla.targets) == {"critical", "high", "medium", "low"}


def test_every_key_is_documented_with_its_default() -> None:
    schema = _schema_keys(config.Settings)
    flat, commented = _documented(EXAMPLE.read_text())
    missing = sorted(k for k in schema if k not in flat and k not in commented)
    assert not missing, f"keys not documented in casebot.toml.example: {missing}"
    unknown = sorted(k for k in flat if k not in schema)
    assert not unknown, f"keys in the example that the schema does not know: {unknown}"
    for key, value in flat.items():
        if key in SITE_SPECIFIC:
            continue
        default = schema[key]
        expected = list(default) if isinstance(default, tuple) else default
        assert value == expected, f"{key}: example says {value!r}, default is {default!r}"
