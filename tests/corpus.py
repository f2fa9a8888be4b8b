"""Deterministic corpus of realistic raw RFC 5322 support-desk messages.

This module owns the synthetic mail used by the unit/integration tests and the benchmark:
:func:`generate` builds a reproducible list of :class:`Sample` objects (raw CRLF bytes plus the
ground truth a test needs: kind, bare sender address, Message-ID, whether the message is
automated and, for replies, which earlier sample it answers), and :func:`write_maildir` drops
such a list into a Maildir so the Maildir/IMAP ingestion paths can be exercised end to end.

Kinds and what they exercise:

* ``plain`` / ``urgent`` - ordinary customer mail (text/plain, sometimes multipart/alternative),
  urgent ones carry outage/data-loss/security subjects;
* ``html_only`` - a single text/html part, some with a hidden ``display:none`` element whose text
  ("urgent production down") must not influence priority;
* ``attachment`` - multipart/mixed with a PDF-ish blob and/or a log file, including hostile file
  names (path traversal, encoded CR/LF, RFC 2231 non-ASCII);
* ``reply`` - a follow-up by the same sender with In-Reply-To/References to an earlier sample;
* ``auto_reply``, ``bounce``, ``list``, ``bulk`` - mail a helpdesk must never auto-acknowledge;
* ``malformed`` - deliverable but nasty bytes (one variant per sample, rotating);
* ``charset`` - legacy charsets (ISO-8859-1, windows-1252, Shift_JIS, KOI8-R) and RFC 2047 subjects;
* ``no_message_id`` - no Message-ID header at all.

Import it as ``from corpus import generate`` (tests/ is on sys.path, like ``servers``).

Everything is derived from ``random.Random(seed)`` (never from ``hash()`` or the clock), so the
same ``(n, seed, domain, support)`` always yields byte-identical output.

Note on ``sender``: it is the bare, lowercased address of the From header. For the malformed
"display name containing an address" variant (``From: billing@bank.example <real@client.example>``)
it is the angle-bracket address, which is *not* what ``email.utils.parseaddr`` returns. Null-sender
bounces (``Return-Path: <>`` and ``From: Mail Delivery System <>``) have ``sender == ''``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import quopri
import random
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

__all__ = ["AUTOMATED_KINDS", "KINDS", "Sample", "generate", "write_maildir"]


@dataclass(frozen=True)
class Sample:
    """One generated message and the facts a test can assert against."""

    kind: str
    """One of :data:`KINDS`."""
    raw: bytes
    """The complete message, CRLF line endings."""
    sender: str
    """Bare lowercase address of the From ('' for null-sender bounces)."""
    message_id: str | None
    """Message-ID without angle brackets, ``None`` when the message has none."""
    automated: bool
    """True when a helpdesk must NOT auto-acknowledge it."""
    reply_to_index: int | None
    """For kind ``reply``: index in the generated list of the sample it answers."""


KINDS: tuple[str, ...] = (
    "plain",
    "html_only",
    "attachment",
    "reply",
    "auto_reply",
    "bounce",
    "list",
    "bulk",
    "malformed",
    "charset",
    "no_message_id",
    "urgent",
)

AUTOMATED_KINDS: frozenset[str] = frozenset({"auto_reply", "bounce", "list", "bulk"})
# Automated answers to mail casebot does not have (the corpus's bounces and out-of-office replies name made-up
# Message-IDs): casebot keeps them without a case.
CASELESS_KINDS: frozenset[str] = frozenset({"auto_reply", "bounce"})

# Percent of the corpus per kind (sums to 100).
_WEIGHTS: dict[str, int] = {
    "plain": 37,
    "html_only": 10,
    "attachment": 8,
    "reply": 12,
    "auto_reply": 5,
    "bounce": 5,
    "list": 5,
    "bulk": 5,
    "malformed": 5,
    "charset": 3,
    "no_message_id": 2,
    "urgent": 3,
}

# Kinds whose samples may be answered by a "reply" sample.
_REPLYABLE: frozenset[str] = frozenset({"plain", "html_only", "attachment", "reply", "charset", "urgent"})

_MIN_N_FOR_ALL_KINDS = 24

# --------------------------------------------------------------------------------------------
# Static content
# --------------------------------------------------------------------------------------------

# (display name, local part, domain key). Domain key "@client" is replaced by ``domain``.
_PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("Alice Martin", "alice", "@client"),
    ("Bob Keller", "bob", "@client"),
    ("Carol Nguyen", "carol.nguyen", "@client"),
    ("Dave Okafor", "dave", "@client"),
    ("Erin Walsh", "erin.walsh", "@client"),
    ("Frank Dubois", "frank", "@client"),
    ("Grace Liu", "grace.liu", "@client"),
    ("Heidi Schmidt", "heidi", "@client"),
    ("Ivan Petrov", "ivan.petrov", "@client"),
    ("Judy Alvarez", "judy", "@client"),
    ("Niaj Haddad", "niaj", "@client"),
    ("Olivia Brown", "olivia.brown", "@client"),
    ("Peggy Larsen", "peggy", "@client"),
    ("Quentin Moreau", "q.moreau", "@client"),
    ("Bob Turner", "bob", "acme.example"),
    ("Sarah Connelly", "sarah.connelly", "acme.example"),
    ("Tom Becker", "tbecker", "acme.example"),
    ("Uma Patel", "uma.patel", "acme.example"),
    ("Victor Hugo Reyes", "victor.reyes", "acme.example"),
    ("Wendy Fischer", "wendy", "acme.example"),
    ("Xavier Rossi", "x.rossi", "acme.example"),
    ("Yasmin Kaur", "yasmin.kaur", "acme.example"),
    ("Zoe Anderson", "zoe", "acme.example"),
    ("IT Helpdesk ACME", "it-ops", "acme.example"),
    ("Accounts Payable", "ap", "acme.example"),
    ("Liam O'Brien", "liam.obrien", "acme.example"),
    ("Hank Scorpio", "hank", "globex.example"),
    ("Mindy Simmons", "mindy.simmons", "globex.example"),
    ("Frank Grimes", "fgrimes", "globex.example"),
    ("Lisa Lionheart", "lisa", "globex.example"),
    ("Marco Bianchi", "marco.bianchi", "globex.example"),
    ("Nora Jensen", "nora.jensen", "globex.example"),
    ("Omar Farouk", "omar", "globex.example"),
    ("Priya Raman", "priya.raman", "globex.example"),
    ("Rosa Delgado", "rosa", "globex.example"),
    ("Stefan Wagner", "stefan.wagner", "globex.example"),
    ("Peter Gibbons", "peter.gibbons", "initech.example"),
    ("Samir Nagheenanajar", "samir", "initech.example"),
    ("Michael Bolton", "michael.bolton", "initech.example"),
    ("Joanna Smith", "joanna", "initech.example"),
    ("Bill Lumbergh", "blumbergh", "initech.example"),
    ("Milton Waddams", "milton", "initech.example"),
    ("Tom Smykowski", "tom.smykowski", "initech.example"),
    ("Kenji Watanabe", "kenji.watanabe", "initech.example"),
    ("Anna Kowalska", "anna.kowalska77", "gmail.com"),
    ("Jose Garcia", "jgarcia.consulting", "gmail.com"),
    ("Emily Chen", "emily.chen.design", "gmail.com"),
    ("Lars Eriksson", "lars.eriksson", "gmail.com"),
    ("Fatima Zahra", "fatima.z1988", "gmail.com"),
    ("Dmitri Volkov", "dvolkov", "gmail.com"),
)

_BULK_SENDERS: tuple[tuple[str, str], ...] = (
    ("Globex Marketing", "news@marketing.globex.example"),
    ("SaaSMetrics Digest", "digest@saasmetrics.example"),
    ("CloudHost Status", "noreply@status.cloudhost.example"),
    ("Webinar Team", "events@webinars.example"),
    ("Vendor Newsletter", "newsletter@vendor.example"),
)

# UTC offsets (hours) used to render Date headers per sender domain.
_TZ_BY_DOMAIN: dict[str, int] = {
    "acme.example": -5,
    "globex.example": 0,
    "initech.example": -6,
    "gmail.com": 2,
}
_DEFAULT_TZ = 1

_QUESTIONS: tuple[tuple[str, str], ...] = (
    (
        "How do I export my invoices?",
        "Our accountant needs all invoices from Q3 as PDFs. I could only find a way to download "
        "them one by one. Is there a bulk export somewhere?",
    ),
    (
        "How do I add a new user?",
        "We hired two people in the finance team. How do I give them access to our account, and "
        "can I limit them to read-only?",
    ),
    (
        "Question about SSO configuration",
        "We are moving to Azure AD. Do you support SAML single sign-on on our plan, and where do "
        "I find the metadata URL?",
    ),
    (
        "Can we change the billing address?",
        "Our office moved. Could you tell me how to update the billing address so that the next "
        "invoice shows the new one?",
    ),
    (
        "Password reset email not received",
        "I requested a password reset twice this morning but nothing arrived, not even in the "
        "spam folder. Could you check whether it was sent?",
    ),
    (
        "API rate limits?",
        "We are planning an integration with our ERP. What are the API rate limits and is there "
        "a sandbox we can test against?",
    ),
    (
        "Where can I find the audit log?",
        "Our auditors asked for a list of logins for the last 90 days. Is the audit log "
        "available in the admin panel?",
    ),
    (
        "Is there a mobile app?",
        "Several of our field technicians would like to check tickets on their phones. Is there "
        "an app for iOS/Android or should they use the browser?",
    ),
    (
        "Renewal quote for 2027",
        "Our subscription renews in January. Can you send a quote for 25 seats for 2027?",
    ),
    (
        "Two-factor authentication for all users",
        "Is it possible to enforce 2FA for everybody in our organisation instead of asking each "
        "person to enable it?",
    ),
)

_WORKAROUNDS: tuple[tuple[str, str], ...] = (
    (
        "Report export slow, workaround: use CSV",
        "Exporting the monthly report to Excel takes more than ten minutes and sometimes times "
        "out. Exporting to CSV works fine, so we are using that for now, but please have a look.",
    ),
    (
        "Dashboard widgets not refreshing",
        "The dashboard widgets stopped refreshing automatically since yesterday. Pressing F5 "
        "reloads them, so it is not blocking, just annoying.",
    ),
    (
        "Search results missing archived tickets",
        "When I search for an old customer name, archived tickets do not show up. If I open the "
        "archive view first and search there, they are found.",
    ),
    (
        "Calendar sync duplicates events",
        "Since the update every event appears twice in Outlook. Removing and re-adding the "
        "calendar subscription fixes it for a day or so.",
    ),
    (
        "PDF invoice shows wrong VAT rate",
        "The PDF invoice shows 19% VAT although the invoice total is computed with 7%. The web "
        "view is correct, so we send screenshots to customers at the moment.",
    ),
    (
        "Email notifications delayed by ~1 hour",
        "Notifications about new comments arrive roughly an hour late. We check the web "
        "interface manually in the meantime.",
    ),
    (
        "Import fails with semicolon-separated files",
        "The contact import rejects our file because it uses semicolons. Converting it to commas "
        "in a text editor works, but the German Excel always saves with semicolons.",
    ),
)

_MAJOR: tuple[tuple[str, str], ...] = (
    (
        "Reports module unavailable since this morning",
        "Since about 8 am the Reports module only shows a spinner, for every user in our "
        "company. We cannot prepare the board meeting without it.",
    ),
    (
        "Cannot log in - SSO error for the whole team",
        "Nobody in our team can log in since 9:30. After the Microsoft login page we get "
        "'SAML response invalid'. Local accounts still work, but we only have one.",
    ),
    (
        "Payment module not loading",
        "The payments page returns an empty white screen. Our customers cannot pay online "
        "today, which is a real problem at month end.",
    ),
    (
        "Scheduled exports stopped running",
        "None of our scheduled exports ran last night. The job list shows them as 'queued' "
        "since 02:00. Our warehouse depends on these files.",
    ),
    (
        "Mobile app crashes on start after update",
        "After the update to version 4.2 the app crashes immediately on every Android phone we "
        "have. Our technicians in the field cannot see their jobs.",
    ),
    (
        "File uploads fail with error 413",
        "Uploading any attachment larger than 1 MB fails with 'Request Entity Too Large'. This "
        "worked last week and we need it for every ticket.",
    ),
)

_MINOR: tuple[tuple[str, str], ...] = (
    (
        "Typo on the login page",
        "Small thing: the login page says 'Pasword' instead of 'Password'.",
    ),
    (
        "Feature request: dark mode",
        "Several colleagues asked whether a dark mode is planned. It would be nice for the night shift.",
    ),
    (
        "Logo looks blurry in the PDF",
        "Our company logo looks a bit blurry on generated PDFs. We uploaded a 600 dpi PNG.",
    ),
    (
        "Date format in exports",
        "Exports use MM/DD/YYYY although our locale is set to German. Could that follow the account setting?",
    ),
)

_URGENT: tuple[tuple[str, str], ...] = (
    (
        "URGENT: production system down",
        "Our production system is down since 07:40. All users get 'Service unavailable'. "
        "This is blocking our entire operation, please call me back immediately.",
    ),
    (
        "Data loss after update",
        "After last night's update all tickets created between Monday and Wednesday are gone. "
        "We have no other copy of this data. Please stop any cleanup jobs on our account.",
    ),
    (
        "Security breach suspected",
        "We see logins to our admin account from an IP address in a country where we have no "
        "staff, and two API keys were created that nobody here knows about.",
    ),
    (
        "Production system down - checkout returns 500",
        "Our web shop checkout returns HTTP 500 for every order since 10:15. We are losing "
        "sales every minute.",
    ),
    (
        "CRITICAL: all customer data inaccessible",
        "Every page that shows customer records fails with a database error. Our call centre "
        "(40 agents) is completely blocked.",
    ),
)

_GREETINGS = ("Hi,", "Hello support team,", "Hi there,", "Good morning,", "Dear Support,", "Hello,")
_CLOSINGS = ("Thanks,", "Best regards,", "Cheers,", "Kind regards,", "Thank you,", "Regards,")
_DETAILS = (
    "Browser: Firefox 132 on Windows 11.",
    "We are on the Business plan, account ID {acct}.",
    "Happens with Chrome and Edge, cleared cache already.",
    "This affects about {count} users on our side.",
    "Our account number is {acct}, in case you need it.",
    "Ticket reference from last time: #{ticket}.",
    "I attached nothing because the screen is just blank.",
    "I can do a screen share this afternoon if that helps.",
)
_SIGNATURES = (
    "",
    "\n--\n{name}\n{company}\nPhone: +1 555 01{phone}",
    "\n\nSent from my iPhone",
    "\n--\n{name} | {company}\nThis e-mail may contain confidential information.",
    "\n\n{name}\nIT Department, {company}",
)
_MAILERS = (
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.200.91)",
    "Mozilla Thunderbird 128.4.2",
    "",
    "",
)
_REPLY_PREFIXES = ("Re:", "RE:", "AW:", "SV:", "VS:", "RE[2]:")
_FOLLOW_UPS = (
    "Any update on this? It is still happening.",
    "Thanks for the quick answer. The workaround helps, but we would like a permanent fix.",
    "This is now affecting the whole team, could you please prioritise it?",
    "Additional info: it also happens in the Safari browser on macOS.",
    "Never mind my last question, I found it in the documentation. The rest still applies.",
    "Could you please confirm you received this? We have not heard back yet.",
)

# (charset, transfer encoding, subject, body)
_CHARSET_SAMPLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "iso-8859-1",
        "8bit",
        "Problème d'accès au module Rapports",
        "Bonjour,\n\nDepuis ce matin, je n'arrive plus à accéder au module Rapports. "
        "Le message affiché est « Accès refusé ».\n\nCordialement,\nFrançois Lefèvre",
    ),
    (
        "windows-1252",
        "quoted-printable",
        "Rechnung \u201eNovember\u201c zeigt 0 \u20ac",
        "Hallo,\n\ndie Rechnung f\u00fcr November zeigt einen Betrag von 0 \u20ac \u2013 "
        "das kann nicht stimmen. K\u00f6nnen Sie das pr\u00fcfen?\n\nMit freundlichen Gr\u00fc\u00dfen\n"
        "J\u00fcrgen M\u00fcller",
    ),
    (
        "shift_jis",
        "base64",
        "\u8acb\u6c42\u66f8\u3092\u30c0\u30a6\u30f3\u30ed\u30fc\u30c9\u3067\u304d\u307e\u305b\u3093",
        "\u30b5\u30dd\u30fc\u30c8\u3054\u62c5\u5f53\u8005\u69d8\n\n"
        "\u4eca\u671d\u304b\u3089\u8acb\u6c42\u66f8\u306ePDF\u3092\u30c0\u30a6\u30f3\u30ed\u30fc"
        "\u30c9\u3067\u304d\u307e\u305b\u3093\u3002\u78ba\u8a8d\u3057\u3066\u3044\u305f\u3060"
        "\u3051\u307e\u3059\u3067\u3057\u3087\u3046\u304b\u3002\n\n\u6e21\u8fba",
    ),
    (
        "koi8-r",
        "8bit",
        "\u041d\u0435 \u0440\u0430\u0431\u043e\u0442\u0430\u0435\u0442 \u044d\u043a\u0441\u043f"
        "\u043e\u0440\u0442 \u043e\u0442\u0447\u0451\u0442\u043e\u0432",
        "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435!\n\n"
        "\u042d\u043a\u0441\u043f\u043e\u0440\u0442 \u043e\u0442\u0447\u0451\u0442\u043e\u0432 "
        "\u0432 Excel \u043d\u0435 \u0440\u0430\u0431\u043e\u0442\u0430\u0435\u0442 \u0441 "
        "\u0443\u0442\u0440\u0430.\n\n\u0421 \u0443\u0432\u0430\u0436\u0435\u043d\u0438\u0435"
        "\u043c,\n\u0414\u043c\u0438\u0442\u0440\u0438\u0439",
    ),
    (
        "iso-8859-1",
        "quoted-printable",
        "Zugang für neue Mitarbeiterin",
        "Guten Tag,\n\nbitte richten Sie einen Zugang für Frau Schäfer ein (Abteilung Einkauf)."
        "\n\nVielen Dank und schöne Grüße\nHeidi Müßig",
    ),
)

_OOO_BODIES = (
    "I am out of the office until {until} with limited access to email. "
    "For urgent matters please contact {backup}.",
    "Thank you for your message. I am currently on annual leave and will return on {until}. "
    "Your email will not be forwarded.",
    "Ich bin bis {until} nicht im Büro. In dringenden Fällen wenden Sie sich bitte an {backup}.",
)
_OOO_SUBJECTS = ("Out of Office: {subj}", "Automatic reply: {subj}", "Abwesenheitsnotiz: {subj}")

_LIST_SUBJECTS = (
    "[users] Anyone else seeing slow exports?",
    "[users] Tip: keyboard shortcuts for the ticket view",
    "[users] Meetup in Berlin on 3 December",
    "[users] Re: Best practice for SLA calendars",
)
_BULK_SUBJECTS = (
    "Your November product update",
    "Webinar: 5 ways to cut your cloud bill",
    "Weekly digest: 12 new articles",
    "Last chance: 30% off annual plans",
    "Scheduled maintenance notification",
)

_HIDDEN_HTML = '<div style="display:none">urgent production down</div>'


# --------------------------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------------------------


def _crlf(data: bytes) -> bytes:
    """Normalise every line ending to CRLF."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def _q_encode(data: bytes) -> str:
    out: list[str] = []
    for byte in data:
        ch = chr(byte)
        if ch.isascii() and (ch.isalnum() or ch in ".-!*+/"):
            out.append(ch)
        elif ch == " ":
            out.append("_")
        else:
            out.append(f"={byte:02X}")
    return "".join(out)


def _encoded_word(text: str, charset: str, enc: str) -> str:
    data = text.encode(charset)
    if enc == "b":
        return f"=?{charset}?b?{base64.b64encode(data).decode('ascii')}?="
    return f"=?{charset}?q?{_q_encode(data)}?="


def _encode_header_text(text: str, charset: str = "utf-8", enc: str = "q") -> str:
    """RFC 2047-encode ``text`` (if needed) into folded encoded-words of at most 75 chars."""
    if text.isascii():
        return text
    # Like real clients, keep leading ASCII words ("Re:", "Zugang") literal and encode the rest.
    tokens = text.split(" ")
    first = next(i for i, tok in enumerate(tokens) if not tok.isascii())
    if first > 0:
        head = " ".join(tokens[:first])
        return head + " " + _encode_header_text(" ".join(tokens[first:]), charset, enc)
    words: list[str] = []
    chunk = ""
    for ch in text:
        candidate = chunk + ch
        if chunk and len(_encoded_word(candidate, charset, enc)) > 75:
            words.append(_encoded_word(chunk, charset, enc))
            chunk = ch
        else:
            chunk = candidate
    if chunk:
        words.append(_encoded_word(chunk, charset, enc))
    return "\n ".join(words)


def _format_addr(name: str, addr: str) -> str:
    if not name:
        return addr
    if not name.isascii():
        return f"{_encode_header_text(name)} <{addr}>"
    if re.search(r"[^A-Za-z0-9 !#$%&*+\-/=?^_`{|}~]", name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{addr}>'
    return f"{name} <{addr}>"


def _encode_body(text: str, charset: str, cte: str) -> bytes:
    data = text.encode(charset)
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return quopri.encodestring(data)
    return data


def _header_bytes(headers: Sequence[tuple[str, str | bytes]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw_value = value if isinstance(value, bytes) else value.encode("ascii")
        out += name.encode("ascii") + b": " + raw_value + b"\n"
    return bytes(out)


def _part(headers: Sequence[tuple[str, str | bytes]], body: bytes) -> bytes:
    return _header_bytes(headers) + b"\n" + body


def _multipart(boundary: str, parts: Sequence[bytes], close: bool = True) -> bytes:
    out = bytearray(b"This is a multi-part message in MIME format.\n")
    for part in parts:
        out += b"\n--" + boundary.encode("ascii") + b"\n" + part.rstrip(b"\n") + b"\n"
    if close:
        out += b"\n--" + boundary.encode("ascii") + b"--\n"
    return bytes(out)


def _text_part(
    text: str, rng: random.Random, subtype: str = "plain"
) -> tuple[list[tuple[str, str | bytes]], bytes]:
    """Headers + encoded body for a UTF-8 (or ASCII) text part, transfer encoding varied."""
    if text.isascii():
        cte = rng.choice(("7bit", "7bit", "quoted-printable"))
        charset = rng.choice(("us-ascii", "utf-8", "utf-8"))
    else:
        cte = rng.choice(("8bit", "quoted-printable", "base64"))
        charset = "utf-8"
    headers: list[tuple[str, str | bytes]] = [
        ("Content-Type", f'text/{subtype}; charset="{charset}"'),
        ("Content-Transfer-Encoding", cte),
    ]
    return headers, _encode_body(text, charset if charset != "us-ascii" else "ascii", cte)


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    name: str
    addr: str

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]


@dataclass
class _Meta:
    """What later samples (replies) need to know about an earlier one."""

    kind: str
    person: _Person
    subject: str
    body: str
    message_id: str | None
    references: tuple[str, ...]
    date: str


def _kind_schedule(n: int, rng: random.Random) -> list[str]:
    """Kinds for ``n`` samples: quotas by weight, every kind at least once if n >= 24, shuffled."""
    if n <= 0:
        return []
    exact = {k: _WEIGHTS[k] * n / 100 for k in KINDS}
    counts = {k: int(exact[k]) for k in KINDS}
    if n >= _MIN_N_FOR_ALL_KINDS:
        for k in KINDS:
            counts[k] = max(counts[k], 1)
    # Largest remainder, ties broken by KINDS order.
    by_remainder = sorted(KINDS, key=lambda k: (-(exact[k] - int(exact[k])), KINDS.index(k)))
    i = 0
    while sum(counts.values()) < n:
        counts[by_remainder[i % len(by_remainder)]] += 1
        i += 1
    while sum(counts.values()) > n:  # only possible through the minimum-one rule
        counts["plain"] -= 1
    kinds = [k for k in KINDS for _ in range(counts[k])]
    rng.shuffle(kinds)
    # The first message must be answerable so that every "reply" has an earlier target.
    if kinds[0] != "plain" and "plain" in kinds:
        j = kinds.index("plain")
        kinds[0], kinds[j] = kinds[j], kinds[0]
    return kinds


class _Builder:
    def __init__(self, n: int, seed: int, domain: str, support: str) -> None:
        self.n = n
        self.seed = seed
        self.domain = domain.lower()
        self.support = support
        self.rng = random.Random(seed)
        self.people = [
            _Person(name, f"{local}@{self.domain if dom == '@client' else dom}")
            for name, local, dom in _PEOPLE
        ]
        self.metas: list[_Meta] = []
        self.counters: dict[str, int] = {}
        self.base = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # a Monday
        self.step = timedelta(days=7) / max(n, 1)

    # -- small helpers ------------------------------------------------------------------------

    def counter(self, key: str) -> int:
        value = self.counters.get(key, 0)
        self.counters[key] = value + 1
        return value

    def date(self, index: int, addr_domain: str) -> str:
        offset = self.step * index + self.step * (0.8 * self.rng.random())
        hours = _TZ_BY_DOMAIN.get(addr_domain, _DEFAULT_TZ)
        moment = (self.base + offset).astimezone(timezone(timedelta(hours=hours)))
        return format_datetime(moment.replace(microsecond=0))

    def message_id(self, index: int, mid_domain: str) -> str:
        return f"{self.seed}.{index}.{self.rng.getrandbits(48):012x}@{mid_domain}"

    def received(self, addr_domain: str, date: str) -> str:
        if addr_domain == "gmail.com":
            host = "mail-wr1-f41.google.com"
        elif addr_domain.startswith("mx."):
            host = addr_domain
        else:
            host = f"mail.{addr_domain}"
        ip = f"192.0.2.{self.rng.randint(2, 250)}"
        qid = f"{self.rng.getrandbits(40):010X}"
        return f"from {host} ({host} [{ip}])\n\tby mx.example.com (Postfix) with ESMTPS id {qid}\n\t; {date}"

    def signed_body(self, person: _Person, core: str) -> str:
        rng = self.rng
        first = person.name.split()[0]
        company = "Freelance" if person.domain == "gmail.com" else person.domain.split(".")[0].capitalize()
        parts = [rng.choice(_GREETINGS), "", textwrap.fill(core, width=72)]
        if rng.random() < 0.6:
            detail = rng.choice(_DETAILS).format(
                acct=f"{company.upper()[:4]}-{rng.randint(1000, 9999)}",
                count=rng.randint(3, 250),
                ticket=rng.randint(10000, 99999),
            )
            parts += ["", detail]
        parts += ["", rng.choice(_CLOSINGS), first]
        sig = rng.choice(_SIGNATURES).format(name=person.name, company=company, phone=rng.randint(10, 99))
        return "\n".join(parts) + sig + "\n"

    def common_headers(
        self,
        index: int,
        person: _Person,
        subject_header: str,
        *,
        with_mid: bool = True,
        with_date: bool = True,
        from_value: str | bytes | None = None,
        mid_domain: str | None = None,
    ) -> tuple[list[tuple[str, str | bytes]], str | None, str]:
        date = self.date(index, person.domain or self.domain)
        headers: list[tuple[str, str | bytes]] = []
        if self.rng.random() < 0.7:
            headers.append(("Received", self.received(person.domain or self.domain, date)))
        if from_value is None:
            addr = person.addr
            if self.rng.random() < 0.1:  # mixed-case address; ``sender`` stays lowercase
                local, _, dom = addr.partition("@")
                addr = f"{local.capitalize()}@{dom.capitalize()}"
            from_value = _format_addr(person.name, addr)
        headers.append(("From", from_value))
        headers.append(("To", self.support if self.rng.random() < 0.5 else f"Support <{self.support}>"))
        headers.append(("Subject", subject_header))
        if with_date:
            headers.append(("Date", date))
        mid: str | None = None
        if with_mid:
            mid = self.message_id(index, mid_domain or person.domain or self.domain)
            headers.append(("Message-ID", f"<{mid}>"))
        mailer = self.rng.choice(_MAILERS)
        if mailer:
            headers.append(("X-Mailer", mailer))
        return headers, mid, date

    def pick_person(self) -> _Person:
        return self.rng.choice(self.people)

    def pick_topic(self) -> tuple[str, str]:
        pool = self.rng.choices((_QUESTIONS, _WORKAROUNDS, _MAJOR, _MINOR), weights=(40, 25, 20, 15))[0]
        return self.rng.choice(pool)

    def finish(
        self,
        index: int,
        kind: str,
        person: _Person,
        sender: str,
        headers: list[tuple[str, str | bytes]],
        body: bytes,
        *,
        subject: str,
        text: str,
        mid: str | None,
        date: str,
        references: tuple[str, ...] = (),
        reply_to_index: int | None = None,
    ) -> Sample:
        raw = _crlf(_header_bytes(headers) + b"\n" + body)
        self.metas.append(_Meta(kind, person, subject, text, mid, references, date))
        return Sample(
            kind=kind,
            raw=raw,
            sender=sender,
            message_id=mid,
            automated=kind in AUTOMATED_KINDS,
            reply_to_index=reply_to_index,
        )

    # -- kinds --------------------------------------------------------------------------------

    def build(self, index: int, kind: str) -> Sample:
        method = getattr(self, f"k_{kind}")
        sample: Sample = method(index)
        return sample

    def _simple(self, index: int, kind: str, subject: str, core: str, *, with_mid: bool = True) -> Sample:
        person = self.pick_person()
        text = self.signed_body(person, core)
        headers, mid, date = self.common_headers(
            index, person, _encode_header_text(subject), with_mid=with_mid
        )
        if kind == "urgent" and self.rng.random() < 0.6:
            headers += [("X-Priority", "1 (Highest)"), ("Importance", "High")]
        headers.append(("MIME-Version", "1.0"))
        if kind == "plain" and self.rng.random() < 0.3:
            boundary = f"----=_Part_{self.rng.getrandbits(32):08x}"
            html = (
                "<html><body>"
                + "".join(f"<p>{line}</p>" if line else "<br>" for line in text.split("\n"))
                + "</body></html>\n"
            )
            plain_h, plain_b = _text_part(text, self.rng)
            html_h, html_b = _text_part(html, self.rng, "html")
            headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
            body = _multipart(boundary, [_part(plain_h, plain_b), _part(html_h, html_b)])
        else:
            part_h, body = _text_part(text, self.rng)
            headers += part_h
        return self.finish(
            index, kind, person, person.addr, headers, body, subject=subject, text=text, mid=mid, date=date
        )

    def k_plain(self, index: int) -> Sample:
        subject, core = self.pick_topic()
        return self._simple(index, "plain", subject, core)

    def k_urgent(self, index: int) -> Sample:
        subject, core = _URGENT[self.counter("urgent") % len(_URGENT)]
        return self._simple(index, "urgent", subject, core)

    def k_no_message_id(self, index: int) -> Sample:
        subject, core = self.pick_topic()
        return self._simple(index, "no_message_id", subject, core, with_mid=False)

    def k_html_only(self, index: int) -> Sample:
        rng = self.rng
        person = self.pick_person()
        subject, core = self.pick_topic()
        hidden = self.counter("html") % 2 == 0
        first = person.name.split()[0]
        html_lines = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8"><style>p{font-family:Calibri}</style></head><body>',
            f"<p>{rng.choice(_GREETINGS)}</p>",
        ]
        if hidden:
            html_lines.append(_HIDDEN_HTML)
        html_lines += [
            f"<p>{core}</p>",
            '<table border="1" cellpadding="4"><tr><th>Environment</th><th>Version</th></tr>'
            f"<tr><td>Production</td><td>4.{rng.randint(0, 9)}.{rng.randint(0, 20)}</td></tr>"
            f"<tr><td>Users affected</td><td>{rng.randint(1, 120)}</td></tr></table>",
            '<p>See also <a href="https://status.example.com/">your status page</a>.<br>',
            f"{rng.choice(_CLOSINGS)}<br>{first}</p>",
            "</body></html>",
        ]
        html = "\n".join(html_lines) + "\n"
        text = f"{core}\n"
        headers, mid, date = self.common_headers(index, person, _encode_header_text(subject))
        part_h, body = _text_part(html, rng, "html")
        headers.append(("MIME-Version", "1.0"))
        headers += part_h
        return self.finish(
            index,
            "html_only",
            person,
            person.addr,
            headers,
            body,
            subject=subject,
            text=text,
            mid=mid,
            date=date,
        )

    def k_attachment(self, index: int) -> Sample:
        rng = self.rng
        person = self.pick_person()
        subject, core = rng.choice(_WORKAROUNDS + _MAJOR + _MINOR)
        text = self.signed_body(person, core + "\n\nPlease find the details attached.")
        headers, mid, date = self.common_headers(index, person, _encode_header_text(subject))
        boundary = f"=_mixed_{rng.getrandbits(40):010x}"
        headers.append(("MIME-Version", "1.0"))
        headers.append(("Content-Type", f'multipart/mixed; boundary="{boundary}"'))

        variant = self.counter("attachment") % 5
        pdf = (
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            + rng.randbytes(rng.randint(200, 1200))
            + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
        )
        log_lines = [
            f"2026-11-{16 + index % 7:02d}T0{rng.randint(0, 9)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z "
            f"{rng.choice(('ERROR', 'WARN', 'INFO'))} export-worker job={rng.randint(1000, 9999)} "
            f"{rng.choice(('timeout after 30s', 'retrying', 'HTTP 500 from upstream', 'done'))}"
            for _ in range(rng.randint(3, 12))
        ]
        log = ("\n".join(log_lines) + "\n").encode("ascii")

        def disp(plain_name: str) -> tuple[str, str]:
            return (f'name="{plain_name}"', f'attachment; filename="{plain_name}"')

        pdf_params = disp(f"invoice-2026-11-{rng.randint(100, 999)}.pdf")
        log_params = disp("export.log")
        if variant == 1:
            log_params = disp("../../etc/passwd")
        elif variant == 2:
            pdf_params = (
                'name="=?utf-8?q?report=0D=0AX-Evil:_1.pdf?="',
                "attachment; filename*=utf-8''report%0D%0AX-Evil%3A%201.pdf",
            )
        elif variant == 3:
            pdf_params = (
                "name*=utf-8''Rechnung%20M%C3%A4rz.pdf",
                "attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf",
            )
        elif variant == 4:
            log_params = disp("screenshot-notes.txt")

        body_h, body_b = _text_part(text, rng)
        parts = [_part(body_h, body_b)]
        with_pdf = variant in (0, 2, 3) or rng.random() < 0.5
        with_log = variant in (1, 4) or not with_pdf or rng.random() < 0.5
        if with_pdf:
            parts.append(
                _part(
                    [
                        ("Content-Type", f"application/pdf; {pdf_params[0]}"),
                        ("Content-Disposition", pdf_params[1]),
                        ("Content-Transfer-Encoding", "base64"),
                    ],
                    base64.encodebytes(pdf),
                )
            )
        if with_log:
            log_cte = rng.choice(("base64", "7bit"))
            parts.append(
                _part(
                    [
                        ("Content-Type", f"text/plain; charset=us-ascii; {log_params[0]}"),
                        ("Content-Disposition", log_params[1]),
                        ("Content-Transfer-Encoding", log_cte),
                    ],
                    base64.encodebytes(log) if log_cte == "base64" else log,
                )
            )
        body = _multipart(boundary, parts)
        return self.finish(
            index,
            "attachment",
            person,
            person.addr,
            headers,
            body,
            subject=subject,
            text=text,
            mid=mid,
            date=date,
        )

    def k_reply(self, index: int) -> Sample:
        rng = self.rng
        candidates = [
            i for i, m in enumerate(self.metas) if m.kind in _REPLYABLE and m.message_id is not None
        ]
        if not candidates:  # cannot happen with _kind_schedule, kept for safety
            return self.k_plain(index)
        target_index = rng.choice(candidates[-20:])
        target = self.metas[target_index]
        assert target.message_id is not None
        person = target.person
        prefix = _REPLY_PREFIXES[self.counter("reply") % len(_REPLY_PREFIXES)]
        subject = f"{prefix} {target.subject}"
        quoted = "\n".join(f"> {line}" if line else ">" for line in target.body.rstrip("\n").split("\n"))
        if rng.random() < 0.5:
            attribution = f"On {target.date}, {person.name} <{person.addr}> wrote:"
        else:
            attribution = (
                f"-----Original Message-----\nFrom: {person.name} <{person.addr}>\n"
                f"Sent: {target.date}\nTo: {self.support}\nSubject: {target.subject}\n"
            )
        core = rng.choice(_FOLLOW_UPS)
        text = f"{core}\n\n{person.name.split()[0]}\n\n{attribution}\n{quoted}\n"
        headers, mid, date = self.common_headers(index, person, _encode_header_text(subject))
        references = (*target.references, target.message_id)
        headers.append(("In-Reply-To", f"<{target.message_id}>"))
        headers.append(("References", "\n ".join(f"<{r}>" for r in references)))
        headers.append(("MIME-Version", "1.0"))
        part_h, body = _text_part(text, rng)
        headers += part_h
        return self.finish(
            index,
            "reply",
            person,
            person.addr,
            headers,
            body,
            subject=target.subject,
            text=core + "\n",
            mid=mid,
            date=date,
            references=references,
            reply_to_index=target_index,
        )

    def k_auto_reply(self, index: int) -> Sample:
        rng = self.rng
        person = self.pick_person()
        variant = self.counter("auto_reply") % 3
        case_no = rng.randint(1000, 99999)
        subject = rng.choice(_OOO_SUBJECTS).format(subj=f"[Case #{case_no}] We received your request")
        backup = rng.choice(self.people).addr
        core = rng.choice(_OOO_BODIES).format(until=f"{rng.randint(20, 30)} November 2026", backup=backup)
        text = core + f"\n\n{person.name}\n"
        headers, mid, date = self.common_headers(index, person, _encode_header_text(subject))
        headers.append(("In-Reply-To", f"<case-{case_no}.ack@example.com>"))
        if variant == 0:
            headers.append(("Auto-Submitted", "auto-replied"))
            if rng.random() < 0.5:
                headers.append(("X-Auto-Response-Suppress", "All"))
        elif variant == 1:
            headers += [("X-Autoreply", "yes"), ("Precedence", "auto_reply")]
        else:
            headers.append(("X-Auto-Response-Suppress", "All"))
        headers.append(("MIME-Version", "1.0"))
        part_h, body = _text_part(text, rng)
        headers += part_h
        return self.finish(
            index,
            "auto_reply",
            person,
            person.addr,
            headers,
            body,
            subject=subject,
            text=text,
            mid=mid,
            date=date,
        )

    def k_bounce(self, index: int) -> Sample:
        rng = self.rng
        variant = self.counter("bounce") % 3
        mx = f"mx.{self.domain}"
        daemon = f"MAILER-DAEMON@{mx}"
        recipient = rng.choice(self.people).addr
        failed_local = recipient.partition("@")[0] + rng.choice(("", ".old", "2"))
        failed = f"{failed_local}@{recipient.partition('@')[2]}"
        person = _Person("Mail Delivery System", "" if variant == 2 else daemon.lower())
        if variant == 0:
            from_value = daemon
        elif variant == 1:
            from_value = f"Mail Delivery System <{daemon}>"
        else:
            from_value = "Mail Delivery System <>"
        subject = rng.choice(
            (
                "Undelivered Mail Returned to Sender",
                "Delivery Status Notification (Failure)",
                "Mail delivery failed: returning message to sender",
            )
        )
        headers, mid, date = self.common_headers(index, person, subject, from_value=from_value, mid_domain=mx)
        if variant != 0:
            headers.insert(0, ("Return-Path", "<>"))
        headers.append(("Auto-Submitted", "auto-replied"))
        boundary = f"{rng.getrandbits(32):08X}.{1795000000 + index}/{mx}"
        headers.append(("MIME-Version", "1.0"))
        headers.append(
            (
                "Content-Type",
                f'multipart/report; report-type=delivery-status;\n\tboundary="{boundary}"',
            )
        )
        human = (
            f"This is the mail system at host {mx}.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.\n\n"
            f"<{failed}>: host mail.{failed.partition('@')[2]} said: 550 5.1.1 User unknown\n"
        )
        case_no = rng.randint(1000, 99999)
        orig_mid = f"case-{case_no}.ack@example.com"
        status = (
            f"Reporting-MTA: dns; {mx}\n"
            f"Arrival-Date: {date}\n"
            "\n"
            f"Final-Recipient: rfc822; {failed}\n"
            f"Original-Recipient: rfc822;{failed}\n"
            "Action: failed\n"
            "Status: 5.1.1\n"
            f"Remote-MTA: dns; mail.{failed.partition('@')[2]}\n"
            "Diagnostic-Code: smtp; 550 5.1.1 <" + failed + ">: Recipient address rejected\n"
        )
        orig_headers = (
            f"From: Support <{self.support}>\n"
            f"To: {failed}\n"
            f"Subject: [Case #{case_no}] We received your request\n"
            f"Message-ID: <{orig_mid}>\n"
            "Auto-Submitted: auto-replied\n"
        )
        body = _multipart(
            boundary,
            [
                _part(
                    [
                        ("Content-Description", "Notification"),
                        ("Content-Type", "text/plain; charset=us-ascii"),
                    ],
                    human.encode("ascii"),
                ),
                _part(
                    [("Content-Description", "Delivery report"), ("Content-Type", "message/delivery-status")],
                    status.encode("ascii"),
                ),
                _part(
                    [
                        ("Content-Description", "Undelivered Message Headers"),
                        ("Content-Type", "text/rfc822-headers"),
                    ],
                    orig_headers.encode("ascii"),
                ),
            ],
        )
        return self.finish(
            index,
            "bounce",
            person,
            person.addr,
            headers,
            body,
            subject=subject,
            text=human,
            mid=mid,
            date=date,
        )

    def k_list(self, index: int) -> Sample:
        rng = self.rng
        person = self.pick_person()
        subject = rng.choice(_LIST_SUBJECTS)
        text = (
            self.signed_body(
                person,
                rng.choice(
                    (
                        "Has anyone found a good way to schedule exports outside business hours?",
                        "Sharing this in case it helps others: Ctrl+K opens the quick search everywhere.",
                        "We are organising a small user meetup, details below. Everyone is welcome.",
                        "We use one calendar per region and it works well for us.",
                    )
                ),
            )
            + "\n_______________________________________________\nusers mailing list\n"
        )
        headers, mid, date = self.common_headers(index, person, subject)
        headers += [
            ("Sender", '"users" <users-bounces@lists.example>'),
            (
                "List-Id",
                "Users of the product <users.lists.example>"
                if rng.random() < 0.5
                else "<users.lists.example>",
            ),
            (
                "List-Unsubscribe",
                "<mailto:users-leave@lists.example>,\n <https://lists.example/mailman/options/users>",
            ),
            ("List-Post", "<mailto:users@lists.example>"),
        ]
        if rng.random() < 0.5:
            headers.append(("Precedence", "list"))
        headers.append(("MIME-Version", "1.0"))
        part_h, body = _text_part(text, rng)
        headers += part_h
        return self.finish(
            index, "list", person, person.addr, headers, body, subject=subject, text=text, mid=mid, date=date
        )

    def k_bulk(self, index: int) -> Sample:
        rng = self.rng
        name, addr = _BULK_SENDERS[self.counter("bulk") % len(_BULK_SENDERS)]
        person = _Person(name, addr)
        subject = rng.choice(_BULK_SUBJECTS)
        text = (
            "Hello,\n\nHere is what is new this month. Read the full story on our blog.\n\n"
            "You receive this email because you signed up at our website.\n"
            "Unsubscribe: https://" + addr.partition("@")[2] + "/unsubscribe\n"
        )
        headers, mid, date = self.common_headers(index, person, subject)
        headers.append(("Precedence", rng.choice(("bulk", "bulk", "junk"))))
        if rng.random() < 0.5:
            headers.append(("List-Unsubscribe", f"<https://{addr.partition('@')[2]}/unsubscribe>"))
        headers.append(("MIME-Version", "1.0"))
        part_h, body = _text_part(text, rng)
        headers += part_h
        return self.finish(
            index, "bulk", person, person.addr, headers, body, subject=subject, text=text, mid=mid, date=date
        )

    def k_charset(self, index: int) -> Sample:
        rng = self.rng
        person = self.pick_person()
        charset, cte, subject, text = _CHARSET_SAMPLES[self.counter("charset") % len(_CHARSET_SAMPLES)]
        enc = "b" if charset in ("shift_jis", "koi8-r") else rng.choice(("q", "b"))
        headers, mid, date = self.common_headers(index, person, _encode_header_text(subject, charset, enc))
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", f"text/plain; charset={charset}"),
            ("Content-Transfer-Encoding", cte),
        ]
        body = _encode_body(text + "\n", charset, cte)
        return self.finish(
            index,
            "charset",
            person,
            person.addr,
            headers,
            body,
            subject=subject,
            text=text + "\n",
            mid=mid,
            date=date,
        )

    def k_malformed(self, index: int) -> Sample:
        rng = self.rng
        person = self.pick_person()
        variant = self.counter("malformed") % 11
        subject, core = self.pick_topic()
        text = self.signed_body(person, core)
        subject_header = subject
        from_value: str | bytes | None = None
        with_date = True
        extra: list[tuple[str, str | bytes]] = []
        body: bytes
        if variant == 3:
            subject_header = ""  # replaced by raw bytes below
            from_value = b"Jos\xe9 M\xfcller <" + person.addr.encode("ascii") + b">"
        elif variant == 4:
            from_value = f"billing@bank.example <{person.addr}>"
        elif variant == 5:
            subject_header = (
                "=?utf-8?q?Hello=0D=0AX-Injected:_1?=\n =?utf-8?q?_"
                + _q_encode(subject.encode("utf-8"))
                + "?="
            )
        elif variant == 6:
            with_date = False
        headers, mid, date = self.common_headers(
            index, person, subject_header, from_value=from_value, with_date=with_date
        )
        if variant == 3:
            headers = [
                (k, ("Probl\u00e8me d'acc\u00e8s \u2013 " + subject).encode("utf-8") if k == "Subject" else v)
                for k, v in headers
            ]
        headers.append(("MIME-Version", "1.0"))
        if variant == 0:  # unterminated boundary
            boundary = f"b1_{rng.getrandbits(32):08x}"
            headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
            body = _multipart(
                boundary,
                [
                    _part([("Content-Type", "text/plain; charset=utf-8")], text.encode("utf-8")),
                    _part([("Content-Type", "text/html; charset=utf-8")], f"<p>{core}</p>\n".encode()),
                ],
                close=False,
            )
        elif variant == 1:  # unknown charset, 8-bit UTF-8 body
            headers += [
                ("Content-Type", 'text/plain; charset="uft-8"'),
                ("Content-Transfer-Encoding", "8bit"),
            ]
            body = (text + "\nGr\u00fc\u00dfe, Jos\u00e9\n").encode("utf-8")
        elif variant == 2:  # charset Python's codec registry does not know
            headers += [
                ("Content-Type", "text/plain; charset=ansi_x3.110-1983"),
                ("Content-Transfer-Encoding", "quoted-printable"),
            ]
            body = quopri.encodestring((text + "\nCaf\u00e9 cr\u00e8me\n").encode("latin-1"))
        elif variant == 7:  # invalid base64
            headers += [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Transfer-Encoding", "base64"),
            ]
            good = base64.encodebytes(text.encode("utf-8")).decode("ascii")
            body = (good[: len(good) // 2] + "!!not*base64$$\n" + good[len(good) // 2 :] + "==\n").encode(
                "ascii"
            )
        elif variant == 8:  # multipart without boundary parameter
            headers.append(("Content-Type", "multipart/mixed"))
            body = text.encode("utf-8")
        elif variant == 9:  # header line without a colon in the middle of the header block
            headers += [("Content-Type", "text/plain; charset=utf-8")]
            headers.append(("X-Broken-Header-Without-Colon-Follows", "yes"))
            raw_head = _header_bytes(headers) + b"this line has no colon at all\n"
            raw = _crlf(raw_head + b"\n" + text.encode("utf-8"))
            self.metas.append(_Meta("malformed", person, subject, text, mid, (), date))
            return Sample("malformed", raw, person.addr, mid, False, None)
        elif variant == 10:  # absurdly long, unfolded header line (> 998 octets)
            refs = " ".join(f"<{rng.getrandbits(64):016x}@{person.domain}>" for _ in range(40))
            extra.append(("References", refs))
            headers += extra
            headers += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]
            body = text.encode("utf-8")
        else:  # variants 3-6: nasty headers, ordinary body
            part_h, body = _text_part(text, rng)
            headers += part_h
        return self.finish(
            index,
            "malformed",
            person,
            person.addr,
            headers,
            body,
            subject=subject,
            text=text,
            mid=mid,
            date=date,
        )


def generate(
    n: int, seed: int = 1, domain: str = "client.example", support: str = "support@example.com"
) -> list[Sample]:
    """Return ``n`` deterministic samples for ``seed``.

    Kinds are mixed roughly by the shares in ``_WEIGHTS``; with ``n >= 24`` every kind in
    :data:`KINDS` appears at least once. Sample 0 is always ``plain`` (for ``n >= 1`` with at
    least one plain in the quota), so every ``reply`` has an earlier message to answer.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    builder = _Builder(n, seed, domain, support)
    kinds = _kind_schedule(n, builder.rng)
    return [builder.build(i, kind) for i, kind in enumerate(kinds)]


def write_maildir(samples: Iterable[Sample], path: Path) -> None:
    """Write ``samples`` into the Maildir at ``path`` (created if needed) as unread mail in new/.

    File names are deterministic (index + content hash) and unique; each file is written to
    tmp/ first and renamed into new/, as the Maildir delivery protocol requires.
    """
    path = Path(path)
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for i, sample in enumerate(samples):
        digest = hashlib.sha256(sample.raw).hexdigest()[:16]
        name = f"{1795305600 + i}.M{i:06d}H{digest}.casebot-corpus"
        tmp = path / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(sample.raw)
        os.replace(tmp, path / "new" / name)
