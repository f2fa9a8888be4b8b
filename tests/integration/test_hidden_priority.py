"""Hidden text cannot make a case critical (issue 8 item 9), end to end: Dovecot INBOX -> poll -> the case.

Before, `<style>.x{display:none}</style>` around "URGENT outage" still made the case critical; the same page
with the text visible must be critical, so the test can fail both ways.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cbtest import SUPPORT, Harness, quiet_logs


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield


def _html_mail(sender: str, subject: str, style: str, body: str) -> bytes:
    page = (f"<html><head>{style}</head><body><p>Hello, a question about invoices.</p>{body}"
            "<p>Kind regards</p></body></html>")
    return (f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@client.example>\r\n"
            "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/html; charset=utf-8\r\n\r\n{page}\r\n").encode()


HIDING = [
    ("class", "<style>.x{display:none}</style>", '<div class="x">URGENT outage, production down</div>'),
    ("id", "<style>#p{visibility:hidden}</style>", '<div id="p">URGENT outage, production down</div>'),
    ("white", "<style>.w{color:#ffffff}</style>", '<span class="w">URGENT outage, production down</span>'),
    ("mso", "", '<div style="mso-hide:all">URGENT outage, production down</div>'),
    ("box", "<style>.pre{max-height:0;overflow:hidden}</style>", '<div class="pre">URGENT outage, production down'
     "</div>"),
]


def test_hidden_urgent_text_does_not_make_a_case_critical(h: Harness) -> None:
    h.append(*(_html_mail(f"c{i}@client.example", f"hidden-{name}", style, body)
               for i, (name, style, body) in enumerate(HIDING)))
    h.append(_html_mail("v@client.example", "visible", "<style>.x{color:#c00}</style>",
                        '<div class="x">URGENT outage, production down</div>'))
    h.poll()
    by_subject = {c.subject: c for c in h.cases()}
    assert len(by_subject) == len(HIDING) + 1
    assert by_subject["visible"].priority == "critical"  # the control: the same words, visible
    for name, _style, _body in HIDING:
        case = by_subject[f"hidden-{name}"]
        assert case.priority != "critical", name
        detail = h.detail(case.reference)
        [stored] = detail["messages"]
        assert "invoices" in stored["text"] and "URGENT" not in stored["text"], name
