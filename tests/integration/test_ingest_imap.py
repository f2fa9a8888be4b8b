"""Ingestion from a real Dovecot INBOX through `casebot.passes.poll`, on SQLite and PostgreSQL.

Every test talks to the session's Dovecot (a fresh user per test), the aiosmtpd sink and a fresh database, and
reads the results back through `casebot.store.Store` and the sink: nothing is mocked.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from email.utils import parseaddr
from typing import Any

import pytest
from cbtest import (
    KEYWORD,
    SUPPORT,
    Harness,
    append_all,
    bare_id,
    events_of,
    folder_flags,
    folder_messages,
    make_mail,
    parse,
    quiet_logs,
    run_threads,
    uidvalidity,
)
from corpus import AUTOMATED_KINDS, CASELESS_KINDS, Sample, generate
from servers import ImapAccount, SmtpSink, free_port

from casebot.passes import PollResult, poll
from casebot.store import Store

SEED = 20261116
NO_RATE_LIMIT = {"rate_limit": 0}


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_logs():
        yield



def ref(n: int) -> str:
    return f"CASE-{n:06d}"


KEPT = CASELESS_KINDS  # bounces and out-of-office replies to mail casebot does not have: kept without a case


def expected_references(samples: list[Sample]) -> list[str]:
    """The case each sample must end up on: cases are minted in arrival (UID) order, replies join their parent;
    "" for mail kept without a case."""
    refs: list[str] = []
    opened = 0
    for s in samples:
        if s.kind == "reply":
            assert s.reply_to_index is not None
            refs.append(refs[s.reply_to_index])
        elif s.kind in KEPT:
            refs.append("")
        else:
            opened += 1
            refs.append(ref(opened))
    return refs


def snapshot(h: Harness) -> tuple[Any, ...]:
    """Everything a poll could change: cases, messages, outbox, what the sink got."""
    return (
        [c.as_json() for c in h.cases()],
        h.stored_message_count(),
        h.store.outbox_counts(),
        len(h.sink.messages),
        h.sink.data_commands,
    )


def remove_keyword(account: ImapAccount, folder: str = "INBOX") -> None:
    client = account.connect()
    try:
        client.select_folder(folder)
        uids = client.search(["ALL"])
        if uids:
            client.remove_flags(uids, [KEYWORD.encode()], silent=True)
    finally:
        client.logout()


# -- the corpus ---------------------------------------------------------------------------------------------------


def test_corpus_is_stored_once_threaded_and_acknowledged(h: Harness) -> None:
    samples = generate(60, seed=SEED)
    assert {s.kind for s in samples} >= AUTOMATED_KINDS | {"reply", "no_message_id", "malformed"}
    h.append(*(s.raw for s in samples))

    result = h.poll(acknowledgement=NO_RATE_LIMIT)

    assert result.errors == []
    assert result.ingest.seen == len(samples)
    assert result.ingest.counts.get("failed", 0) == 0
    assert result.ingest.counts.get("quarantined", 0) == 0
    details = h.details()
    expected = expected_references(samples)

    # Every message is stored exactly once, each non-reply opens one case, replies join their parent's case;
    # bounces and auto-replies that answer nothing casebot has are kept without a case.
    kept = [s for s in samples if s.kind in KEPT]
    assert kept
    assert sum(d["message_count"] for d in details.values()) == len(samples) - len(kept)
    assert h.stored_message_count() == len(samples)
    assert sorted(details) == sorted({r for r in expected if r})
    assert len(details) == sum(1 for s in samples if s.kind != "reply" and s.kind not in KEPT)
    with h.store.transaction() as tx:
        listed = {k.id: k for k in tx.kept_messages(automated_only=True) if k.reference is None}
    assert len(listed) == len(kept) and {k.disposition for k in listed.values()} == {"automated"}
    stored: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for reference, d in details.items():
        for m in d["messages"]:
            if m["message_id"] is not None:
                stored[m["message_id"]].append((reference, m["disposition"]))
    for i, s in enumerate(samples):
        if s.kind in KEPT:
            assert s.message_id not in stored, (i, s.kind)
            continue
        if s.message_id is not None:
            disposition = "threaded" if s.kind == "reply" else "opened"
            assert stored[s.message_id] == [(expected[i], disposition)], (i, s.kind)
        if s.kind != "reply":
            d = details[expected[i]]
            assert d["messages"][0]["message_id"] == s.message_id, (i, s.kind)
            assert d["requester"] == s.sender, (i, s.kind)

    # One acknowledgement per new case from a human, none to automated mail.
    acked = {expected[i]: s for i, s in enumerate(samples) if s.kind != "reply" and not s.automated}
    silent = {expected[i] for i, s in enumerate(samples) if s.kind != "reply" and s.automated and expected[i]}
    assert h.sink.wait_for(len(acked), timeout=5)
    by_ref: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for envelope in h.sink.messages:
        ack = parse(envelope.content)
        by_ref[str(ack["X-Casebot-Reference"])].append((envelope, ack))
    assert sorted(by_ref) == sorted(acked)
    for reference, s in acked.items():
        ((envelope, ack),) = by_ref[reference]
        assert str(ack["Subject"]).startswith(f"[{reference}]")
        assert envelope.rcpt_tos == [s.sender]
        assert parseaddr(str(ack["To"]))[1].lower() == s.sender
        assert envelope.mail_from == SUPPORT
        assert parseaddr(str(ack["From"]))[1] == SUPPORT
        assert ack["Auto-Submitted"] == "auto-replied"
        if s.message_id is None:
            assert ack["In-Reply-To"] is None
        else:
            assert bare_id(ack["In-Reply-To"]) == s.message_id
        assert [e["kind"] for e in details[reference]["events"]].count("ack.sent") == 1
    for reference in silent:
        d = details[reference]
        assert d["outbox"] == []
        (suppressed,) = events_of(d, "ack.suppressed")
        assert suppressed["why"].startswith("automated mail")
    assert h.store.outbox_counts() == {"sent": len(acked)}


def test_second_poll_changes_nothing(h: Harness) -> None:
    samples = generate(30, seed=SEED + 1)
    h.append(*(s.raw for s in samples))
    first = h.poll(acknowledgement=NO_RATE_LIMIT)
    assert first.errors == []
    assert first.ingest.seen == len(samples)
    before = snapshot(h)

    again = h.poll(acknowledgement=NO_RATE_LIMIT)
    assert again.errors == []
    assert again.ingest.seen == 0
    assert again.deliver.sent == 0
    assert snapshot(h) == before

    # Even if the processed keyword is lost (another client cleared it), the content dedupe key holds.
    remove_keyword(h.account)
    third = h.poll(acknowledgement=NO_RATE_LIMIT)
    assert third.errors == []
    assert third.ingest.counts == {"duplicate": len(samples)}
    assert snapshot(h) == before
    assert all(KEYWORD.encode() in flags for flags in folder_flags(h.account).values())


# -- flags and folders ----------------------------------------------------------------------------------------------


def test_seen_is_untouched_and_processed_keyword_is_set(h: Harness) -> None:
    samples = generate(12, seed=SEED + 2)
    h.append(*(s.raw for s in samples))
    client = h.account.connect()
    try:
        client.select_folder("INBOX")
        uids = sorted(client.search(["ALL"]))
        read_by_a_human = uids[:2]
        client.add_flags(read_by_a_human, [b"\\Seen"])
    finally:
        client.logout()

    result = h.poll(acknowledgement=NO_RATE_LIMIT)
    assert result.errors == []
    assert result.ingest.seen == len(samples)

    flags = folder_flags(h.account)
    assert sorted(flags) == uids
    for uid, f in flags.items():
        assert KEYWORD.encode() in f, uid
        assert (b"\\Seen" in f) == (uid in read_by_a_human), uid
    client = h.account.connect()
    try:
        client.select_folder("INBOX", readonly=True)
        assert sorted(client.search(["UNSEEN"])) == uids[2:]
        assert client.search(["UNKEYWORD", KEYWORD]) == []
    finally:
        client.logout()


def test_processed_folder_moves_mail_out_of_inbox(h: Harness) -> None:
    samples = generate(8, seed=SEED + 3)
    h.append(*(s.raw for s in samples))
    moved: dict[str, Any] = {"mailbox": {"processed_folder": "Processed"}, "acknowledgement": NO_RATE_LIMIT}

    result = h.poll(**moved)

    assert result.errors == []
    assert result.ingest.seen == len(samples)
    assert folder_messages(h.account, "INBOX") == {}
    processed = folder_messages(h.account, "Processed")
    assert sorted(processed.values()) == sorted(s.raw for s in samples)
    assert all(b"\\Seen" not in f for f in folder_flags(h.account, "Processed").values())
    assert len(h.cases()) == sum(1 for s in samples if s.kind != "reply" and s.kind not in KEPT)

    # Only what arrives later is looked at next time.
    late = make_mail("Late Client <late@client.example>", "Arrived after the first poll")
    h.append(late)
    result = h.poll(**moved)
    assert result.ingest.counts == {"opened": 1}
    assert folder_messages(h.account, "INBOX") == {}
    assert len(folder_messages(h.account, "Processed")) == len(samples) + 1


# -- duplicates ---------------------------------------------------------------------------------------------------


def test_same_message_delivered_twice_is_stored_once(h: Harness) -> None:
    raw = make_mail("Dana <dana@client.example>", "Cannot log in")
    h.append(raw, raw)

    result = h.poll()

    assert result.errors == []
    assert result.ingest.counts == {"opened": 1, "duplicate": 1}
    (case,) = h.cases()
    assert case.message_count == 1
    assert h.stored_message_count() == 1
    assert h.sink.wait_for(1)
    assert len(h.sink.messages) == 1
    flags = folder_flags(h.account)
    assert len(flags) == 2
    assert all(KEYWORD.encode() in f for f in flags.values())


def test_different_messages_sharing_a_message_id_are_both_kept(h: Harness) -> None:
    first = make_mail("Eve <eve@client.example>", "Invoice question", message_id="same@broken-mailer.example",
                      body="First message: where is invoice 1001?\n")
    second = make_mail("Eve <eve@client.example>", "Invoice question", message_id="same@broken-mailer.example",
                       body="Second message: and invoice 1002?\n")
    h.append(first, second)

    result = h.poll()

    assert result.errors == []
    assert result.ingest.counts.get("duplicate", 0) == 0
    assert h.stored_message_count() == 2
    assert sum(c.message_count for c in h.cases()) == 2
    texts = [m["text"] for d in h.details().values() for m in d["messages"]]
    assert any("invoice 1001" in t for t in texts)
    assert any("invoice 1002" in t for t in texts)


# -- a message that cannot be stored ------------------------------------------------------------------------------


def test_overlong_sender_is_stored_the_same_on_every_engine(h: Harness) -> None:
    """An address longer than RFC 5321 allows (400-character local part) once made PostgreSQL (VARCHAR(320))
    reject the message while SQLite stored it. The mail model now cuts addresses and Message-IDs at fixed
    lengths, so both engines store it, and it never blocks the messages around it. (Retry-then-quarantine is
    covered by test_quarantine.py.)"""
    before = make_mail("Before <before@client.example>", "First in line")
    hostile = make_mail(f"Long <{'x' * 400}@client.example>", "Overlong sender address")
    after = make_mail("After <after@client.example>", "Last in line")
    h.append(before, hostile, after)

    result = h.poll()

    assert result.errors == []
    assert result.ingest.counts == {"opened": 3}
    requesters = [c.requester for c in h.cases()]
    assert requesters[0] == "before@client.example" and requesters[2] == "after@client.example"
    assert requesters[1].startswith("x" * 300) and len(requesters[1]) == 320
    assert folder_messages(h.account, "Quarantine") == {}
    assert h.poll().ingest.seen == 0


# -- acknowledgement rate limit -------------------------------------------------------------------------------------


def test_acknowledgements_are_rate_limited_per_sender(h: Harness) -> None:
    sender = "Frank <frank@client.example>"
    h.append(*(make_mail(sender, f"Problem number {i}") for i in range(1, 5)))

    result = h.poll(acknowledgement={"rate_limit": 2})

    assert result.errors == []
    assert result.ingest.counts == {"opened": 4}
    cases = h.cases()
    assert [c.reference for c in cases] == [ref(1), ref(2), ref(3), ref(4)]
    assert h.sink.wait_for(2)
    acks = h.sent()
    assert len(acks) == 2
    assert sorted(str(a["X-Casebot-Reference"]) for a in acks) == [ref(1), ref(2)]
    for reference in (ref(1), ref(2)):
        assert len(events_of(h.detail(reference), "ack.sent")) == 1
    for reference in (ref(3), ref(4)):
        d = h.detail(reference)
        assert d["outbox"] == []
        (suppressed,) = events_of(d, "ack.suppressed")
        assert "rate limit" in suppressed["why"]
    assert h.store.outbox_counts() == {"sent": 2}


# -- threading by the reference in the subject ---------------------------------------------------------------------


def test_reference_in_subject_threads_for_the_requester_and_links_for_strangers(h: Harness) -> None:
    h.append(make_mail("Alice <alice@client.example>", "Printer on floor 3 is broken"))
    assert h.poll().ingest.counts == {"opened": 1}

    h.append(
        make_mail("Alice <alice@client.example>", f"Re: [{ref(1)}] Printer on floor 3 is broken",
                  body="It is still broken this morning.\n"),
        make_mail("Bob <bob@client.example>", f"RE: [{ref(1)}] Printer on floor 3 is broken",
                  body="Same here, colleague of Alice.\n"),
        make_mail("Anna <anna.k@gmail.com>", f"Re: [{ref(1)}] Printer on floor 3 is broken",
                  body="I am not from that company but I saw the reference.\n"),
    )
    result = h.poll()

    assert result.errors == []
    assert result.ingest.counts == {"threaded": 2, "opened": 1}
    first = h.detail(ref(1))
    assert first["message_count"] == 3
    assert [m["from"] for m in first["messages"]] == [
        "alice@client.example", "alice@client.example", "bob@client.example",
    ]
    assert "anna.k@gmail.com" not in first["participants"]
    stranger = h.detail(ref(2))
    assert stranger["requester"] == "anna.k@gmail.com"
    assert stranger["linked_to"] == ref(1)
    assert stranger["message_count"] == 1
    # The first case was acknowledged once; the stranger's new case gets its own acknowledgement.
    assert h.sink.wait_for(2)
    assert sorted(str(a["X-Casebot-Reference"]) for a in h.sent()) == [ref(1), ref(2)]


def test_reference_from_another_user_of_a_public_domain_opens_a_linked_case(h: Harness) -> None:
    h.append(make_mail("Lars <lars.e@gmail.com>", "Website down"))
    assert h.poll().ingest.counts == {"opened": 1}
    h.append(make_mail("Dmitri <dvolkov@gmail.com>", f"Re: [{ref(1)}] Website down"))

    assert h.poll().ingest.counts == {"opened": 1}
    assert h.detail(ref(1))["message_count"] == 1
    assert h.detail(ref(2))["linked_to"] == ref(1)


# -- loops ----------------------------------------------------------------------------------------------------------


def test_own_acknowledgement_coming_back_is_not_a_case(h: Harness) -> None:
    h.append(make_mail("Gina <gina@client.example>", "Need a refund"))
    assert h.poll().ingest.counts == {"opened": 1}
    assert h.sink.wait_for(1)
    (ack,) = h.sink.messages
    before = snapshot(h)

    h.append(ack.content)  # e.g. the support address was also a recipient of its own acknowledgement
    result = h.poll()

    assert result.errors == []
    assert result.ingest.counts == {"own-mail": 1}
    assert [c.as_json() for c in h.cases()] == before[0]
    assert h.store.outbox_counts() == before[2]
    assert len(h.sink.messages) == 1
    assert all(KEYWORD.encode() in f for f in folder_flags(h.account).values())
    assert h.poll().ingest.seen == 0


@pytest.mark.parametrize(
    ("header", "answer_by_message_id"),
    [
        (("Auto-Submitted", "auto-replied"), True),
        (("X-Autoreply", "yes"), True),
        (("Precedence", "auto_reply"), False),
    ],
    ids=["auto-submitted", "x-autoreply", "precedence-subject-only"],
)
def test_auto_reply_to_our_acknowledgement_is_stored_without_an_answer(
    h: Harness, header: tuple[str, str], answer_by_message_id: bool
) -> None:
    h.append(make_mail("Hugo <hugo@client.example>", "Broken export"))
    assert h.poll().ingest.counts == {"opened": 1}
    assert h.sink.wait_for(1)
    ack = parse(h.sink.messages[0].content)
    ack_id = bare_id(ack["Message-ID"])
    assert ack_id

    out_of_office = make_mail(
        "Hugo <hugo@client.example>", f"Automatic reply: {ack['Subject']}",
        body="I am out of the office until Monday.\n",
        in_reply_to=ack_id if answer_by_message_id else None, headers=[header],
    )
    h.append(out_of_office)
    result = h.poll()

    assert result.errors == []
    assert result.ingest.counts == {"threaded": 1}
    d = h.detail(ref(1))
    assert d["message_count"] == 2
    assert d["messages"][1]["automated"]
    assert len(h.cases()) == 1
    assert len(h.sink.messages) == 1
    assert h.store.outbox_counts() == {"sent": 1}
    assert h.poll().ingest.seen == 0
    assert len(h.sink.messages) == 1


# -- several instances (PostgreSQL) --------------------------------------------------------------------------------


def test_concurrent_polls_on_postgresql_store_and_acknowledge_each_message_once(
    imap_account: ImapAccount, smtp_sink: SmtpSink, postgres_url: str
) -> None:
    """Three `casebot poll` runs at once on one mailbox and one PostgreSQL database (cron overlapping a slow run):
    the dedupe key, the counter row lock and SKIP LOCKED claims keep every message stored once and every
    acknowledgement sent once. The schema is migrated first: Alembic's module-level proxies are not thread-safe,
    so in-process threads must not all run `Store.upgrade()` (separate processes would)."""
    migrated = Store(postgres_url)
    migrated.upgrade()
    migrated.close()
    h = Harness(imap_account, smtp_sink, postgres_url)
    try:
        samples = generate(40, seed=SEED + 5)
        h.append(*(s.raw for s in samples))
        settings = h.settings(
            acknowledgement=NO_RATE_LIMIT, mailbox={"batch_size": 5}, database={"auto_upgrade": False}
        )
        results: list[PollResult] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(3)

        def run() -> None:
            try:
                barrier.wait(timeout=30)
                results.append(poll(settings))
            except BaseException as exc:
                errors.append(exc)

        run_threads([threading.Thread(target=run) for _ in range(3)])
        assert errors == []
        assert all(r.errors == [] for r in results), [r.errors for r in results]
        assert sum(r.ingest.counts.get("failed", 0) for r in results) == 0

        expected = expected_references(samples)
        details = h.details()
        assert sorted(details) == sorted({r for r in expected if r})
        assert h.stored_message_count() == len(samples)
        for i, s in enumerate(samples):
            if s.message_id is not None and expected[i]:
                (where,) = [r for r, d in details.items() for m in d["messages"] if m["message_id"] == s.message_id]
                # Every poll works in UID order and a message is committed (or found stored) before any poll
                # moves past it: numbers follow arrival order and replies always find their parent.
                assert where == expected[i], (i, s.kind)
        acked = sum(1 for s in samples if s.kind != "reply" and not s.automated)
        assert h.sink.wait_for(acked)
        assert sum(r.deliver.sent for r in results) == acked
        assert len(h.sink.messages) == acked
        assert len({str(parse(m.content)["X-Casebot-Reference"]) for m in h.sink.messages}) == acked
        assert h.store.outbox_counts() == {"sent": acked}
        assert all(KEYWORD.encode() in f for f in folder_flags(h.account).values())
    finally:
        h.close()


# -- UIDVALIDITY ------------------------------------------------------------------------------------------------------


def _recreate(account: ImapAccount, folder: str, old_validity: int) -> None:
    """Give `folder` a new UIDVALIDITY with no messages in it.

    Dovecot refuses to DELETE or RENAME INBOX, so INBOX is emptied over IMAP and its UIDVALIDITY reset with
    `doveadm mailbox update` (what a server migration or a restored backup does); any other folder is deleted and
    created again over IMAP.
    """
    client = account.connect()
    try:
        if folder.upper() == "INBOX":
            client.select_folder(folder)
            uids = client.search(["ALL"])
            client.delete_messages(uids)
            client.expunge()
            client.unselect_folder()
            account.server.doveadm(
                "mailbox", "update", "-u", account.user, "--uid-validity", str(old_validity + 1000), folder
            )
        else:
            client.delete_folder(folder)
            client.create_folder(folder)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


@pytest.mark.parametrize("folder", ["INBOX", "Support"])
def test_uidvalidity_change_creates_nothing_new(h: Harness, folder: str) -> None:
    samples = generate(10, seed=SEED + 4)
    append_all(h.account, (s.raw for s in samples), folder)
    settings: dict[str, Any] = {"mailbox": {"folder": folder}, "acknowledgement": NO_RATE_LIMIT}
    first = h.poll(**settings)
    assert first.errors == []
    assert first.ingest.seen == len(samples)
    before = snapshot(h)
    old = uidvalidity(h.account, folder)

    _recreate(h.account, folder, old)
    append_all(h.account, (s.raw for s in samples), folder)
    assert uidvalidity(h.account, folder) != old
    assert len(folder_messages(h.account, folder)) == len(samples)

    again = h.poll(**settings)
    assert again.errors == []
    assert again.ingest.counts == {"duplicate": len(samples)}
    assert snapshot(h) == before
    assert all(KEYWORD.encode() in f for f in folder_flags(h.account, folder).values())


# -- IMAP unavailable -------------------------------------------------------------------------------------------------


def test_imap_down_is_reported_not_raised(h: Harness) -> None:
    port = free_port()
    result = h.poll(mailbox={"port": port})

    assert result.ingest.seen == 0
    assert len(result.errors) == 1
    assert f"127.0.0.1:{port}" in result.errors[0]
    assert h.cases() == []


def test_imap_login_failure_is_reported_not_raised(h: Harness) -> None:
    h.append(make_mail("Ivy <ivy@client.example>", "Hello"))
    result = h.poll(mailbox={"password": "wrong"})

    assert result.ingest.seen == 0
    assert len(result.errors) == 1
    assert f"127.0.0.1:{h.account.port}" in result.errors[0]
    assert "login" in result.errors[0].lower()
    assert h.cases() == []
    # The mail is still there, untouched, for when the password is fixed.
    assert all(KEYWORD.encode() not in f for f in folder_flags(h.account).values())
    assert h.poll().ingest.counts == {"opened": 1}
