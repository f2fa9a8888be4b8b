"""The architecture as a test: the imports and clock reads of casebot/, scanned with `ast` (nothing is imported).

Rules (see /work/shared/ARCHITECTURE.md, "Principles" and "Layers"):
  * the pure core (pipeline/*, sla, refs, mail, templates, clock) never imports an adapter (store, imap, smtp,
    maildir), their libraries, or the layers above it (jobs, service, cli);
  * one adapter per outside system, and it alone imports that library;
  * one reader of the system clock: clock.py. Everything else, service.py included (APScheduler's
    `next_run_time=clock.utcnow()`), goes through casebot.clock or receives `now` as an argument.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "casebot"

# The pure core: files, or folders ending in "/".
CORE = ["case.py", "sla.py", "alerts.py", "refs.py", "rules.py", "notices.py", "sla_notices.py", "staff_notices.py",
        "commands.py", "templates.py", "clock.py", "mail/", "pipeline/"]
CORE_FORBIDDEN = [
    "casebot.store", "casebot.imap", "casebot.smtp", "casebot.maildir", "casebot.transport",
    "casebot.jobs", "casebot.service", "casebot.daemon", "casebot.cli", "casebot.config", "casebot.demo",
    "sqlalchemy", "alembic", "imapclient", "smtplib", "apscheduler",
]

# library -> the files (relative to casebot/) that may import it; a trailing "/" allows a whole folder.
OWNERS: dict[str, tuple[str, ...]] = {
    "imapclient": ("imap.py",),
    "smtplib": ("smtp.py",),
    "sqlalchemy": ("store/", "migrations/"),
    "alembic": ("store/", "migrations/"),
    "mailparser": ("mail/inbound.py",),
    "jinja2": ("templates.py",),
    "apscheduler": ("daemon.py",),
    "authres": ("mail/authres.py",),
    "mailparser_reply": ("mail/reply.py",),
    "msal": ("oauth_msal.py",),
    "authlib": ("oauth_authlib.py",),
    "css_inline": ("mail/html.py",),
    "idna": ("mail/address.py",),
    "flufl.bounce": ("mail/bounce.py",),
    "prometheus_client": ("metrics.py",),
    "holidays": ("calendars.py",),
}
MAX_LINES = 400

CLOCK_CALL = re.compile(r"(^|\.)(datetime\.(now|utcnow|today)|date\.today|time\.(time|time_ns))$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module a source imports, anywhere in it (functions too); `from a import b` gives `a` and `a.b`."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


@dataclass(frozen=True)
class ClockRead:
    call: str
    line: int


def clock_reads(source: str) -> list[ClockRead]:
    """Calls that read the wall clock directly (`datetime.now()`, `date.today()`, `time.time()`...).

    An injected clock (`clock.now()`, `now()`, `ctx.now`) and `time.monotonic()` (I/O timeouts) are not reads."""
    out = [
        ClockRead(dotted(node.func), node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and CLOCK_CALL.search(dotted(node.func))
    ]
    return sorted(out, key=lambda r: r.line)


def sources() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- the scanner itself -------------------------------------------------------------------------------------------


def test_scanner_sees_every_kind_of_import() -> None:
    source = (
        "import os, sqlalchemy.orm as orm\n"
        "from casebot import store as s, mail\n"
        "from . import steps\n"
        "from ..refs import ReferenceFormat\n"
        "def f():\n"
        "    import smtplib\n"
        "    from jinja2.sandbox import SandboxedEnvironment\n"
    )
    found = imports_of(source, "casebot.pipeline.base")
    assert {"os", "sqlalchemy.orm", "casebot.store", "casebot.mail", "smtplib", "jinja2.sandbox"} <= found
    assert "casebot.pipeline.steps" in found
    assert "casebot.refs" in found
    assert imports_of("from . import base\n", "casebot.pipeline", is_package=True) >= {"casebot.pipeline.base"}


@pytest.mark.parametrize(
    ("source", "calls"),
    [
        ("import datetime as dt\nx = dt.datetime.now(dt.UTC)\n", ["dt.datetime.now"]),
        ("from datetime import datetime\nx = datetime.utcnow()\n", ["datetime.utcnow"]),
        ("import datetime\nx = datetime.date.today()\n", ["datetime.date.today"]),
        ("import time\nx = time.time()\n", ["time.time"]),
        ("f(next_run_time=dt.datetime.now(dt.UTC))\n", ["dt.datetime.now"]),
        ("x = ctx.now\ny = clock.now()\nz = now()\nw = time.monotonic()\n", []),
        ("'''dt.datetime.now() in a docstring'''\n# datetime.now() in a comment\n", []),
    ],
)
def test_scanner_sees_clock_reads(source: str, calls: list[str]) -> None:
    assert [r.call for r in clock_reads(source)] == calls


# --- the rules on casebot/ ------------------------------------------------------------------------------------------


def core_files() -> list[str]:
    out: list[str] = []
    for entry in CORE:
        if entry.endswith("/"):
            out.extend(sorted(p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / entry).glob("*.py")))
        else:
            out.append(entry)
    return out


def test_core_modules_exist() -> None:
    missing = [name for name in core_files() if not (PACKAGE / name).is_file()]
    assert not missing
    assert {"pipeline/own_mail.py", "pipeline/loop_guard.py", "pipeline/thread.py", "pipeline/priority.py",
            "pipeline/acknowledge.py", "mail/inbound.py"} <= set(core_files())


@pytest.mark.parametrize("name", core_files())
def test_core_never_imports_an_adapter(name: str) -> None:
    path = PACKAGE / name
    found = imports_of(read(path), module_name(path), path.name == "__init__.py")
    assert found, "the scanner found no imports at all: it is broken"
    bad = sorted(m for m in found for f in CORE_FORBIDDEN if matches(m, f))
    assert not bad, f"casebot/{name} imports {bad}"


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_only_the_adapter_imports_its_library(library: str) -> None:
    owners = OWNERS[library]
    importers = []
    for rel, path in sources():
        found = imports_of(read(path), module_name(path), path.name == "__init__.py")
        if any(matches(m, library) for m in found):
            importers.append(rel)
    assert importers, f"nobody imports {library}: is OWNERS out of date?"
    strays = [r for r in importers if not any(r == o or (o.endswith("/") and r.startswith(o)) for o in owners)]
    assert not strays, f"{library} imported outside {owners}: {strays}"


def test_only_clock_reads_the_clock() -> None:
    offenders: list[str] = []
    for rel, path in sources():
        if rel == "clock.py":
            continue
        offenders.extend(f"casebot/{rel}:{r.line}: {r.call}()" for r in clock_reads(read(path)))
    assert not offenders, "read the time through casebot.clock / an injected `now`:\n" + "\n".join(offenders)


def test_clock_py_is_the_reader() -> None:
    assert [r.call for r in clock_reads(read(PACKAGE / "clock.py"))] == ["dt.datetime.now"]


def test_no_module_is_too_long() -> None:
    long = [f"casebot/{rel}: {n} lines" for rel, path in sources() if (n := len(read(path).splitlines())) > MAX_LINES]
    assert not long, f"split these (at most {MAX_LINES} lines a module):\n" + "\n".join(long)


def test_every_module_says_what_it_must_not_do() -> None:
    missing = []
    for rel, path in sources():
        if rel.startswith("migrations/versions/"):
            continue  # Alembic revisions: their docstring is the revision's message
        doc = ast.get_docstring(ast.parse(read(path))) or ""
        if "Must not " not in " ".join(doc.split()):  # wherever the line breaks
            missing.append(f"casebot/{rel}")
    assert not missing, "module docstrings need a 'Must not ...' line: " + ", ".join(missing)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """casebot module -> the casebot modules it imports (anywhere but `if TYPE_CHECKING:` blocks)."""
    modules = {module_name(path): path for _rel, path in sources()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(read(path))
        skip = _type_checking_lines(tree)
        kept = ast.Module(body=[n for n in tree.body if n.lineno not in skip
                                and not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))],
                          type_ignores=[])
        found = imports_of(ast.unparse(kept), name, path.name == "__init__.py")
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 30, "the scanner found too few modules: it is broken"
    assert "casebot.pipeline.base" in graph["casebot.pipeline.registry"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
