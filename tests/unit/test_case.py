"""The case life cycle (casebot/case.py) as a table: what each event does to each status, and why."""

from __future__ import annotations

import datetime as dt

import pytest

from casebot.case import (
    PRIORITIES,
    STATUSES,
    CaseState,
    ClientWrote,
    Priority,
    PrioritySet,
    StaffResponded,
    Status,
    StatusSet,
    apply,
)

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=2)


def state(status: Status, **kw: object) -> CaseState:
    return CaseState(status, Priority.MEDIUM, **kw)  # type: ignore[arg-type]


def test_enums_are_the_one_list() -> None:
    assert [s.value for s in STATUSES] == ["new", "open", "waiting", "resolved", "closed"]
    assert [p.value for p in PRIORITIES] == ["critical", "high", "medium", "low"]
    assert Priority.LOW.raised() is Priority.MEDIUM and Priority.CRITICAL.raised() is Priority.CRITICAL
    assert Priority("high") == "high" and Priority.CRITICAL.rank == 3 and Priority.LOW.rank == 0


@pytest.mark.parametrize(
    ("status", "automated", "after", "kinds"),
    [
        (Status.NEW, None, Status.NEW, []),
        (Status.OPEN, None, Status.OPEN, []),
        (Status.WAITING, None, Status.OPEN, ["status.changed", "clock.resumed"]),
        (Status.RESOLVED, None, Status.OPEN, ["status.changed", "case.reopened"]),
        (Status.WAITING, "Auto-Submitted: auto-replied", Status.WAITING, []),  # an out-of-office changes nothing
        (Status.RESOLVED, "Precedence: bulk", Status.RESOLVED, []),
    ],
)
def test_client_reply(status: Status, automated: str | None, after: Status, kinds: list[str]) -> None:
    paused = T0 if status is Status.WAITING else None
    resolved = T0 if status is Status.RESOLVED else None
    t = apply(state(status, paused_since=paused, resolved_at=resolved), ClientWrote(T1, automated))
    assert t.after.status is after
    assert [c.kind for c in t.changes] == kinds
    if kinds:
        assert t.changes[0].detail == {"previous": status.value, "status": "open", "why": "client replied"}
        assert t.after.paused_since is None and t.after.resolved_at is None


def test_first_staff_response_stamps_once_and_opens_a_new_case() -> None:
    t = apply(state(Status.NEW), StaffResponded(T1, by="alice@example.com"))
    assert t.after.first_response_at == T1 and t.after.status is Status.OPEN
    assert [c.kind for c in t.changes] == ["first_response.stamped", "status.changed"]
    again = apply(t.after, StaffResponded(T1 + dt.timedelta(hours=1)))
    assert again.after.first_response_at == T1 and not again.changed


def test_waiting_pauses_and_leaving_it_resumes_the_resolution_clock() -> None:
    paused = apply(state(Status.OPEN), StatusSet(T0, Status.WAITING, "asked for logs", "alice@example.com"))
    assert paused.after.paused_since == T0
    assert [c.kind for c in paused.changes] == ["status.changed", "clock.paused"]
    assert paused.changes[0].detail["by"] == "alice@example.com"
    resumed = apply(paused.after, StatusSet(T1, Status.OPEN, "logs arrived"))
    assert resumed.after.paused_since is None
    assert resumed.changes[1].kind == "clock.resumed"
    assert resumed.changes[1].detail["paused_since"] == "2026-12-01T10:00:00Z"


def test_resolve_stamps_and_reopen_clears() -> None:
    done = apply(state(Status.OPEN), StatusSet(T0, Status.RESOLVED, "fixed"))
    assert done.after.resolved_at == T0
    back = apply(done.after, StatusSet(T1, Status.OPEN, "not fixed after all"))
    assert back.after.resolved_at is None and back.has("case.reopened")


def test_same_status_changes_nothing() -> None:
    t = apply(state(Status.OPEN), StatusSet(T0, Status.OPEN, "no-op"))
    assert not t.changed and t.after == t.before


def test_priority_change_is_recorded_with_its_reason() -> None:
    t = apply(state(Status.OPEN), PrioritySet(T0, Priority.CRITICAL, "production down", "bob@example.com"))
    assert t.after.priority is Priority.CRITICAL
    assert t.changes[0].kind == "priority.changed"
    assert t.changes[0].detail == {"previous": "medium", "priority": "critical", "why": "production down",
                                   "by": "bob@example.com"}
    assert not apply(t.after, PrioritySet(T1, Priority.CRITICAL, "again")).changed
