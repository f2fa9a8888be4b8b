"""casebot.mail.bounce: what a bounce, DSN, read receipt or feedback report says.

Tables over real bounces: GNU Mailman's samples from the flufl.bounce 6.0.0 sdist (the version pyproject pins;
its wheel ships no test data, so tests/wild/fetch.py downloads the sdist, checks its sha256 and extracts it into
.cache/wild), and the whole wild corpus (never raises; the loop guard's gate keeps people's mail out). The
expected addresses are flufl.bounce's own (tests/test_detectors.py of that sdist); where RFC 3464/8098 parsing
says more, the row says why. Then reports built here from the RFCs' shapes, and malformed input.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from casebot import mail
from casebot.config import from_mapping
from casebot.mail.bounce import NONE, read_report
from casebot.pipeline.loop_guard import assess
from casebot.service import load_patterns

ROOT = Path(__file__).resolve().parents[2]
WILD = ROOT / ".cache" / "wild"
FLUFL_DATA = WILD / "flufl.bounce-6.0.0" / "flufl_bounce-6.0.0" / "tests" / "data"
PATTERNS = load_patterns(from_mapping({"mailbox": {"kind": "pipe"}}))

needs_wild = pytest.mark.skipif(not (WILD / "index.json").exists(),
                                reason="wild corpus not fetched (run: .venv/bin/python tests/wild/fetch.py)")

# (file, kind, ((address, action, status), ...), original Message-ID)
FLUFL_SAMPLES = [
    ("dsn_01", "dsn", (("userx@example.com", "failed", "5.0.0"),), "F1218V8zDv60gxapzha000001ae@hotmail.com"),
    ("dsn_05", "dsn", (("userx@example.cz", "delayed", "4.4.1"),), None),
    ("dsn_09", "dsn", (("userx@example.com", "failed", "5.0.0"),), "3BE4F1EC.8306C281@nleaudio.com"),
    ("dsn_13", "dsn", (("userx@example.com", "failed", "5.1.1"),),
     "mailman.8262.1143060203.1568.wed_ride@grizz.org"),
    ("dsn_17", "dsn", (("userx@example.fi", "delayed", "4.3.0"),),
     "mailman.150418.1209869464.31038.pray4-team@strategicnetwork.org"),
    ("dsn_18", "dsn", (("email@replaced.net", "failed", "5.0.0"),), None),
    ("postfix_01", "bounce", (("xxxxx@local.ie", "failed", "5.1.1"),), None),
    ("postfix_02", "bounce", (("yyyyy@digicool.com", "failed", ""),),
     "14915.64162.965657.699956@anthem.concentric.net"),
    ("exim_01", "bounce", (("userx@its.example.nl", "failed", "5.1.1"),), "19990920022322.A19735@stereo.rotzorg.org"),
    ("qmail_03", "bounce", (("userx@example.jp", "failed", "5.1.1"),), None),
    ("yahoo_11", "bounce", (("bad_user@aol.com", "failed", "5.1.1"),), None),
    ("yahoo_13", "dsn", (("bogus-address@example.net", "failed", "5.1.1"),),
     "130907fb-848c-d154-8e59-ed1e08319fcf@yahoo.com"),
    ("smtp32_04", "bounce", (("after_another@example.net", "failed", "5.3.0"),
                             ("one_bad_address@example.net", "failed", "")), None),
    ("microsoft_01", "bounce", (("userx@example.COM", "failed", ""),), None),
    ("groupwise_01", "bounce", (("userx@example.EDU", "failed", ""),), "20010720085308.H17468@magic.example.org"),
    ("groupwise_02", "bounce", (("userx@example.com", "failed", ""),), None),  # flufl: Exchange's detector
    ("simple_03", "bounce", (("userx@example.za", "delayed", ""),), None),  # flufl: a temporary failure
    ("simple_14", "bounce", (("userx@example.com", "failed", ""), ("usery@example.com", "failed", "")), None),
    ("simple_15", "bounce", (("userx@example.be", "failed", "5.1.1"),), None),
    # An RFC 8098 read receipt ("MDN-sent-automatically; deleted"); Mailman counts it as a bounce.
    ("simple_38", "mdn", (), "2ee7df1322121930966bcc2318379726@localhost"),
    # A real RFC 3464 report (flufl's table tests only its SimpleMatch detector on it, which finds nothing).
    ("simple_42", "dsn", (("david...@gmail.com", "failed", "5.0.0"),), None),
    ("simple_45", "bounce", (("subscriber@earthlink.net", "failed", ""),), "message-id@example.com"),
    ("sina_01", "bounce", (("userx@sina.com", "failed", ""), ("usery@sina.com", "failed", "")), None),
    ("llnl_01", "bounce", (("user1@example.gov", "failed", ""),), None),
    ("netscape_01", "dsn", (("aaaaa@corel.com", "failed", ""), ("bbbbb@corel.com", "failed", "")), None),
    ("aol_01", "bounce", (("screenname@aol.com", "failed", ""),), None),
    ("caiwireless_01", "dsn", (("userx@example.com", "failed", ""),), None),
    ("bounce_02", "bounce", (("userx@example.com", "failed", ""),),
     "mailman.0.1037840296.16399.macarthur1975@example.org"),
    ("sendmail_01", "bounce", (("zzzzz@nfg.nl", "failed", ""), ("zzzzz@shaft.coal.nl", "failed", "")), None),
    ("yale_01", "bounce", (("userx@cs.yale.edu", "failed", ""), ("userx@yale.edu", "failed", "")), None),
    ("dumbass_01", "none", (), None),  # flufl: "no addresses are detectable"
    ("qmail_08", "none", (), None),  # a Spanish auto-reply, not a bounce
    ("groupwise_03", "none", (), None),  # a person's reply that once confused the GroupWise detector
]


@needs_wild
@pytest.mark.parametrize(("name", "kind", "recipients", "original"), FLUFL_SAMPLES, ids=[s[0] for s in FLUFL_SAMPLES])
def test_real_bounces_from_flufl_bounce(name: str, kind: str, recipients: tuple[tuple[str, str, str], ...],
                                        original: str | None) -> None:
    report = read_report((FLUFL_DATA / f"{name}.txt").read_bytes())
    assert report.kind == kind
    assert tuple(sorted((r.address, r.action, r.status) for r in report.recipients)) == recipients
    assert report.original_message_id == original
    if kind != "none":
        assert report.evidence.startswith({"dsn": "DSN", "bounce": "bounce", "mdn": "MDN"}[kind])


@needs_wild
def test_dsn_evidence_and_diagnostic_from_a_real_report() -> None:
    report = read_report((FLUFL_DATA / "dsn_13.txt").read_bytes())
    assert report.is_failure
    assert report.evidence == ("DSN: 5.1.1 for userx@example.com, original "
                               "<mailman.8262.1143060203.1568.wed_ride@grizz.org>")
    assert report.diagnostic and "\n" not in report.diagnostic


@needs_wild
def test_every_wild_message_is_read_without_raising_and_the_gate_keeps_people_out() -> None:
    """Every message of the corpus: read_report never raises; through the loop guard's gate no human message is
    taken for an answer (read_report alone takes a talon reply for a bounce: the reason for the gate), and every
    DSN-class message is recognised as a report."""
    rows = json.loads((WILD / "index.json").read_text())
    answered_humans, unread_dsns = [], []
    for row in rows:
        raw = (WILD / row["path"]).read_bytes()
        report = read_report(raw)
        found = assess(mail.parse(raw), frozenset({"support@example.com"}), PATTERNS)
        if row["label"] == "human" and found.answer is not None:
            answered_humans.append(row["path"])
        if row["class"] == "dsn" and report.kind == "none":
            unread_dsns.append(row["path"])
    assert answered_humans == []
    assert unread_dsns == []


# --- reports in the RFCs' shapes -------------------------------------------------------------------------------

def report(report_type: str, *parts: tuple[str, str], headers: str = "") -> bytes:
    body = "".join(f"--B\r\nContent-Type: {ctype}\r\n{text}\r\n" for ctype, text in parts)
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: support@example.com\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.net>\r\n{headers}"
            f'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type={report_type}; boundary="B"\r\n\r\n'
            f"{body}--B--\r\n").encode()


STATUS = ("\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; gone@client.example\r\n"
          "Original-Recipient: rfc822;Gone@Client.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          "Diagnostic-Code: smtp; 550 5.1.1 <gone@client.example>: Recipient address rejected:\r\n"
          " User unknown in local recipient table\r\n")
OUR_HEADERS = ("\r\nFrom: Example Support <support@example.com>\r\nTo: gone@client.example\r\n"
               "Subject: [CASE-000001] Production down\r\n"
               "Message-ID: <casebot.0123456789abcdef01234567@example.com>\r\n")


def test_rfc3464_dsn_with_returned_headers() -> None:
    r = read_report(report("delivery-status", ("text/plain", "\r\nYour message could not be delivered."),
                           ("message/delivery-status", STATUS), ("text/rfc822-headers", OUR_HEADERS)))
    assert r.kind == "dsn" and r.is_failure
    (gone,) = r.failed
    assert (gone.address, gone.action, gone.status) == ("Gone@Client.example", "failed", "5.1.1")
    assert gone.diagnostic == ("550 5.1.1 <gone@client.example>: Recipient address rejected: "
                               "User unknown in local recipient table")
    assert r.original_message_id == "casebot.0123456789abcdef01234567@example.com"
    assert r.evidence == ("DSN: 5.1.1 for Gone@Client.example, original "
                          "<casebot.0123456789abcdef01234567@example.com>")
    assert r.diagnostic == gone.diagnostic


def test_dsn_with_the_whole_message_returned_and_opensmtpd_action_error() -> None:
    status = STATUS.replace("Action: failed", "Action: error")
    r = read_report(report("delivery-status", ("message/delivery-status", status),
                           ("message/rfc822", OUR_HEADERS + "\r\nProduction is down!\r\n")))
    assert [x.action for x in r.recipients] == ["failed"]
    assert r.original_message_id == "casebot.0123456789abcdef01234567@example.com"


def test_delayed_dsn_is_a_report_but_not_a_failure() -> None:
    status = STATUS.replace("Action: failed", "Action: delayed").replace("Status: 5.1.1", "Status: 4.4.7")
    r = read_report(report("delivery-status", ("message/delivery-status", status)))
    assert r.kind == "dsn" and not r.is_failure and r.failed == ()
    assert r.evidence.startswith("DSN (delayed): 4.4.7 for Gone@Client.example")


def test_base64_delivery_status_is_read_too() -> None:
    encoded = base64.b64encode(STATUS.strip().encode()).decode()
    r = read_report(report("delivery-status",
                           ("message/delivery-status", f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}")))
    assert [(x.address, x.status) for x in r.failed] == [("Gone@Client.example", "5.1.1")]


def test_mdn_read_receipt() -> None:
    mdn = ("\r\nReporting-UA: joes-pc.cs.example.com; Foomail 97.1\r\nOriginal-Recipient: rfc822;Joe@example.org\r\n"
           "Final-Recipient: rfc822;Joe@example.org\r\nOriginal-Message-ID: <casebot.aaaa@example.com>\r\n"
           "Disposition: manual-action/MDN-sent-manually; displayed\r\n")
    r = read_report(report("disposition-notification", ("text/plain", "\r\nThe message was displayed."),
                           ("message/disposition-notification", mdn)))
    assert (r.kind, r.original_message_id) == ("mdn", "casebot.aaaa@example.com")
    assert r.recipients == () and not r.is_failure
    assert r.evidence == ("MDN (read receipt): manual-action/MDN-sent-manually; displayed, original "
                          "<casebot.aaaa@example.com>")


def test_arf_feedback_report() -> None:
    arf = ("\r\nFeedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
           "Original-Mail-From: <support@example.com>\r\n")
    r = read_report(report("feedback-report", ("text/plain", "\r\nThis is an abuse report."),
                           ("message/feedback-report", arf), ("message/rfc822", OUR_HEADERS)))
    assert (r.kind, r.diagnostic) == ("arf", "abuse; SomeGenerator/1.0")
    assert r.evidence == ("ARF feedback report: abuse; SomeGenerator/1.0, original "
                          "<casebot.0123456789abcdef01234567@example.com>")


def test_non_standard_bounce_names_the_quoted_message_id_then_in_reply_to() -> None:
    raw = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: support@example.com\r\nSubject: failure notice\r\n"
           b"In-Reply-To: <client-1@client.example>\r\n\r\n"
           b"Hi. This is the qmail-send program at mx.example.net.\r\n"
           b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
           b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
           b"<gone@client.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
           b"--- Below this line is a copy of the message.\r\n\r\n"
           b"From: support@example.com\r\nMessage-Id: <casebot.bbbb@example.com>\r\nSubject: [CASE-000002] Hi\r\n")
    r = read_report(raw)
    assert r.kind == "bounce"
    assert [(x.address, x.status) for x in r.failed] == [("gone@client.example", "5.1.1")]
    assert r.message_ids == ("casebot.bbbb@example.com", "client-1@client.example")


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage \x80",
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary at all",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient",  # cut off
    b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\n",  # no recipient
    b"From: =?utf-8?b?\xff\xfe?= <MAILER-DAEMON@x>\r\nSubject: \xe9chec\r\n\r\nbody",  # raw 8-bit headers
], ids=["empty", "garbage", "no-boundary", "truncated", "no-recipient", "8-bit-headers"])
def test_malformed_input_never_raises(raw: bytes) -> None:
    r = read_report(raw)
    assert r.kind in ("none", "dsn", "bounce")
    assert all(x.address for x in r.recipients)


def test_five_thousand_levels_of_nesting_say_what_the_top_header_says() -> None:
    deep = (b"From: MAILER-DAEMON@x\r\nIn-Reply-To: <casebot.cccc@example.com>\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=b0\r\n\r\n")
    deep += b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
                     for i in range(5000))
    r = read_report(deep)
    assert (r.kind, r.message_ids) == ("dsn", ("casebot.cccc@example.com",))


def test_a_plain_message_is_no_report_and_only_the_first_bytes_are_read() -> None:
    assert read_report(b"From: a@b.example\r\nSubject: hi\r\n\r\nHello\r\n") is NONE
    big = report("delivery-status", ("message/delivery-status", STATUS),
                 ("application/octet-stream", "\r\n" + "x" * 200_000))
    assert read_report(big, limit=4096).failed  # the report part comes first: found within the limit
