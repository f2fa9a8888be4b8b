"""`casebot sla due` as an admin types it, checked against a calendar read by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casebot import cli

CONFIG = """
[mailbox]
kind = "pipe"
[database]
url = "sqlite:///casebot.db"
[plans.enterprise]
clients = ["@bigclient.example"]
out_of_hours = ["critical", "high"]
oncall = "oncall@example.com"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "casebot.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def due(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, str]]:
    assert cli.main(["--config", str(config), "sla", "due", *args, "--json"]) == 0
    out: list[dict[str, str]] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.parametrize(
    ("priority", "at", "plan", "clock", "first", "resolution"),
    [
        # Christmas Eve 16:00: 1.5 h that day, then Christmas, a weekend, the Boxing Day substitute (Mon 28).
        ("critical", "2026-12-24T16:00:00+00:00", None,
         "2026-12-24T16:00:00+00:00", "2026-12-24T17:00:00+00:00", "2026-12-29T11:30:00+00:00"),
        # Before opening, in BST: the clock starts at 09:00 local (08:00 UTC); 1d = 8.5 h, ending at closing.
        ("high", "2026-07-01T07:00:00Z", None,
         "2026-07-01T09:00:00+01:00", "2026-07-01T13:00:00+01:00", "2026-07-01T17:30:00+01:00"),
        # The spring DST weekend between: Friday 16:00 GMT, then Monday in BST.
        ("medium", "2026-03-27T16:00:00+00:00", None,
         "2026-03-27T16:00:00+00:00", "2026-03-30T16:00:00+01:00", "2026-04-01T16:00:00+01:00"),
        # Exactly at closing: the clock starts at the next opening.
        ("critical", "2026-12-01T17:30:00+00:00", None,
         "2026-12-02T09:00:00+00:00", "2026-12-02T10:00:00+00:00", "2026-12-02T13:00:00+00:00"),
        # A deadline that falls exactly at closing is that closing time.
        ("critical", "2026-12-01T13:30:00", None,
         "2026-12-01T13:30:00+00:00", "2026-12-01T14:30:00+00:00", "2026-12-01T17:30:00+00:00"),
        # 24x7 cover: 02:00 on a Sunday counts from 02:00.
        ("critical", "2026-11-29T02:00:00+00:00", "enterprise",
         "2026-11-29T02:00:00+00:00", "2026-11-29T03:00:00+00:00", "2026-11-29T06:00:00+00:00"),
        # The plan covers critical and high only: a low case of the same client waits for Monday.
        ("low", "2026-11-29T02:00:00+00:00", "enterprise",
         "2026-11-30T09:00:00+00:00", "2026-12-01T17:30:00+00:00", "2026-12-04T17:30:00+00:00"),
    ],
)
def test_sla_due(config: Path, capsys: pytest.CaptureFixture[str], priority: str, at: str, plan: str | None,
                 clock: str, first: str, resolution: str) -> None:
    args = ["--priority", priority, "--at", at] + (["--plan", plan] if plan else [])
    (got,) = due(config, capsys, *args)
    assert (got["clock_starts"], got["first_response_due"], got["resolution_due"]) == (clock, first, resolution)
    import datetime as dt

    def instant(text: str) -> dt.datetime:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # local = UTC in these winter cases

    assert instant(got["opened_at"]) == instant(at)


def test_sla_due_many_at(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = due(config, capsys, "--priority", "low", "--at", "2026-12-01T10:00:00Z", "--at", "2026-12-02T10:00:00Z")
    assert [g["first_response_due"] for g in got] == ["2026-12-03T10:00:00+00:00", "2026-12-04T10:00:00+00:00"]


def test_sla_due_bad_input_is_a_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(config), "sla", "due", "--priority", "low", "--at", "tomorrow"]) == 64
    assert "--at 'tomorrow' is not an ISO 8601 time" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "sla", "due", "--priority", "low", "--at", "2026-12-01T10:00:00Z",
                     "--plan", "gold"]) == 64
    assert "no plan 'gold' (plans: enterprise)" in capsys.readouterr().err
