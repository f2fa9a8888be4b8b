"""Templates (casebot/templates.py): the shipped acknowledgement, overrides, strictness and the sandbox."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from casebot.templates import Rendered, TemplateError, Templates

ACK = "acknowledgement.txt.j2"


def ack_variables(**overrides: Any) -> dict[str, Any]:
    """The variables the ingest job passes to the acknowledgement (see casebot/jobs/ingest.py)."""
    values: dict[str, Any] = {
        "reference": "CASE-000042",
        "subject": "[CASE-000042] Printer on fire",
        "original_subject": "Printer on fire",
        "requester_name": "Alice Example",
        "requester": "alice@client.example",
        "priority": "critical",
        "team": "Example Support",
        "first_response_due": dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC),
        "resolution_due": dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC),
        "first_response_target": "1 hour",
        "resolution_target": "4 hours",
        "business_hours": "09:00-17:30 Europe/London",
        "business_days": "Monday to Friday",
        "now": dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC),
    }
    values.update(overrides)
    return values


def flat(text: str) -> str:
    """Runs of white space as one space, so layout tweaks of the shipped template do not matter."""
    return " ".join(text.split())


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped acknowledgement ------------------------------------------------------------------------------------


def test_shipped_acknowledgement() -> None:
    out = Templates().render(ACK, ack_variables())
    assert isinstance(out, Rendered)
    assert out.subject == "[CASE-000042] Printer on fire"
    assert not out.text.lower().startswith("subject:")
    assert out.text.startswith("Dear Alice Example,")
    text = flat(out.text)
    assert text.count("CASE-000042") >= 3
    assert "Reference: CASE-000042" in text
    assert "Priority: Critical" in text
    assert "First response by: Mon 02 Mar 2026 11:00 GMT (1 hour)" in text
    assert "Resolution target: Mon 02 Mar 2026 14:00 GMT (4 hours)" in text
    assert "09:00-17:30 Europe/London, Monday to Friday" in text
    assert "Thank you for contacting Example Support." in text


@pytest.mark.parametrize(
    ("timezone", "due", "shown"),
    [
        ("Europe/London", dt.datetime(2026, 3, 30, 8, 30, tzinfo=dt.UTC), "Mon 30 Mar 2026 09:30 BST"),
        ("Europe/London", dt.datetime(2026, 10, 26, 9, 30, tzinfo=dt.UTC), "Mon 26 Oct 2026 09:30 GMT"),
        ("America/New_York", dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC), "Mon 02 Mar 2026 10:00 EST"),
    ],
)
def test_deadlines_shown_in_local_time(timezone: str, due: dt.datetime, shown: str) -> None:
    out = Templates(timezone=timezone).render(ACK, ack_variables(first_response_due=due))
    assert f"First response by: {shown} (1 hour)" in flat(out.text)


def test_shipped_acknowledgement_without_deadlines_or_name() -> None:
    out = Templates().render(
        ACK, ack_variables(first_response_due=None, resolution_due=None, requester_name="", original_subject="")
    )
    assert "First response by" not in out.text
    assert "Resolution target" not in out.text
    assert out.text.startswith("Dear customer,")
    assert "Subject: (no subject)" in flat(out.text)


@pytest.mark.parametrize("missing", ["reference", "team", "priority", "business_hours", "subject"])
def test_strict_undefined_names_the_variable(missing: str) -> None:
    variables = ack_variables()
    del variables[missing]
    with pytest.raises(TemplateError, match=rf"'{missing}' is undefined"):
        Templates().render(ACK, variables)


# --- overrides ------------------------------------------------------------------------------------------------------


def test_override_dir_wins(tmp_path: Path) -> None:
    write(tmp_path, ACK, "Subject: Custom {{ reference }}\nHi {{ requester }}\n")
    out = Templates(tmp_path).render(ACK, ack_variables())
    assert out == Rendered(subject="Custom CASE-000042", text="Hi alice@client.example\n")


def test_override_dir_without_the_file_falls_back_to_shipped(tmp_path: Path) -> None:
    write(tmp_path, "other.txt.j2", "Subject: other\n")
    out = Templates(tmp_path).render(ACK, ack_variables())
    assert out.subject == "[CASE-000042] Printer on fire"
    assert Templates(tmp_path).render("other.txt.j2", {}).subject == "other"


@pytest.mark.parametrize(
    ("source", "subject", "text"),
    [
        ("Subject: Hello\nBody\n", "Hello", "Body\n"),
        ("subject:   lots    of   space  \n\n\nBody", "lots of space", "Body"),
        ("SUBJECT: a: b\n", "a: b", ""),
        ("Subject: {{ reference }} {{ team }}\n", "CASE-000042 Example Support", ""),
    ],
)
def test_subject_line_split(tmp_path: Path, source: str, subject: str, text: str) -> None:
    write(tmp_path, "t.txt.j2", source)
    assert Templates(tmp_path).render("t.txt.j2", ack_variables()) == Rendered(subject, text)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("Hello {{ reference }}\nSubject: late\n", "first line must be 'Subject: ...'"),
        ("\nSubject: after a blank line\n", "first line must be 'Subject: ...'"),
        ("", "first line must be 'Subject: ...'"),
        ("Subject: {{ nope }}\n", "'nope' is undefined"),
        ("Subject: x\n{% if %}\n", "line 2"),
        ("Subject: x\n{{ reference.nope }}\n", "nope"),
        ("Subject: {{ ''.__class__.__mro__ }}\n", "unsafe"),
        ("Subject: x\n{{ reference.__class__.__mro__[1].__subclasses__() }}\n", "unsafe"),
        ("Subject: x\n{{ cycler.__init__.__globals__ }}\n", "unsafe"),
    ],
)
def test_bad_templates_raise_template_error(tmp_path: Path, source: str, fragment: str) -> None:
    write(tmp_path, "bad.txt.j2", source)
    with pytest.raises(TemplateError) as info:
        Templates(tmp_path).render("bad.txt.j2", ack_variables())
    assert fragment in str(info.value)


def test_sandbox_blocks_format_string_escape(tmp_path: Path) -> None:
    # str.format is the classic sandbox escape; the sandbox either refuses it or renders nothing dangerous.
    write(tmp_path, "fmt.txt.j2", "Subject: x\n{{ '{0.__class__.__mro__}'.format(reference) }}\n")
    try:
        out = Templates(tmp_path).render("fmt.txt.j2", ack_variables())
    except TemplateError:
        return
    assert "object" not in out.text and "class" not in out.text


def test_missing_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"'nope\.txt\.j2' not found"):
        Templates(tmp_path).render("nope.txt.j2", {})


def test_check_compiles_templates(tmp_path: Path) -> None:
    Templates().check([ACK])
    write(tmp_path, ACK, "Subject: x\n{% for %}\n")
    with pytest.raises(TemplateError, match="line 2"):
        Templates(tmp_path).check([ACK])
    with pytest.raises(TemplateError, match="not found"):
        Templates(tmp_path).check(["missing.txt.j2"])


@pytest.mark.parametrize(
    "source",
    [
        'Subject: x\n{{ "%s and %s" % reference }}\n',
        "Subject: x\n{{ 1 // 0 }}\n",
        "Subject: x\n{{ reference | local }}\n",
    ],
)
def test_runtime_errors_become_template_error(tmp_path: Path, source: str) -> None:
    write(tmp_path, "runtime.txt.j2", source)
    with pytest.raises(TemplateError):
        Templates(tmp_path).render("runtime.txt.j2", ack_variables())
