"""Keyword priority (casebot/pipeline/priority.py) with the shipped rules file config/priority.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from casebot.case import Priority
from casebot.rules import PriorityRule, RulesError, match, parse_rules
from casebot.service import load_rules

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "priority.toml"


@pytest.fixture(scope="module")
def rules() -> tuple[PriorityRule, ...]:
    return load_rules(SHIPPED)


def test_shipped_rules_path_is_the_one_the_service_uses() -> None:
    from casebot.service import default_rules_path

    assert default_rules_path().resolve() == SHIPPED


def test_shipped_rules_order(rules: tuple[PriorityRule, ...]) -> None:
    assert [(r.name, r.priority) for r in rules] == [
        ("production-down", "critical"),
        ("data-loss", "critical"),
        ("security-breach", "critical"),
        ("major-feature-unavailable", "high"),
        ("workaround-available", "medium"),
        ("question", "low"),
    ]


MATCH_CASES = [
    # (subject, body, priority, rule name, where, keyword) - priority None means no rule matched.
    ("Production down", "", "critical", "production-down", "subject", "Production down"),
    ("URGENT: production system DOWN", "", "critical", "production-down", "subject", "production system DOWN"),
    ("URGENT: printing", "", "high", "major-feature-unavailable", "subject", "URGENT"),
    ("P1 - website down", "", "critical", "production-down", "subject", "P1"),  # leftmost keyword reported
    ("P1: checkout", "", "critical", "production-down", "subject", "P1"),
    ("We have data loss after the upgrade", "", "critical", "data-loss", "subject", "data loss"),
    ("Possible security breach", "", "critical", "security-breach", "subject", "security breach"),
    ("Account hacked?", "", "critical", "security-breach", "subject", "hacked"),
    ("Reports module unavailable", "", "high", "major-feature-unavailable", "subject", "unavailable"),
    ("Login not working", "", "high", "major-feature-unavailable", "subject", "not working"),
    ("Error 500 on checkout", "", "high", "major-feature-unavailable", "subject", "Error 500"),
    ("Export is slow", "", "medium", "workaround-available", "subject", "slow"),
    ("We use a workaround, export slow", "", "medium", "workaround-available", "subject", "workaround"),
    ("How do I add a user?", "", "low", "question", "subject", "How do I"),
    ("Quick question", "", "low", "question", "subject", "question"),
    # Within the subject the most severe rule wins (the shipped file lists them in that order).
    ("Urgent question: site down", "", "critical", "production-down", "subject", "site down"),
    ("Question about an issue", "", "medium", "workaround-available", "subject", "issue"),
    # The body counts when the subject has no match ...
    ("Hello", "Our site down since 9am", "critical", "production-down", "body", "site down"),
    ("Hello", "production\n   down", "critical", "production-down", "body", "production down"),
    ("Hello", "the report is broken", "high", "major-feature-unavailable", "body", "broken"),
    # ... and when it is more than one and a half levels more severe than the subject's match.
    ("Question about invoices", "also production down and data loss", "critical", "production-down", "body",
     "production down"),
    ("Slow export", "the whole site down", "critical", "production-down", "body", "site down"),
    ("Question about invoices", "the report is broken", "high", "major-feature-unavailable", "body", "broken"),
    # Otherwise the subject is weighted above the body.
    ("URGENT: printing", "we may have data loss", "high", "major-feature-unavailable", "subject", "URGENT"),
    ("Slow export", "the report is broken", "medium", "workaround-available", "subject", "Slow"),
    # No match at all.
    ("Hello", "Thanks for the lovely lunch.", None, None, None, None),
    ("", "", None, None, None, None),
    # Whole words and phrases only.
    ("Planned outages next week", "", None, None, None, None),
    ("Outage tonight", "", "critical", "production-down", "subject", "Outage"),
    ("Our new mp1 player", "", None, None, None, None),
    ("p10 firmware", "", None, None, None, None),
    ("Hello", "unhacked and uncompromised", None, None, None, None),
    ("production downtime planned", "", None, None, None, None),
    ("The debug log", "", None, None, None, None),
    ("sys-tem down", "", None, None, None, None),
]


@pytest.mark.parametrize(("subject", "body", "priority", "rule", "where", "keyword"), MATCH_CASES)
def test_match(
    rules: tuple[PriorityRule, ...],
    subject: str,
    body: str,
    priority: str | None,
    rule: str | None,
    where: str | None,
    keyword: str | None,
) -> None:
    found = match(rules, subject, body)
    if priority is None:
        assert found is None
        return
    assert found is not None
    assert (found.rule.priority, found.rule.name, found.where, found.keyword) == (priority, rule, where, keyword)


@pytest.mark.parametrize(
    ("keywords", "text", "hit"),
    [
        (("outage",), "an outage", "outage"),
        (("outage",), "outages", None),
        (("outage",), "outage.", "outage"),
        (("p1",), "mp1", None),
        (("p1",), "(P1)", "P1"),
        (("p1",), "p1_x", None),  # underscore is a word character
        (("system down",), "system   down", "system   down"),
        (("system down",), "systemdown", None),
        (("error", "error 500"), "error 500", "error 500"),  # the longest phrase is preferred
        (("a.b",), "axb", None),  # keywords are literal, not regular expressions
        (("c++",), "we use c++ daily", "c++"),
        (("  ", "x"), "x", "x"),
    ],
)
def test_rule_search_is_whole_word(keywords: tuple[str, ...], text: str, hit: str | None) -> None:
    assert PriorityRule("r", Priority("low"), keywords).search(text) == hit


# --- parse_rules / load_rules errors ------------------------------------------------------------------------------


def _rule(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {"name": "outage", "priority": "critical", "keywords": ["outage"]}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"rules": [_rule(priority="urgent")]}, ["rules[0].priority", "(outage)", "'urgent'"]),
        ({"rules": [_rule(), _rule(name="second", priority="CRITICAL")]}, ["rules[1].priority", "(second)"]),
        ({"rules": [_rule(name="nokw", keywords=None)]}, ["rules[0].keywords", "(nokw)"]),
        ({"rules": [_rule(name="emptykw", keywords=[])]}, ["rules[0].keywords", "(emptykw)"]),
        ({"rules": [_rule(name="blankkw", keywords=["ok", ""])]}, ["rules[0].keywords", "(blankkw)"]),
        ({"rules": [_rule(name="numkw", keywords=["ok", 3])]}, ["rules[0].keywords", "(numkw)"]),
        ({"rules": [_rule(name="strkw", keywords="outage")]}, ["rules[0].keywords", "(strkw)"]),
        ({"rules": [_rule(), _rule(weight=3)]}, ["rules[1]", "unknown key", "weight"]),
        ({"rules": [_rule(name=None)]}, ["rules[0].name"]),
        ({"rules": [_rule(name="")]}, ["rules[0].name"]),
        ({"rules": ["not a table"]}, ["rules[0]", "expected a table"]),
        ({"rules": []}, ["at least one [[rules]]"]),
        ({}, ["at least one [[rules]]"]),
        ({"rule": [_rule()]}, ["at least one [[rules]]"]),
    ],
)
def test_parse_rules_errors_name_the_rule(data: dict[str, object], fragments: list[str]) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(data, "my-rules.toml")
    message = str(info.value)
    assert message.startswith("my-rules.toml: ")
    for fragment in fragments:
        assert fragment in message


def test_unknown_key_error_names_the_rule_by_name() -> None:
    with pytest.raises(RulesError, match=r"\(second\)"):
        parse_rules({"rules": [_rule(), _rule(name="second", weight=3)]}, "my-rules.toml")


def test_parse_rules_ok() -> None:
    parsed = parse_rules({"rules": [_rule(), _rule(name="q", priority="low", keywords=["how do i"])]}, "x")
    assert parsed == (
        PriorityRule("outage", Priority("critical"), ("outage",)),
        PriorityRule("q", Priority("low"), ("how do i",)),
    )


def test_load_rules_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RulesError, match="cannot read rules file") as info:
        load_rules(missing)
    assert str(missing) in str(info.value)


def test_load_rules_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(RulesError, match="not valid TOML"):
        load_rules(bad)


def test_load_rules_from_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\nname = "vip"\npriority = "high"\nkeywords = ["ceo"]\n', encoding="utf-8")
    rules = load_rules(path)
    assert rules == (PriorityRule("vip", Priority("high"), ("ceo",)),)
    found = match(rules, "From the CEO", "")
    assert found is not None and found.rule.name == "vip"
