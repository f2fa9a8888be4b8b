"""Public-holiday calendars: the only importer of the holidays library.

Owns loading one country's calendar (`country_calendar`) with only that country's module. The library's own
`country_holidays` imports its package of every country (about 250 modules, 8 MB of a process that otherwise
needs 70): the registry names the one module a country code lives in, and that module is imported on its own,
with the `holidays.countries` package put in place as a bare namespace (its `__init__` only re-exports every
country). Anything unexpected falls back to `country_holidays`, so the answer is always the library's.
Must not compute business hours (`casebot.sla` does) or read configuration.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import holidays
from holidays import registry

HolidayBase = holidays.HolidayBase

_PACKAGE = "holidays.countries"


class UnknownCalendar(ValueError):
    """Raised for a country or subdivision the holidays library does not have."""


def country_calendar(country: str, subdivision: str | None = None) -> HolidayBase:
    """The holidays of `country` (ISO 3166 code) and `subdivision`, years filled in as they are asked for."""
    try:
        cls = _country_class(country)
        if cls is None:
            return holidays.country_holidays(country, subdiv=subdivision)
        found: HolidayBase = cls(subdiv=subdivision)
        return found
    except NotImplementedError as exc:
        raise UnknownCalendar(f"unknown holiday calendar {country!r}/{subdivision!r}") from exc


def _country_class(country: str) -> Any:
    """The class for a country code, from its own module alone; None when the registry does not say (then the
    library's own way is used)."""
    entries: dict[str, tuple[str, ...]] = getattr(registry, "COUNTRIES", {})
    module = next((name for name, names in entries.items() if country in names[1:]), None)
    if module is None:
        return None
    if _PACKAGE not in sys.modules:
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None or spec.submodule_search_locations is None:
            return None
        package = types.ModuleType(_PACKAGE)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        vars(package)["__getattr__"] = _lazy  # `holidays.countries.Germany` still works
        sys.modules[_PACKAGE] = package
    return getattr(importlib.import_module(f"{_PACKAGE}.{module}"), entries[module][0], None)


def _lazy(name: str) -> Any:
    """A name the real package would re-export (a class or code), imported from its country's module."""
    entries: dict[str, tuple[str, ...]] = getattr(registry, "COUNTRIES", {})
    for module, names in entries.items():
        if name in names:
            return getattr(importlib.import_module(f"{_PACKAGE}.{module}"), name)
    raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}")
