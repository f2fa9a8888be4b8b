"""Staff commands at the top of a reply (casebot/commands.py) as tables."""

from __future__ import annotations

import pytest

from casebot.commands import USAGE, Command, CommandError, parse


def cmds(text: str) -> list[tuple[str, str]]:
    return [(c.name, c.value) for c in parse(text).commands]


@pytest.mark.parametrize(("text", "expected"), [
    ("#status waiting\nThanks", [("status", "waiting")]),
    ("#status resolved", [("status", "resolved")]),
    ("#status closed\n", [("status", "closed")]),
    ("#status open\n", [("status", "open")]),
    ("#priority critical", [("priority", "critical")]),
    ("#priority low", [("priority", "low")]),
    ("#assign bob@example.com", [("assign", "bob@example.com")]),
    ("#assign <Bob@Example.CO.UK>", [("assign", "bob@example.co.uk")]),
    ("#assign mailto:bob@example.com", [("assign", "bob@example.com")]),
    ("#note\nCalled the client.", [("note", "")]),
    ("#status: waiting", [("status", "waiting")]),
    ("# status waiting", [("status", "waiting")]),
    ("\n\n  \n#status waiting\n#priority high\n\n#note\n\nBody", [("status", "waiting"), ("priority", "high"),
                                                                  ("note", "")]),
])
def test_valid_commands(text: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse(text)
    assert cmds(text) == expected
    assert parsed.errors == ()


@pytest.mark.parametrize("text", ["#Status Waiting", "#STATUS WAITING", "#status WaItInG", "#sTaTuS waiting"])
def test_case_insensitive(text: str) -> None:
    assert parse(text).commands == (Command("status", "waiting", text),)


def test_line_is_kept_as_written_without_trailing_space() -> None:
    assert parse("#Priority HIGH  \nx").commands[0].line == "#Priority HIGH"


@pytest.mark.parametrize(("text", "problem", "usage"), [
    ("#status wating", "unknown status 'wating'", USAGE["status"]),
    ("#status new", "unknown status 'new'", USAGE["status"]),  # the store's status, not staff's
    ("#status", "missing status", USAGE["status"]),
    ("#status waiting please", "unexpected text after #status waiting: 'please'", USAGE["status"]),
    ("#priority urgent", "unknown priority 'urgent'", USAGE["priority"]),
    ("#assign bob", "not an address: 'bob'", USAGE["assign"]),
    ("#assign bob@localhost", "not an address: 'bob@localhost'", USAGE["assign"]),
    ("#assign a@b@example.com", "not an address: 'a@b@example.com'", USAGE["assign"]),
    ("#assign", "missing address", USAGE["assign"]),
    ("#note private", "#note takes no value, got 'private'", USAGE["note"]),
])
def test_errors_with_usage(text: str, problem: str, usage: str) -> None:
    parsed = parse(text + "\nHello")
    assert parsed.errors == (CommandError(text, problem, usage),)
    assert parsed.commands == ()
    assert parsed.body == "Hello"


def test_unknown_word_at_top_is_an_error_not_body() -> None:
    parsed = parse("#staus waiting\n#priority high\nHello")
    assert [e.problem for e in parsed.errors] == ["unknown command #staus"]
    assert "#status" in parsed.errors[0].usage and "#assign" in parsed.errors[0].usage
    assert cmds("#staus waiting\n#priority high\nHello") == [("priority", "high")]
    assert parsed.body == "Hello"


@pytest.mark.parametrize(("text", "body"), [
    ("#status waiting\n\nHi Alice,\nplease send the log.\n", "Hi Alice,\nplease send the log."),
    ("Hi Alice,\n#status waiting\n", "Hi Alice,\n#status waiting"),  # not at the top: body
    ("#status waiting\nHi,\n#hashtag in a sentence\n#priority high", "Hi,\n#hashtag in a sentence\n#priority high"),
    ("#1 priority is the printer\n#status waiting", "#1 priority is the printer\n#status waiting"),
    ("# Summary\nAll good", "# Summary\nAll good"),  # a heading, not "# <command>"
    ("#status waiting\n-- \nBob\n#priority high", "-- \nBob\n#priority high"),  # signature ends the block
    ("#status waiting\n> #priority high\n", "> #priority high"),  # a quote ends the block
    ("#status waiting\nOn Tue, 1 Dec 2026 at 10:00, Alice <a@x.com> wrote:\n> hi",
     "On Tue, 1 Dec 2026 at 10:00, Alice <a@x.com> wrote:\n> hi"),
    ("Plain reply, no commands.", "Plain reply, no commands."),
    ("#status waiting", ""),
    ("", ""),
])
def test_body_kept(text: str, body: str) -> None:
    assert parse(text).body == body


def test_later_command_text_is_not_a_command() -> None:
    assert cmds("Hi,\n#status closed\n#assign eve@example.com") == []
    assert parse("Hi,\n#status closed").errors == ()


def test_crlf_nbsp_and_trailing_spaces() -> None:
    text = ("\r\n#status\u00a0waiting \r\n#priority high\u00a0\u00a0\r\n\u200b#assign bob@example.com\r\n"
            "\r\nHi\r\nthere\r\n")
    parsed = parse(text)
    assert cmds(text) == [("status", "waiting"), ("priority", "high"), ("assign", "bob@example.com")]
    assert parsed.errors == ()
    assert parsed.body == "Hi\nthere"


@pytest.mark.parametrize(("text", "expected", "problems"), [
    ("#status waiting\n#status waiting", [("status", "waiting")], []),  # identical repeat: dropped
    ("#status waiting\n#Status WAITING", [("status", "waiting")], []),
    ("#note\n#note", [("note", "")], []),
    ("#status waiting\n#status resolved", [("status", "waiting")], ["#status given twice; kept '#status waiting'"]),
    ("#priority high\n#priority low\n#priority critical", [("priority", "high")],
     ["#priority given twice; kept '#priority high'"] * 2),
    ("#assign a@example.com\n#assign b@example.com", [("assign", "a@example.com")],
     ["#assign given twice; kept '#assign a@example.com'"]),
])
def test_duplicates_first_stays_conflict_is_error(text: str, expected: list[tuple[str, str]],
                                                  problems: list[str]) -> None:
    parsed = parse(text)
    assert cmds(text) == expected
    assert [e.problem for e in parsed.errors] == problems


def test_help_text_lists_every_command() -> None:
    from casebot.commands import help_text

    text = help_text()
    for usage in USAGE.values():
        assert usage in text
