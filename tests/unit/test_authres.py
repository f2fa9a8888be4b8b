"""casebot.mail.authres.check: is a staff message authenticated by our receiving server's Authentication-Results?

Real-world header text, shortened, from:
* [DC] deltachat/deltachat-core-rust, test-data/message/dkimchecks-2022-09-28/<receiver>/<sender>: headers as
  Gmail, Fastmail and Outlook.com delivered them (folding kept), including its forged-authres-added@example.com case.
* [AR] the authres package's own doctests (authres/tests), themselves the RFC 8601 / RFC 8463 / RFC 7489 examples.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casebot.mail.authres import NOT_CONFIGURED, AuthVerdict, check
from casebot.mail.inbound import read_head

AR = "authentication-results"

# [DC] alice@gmail.com/alice@fastmail.com: Gmail's header for mail from Fastmail (header.i only, no header.d).
GMAIL_FROM_FASTMAIL = """mx.google.com;
       dkim=pass header.i=@fastmail.com header.s=fm2 header.b=9iLihtf9;
       dkim=pass header.i=@messagingengine.com header.s=fm2 header.b=vFQyciDG;
       spf=pass (google.com: domain of alice@fastmail.com designates 66.111.4.28 as permitted sender) \
smtp.mailfrom=alice@fastmail.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=fastmail.com"""

# [DC] alice@fastmail.com/alice@outlook.com: Fastmail writes one header per group of methods; DKIM/DMARC come 4th.
FASTMAIL_FROM_OUTLOOK = [
    """mx3.messagingengine.com;
    x-csa=none;
    x-me-sender=none;
    x-ptr=fail smtp.helo=EUR01-VE1-obe.outbound.protection.outlook.com
      policy.ptr=mail-oln040092066024.outbound.protection.outlook.com""",
    """mx3.messagingengine.com;
    bimi=skipped (DMARC Policy is not at enforcement)""",
    """mx3.messagingengine.com;
    arc=pass (as.1.microsoft.com=pass, ams.1.microsoft.com=pass)
      smtp.remote-ip=40.92.66.24""",
    """mx3.messagingengine.com;
    dkim=pass (2048-bit rsa key sha256) header.d=outlook.com
      header.i=@outlook.com header.b=Qx1vn7vt header.a=rsa-sha256
      header.s=selector1 x-bits=2048;
    dmarc=pass policy.published-domain-policy=none
      policy.published-subdomain-policy=quarantine
      policy.applied-disposition=none policy.evaluated-disposition=none
      (p=none,sp=quarantine,d=none,d.eval=none) policy.policy-from=p
      header.from=outlook.com;
    iprev=pass smtp.remote-ip=40.92.66.24
      (mail-oln040092066024.outbound.protection.outlook.com);
    spf=pass smtp.mailfrom=alice@outlook.com
      smtp.helo=EUR01-VE1-obe.outbound.protection.outlook.com""",
]

# [DC] alice@outlook.com/alice@gmail.com: Microsoft 365 / Outlook.com write no authserv-id (not RFC 8601 syntax).
MICROSOFT_FROM_GMAIL = """spf=pass (sender IP is 209.85.128.67)
 smtp.mailfrom=gmail.com; dkim=pass (signature was verified)
 header.d=gmail.com;dmarc=pass action=none header.from=gmail.com;compauth=pass
 reason=100"""

# [DC] alice@gmail.com/forged-authres-added@example.com: Gmail's own header has only SPF; the sender appended
# Authentication-Results of its own below From.
GMAIL_SPF_ONLY = """mx.google.com;
       spf=neutral (google.com: 89.22.108.212 is neither permitted nor denied by best guess record for domain of \
alice@delta.blinzeln.de) smtp.mailfrom=alice@delta.blinzeln.de"""

# [AR] RFC 8601 appendix B.6: a pass by a relay's signature, a fail by the author's.
RFC8601_B6 = ("example.com; dkim=pass (good signature) header.d=mail-router.example.net; "
              "dkim=fail (bad signature) header.d=newyork.example.com")
# [AR] RFC 8463 section 3 style: an ed25519 pass and an rsa fail, both d=example.com.
RFC8463 = ("relay02.example.org; dkim=pass (Good 256 bit ed25519-sha256 signature.) header.d=example.com "
           "header.i=@example.com header.a=ed25519-sha256; dkim=fail (Bad 1024 bit rsa-sha256 signature.) "
           "header.d=example.com header.i=@example.com header.a=rsa-sha256")
# [AR] the dmarc extension's doctest.
DMARC_ONLY = "mail-router.example.net; dmarc=pass header.from=example.com policy.dmarc=none"
# The shape of Gmail's header for spoofed mail (dkim=fail, dmarc=fail with the published policy in a comment).
GMAIL_ALL_FAIL = """mx.google.com;
       dkim=fail header.i=@example.com header.s=s1 header.b=AbCd1234;
       spf=softfail (google.com: domain of transitioning boss@example.com does not designate 203.0.113.9 as \
permitted sender) smtp.mailfrom=boss@example.com;
       dmarc=fail (p=REJECT sp=REJECT dis=REJECT) header.from=example.com"""

FROM = ("from", "Boss <boss@example.com>")
RECEIVED_OURS = ("received", "from mail.example.com (mail.example.com [192.0.2.1]) by mx.ours.example (Postfix)")
RECEIVED_SENDERS = ("received", "from laptop (unknown [198.51.100.7]) by mail.evil.example (Postfix)")

CASES: list[tuple[str, list[tuple[str, str]], str, str, bool, str]] = [
    # (id, header items top first, authserv_id, From domain, verified, words the evidence must contain)
    ("gmail-dkim-aligned-via-header.i", [(AR, GMAIL_FROM_FASTMAIL), ("from", "<alice@fastmail.com>")],
     "mx.google.com", "fastmail.com", True,
     "Authentication-Results from mx.google.com: dkim=pass header.i=@fastmail.com (aligned with From fastmail.com)"),
    ("fastmail-several-headers-4th-passes", [*((AR, v) for v in FASTMAIL_FROM_OUTLOOK), ("from", "<a@outlook.com>")],
     "mx3.messagingengine.com", "outlook.com", True,
     "dkim=pass header.d=outlook.com (aligned with From outlook.com)"),
    ("pass-not-aligned", [(AR, RFC8601_B6), FROM],
     "example.com", "newyork.example.com", False,
     "dkim=pass header.d=mail-router.example.net (not aligned with From newyork.example.com); "
     "dkim=fail header.d=newyork.example.com"),
    ("relaxed-alignment-subdomain-from", [(AR, RFC8463), FROM],
     "relay02.example.org", "mail.example.com", True,
     "dkim=pass header.d=example.com (aligned with From mail.example.com)"),
    ("parent-is-not-aligned-with-child-d", [(AR, "mx.ours.example; dkim=pass header.d=mail.example.com"), FROM],
     "mx.ours.example", "example.com", False, "(not aligned with From example.com)"),
    ("suffix-is-not-a-parent", [(AR, "mx.ours.example; dkim=pass header.d=example.com"), FROM],
     "mx.ours.example", "notexample.com", False, "(not aligned with From notexample.com)"),
    ("single-label-d-never-aligns", [(AR, "mx.ours.example; dkim=pass header.d=com"), FROM],
     "mx.ours.example", "example.com", False, "dkim=pass header.d=com (not aligned"),
    ("dkim-pass-without-domain", [(AR, "mx.ours.example; dkim=pass header.s=sel"), FROM],
     "mx.ours.example", "example.com", False, "dkim=pass (no header.d)"),
    ("dmarc-pass", [(AR, DMARC_ONLY), FROM],
     "mail-router.example.net", "example.com", True,
     "Authentication-Results from mail-router.example.net: dmarc=pass header.from=example.com"),
    ("dmarc-pass-without-header.from", [(AR, "mx.ours.example; dmarc=pass"), FROM],
     "mx.ours.example", "example.com", True, "dmarc=pass"),
    ("dmarc-pass-for-another-domain", [(AR, "mx.ours.example; dmarc=pass header.from=evil.example"), FROM],
     "mx.ours.example", "example.com", False, "dmarc=pass header.from=evil.example (not the From domain"),
    ("dmarc-fail-and-dkim-fail", [(AR, GMAIL_ALL_FAIL), FROM],
     "mx.google.com", "example.com", False,
     "show no DKIM pass aligned with From example.com and no DMARC pass: dkim=fail header.i=@example.com; "
     "dmarc=fail header.from=example.com"),
    ("only-spf", [(AR, GMAIL_SPF_ONLY), ("from", "forged-authres-added@example.com")],
     "mx.google.com", "example.com", False, "no dkim or dmarc result"),
    ("forged-below-from", [(AR, GMAIL_SPF_ONLY), ("from", "forged-authres-added@example.com"),
                           (AR, "mx.google.com; dkim=pass header.i=@example.com")],
     "mx.google.com", "example.com", False,
     "ignored 1 Authentication-Results naming mx.google.com below the sender's headers"),
    ("forged-below-received", [RECEIVED_OURS, (AR, "mx.ours.example; spf=pass smtp.mailfrom=example.com"),
                               RECEIVED_SENDERS, (AR, "mx.ours.example; dkim=pass header.d=example.com"), FROM],
     "mx.ours.example", "example.com", False, "ignored 1 Authentication-Results naming mx.ours.example below"),
    ("forged-only-below-from", [RECEIVED_OURS, ("subject", "hi"), (AR, "mx.ours.example; dmarc=pass")],
     "mx.ours.example", "example.com", False,
     "no Authentication-Results from mx.ours.example above the sender's headers; ignored 1"),
    ("other-authserv-id", [(AR, GMAIL_FROM_FASTMAIL), ("from", "<alice@fastmail.com>")],
     "mx.ours.example", "fastmail.com", False,
     "no Authentication-Results from mx.ours.example above the sender's headers; "
     "ignored Authentication-Results from mx.google.com"),
    ("ours-fails-ours-passes", [(AR, "mx.ours.example; dkim=fail (bad signature) header.d=example.com"),
                                (AR, "mx.ours.example; dmarc=pass header.from=example.com"), FROM],
     "mx.ours.example", "example.com", True, "dmarc=pass header.from=example.com"),
    ("theirs-passes-ours-fails", [(AR, "mx.other.example; dkim=pass header.d=example.com"),
                                  (AR, "mx.ours.example; dkim=fail header.d=example.com"), FROM],
     "mx.ours.example", "example.com", False, "dkim=fail header.d=example.com; ignored Authentication-Results from "
     "mx.other.example"),
    ("microsoft-365-has-no-authserv-id", [(AR, MICROSOFT_FROM_GMAIL), ("from", "<alice@gmail.com>")],
     "outlook.com", "gmail.com", False, "skipped an unreadable Authentication-Results (Syntax error"),
    ("malformed-then-good", [(AR, "mx.ours.example; dkim=pass (unterminated comment header.d=example.com"),
                             (AR, "mx.ours.example; dkim=pass header.d=example.com"), FROM],
     "mx.ours.example", "example.com", True,
     "dkim=pass header.d=example.com (aligned with From example.com); skipped an unreadable"),
    ("unknown-version", [(AR, "mx.ours.example 2; dkim=pass header.d=example.com"), FROM],
     "mx.ours.example", "example.com", False, "Unsupported Authentication-Results header version: 2"),
    ("empty-value", [(AR, ""), FROM], "mx.ours.example", "example.com", False, "Expected authserv-id"),
    ("deeply-nested-comment", [(AR, "mx.ours.example; dkim=pass " + "(" * 3000), FROM],
     "mx.ours.example", "example.com", False, "skipped an unreadable Authentication-Results"),
    ("too-long", [(AR, "mx.ours.example; dkim=pass header.d=example.com" + " (x)" * 3000), FROM],
     "mx.ours.example", "example.com", False, "longer than 8192 characters"),
    ("raw-8bit-bytes", [(AR, "mx.ours.example; dkim=pass header.d=ex\udcc3\udca9ample.com"), FROM],
     "mx.ours.example", "example.com", False, "skipped an unreadable Authentication-Results"),
    ("crlf-folded", [(AR, "mx.ours.example;\r\n\tdkim=pass\r\n header.d=example.com\r\n header.s=sel;\r\n"
                          " dmarc=fail header.from=example.com"), FROM],
     "mx.ours.example", "example.com", True, "dkim=pass header.d=example.com (aligned"),
    ("uppercase-everything", [("AUTHENTICATION-RESULTS", "MX.GOOGLE.COM; DKIM=PASS HEADER.I=@FASTMAIL.COM"),
                              ("FROM", "<ALICE@FASTMAIL.COM>")],
     "Mx.Google.Com", "FastMail.COM", True, "dkim=pass header.i=@fastmail.com (aligned with From fastmail.com)"),
    ("trace-headers-above", [("return-path", "<boss@example.com>"), ("delivered-to", "help@ours.example"),
                             ("x-original-to", "help@ours.example"), RECEIVED_OURS,
                             ("arc-seal", "i=1; a=rsa-sha256; cv=none; d=ours.example; s=arc; b=AAAA"),
                             ("x-spam-status", "No, score=-0.1"), ("received-spf", "Pass (mailfrom) identity=mailfrom"),
                             (AR, "mx.ours.example; dkim=pass header.d=example.com"), FROM],
     "mx.ours.example", "example.com", True, "aligned with From example.com"),
    ("no-authentication-results", [RECEIVED_OURS, FROM], "mx.ours.example", "example.com", False,
     "no Authentication-Results from mx.ours.example above the sender's headers"),
    ("authserv-id-not-set", [(AR, "mx.ours.example; dkim=pass header.d=example.com"), FROM],
     "", "example.com", False, NOT_CONFIGURED),
    ("from-without-domain", [(AR, "mx.ours.example; dmarc=pass"), FROM],
     "mx.ours.example", "", False, "the From header has no domain"),
]


@pytest.mark.parametrize(("items", "authserv_id", "from_domain", "verified", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check(items: list[tuple[str, str]], authserv_id: str, from_domain: str, verified: bool, words: str) -> None:
    verdict = check(items, authserv_id, from_domain)
    assert isinstance(verdict, AuthVerdict)
    assert verdict.verified is verified, verdict.evidence
    assert words in verdict.evidence
    assert "\n" not in verdict.evidence and len(verdict.evidence) <= 600


def test_empty_authserv_id_evidence_is_exact() -> None:
    assert check([], "  ", "example.com") == AuthVerdict(False, NOT_CONFIGURED)
    assert NOT_CONFIGURED == "staff identity rests on the From header alone (staff.authserv_id is not set)"


def test_gmail_layout_read_from_raw_bytes() -> None:
    """End to end with `read_head`: Gmail's order (Delivered-To, its own Received, X-Received, ARC-*, Return-Path,
    the incoming hop's Received, Received-SPF, then Authentication-Results), CRLF-folded; a copy of the header that
    the sender placed under its DKIM-Signature must not count even when it alone would pass."""
    raw = (
        b"Delivered-To: help@gmail.com\r\n"
        b"Received: by 2002:a05:6a10:1234 with SMTP id abc;\r\n        Tue, 27 Sep 2022 06:01:02 -0700 (PDT)\r\n"
        b"X-Received: by 2002:a17:906:abcd with SMTP id def;\r\n        Tue, 27 Sep 2022 06:01:02 -0700 (PDT)\r\n"
        b"ARC-Seal: i=1; a=rsa-sha256; t=1664283662; cv=none; d=google.com; s=arc-20160816; b=AAAA\r\n"
        b"Return-Path: <alice@fastmail.com>\r\n"
        b"Received: from wout2-smtp.messagingengine.com (wout2-smtp.messagingengine.com. [64.147.123.25])\r\n"
        b"        by mx.google.com with ESMTPS id x1;\r\n        Tue, 27 Sep 2022 06:01:02 -0700 (PDT)\r\n"
        b"Received-SPF: pass (google.com: domain of alice@fastmail.com designates 64.147.123.25 as permitted"
        b" sender) client-ip=64.147.123.25;\r\n"
        b"Authentication-Results: mx.google.com;\r\n"
        b"       spf=pass (google.com: domain of alice@fastmail.com designates 64.147.123.25 as permitted sender)"
        b" smtp.mailfrom=alice@fastmail.com\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=fastmail.com; s=fm2; b=BBBB\r\n"
        b"Authentication-Results: mx.google.com; dmarc=pass header.from=fastmail.com\r\n"
        b"From: <alice@fastmail.com>\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    verdict = check(read_head(raw).items, "mx.google.com", "fastmail.com")
    assert not verdict.verified
    assert verdict.evidence == ("Authentication-Results from mx.google.com show no DKIM pass aligned with From "
                                "fastmail.com and no DMARC pass: no dkim or dmarc result; ignored 1 "
                                "Authentication-Results naming mx.google.com below the sender's headers")
    good = raw.replace(b"smtp.mailfrom=alice@fastmail.com\r\n", b"smtp.mailfrom=alice@fastmail.com;\r\n"
                       b"       dkim=pass header.i=@fastmail.com header.s=fm2 header.b=9iLihtf9\r\n", 1)
    assert check(read_head(good).items, "mx.google.com", "fastmail.com").verified


def test_second_block_below_our_received_is_not_believed() -> None:
    """Fail-safe: after our block, a Received ends what we believe, even if ours wrote the lower block too."""
    items = [(AR, "mx.ours.example; spf=pass smtp.mailfrom=example.com"), RECEIVED_OURS,
             (AR, "mx.ours.example; dkim=pass header.d=example.com"), FROM]
    assert not check(items, "mx.ours.example", "example.com").verified
    # ... while Received headers above our first Authentication-Results are passed over.
    assert check(items[1:], "mx.ours.example", "example.com").verified


def test_a_flood_of_headers_is_cut_short() -> None:
    flood = [(AR, "mx.other.example; dkim=fail header.d=example.com")] * 5000
    verdict = check([*flood, (AR, "mx.ours.example; dmarc=pass")], "mx.ours.example", "example.com")
    assert not verdict.verified
    assert "read only the first 50 Authentication-Results" in verdict.evidence
    assert "ignored 1 Authentication-Results naming mx.ours.example below" in verdict.evidence


def test_idn_from_domain_matches_a_label_d() -> None:
    items = [(AR, "mx.ours.example; dkim=pass header.d=xn--bcher-kva.example")]
    assert check(items, "mx.ours.example", "bücher.example").verified


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([AR, "received", "from", "arc-seal", "x-spam-flag"]),
                          st.text(alphabet=st.sampled_from(list("mx.ours.example;=()\"@\\ \r\n\tdkimpassheaderfrom/1")),
                                  max_size=80)),
                max_size=6))
def test_never_raises(items: list[tuple[str, str]]) -> None:
    verdict = check(items, "mx.ours.example", "example.com")
    assert isinstance(verdict.verified, bool) and isinstance(verdict.evidence, str)
