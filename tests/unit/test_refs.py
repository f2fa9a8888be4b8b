"""Case references (casebot/refs.py): format, find in a subject, reply prefixes, subject tags."""

from __future__ import annotations

import pytest

from casebot.refs import (
    DEFAULT_FORMAT,
    ReferenceFormat,
    ReferenceFormatError,
    strip_reply_prefixes,
    tag_subject,
)

DEFAULT = ReferenceFormat()
PR = ReferenceFormat("PR{number:05d}")
HASH = ReferenceFormat("#{number}")


# --- format -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "number", "printed"),
    [
        (DEFAULT, 1, "CASE-000001"),
        (DEFAULT, 123, "CASE-000123"),
        (DEFAULT, 999999, "CASE-999999"),
        (DEFAULT, 1234567, "CASE-1234567"),
        (PR, 42, "PR00042"),
        (PR, 123456, "PR123456"),
        (HASH, 7, "#7"),
        (HASH, 1000, "#1000"),
        (ReferenceFormat("HD/{number:04d}"), 5, "HD/0005"),
    ],
)
def test_format(fmt: ReferenceFormat, number: int, printed: str) -> None:
    assert fmt.format(number) == printed


def test_default_format_constant() -> None:
    assert DEFAULT.template == DEFAULT_FORMAT == "CASE-{number:06d}"


@pytest.mark.parametrize(
    "template",
    [
        "CASE-",  # no field
        "CASE-{}",  # positional field
        "CASE-{id}",  # wrong name
        "CASE-{number}-{number}",  # two fields
        "{number}{number}X",
        "CASE-{number}-{year}",
        "{number}",  # no literal text at all
        "CASE {number}",  # space is not allowed in the literal
        "CASE-{number}\r\nBcc: x",
        "CASE-{number:q}",  # bad format spec
    ],
)
def test_rejects_bad_format(template: str) -> None:
    with pytest.raises(ValueError):
        ReferenceFormat(template)


@pytest.mark.parametrize("template", ["CASE-", "CASE-{number}-{number}", "CASE-{ref}"])
def test_rejects_with_reference_format_error(template: str) -> None:
    with pytest.raises(ReferenceFormatError, match="number"):
        ReferenceFormat(template)


# --- find -------------------------------------------------------------------------------------------------------

FIND_CASES = [
    # (id, format, subject, expected)
    ("plain", DEFAULT, "Help with CASE-000123 please", ["CASE-000123"]),
    ("bracketed", DEFAULT, "Re: [CASE-000123] Printer on fire", ["CASE-000123"]),
    ("lower-case", DEFAULT, "re: [case-000123] printer", ["CASE-000123"]),
    ("mixed-case", DEFAULT, "Case-000123", ["CASE-000123"]),
    ("short-number-normalised", DEFAULT, "about CASE-123", ["CASE-000123"]),
    ("long-number", DEFAULT, "CASE-1234567", ["CASE-1234567"]),
    ("letter-before", DEFAULT, "XCASE-000001", []),
    ("digit-before", DEFAULT, "1CASE-000001", []),
    ("letter-after", DEFAULT, "CASE-0000012x", []),
    ("punctuation-around", DEFAULT, "(CASE-000001).", ["CASE-000001"]),
    ("end-of-string", DEFAULT, "see CASE-000009", ["CASE-000009"]),
    ("no-digits", DEFAULT, "CASE- nothing", []),
    ("underscore-is-not-dash", DEFAULT, "CASE_000001", []),
    ("bracketed-first", DEFAULT, "CASE-000001 and [CASE-000002]", ["CASE-000002", "CASE-000001"]),
    ("bracketed-first-2", DEFAULT, "a CASE-3 b [CASE-4] c [CASE-5]", ["CASE-000004", "CASE-000005", "CASE-000003"]),
    ("half-bracket", DEFAULT, "[CASE-000001 CASE-000002]", ["CASE-000001", "CASE-000002"]),
    ("dedupe", DEFAULT, "CASE-000001 CASE-1 [case-0001]", ["CASE-000001"]),
    ("none", DEFAULT, "Hello world", []),
    ("empty", DEFAULT, "", []),
    ("pr", PR, "Re: PR00042 stuck", ["PR00042"]),
    ("pr-normalised", PR, "pr42", ["PR00042"]),
    ("pr-embedded", PR, "APR00042", []),
    ("pr-default-not-found", PR, "CASE-000001", []),
    ("hash", HASH, "Ticket #7 and #12", ["#7", "#12"]),
    ("hash-bracketed", HASH, "#12 and [#7]", ["#7", "#12"]),
    ("hash-after-word", HASH, "issue#7", []),
    ("hash-trailing-letters", HASH, "#7a", []),
]


@pytest.mark.parametrize(
    ("fmt", "subject", "expected"), [c[1:] for c in FIND_CASES], ids=[c[0] for c in FIND_CASES]
)
def test_find(fmt: ReferenceFormat, subject: str, expected: list[str]) -> None:
    assert fmt.find(subject) == expected


@pytest.mark.parametrize(
    ("fmt", "reference", "number"),
    [
        (DEFAULT, "CASE-000042", 42),
        (DEFAULT, "case-000042", 42),
        (DEFAULT, "CASE-42", 42),
        (DEFAULT, "CASE-42x", None),
        (DEFAULT, "XCASE-000042", None),
        (DEFAULT, "[CASE-000042]", None),
        (DEFAULT, " CASE-000042", None),
        (DEFAULT, "PR00042", None),
        (PR, "PR00042", 42),
        (PR, "CASE-000042", None),
        (HASH, "#7", 7),
        (HASH, "7", None),
    ],
)
def test_number_of(fmt: ReferenceFormat, reference: str, number: int | None) -> None:
    assert fmt.number_of(reference) == number


@pytest.mark.parametrize("n", [0, 1, 99, 123456, 9999999])
@pytest.mark.parametrize("fmt", [DEFAULT, PR, HASH], ids=["default", "pr", "hash"])
def test_round_trip(fmt: ReferenceFormat, n: int) -> None:
    printed = fmt.format(n)
    assert fmt.number_of(printed) == n
    assert fmt.find(f"Re: [{printed}] subject") == [printed]


# --- reply prefixes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Hello", "Hello"),
        ("RE: Hello", "Hello"),
        ("re:Hello", "Hello"),
        ("AW: Hello", "Hello"),
        ("SV: Hello", "Hello"),
        ("Sv: Hello", "Hello"),
        ("VS: Hello", "Hello"),
        ("RE[2]: Hello", "Hello"),
        ("Re(3): Hello", "Hello"),
        ("Antw: Hello", "Hello"),
        ("Fwd: Hello", "Hello"),
        ("FW: Hello", "Hello"),
        ("WG: Hello", "Hello"),
        ("Re\uff1aHello", "Hello"),  # full-width colon
        ("回复\uff1a", "回复\uff1a"),  # a prefix we do not know stays
        ("Re: AW: Sv: Fwd: Hello", "Hello"),
        ("RE[2]: AW: Sv: Hello", "Hello"),
        ("  re : Hello  ", "Hello"),
        ("Re: Re: ", ""),
        ("Hello", "Hello"),
        ("Hello Re: world", "Hello Re: world"),
        ("Regarding: invoices", "Regarding: invoices"),
        ("Reset: password", "Reset: password"),
        ("Fwdx: Hello", "Fwdx: Hello"),
        ("[CASE-000001] Re: Hello", "[CASE-000001] Re: Hello"),
    ],
)
def test_strip_reply_prefixes(subject: str, expected: str) -> None:
    assert strip_reply_prefixes(subject) == expected


# --- tag_subject ------------------------------------------------------------------------------------------------

REF = "CASE-000123"
TAG = f"[{REF}]"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer on fire", "[CASE-000123] Printer on fire"),
        ("Re: Printer on fire", "[CASE-000123] Printer on fire"),
        ("[CASE-000123] Printer on fire", "[CASE-000123] Printer on fire"),
        ("Re: [CASE-000123] Printer on fire", "[CASE-000123] Printer on fire"),
        ("RE: AW: [CASE-000123] Printer on fire", "[CASE-000123] Printer on fire"),
        ("Printer on fire [CASE-000123]", "[CASE-000123] Printer on fire"),
        ("[CASE-000123] [CASE-000123] Printer", "[CASE-000123] Printer"),
        ("", "[CASE-000123]"),
        ("Re: ", "[CASE-000123]"),
        ("[CASE-000123]", "[CASE-000123]"),
        ("[CASE-000999] Other case", "[CASE-000123] [CASE-000999] Other case"),
    ],
)
def test_tag_subject(subject: str, expected: str) -> None:
    assert tag_subject(REF, subject) == expected


@pytest.mark.parametrize(
    "subject",
    ["Printer on fire", "Re: Printer", "Fwd: Re: [CASE-000123] Printer", "", "AW: [CASE-000123]"],
)
def test_tag_subject_round_trips_never_stack(subject: str) -> None:
    once = tag_subject(REF, subject)
    # A client replies to our mail, we tag the reply, the client replies again...
    again = tag_subject(REF, "Re: " + once)
    third = tag_subject(REF, "AW: RE[2]: " + again)
    assert once == again == third
    assert third.count(TAG) == 1
    assert third.startswith(TAG)


def test_tag_subject_does_not_stack_a_lower_case_tag() -> None:
    result = tag_subject(REF, "Re: [case-000123] Printer on fire")
    assert result.lower().count(TAG.lower()) == 1
