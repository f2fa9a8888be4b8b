"""Quoted history and signatures stripped from real replies (casebot/mail/reply.py).

Samples are short excerpts of MIT-licensed test fixtures, cited at each one:
  * github/email_reply_parser @ 59e5859cfe826d3cb6069bbbfd8577230c93b3cf (and 8fec68e9 for quote_reply_*; their
    quoted-printable `=C3=A9` is decoded here, since the module gets plain text);
  * alfonsrv/mail-parser-reply @ fc44bc880932f81f70a7deaf91c4525b3a6feddb (the library's own fixtures).
Samples marked "own" are written here in the shape of what the client sends.
"""

from __future__ import annotations

import pytest

from casebot.mail import reply
from casebot.mail.reply import DEFAULT_LANGUAGES, SUPPORTED_LANGUAGES, Stripped, latest_reply

CASES: list[tuple[str, str, str, str]] = [  # (id, text, expected text, expected in how)
    # github/email_reply_parser test/emails/email_2_2.txt (Outlook, From/Sent/To/Subject under underscores)
    ("outlook-underscores",
     "Outlook with a reply directly above line\n________________________________________\n"
     "From: CRM Comments [crm-comment@example.com]\nSent: Friday, 23 March 2012 5:08 p.m.\nTo: John S. Greene\n"
     "Subject: [contact:106] John Greene\n\nA new comment has been added to the Contact named 'John Greene':\n",
     "Outlook with a reply directly above line", "quoted history removed (mail-parser-reply, en)"),
    # github/email_reply_parser test/emails/email_2_1.txt (Outlook, *From:* bold headers)
    ("outlook-bold",
     "Outlook with a reply\n\n\n ------------------------------\n\n*From:* Google Apps Sync Team "
     "[mailto:mail-noreply@google.com]\n*Sent:* Thursday, February 09, 2012 1:36 PM\n*To:* jow@xxxx.com\n"
     "*Subject:* Google Apps Sync was updated!\n\n\n\nDear Google Apps Sync user,\n",
     "Outlook with a reply", "quoted history removed"),
    # own: classic Outlook "-----Original Message-----"
    ("outlook-original-message",
     "Yes, please go ahead.\r\n\r\n-----Original Message-----\r\nFrom: Support <support@example.com>\r\n"
     "Sent: 01 December 2026 10:00\r\nTo: Alice <alice@example.org>\r\nSubject: [#123] Printer\r\n\r\nShall we?\r\n",
     "Yes, please go ahead.", "quoted history removed"),
    # own, Gmail shape (the brief's example header)
    ("gmail",
     "Works now, thank you.\n\nOn Tue, 1 Dec 2026 at 10:00, Alice <a@x.com> wrote:\n> Please restart it.\n>\n",
     "Works now, thank you.", "quoted history removed (mail-parser-reply, en)"),
    # alfonsrv/mail-parser-reply test/emails/email_gmail.txt (header wrapped over two lines)
    ("gmail-wrapped",
     "This is a test for inbox replying to a github message.\n\n\n\nOn Wed, May 18, 2016 at 11:10 PM Steven Scott "
     "<notifications@github.com>\nwrote:\n\n\nThat way people can tell how outdated their version is\n",
     "This is a test for inbox replying to a github message.", "quoted history removed"),
    # github/email_reply_parser test/emails/email_1_3.txt (Thunderbird "On <date>, <name> wrote:", "-Name" sign-off)
    ("thunderbird",
     "Oh thanks.\n\nHaving the function would be great.\n\n-Abhishek Kona\n\nOn 01/03/11 7:07 PM, Russell Brown "
     "wrote:\n> Hi,\n> On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:\n>> Hi folks\n",
     "Oh thanks.\n\nHaving the function would be great.\n\n-Abhishek Kona",  # "-Name" kept: hyphen lists are
     "quoted history removed (mail-parser-reply, en)"),
    # own, Apple Mail shape ("On 1 Dec 2026, at 10:00, Name <addr> wrote:", "Sent from my iPhone")
    ("apple-mail",
     "Got it, thanks\n\nSent from my iPhone\n\nOn 1 Dec 2026, at 10:00, Support <support@example.com> wrote:\n\n"
     "> Could you send a photo?\n",
     "Got it, thanks", "quoted history removed (mail-parser-reply, en); signature removed"),
    # github/email_reply_parser test/emails/quote_reply_german.txt @ 8fec68e9
    ("german",
     "This is a reply with German quote\n\nAm Mo., 4. Juli 2022 um 08:13 Uhr schrieb Rick Sanchez <rick@example.com>:"
     "\n\n> Hello this is a test\n>",
     "This is a reply with German quote", "quoted history removed (mail-parser-reply, de)"),
    # github/email_reply_parser test/emails/quote_reply_french.txt @ 8fec68e9 (QP decoded)
    ("french",
     "This is a reply with French quote\n\nLe mer. 29 juin 2022 à 12:32, Rick (<rick@example.com>) a écrit :\n\n"
     "> Hello this is a test\n>",
     "This is a reply with French quote", "quoted history removed (mail-parser-reply, fr)"),
    # github/email_reply_parser test/emails/quote_reply_spanish.txt @ 8fec68e9 (QP decoded)
    ("spanish",
     "This is a reply with Spanish quote\n\nEl mié, 29 jun 2022 a las 11:08, Rick (<rick@example.com>) escribió:\n\n"
     "> Hello this is a test\n>",
     "This is a reply with Spanish quote", "quoted history removed (casebot, es)"),
    # own, Dutch Outlook/Gmail shape
    ("dutch",
     "Het werkt weer.\n\nMet vriendelijke groet,\nJan\n\nOp di 1 dec. 2026 om 10:00 schreef Support "
     "<support@example.com>:\n> Kunt u het opnieuw proberen?\n",
     "Het werkt weer.", "quoted history removed (casebot, nl); signature removed"),
    # alfonsrv/mail-parser-reply test/emails/email_swedish_1.txt (Apple Mail, Swedish)
    ("swedish",
     "Hej Person A,\n\nUrsäkta mitt sena svar!\n\nMvh,\nPerson B \n\n> 4 dec. 2024 kl. 18:36 skrev Person A "
     "<person.a@email.com>:\n> \n> Hej Person B,\n",
     "Hej Person A,\n\nUrsäkta mitt sena svar!", "quoted history removed (mail-parser-reply, sv); signature removed"),
    # alfonsrv/mail-parser-reply test/emails/email_danish_1.txt
    ("danish",
     "Hej Peter,\n\nTak for din mail. Det lyder godt.\n\nMed venlig hilsen\nAnders Andersen\n\nDen 24. nov. 2025 "
     "kl. 10.00 skrev Peter Petersen <peter@example.com>:\n\n> Hej Anders,\n",
     "Hej Peter,\n\nTak for din mail. Det lyder godt.", "quoted history removed; signature removed"),
    # github/email_reply_parser test/emails/correct_sig.txt ("-- " separator)
    ("signature-separator", "this is an email with a correct -- signature.\n\n-- \nrick\n",
     "this is an email with a correct -- signature.", "signature removed"),
    # alfonsrv/mail-parser-reply test/emails/outlook.txt ("Get Outlook for iOS")
    ("get-outlook",
     "Dear Team,\n\nHello\n\nMy number is: +00 0000 000 000\nGet Outlook for iOS<https://outlook.com/mobile>\n",
     "Dear Team,\n\nHello\n\nMy number is: +00 0000 000 000", "signature removed"),
]


@pytest.mark.parametrize(("text", "expected", "how"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_real_replies(text: str, expected: str, how: str) -> None:
    result = latest_reply(text)
    assert result.text == expected
    assert result.removed
    assert how.split(";")[0].split("(")[0].strip() in result.how
    for part in how.split("; "):
        if "(" in part:
            assert part in result.how


@pytest.mark.parametrize("text", [
    "Hi,\n\nTake a look at the log.\n\nBob",  # Danish sign-off "Tak" is not "Take"
    "Hi,\n\nThe disk is full:\n/var/log is 100%\n",  # Swedish "/Anna" sign-off is not a path
    "Hi,\nThanks, that fixed it.\n\nBut the printer is still broken.\n",  # a sentence, not a sign-off
    "Steps:\n- open the tray\n- close it\n",  # a hyphen list is not a signature
    "Hi,\nWarning: the mail server is down again.\n",  # the library's disclaimer removal is not used
    "Hi,\nData: the export is missing rows\nplease check\n",  # Polish "Data:" header: not a default language
    "Just a plain reply.",
])
def test_text_a_person_wrote_is_kept(text: str) -> None:
    result = latest_reply(text)
    assert result == Stripped(text, False, result.how)
    assert "not stripped" in result.how or "nothing to strip" in result.how


def test_indentation_kept_and_crlf_normalised() -> None:
    text = ("Run this:\r\n    sudo systemctl restart cups  \r\n\r\n"
            "On Tue, 1 Dec 2026 at 10:00, A <a@x.com> wrote:\r\n> x\r\n")
    assert latest_reply(text).text == "Run this:\n    sudo systemctl restart cups"


def test_nothing_above_the_quote_returns_the_text_unchanged() -> None:
    text = "On Tue, 1 Dec 2026 at 10:00, Alice <a@x.com> wrote:\n> old\n"
    assert latest_reply(text) == Stripped(text, False, "not stripped: nothing above the quoted history")


def test_empty_library_result_falls_back_to_text_above_first_quote(monkeypatch: pytest.MonkeyPatch) -> None:
    class Empty:
        def __init__(self, **_: object) -> None:
            self.languages = ["en"]
            self.replies = [type("R", (), {"headers": "x", "content": "", "signatures": ""})()]

        def read(self) -> Empty:
            return self

    monkeypatch.setattr(reply, "EmailMessage", Empty)
    result = latest_reply("My answer\n> quoted\n")
    assert result == Stripped("My answer", True, "quoted history removed (text above the first '>' line)")


def test_library_error_returns_text_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**_: object) -> None:
        raise RuntimeError("regex blew up")

    monkeypatch.setattr(reply, "EmailMessage", boom)
    assert latest_reply("hello\n> x") == Stripped("hello\n> x", False, "not stripped: RuntimeError: regex blew up")


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_input(text: str) -> None:
    assert latest_reply(text) == Stripped(text, False, "not stripped: empty text")


def test_languages() -> None:
    assert set(DEFAULT_LANGUAGES) <= set(SUPPORTED_LANGUAGES)
    assert {"en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs", "ja"} <= set(SUPPORTED_LANGUAGES)
    assert "pl" not in DEFAULT_LANGUAGES
    polish = "Dzięki\n\nDnia 1.12.2026 o 10:00 Jan <j@x.pl> napisał(a):\n> stare\n"
    assert latest_reply(polish, languages=["pl"]).text == "Dzięki"
    assert latest_reply("Ok\n\nAm 1.12.2026 schrieb A <a@x.de>:\n> alt", languages=["xx"]).text.startswith("Ok")
