"""Templates: the Jinja2 environment and `render()` of every mail casebot writes.

Owns the sandboxed environment (StrictUndefined: a missing variable is an error, not a blank in a client's
mail), the search path (the admin's `templates.dir` first, then the templates shipped with casebot), and the
split of a rendered template into subject and body. The only importer of jinja2. Pure: it renders strings and
never sends, stores or reads the clock.
Must not decide which template is used for what (`notices` does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment


class TemplateError(Exception):
    """Raised when a template is missing, does not compile, uses an undefined variable, or lacks a subject."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def _shipped_dir() -> str:
    return str(resources.files("casebot._templates"))


class Templates:
    def __init__(self, override_dir: Path | None = None, timezone: str = "Europe/London") -> None:
        paths = [str(override_dir)] if override_dir else []
        paths.append(_shipped_dir())
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(paths),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text mail; nothing here is rendered as HTML
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        zone = ZoneInfo(timezone)

        def local(value: dt.datetime, fmt: str = "%a %d %b %Y %H:%M %Z") -> str:
            return value.astimezone(zone).strftime(fmt)

        self.env.filters["local"] = local

    def render(self, name: str, variables: dict[str, Any]) -> Rendered:
        """Render `name` (e.g. `acknowledgement.txt.j2`). The first line must be `Subject: ...`."""
        try:
            text = self.env.get_template(name).render(**variables)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {name!r} not found") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {name!r}: {exc.message}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {exc.filename or name!r} line {exc.lineno}: {exc.message}") from exc
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"template {name!r}: unsafe operation refused: {exc}") from exc
        except Exception as exc:
            # An admin's template can fail at run time in any way (a filter on the wrong type, 1 // 0): it is
            # still a template problem, and the caller keeps the case and records why no mail went out.
            raise TemplateError(f"template {name!r}: {type(exc).__name__}: {exc}") from exc
        first, _, body = text.partition("\n")
        if not first.lower().startswith("subject:"):
            raise TemplateError(f"template {name!r}: the first line must be 'Subject: ...'")
        subject = " ".join(first.split(":", 1)[1].split())
        return Rendered(subject=subject, text=body.lstrip("\n"))

    def check(self, names: list[str]) -> None:
        """Compile each template now, so a broken override fails `casebot check` and startup, not a client's mail."""
        for name in names:
            try:
                self.env.get_template(name)
            except jinja2.TemplateNotFound as exc:
                raise TemplateError(f"template {name!r} not found") from exc
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"template {exc.filename or name!r} line {exc.lineno}: {exc.message}") from exc
