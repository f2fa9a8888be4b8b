"""A message that keeps failing is retried a bounded number of times, then quarantined; it never blocks the
messages after it, and nothing is lost (the raw bytes stay in the database and in the quarantine folder).

The failure is injected as a pipeline step configured like any plugin (`[pipeline] steps`, a fault in casebot's
own processing, not a fake server): Dovecot, the SMTP sink and the database are all real.
"""

from __future__ import annotations

from cbtest import Harness, folder_messages, make_mail

from casebot.pipeline import DEFAULT_CHAIN

FAULTY_CHAIN = [*DEFAULT_CHAIN, "plugin_steps:ExplodeOnPoison"]



def test_failing_message_is_retried_then_quarantined(harness: Harness) -> None:
    harness.append(
        make_mail("alice@client.example", "First question"),
        make_mail("bob@client.example", "poison message"),
        make_mail("carol@client.example", "Third question"),
    )
    results = [harness.poll(mailbox={"max_attempts": 3}, pipeline={"steps": FAULTY_CHAIN}) for _ in range(4)]

    # The messages around the bad one were handled on the first pass: it did not block them.
    assert results[0].ingest.counts == {"opened": 2, "failed": 1}
    assert results[1].ingest.counts == {"failed": 1}
    assert results[2].ingest.counts == {"quarantined": 1}
    assert results[3].ingest.seen == 0  # gone from the INBOX: nothing left to retry
    assert [c.subject for c in harness.cases()] == ["First question", "Third question"]
    assert len(harness.sent()) == 2
    assert harness.quarantine_count() == 1
    moved = folder_messages(harness.account, "Quarantine")
    assert len(moved) == 1 and b"poison message" in next(iter(moved.values()))
    assert not folder_messages(harness.account, "INBOX") or all(
        b"poison" not in raw for raw in folder_messages(harness.account, "INBOX").values()
    )
    with harness.store.transaction() as tx:
        from sqlalchemy import select

        from casebot.store.schema import Quarantined

        row = tx.session.scalars(select(Quarantined)).one()
        assert "RuntimeError: simulated fault while processing" in row.reason
        assert b"poison message" in row.raw  # nothing the client sent is lost


def test_shared_message_id_never_threads_into_a_strangers_case(harness: Harness) -> None:
    """Broken mailers reuse Message-IDs: a reply to such an id is ambiguous and opens its own case."""
    shared = "contactform@shop.example"
    harness.append(
        make_mail("alice@corp.example", "Alice's invoice", message_id=shared),
        make_mail("bob@other.example", "Bob's delivery", message_id=shared),
    )
    harness.poll()
    harness.append(make_mail("bob@other.example", "Re: my delivery", in_reply_to=shared))
    result = harness.poll()
    assert result.ingest.counts == {"opened": 1}
    alice = harness.detail("CASE-000001")
    assert alice["message_count"] == 1 and alice["requester"] == "alice@corp.example"


def test_non_ascii_sender_always_gets_a_case(harness: Harness) -> None:
    """An internationalised address must never cost the client their case, whatever the SMTP server offers."""
    raw = (
        "From: Jürgen <jürgen@example.de>\r\nTo: support@example.com\r\nSubject: Grüße\r\n"
        "Message-ID: <idn1@example.de>\r\n\r\nHallo\r\n"
    ).encode()
    harness.append(raw)
    result = harness.poll()
    assert result.ingest.counts == {"opened": 1}
    [case] = harness.cases()
    assert case.requester == "jürgen@example.de" and case.subject == "Grüße"
    detail = harness.detail(case.reference)
    # The sink does not offer SMTPUTF8: the acknowledgement is recorded as failed, the case stands.
    assert detail["outbox"][0]["status"] == "failed"
    assert "SMTPUTF8" in (detail["outbox"][0]["last_error"] or "")
