"""The decision pipeline (casebot/pipeline) driven with parsed mail and a fake `Lookup`: no database, no server."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from casebot.case import ClientWrote, Status
from casebot.case import apply as apply_event
from casebot.mail import parse
from casebot.pipeline import DEFAULT_CHAIN, CaseView, Incoming, Lookup, PipelineConfig, Verdict, build_chain, run_chain
from casebot.refs import ReferenceFormat
from casebot.rules import PriorityRule
from casebot.service import load_rules

NOW = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
OWN = "support@example.com"
RULES: tuple[PriorityRule, ...] = load_rules(Path(__file__).resolve().parents[2] / "config" / "priority.toml")


@dataclass
class FakeLookup:
    """Answers like the store would: cases by Message-ID and by reference, own Message-IDs, acks per recipient."""

    by_message_id: dict[str, CaseView] = field(default_factory=dict)
    by_reference: dict[str, CaseView] = field(default_factory=dict)
    own_ids: set[str] = field(default_factory=set)
    acks: dict[str, int] = field(default_factory=dict)
    acks_by_sender: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        self.calls.append(("case_for_message_ids", message_ids))
        for mid in message_ids:
            if mid in self.by_message_id:
                return self.by_message_id[mid]
        return None

    def case_view(self, reference: str) -> CaseView | None:
        self.calls.append(("case_view", reference))
        return self.by_reference.get(reference)

    def is_own_message_id(self, message_id: str) -> bool:
        self.calls.append(("is_own_message_id", message_id))
        return message_id in self.own_ids

    def acks_to(self, address: str, since: dt.datetime, until: dt.datetime) -> int:
        self.calls.append(("acks_to", (address, since, until)))
        return self.acks.get(address, 0)

    def acks_for_sender(self, sender: str, since: dt.datetime, until: dt.datetime) -> int:
        self.calls.append(("acks_for_sender", (sender, since, until)))
        return self.acks_by_sender.get(sender, 0)


def _typed(lookup: FakeLookup) -> Lookup:
    return lookup  # mypy checks here that the fake implements the protocol


def config(**overrides: object) -> PipelineConfig:
    values: dict[str, object] = {
        "reference_format": ReferenceFormat(),
        "own_addresses": frozenset({OWN}),
        "public_domains": frozenset({"gmail.com", "outlook.com"}),
        "rules": RULES,
    }
    values.update(overrides)
    return PipelineConfig(**values)  # type: ignore[arg-type]


def message(
    *extra: str,
    sender: str = "Alice <alice@client.example>",
    subject: str = "Printer problem",
    body: str = "Hello, the printer needs help.",
    message_id: str = "m1@client.example",
) -> bytes:
    headers = [
        f"From: {sender}",
        f"To: {OWN}",
        f"Subject: {subject}",
        "Date: Tue, 03 Mar 2026 09:59:00 +0000",
        f"Message-ID: <{message_id}>",
        *extra,
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n").encode("utf-8")


def run(raw: bytes, lookup: FakeLookup | None = None, cfg: PipelineConfig | None = None) -> Verdict:
    return run_chain(Incoming(parse(raw), NOW, cfg or config(), _typed(lookup or FakeLookup())))


def case(reference: str = "CASE-000007", status: str = "open", requester: str = "alice@client.example",
         participants: tuple[str, ...] = ("alice@client.example", "bob@partner.example")) -> CaseView:
    return CaseView(reference, Status(status), requester, frozenset(participants))


# --- a plain human message --------------------------------------------------------------------------------------


def test_human_mail_opens_case_and_is_acknowledged() -> None:
    ctx = run(message())
    assert ctx.opens_case
    assert not ctx.origin.own_mail
    assert ctx.origin.automated is None
    assert ctx.placement.case is None and ctx.placement.linked_to is None
    assert (ctx.triage.priority, ctx.triage.rule) == ("medium", "workaround-available")  # "problem"
    assert ctx.ack.send is True
    assert ctx.ack.why == "new case"
    assert [t["step"] for t in ctx.trace] == list(DEFAULT_CHAIN)


# --- loop guard -------------------------------------------------------------------------------------------------

LOOP_CASES = [
    # (id, extra headers, sender, reason fragment)
    ("auto-replied", ("Auto-Submitted: auto-replied",), None, "Auto-Submitted: auto-replied"),
    ("auto-generated", ("Auto-Submitted: auto-generated",), None, "Auto-Submitted: auto-generated"),
    ("auto-notified-params", ("Auto-Submitted: Auto-Notified; owner=x@y",), None, "Auto-Submitted: auto-notified"),
    ("precedence-bulk", ("Precedence: bulk",), None, "Precedence: bulk"),
    ("precedence-junk", ("Precedence: junk",), None, "Precedence: junk"),
    ("precedence-list", ("Precedence: List",), None, "Precedence: list"),
    ("precedence-auto-reply", ("Precedence: auto_reply",), None, "Precedence: auto_reply"),
    ("list-id", ("List-Id: Users <users.lists.example>",), None, "list-id"),
    ("list-unsubscribe", ("List-Unsubscribe: <mailto:leave@lists.example>",), None, "list-unsubscribe"),
    ("list-post", ("List-Post: <mailto:users@lists.example>",), None, "list-post"),
    ("x-auto-response-suppress", ("X-Auto-Response-Suppress: All",), None, "X-Auto-Response-Suppress"),
    ("x-autoreply", ("X-Autoreply: yes",), None, "x-autoreply"),
    ("null-sender", (), "<>", "null sender"),
    ("mailer-daemon", (), "Mail Delivery System <MAILER-DAEMON@mx.client.example>", "mailer-daemon@"),
    ("postmaster", (), "postmaster@client.example", "postmaster@"),
    (
        "multipart-report",
        ('Content-Type: multipart/report; report-type=delivery-status; boundary="b"',),
        "mta@mx.client.example",
        "multipart/report",
    ),
    ("own-address", (), f"Support <{OWN}>", "own address"),
    ("noreply", (), "noreply@shop.example", "noreply@"),
    ("no-reply", (), "no-reply@shop.example", "no-reply@"),
    ("donotreply", (), "DoNotReply@shop.example", "donotreply@"),
]


# Automated mail that answers a mail (auto-replies, bounces); the rest (lists, bulk, notifications) opens a case.
ANSWERS = {"Auto-Submitted: auto-replied", "Precedence: auto_reply", "x-autoreply", "mailer-daemon@", "postmaster@",
           "multipart/report"}


@pytest.mark.parametrize(
    ("extra", "sender", "fragment"), [c[1:] for c in LOOP_CASES], ids=[c[0] for c in LOOP_CASES]
)
def test_loop_guard_no_ack_but_still_a_case(extra: tuple[str, ...], sender: str | None, fragment: str) -> None:
    lookup = FakeLookup()
    raw = message(*extra, sender=sender or "Alice <alice@client.example>", subject="Production down")
    ctx = run(raw, lookup)
    guard = next(t for t in ctx.trace if t["step"] == "loop_guard")
    assert ctx.origin.automated is not None and fragment in f"{ctx.origin.automated} {guard.get('also', '')}"
    assert ctx.ack.send is False
    if fragment in ANSWERS:
        # An auto-reply or a bounce that answers nothing casebot has: kept without a case, no priority taken.
        assert ctx.origin.answer is not None and ctx.placement.caseless
        assert not ctx.opens_case and ctx.triage.priority is None
        assert ctx.trace[-1]["step"] == "automated_answer"
        return
    assert ctx.origin.answer is None
    assert ctx.ack.why.startswith("automated mail")
    assert fragment in ctx.ack.why
    # Nothing a client sent is dropped: the message still opens a case, with its priority.
    assert ctx.opens_case
    assert not ctx.origin.own_mail
    assert ctx.triage.priority == "critical"
    assert not [c for c in lookup.calls if c[0] == "acks_to"]  # no rate-limit question for mail we never answer


@pytest.mark.parametrize(
    "extra",
    [
        ("Auto-Submitted: no",),
        ("Auto-Submitted: NO",),
        ("Precedence: first-class",),
        ("Precedence: normal",),
        ("X-Mailer: Outlook",),
    ],
)
def test_loop_guard_lets_human_mail_through(extra: tuple[str, ...]) -> None:
    ctx = run(message(*extra))
    assert ctx.origin.automated is None
    assert ctx.ack.send is True


# --- own mail ---------------------------------------------------------------------------------------------------


def test_own_message_id_is_own_mail_and_stops_the_chain() -> None:
    lookup = FakeLookup(own_ids={"casebot.abc@example.com"})
    ctx = run(message(message_id="casebot.abc@example.com", subject="[CASE-000007] Production down"), lookup)
    assert ctx.origin.own_mail is True
    assert not ctx.opens_case
    assert [t["step"] for t in ctx.trace] == ["own_mail"]
    assert ctx.triage.priority is None
    assert ctx.ack.send is False
    assert ctx.placement.case is None
    assert [c[0] for c in lookup.calls] == ["is_own_message_id"]


def test_own_address_with_marker_header_is_own_mail() -> None:
    ctx = run(message("X-Casebot-Reference: CASE-000007", sender=f"Support <{OWN}>"))
    assert ctx.origin.own_mail is True
    assert [t["step"] for t in ctx.trace] == ["own_mail"]


def test_marker_header_from_a_stranger_is_not_own_mail() -> None:
    ctx = run(message("X-Casebot-Reference: CASE-000007", sender="mallory@evil.example"))
    assert ctx.origin.own_mail is False
    assert ctx.opens_case


# --- threading --------------------------------------------------------------------------------------------------


def test_in_reply_to_threads_onto_the_case() -> None:
    open_case = case()
    lookup = FakeLookup(by_message_id={"ack1@example.com": open_case})
    ctx = run(message("In-Reply-To: <ack1@example.com>", "References: <root@client.example> <ack1@example.com>",
                      subject="Re: anything at all"), lookup)
    assert ctx.placement.case == open_case
    assert not ctx.opens_case
    assert ctx.placement.linked_to is None
    assert ctx.triage.priority is None  # replies keep the case's priority
    assert ctx.ack.send is False
    assert ctx.ack.why == "reply to an existing case"
    assert ("case_for_message_ids", ("ack1@example.com", "root@client.example")) in lookup.calls
    assert not [c for c in lookup.calls if c[0] == "case_view"]


def test_references_only_threads_nearest_first() -> None:
    older, newer = case("CASE-000001"), case("CASE-000002")
    lookup = FakeLookup(by_message_id={"a@x": older, "b@x": newer})
    ctx = run(message("References: <a@x> <b@x>"), lookup)
    assert ctx.placement.case == newer


def test_in_reply_to_wins_over_subject_reference() -> None:
    by_id, by_ref = case("CASE-000001"), case("CASE-000002")
    lookup = FakeLookup(by_message_id={"a@x": by_id}, by_reference={"CASE-000002": by_ref})
    ctx = run(message("In-Reply-To: <a@x>", subject="Re: [CASE-000002] x"), lookup)
    assert ctx.placement.case == by_id


def test_unknown_in_reply_to_falls_back_to_subject() -> None:
    target = case()
    lookup = FakeLookup(by_reference={"CASE-000007": target})
    ctx = run(message("In-Reply-To: <unknown@x>", subject="Re: [CASE-000007] printer"), lookup)
    assert ctx.placement.case == target


SUBJECT_CASES = [
    # (id, sender, case requester, participants, status, attaches?)
    ("requester", "alice@client.example", "alice@client.example", ("alice@client.example",), "open", True),
    ("requester-mixed-case", "Alice@Client.Example", "alice@client.example", ("alice@client.example",), "open", True),
    ("cc-participant", "bob@partner.example", "alice@client.example",
     ("alice@client.example", "bob@partner.example"), "open", True),
    ("staff", "agent@example.com", "alice@client.example",
     ("alice@client.example", "agent@example.com"), "open", True),
    ("same-company-domain", "carol@client.example", "alice@client.example", ("alice@client.example",), "open", True),
    ("other-domain", "mallory@evil.example", "alice@client.example", ("alice@client.example",), "open", False),
    ("subdomain-is-other", "eve@mail.client.example", "alice@client.example",
     ("alice@client.example",), "open", False),
    ("gmail-stranger", "stranger@gmail.com", "alice@gmail.com", ("alice@gmail.com",), "open", False),
    ("gmail-requester", "alice@gmail.com", "alice@gmail.com", ("alice@gmail.com",), "open", True),
    ("outlook-stranger", "x@outlook.com", "alice@outlook.com", ("alice@outlook.com",), "open", False),
    ("null-sender", "<>", "alice@client.example", ("alice@client.example",), "open", False),
    ("closed-requester", "alice@client.example", "alice@client.example", ("alice@client.example",), "closed", False),
]


@pytest.mark.parametrize(
    ("sender", "requester", "participants", "status", "attaches"),
    [c[1:] for c in SUBJECT_CASES],
    ids=[c[0] for c in SUBJECT_CASES],
)
def test_subject_reference_threads_only_for_people_of_the_case(
    sender: str, requester: str, participants: tuple[str, ...], status: str, attaches: bool
) -> None:
    target = case(status=status, requester=requester, participants=participants)
    lookup = FakeLookup(by_reference={"CASE-000007": target})
    ctx = run(message(sender=sender, subject="Re: [CASE-000007] Printer"), lookup)
    if attaches:
        assert ctx.placement.case == target
        assert ctx.placement.linked_to is None
        assert not ctx.opens_case
    else:
        # A guessed or forwarded reference (or a closed case) gives a new case linked to the old one.
        assert ctx.placement.case is None
        assert ctx.placement.linked_to == "CASE-000007"
        assert ctx.opens_case
        assert ctx.triage.priority is not None


def test_unknown_subject_reference_opens_unlinked_case() -> None:
    ctx = run(message(subject="Re: [CASE-000999] lost"), FakeLookup())
    assert ctx.opens_case
    assert ctx.placement.linked_to is None
    threading = next(t for t in ctx.trace if t["step"] == "threading")
    assert threading["hit"] is False and "unknown reference(s) in subject: CASE-000999" in threading["why"]


def test_second_subject_reference_used_when_first_unknown() -> None:
    target = case("CASE-000002")
    lookup = FakeLookup(by_reference={"CASE-000002": target})
    ctx = run(message(subject="[CASE-000001] and [CASE-000002]"), lookup)
    assert ctx.placement.case == target


def test_closed_case_by_in_reply_to_opens_new_linked_case() -> None:
    lookup = FakeLookup(by_message_id={"ack1@example.com": case(status="closed")})
    ctx = run(message("In-Reply-To: <ack1@example.com>", subject="Re: Production down again"), lookup)
    assert ctx.placement.case is None
    assert ctx.placement.linked_to == "CASE-000007"
    assert ctx.opens_case
    assert ctx.triage.priority == "critical"
    assert ctx.ack.send is True


@pytest.mark.parametrize(
    ("status", "extra", "reopen"),
    [
        ("resolved", (), True),
        ("waiting", (), True),
        ("open", (), False),
        ("new", (), False),
        ("resolved", ("Auto-Submitted: auto-replied",), False),
        ("waiting", ("Precedence: bulk",), False),
    ],
)
def test_reopen_on_human_reply(status: str, extra: tuple[str, ...], reopen: bool) -> None:
    lookup = FakeLookup(by_message_id={"ack1@example.com": case(status=status)})
    ctx = run(message("In-Reply-To: <ack1@example.com>", *extra), lookup)
    assert ctx.placement.case is not None
    # The pipeline only places the reply; the case life cycle decides that a client's reply reopens the case.
    from casebot.case import CaseState, Priority
    transition = apply_event(CaseState(Status(status), Priority.HIGH), ClientWrote(NOW, ctx.origin.automated))
    assert transition.has("status.changed") is reopen
    assert ctx.ack.send is False


# --- priority inside the chain ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "priority", "rule"),
    [
        ("Production down", "", "critical", "production-down"),
        ("Hello", "Reports module unavailable since 9am", "high", "major-feature-unavailable"),
        ("Hello", "Thanks!\n> production down\n", "low", None),  # quoted text does not count
        ("Hello", "Thanks!\nOn Mon, 2 Mar 2026, Bob wrote:\nproduction down", "low", None),
        ("Hello", "x" * 50 + " production down", "low", None),  # beyond body_chars
        ("Hello", "nothing to see", "low", None),
    ],
)
def test_priority_uses_visible_body(subject: str, body: str, priority: str, rule: str | None) -> None:
    ctx = run(message(subject=subject, body=body), cfg=config(body_chars=40))
    assert (ctx.triage.priority, ctx.triage.rule) == (priority, rule)


def test_default_priority_is_configurable() -> None:
    ctx = run(message(subject="Hello", body="nothing"), cfg=config(default_priority="medium"))
    assert (ctx.triage.priority, ctx.triage.rule) == ("medium", None)


# --- acknowledgement policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "limit", "acknowledge"),
    [(0, 5, True), (4, 5, True), (5, 5, False), (12, 5, False), (1, 1, False), (100, 0, True)],
)
def test_rate_limit(sent: int, limit: int, acknowledge: bool) -> None:
    lookup = FakeLookup(acks={"alice@client.example": sent})
    ctx = run(message(), lookup, config(ack_rate_limit=limit, ack_rate_window=dt.timedelta(minutes=30)))
    assert ctx.ack.send is acknowledge
    assert ctx.opens_case
    if acknowledge:
        assert ctx.ack.why == "new case"
    else:
        assert "rate limit" in ctx.ack.why
        assert str(sent) in ctx.ack.why
    asked = [c[1] for c in lookup.calls if c[0] == "acks_to"]
    if limit:
        assert asked == [("alice@client.example", NOW - dt.timedelta(minutes=30), NOW)]
    else:
        assert asked == []  # 0 means no limit


def test_rate_limit_counts_acks_to_the_address_that_receives_them() -> None:
    # Five earlier acks already went to the victim named in Reply-To; the From address changes every time.
    lookup = FakeLookup(acks={"victim@other.example": 5})
    ctx = run(message("Reply-To: victim@other.example", sender="random123@client.example"), lookup)
    assert ctx.ack.send is False
    assert "rate limit" in ctx.ack.why
    assert [c[1] for c in lookup.calls if c[0] == "acks_to"] == [
        ("victim@other.example", NOW - dt.timedelta(hours=1), NOW)]


@pytest.mark.parametrize(
    ("extra", "sender", "ack_to", "acknowledge"),
    [
        ((), "Alice <alice@client.example>", "alice@client.example", True),
        (("Reply-To: Desk <Desk@Client.Example>",), "Alice <alice@client.example>", "desk@client.example", True),
        (("Reply-To: <>",), "Alice <alice@client.example>", "alice@client.example", True),
        ((f"Reply-To: {OWN}",), "Alice <alice@client.example>", OWN, False),
    ],
)
def test_ack_destination(extra: tuple[str, ...], sender: str, ack_to: str, acknowledge: bool) -> None:
    ctx = run(message(*extra, sender=sender))
    assert ctx.ack.to == ack_to
    assert ctx.ack.send is acknowledge
    assert ctx.opens_case
    if not acknowledge:
        assert "no address to reply to" in ctx.ack.why


def test_ack_disabled() -> None:
    lookup = FakeLookup()
    ctx = run(message(), lookup, config(ack_enabled=False))
    assert ctx.ack.send is False
    assert "disabled" in ctx.ack.why
    assert ctx.opens_case
    assert not [c for c in lookup.calls if c[0] == "acks_to"]


def test_partial_chain_runs_only_named_steps() -> None:
    ctx = run_chain(Incoming(parse(message("Precedence: bulk")), NOW, config(), _typed(FakeLookup())),
                    build_chain(("loop_guard",)))
    assert ctx.origin.automated == "Precedence: bulk"
    assert ctx.triage.priority is None
    assert ctx.ack.send is False
    assert [t["step"] for t in ctx.trace] == ["loop_guard"]


# --- the chain as data: [pipeline] steps, plugins, Stop -----------------------------------------------------------


def test_chain_from_config_runs_a_step_defined_in_a_test_module() -> None:
    from casebot.config import from_mapping
    from casebot.service import build_deps

    settings = from_mapping({"mailbox": {"kind": "pipe"},
                             "pipeline": {"steps": [*DEFAULT_CHAIN[:-1], "plugin_steps:TagVip", DEFAULT_CHAIN[-1]]}})
    deps = build_deps(settings)
    assert [s.name for s in deps.steps] == [*DEFAULT_CHAIN[:-1], "tag_vip", "acknowledgement"]
    raw = message(sender="Dana <dana@vip.example>", subject="Quick question")
    verdict = run_chain(Incoming(parse(raw), NOW, deps.pipeline, _typed(FakeLookup())), deps.steps)
    assert (verdict.triage.priority, verdict.triage.rule) == ("critical", "vip-domain")
    entry = next(t for t in verdict.trace if t["step"] == "tag_vip")
    assert entry == {"step": "tag_vip", "hit": True, "decision": "critical",
                     "why": "sender's domain vip.example is a VIP domain"}
    assert verdict.ack.send is True  # the steps after it still ran


@pytest.mark.parametrize(
    ("steps", "message_part"),
    [
        (["own_mail", "loop_gaurd"], "pipeline.steps[1]: unknown step 'loop_gaurd'"),
        (["own_mail", "no_such_module_xyz:Step"], "pipeline.steps[1]: unknown step 'no_such_module_xyz:Step': cannot"),
        (["plugin_steps:Nope"], "pipeline.steps[0]"),
        (["own_mail", "own_mail"], "pipeline.steps[1]: unknown step 'own_mail': listed twice"),
    ],
)
def test_unknown_step_is_a_config_error_naming_the_key(steps: list[str], message_part: str) -> None:
    from casebot.config import ConfigError, from_mapping
    from casebot.service import build_deps

    with pytest.raises(ConfigError) as err:
        build_deps(from_mapping({"mailbox": {"kind": "pipe"}, "pipeline": {"steps": steps}}))
    assert message_part in str(err.value)


def test_runner_records_one_entry_per_step_with_hit_or_miss() -> None:
    verdict = run(message())
    assert [t["step"] for t in verdict.trace] == list(DEFAULT_CHAIN)
    assert all(isinstance(t["hit"], bool) and t["decision"] for t in verdict.trace)
    assert [t["hit"] for t in verdict.trace] == [False, False, False, False, False, False, True, True]


def test_stop_is_not_swallowed_by_a_steps_except_exception() -> None:
    from casebot.pipeline import Finding, Stop

    class Careless:
        name: ClassVar[str] = "careless"

        def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
            try:
                raise Stop(Finding(True, "stopped", "enough"))
            except Exception:  # the mistake Stop must survive
                return Finding(False, "swallowed")

    class Never:
        name: ClassVar[str] = "never"

        def __call__(self, incoming: Incoming, verdict: Verdict) -> Finding:
            raise AssertionError("the chain should have stopped")

    verdict = run_chain(Incoming(parse(message()), NOW, config(), _typed(FakeLookup())), (Careless(), Never()))
    assert verdict.trace == [{"step": "careless", "hit": True, "decision": "stopped", "why": "enough"}]
