"""The automated-mail patterns (config/automated.toml through casebot.automated): subjects in many languages,
mail-system senders, list robots; human mail that merely looks alike is left alone. The real-world check is
tests/wild/report.py over the fetched corpus."""

from __future__ import annotations

import pytest

from casebot.automated import PatternsError, parse_patterns
from casebot.config import from_mapping
from casebot.mail import parse
from casebot.pipeline.loop_guard import automation_reason
from casebot.service import load_patterns

PATTERNS = load_patterns(from_mapping({"mailbox": {"kind": "pipe"}}))
OWN = frozenset({"support@example.com"})


def reason(sender: str, subject: str) -> str | None:
    raw = f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
    return automation_reason(parse(raw), OWN, PATTERNS)


@pytest.mark.parametrize(
    ("subject", "lang", "kind"),
    [
        ("Automatic reply: Printer on fire", "en", "out-of-office"),
        ("Out of Office: Re: invoice", "en", "out-of-office"),
        ("Abwesenheitsnotiz: Rechnung", "de", "out-of-office"),
        ("Automatische Antwort: Drucker", "de", "out-of-office"),
        ("Réponse automatique : facture", "fr", "out-of-office"),
        ("Respuesta automática: factura", "es", "out-of-office"),
        ("Risposta automatica: fattura", "it", "out-of-office"),
        ("Automatisch antwoord: factuur", "nl", "out-of-office"),
        ("Resposta automática: fatura", "pt", "out-of-office"),
        ("Autosvar: faktura", "sv", "out-of-office"),
        ("Automaattinen vastaus: lasku", "fi", "out-of-office"),
        ("Automatyczna odpowiedź: faktura", "pl", "out-of-office"),
        ("Automatická odpověď: faktura", "cs", "out-of-office"),
        ("Automātiskā atbilde: rēķins", "lv", "out-of-office"),
        ("自動応答: 請求書", "ja", "out-of-office"),
        ("Undeliverable: Printer on fire", "en", "bounce"),
        ("Returned Mail - Error During Delivery", "en", "bounce"),
        ("Mail could not be delivered", "en", "bounce"),
        ("Unzustellbar: Rechnung", "de", "bounce"),
        ("Non remis : facture", "fr", "bounce"),
        ("Read: Printer on fire", "en", "read receipt"),
        ("[Ticket #4711] received", "en", "ticket auto-response"),
        ("Ppp digest, Vol 1 #2 - 5 msgs", "en", "list digest"),
    ],
)
def test_subjects(subject: str, lang: str, kind: str) -> None:
    found = reason("Someone <someone@client.example>", subject)
    assert found is not None and found.startswith(f"subject matches {kind} pattern ({lang}):"), found


@pytest.mark.parametrize(
    ("sender", "fragment"),
    [
        ("ndr@some.domain", "ndr@"), ("imss@kviv.be", "imss@"),
        ("E500_SMTP_Mail_Service@example.org", "mail_service"),
        ("Symantec_AntiVirus_for_SMTP_Gateways@csri.org", "antivirus"),
        ("ppp-request@zzz.org", "-request"), ("owner-list@lists.example", "owner-"),
        ("Mail Delivery Subsystem <xxx@example.com>", "delivery system"),
    ],
)
def test_senders(sender: str, fragment: str) -> None:
    found = reason(sender, "Hello")
    assert found is not None and fragment in found, found


@pytest.mark.parametrize(
    "subject",
    ["Re: Automatic reply: Printer on fire", "Absence request for Friday", "Read the attached report",
     "Why was my mail undeliverable?", "Quick question about the digest of my order", "Ticket to the event"],
)
def test_human_subjects_are_left_alone(subject: str) -> None:
    assert reason("Alice <alice@client.example>", subject) is None


def test_a_bad_pattern_names_its_entry() -> None:
    with pytest.raises(PatternsError, match=r"subjects\[0\].patterns\[1\] \(de bounce\): not a valid pattern"):
        parse_patterns({"subjects": [{"lang": "de", "kind": "bounce", "patterns": ["ok", "(unclosed"]}]}, "f.toml")
    with pytest.raises(PatternsError, match="senders: unknown key"):
        parse_patterns({"senders": {"locals": []}}, "f.toml")
