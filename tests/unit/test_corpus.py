"""Quick checks of the synthetic mail corpus in tests/corpus.py."""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import re
import sys
from collections import Counter
from email.message import Message
from pathlib import Path

import pytest

# tests/ is on sys.path (pytest puts the rootdir conftest's directory there), as for `servers`.
try:
    from corpus import AUTOMATED_KINDS, KINDS, Sample, generate, write_maildir
except ModuleNotFoundError:  # collected without tests/conftest.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from corpus import AUTOMATED_KINDS, KINDS, Sample, generate, write_maildir


def _parse(sample: Sample) -> Message:
    return email.message_from_bytes(sample.raw, policy=email.policy.compat32)


def _from_address(msg: Message) -> str:
    raw = str(msg.get("From", ""))
    bracketed: list[str] = re.findall(r"<([^<>]*)>", raw)
    if bracketed:  # the angle-bracket address wins over anything in the display name
        return bracketed[-1].strip().lower()
    return email.utils.parseaddr(raw)[1].lower()


@pytest.fixture(scope="module")
def corpus() -> list[Sample]:
    return generate(200, seed=11)


def test_deterministic_for_a_seed() -> None:
    assert generate(60, seed=3) == generate(60, seed=3)
    assert generate(60, seed=3) != generate(60, seed=4)
    assert generate(10, seed=3) == generate(10, seed=3)


def test_every_kind_present_for_48() -> None:
    kinds = Counter(s.kind for s in generate(48, seed=1))
    assert set(kinds) == set(KINDS)
    assert kinds["plain"] == max(kinds.values())


def test_small_and_empty() -> None:
    assert generate(0) == []
    one = generate(1)
    assert len(one) == 1 and one[0].kind == "plain"
    with pytest.raises(ValueError):
        generate(-1)


def test_crlf_line_endings(corpus: list[Sample]) -> None:
    for s in corpus:
        stripped = s.raw.replace(b"\r\n", b"")
        assert b"\n" not in stripped and b"\r" not in stripped, s.kind


def test_every_sample_parses_with_compat32(corpus: list[Sample]) -> None:
    for s in corpus:
        msg = _parse(s)
        assert msg.get("To") is not None
        list(msg.walk())


def test_sender_matches_from_header(corpus: list[Sample]) -> None:
    for s in corpus:
        assert s.sender == s.sender.lower()
        assert _from_address(_parse(s)) == s.sender, s.raw[:400]


def test_message_ids(corpus: list[Sample]) -> None:
    ids = [s.message_id for s in corpus if s.message_id is not None]
    assert len(ids) == len(set(ids))
    for s in corpus:
        header = _parse(s).get("Message-ID")
        if s.message_id is None:
            assert header is None
            continue
        assert header == f"<{s.message_id}>"
        assert s.message_id.startswith("11.")
        assert "<" not in s.message_id
    assert all(s.message_id is None for s in corpus if s.kind == "no_message_id")


def test_replies_point_at_earlier_message_from_same_sender(corpus: list[Sample]) -> None:
    replies = [(i, s) for i, s in enumerate(corpus) if s.kind == "reply"]
    assert replies
    for i, s in replies:
        target_index = s.reply_to_index
        assert target_index is not None and 0 <= target_index < i
        target = corpus[target_index]
        assert target.message_id is not None
        assert not target.automated and target.kind != "malformed"
        assert target.sender == s.sender
        msg = _parse(s)
        assert msg["In-Reply-To"] == f"<{target.message_id}>"
        refs = re.findall(r"<([^<>]+)>", str(msg["References"]))
        assert refs[-1] == target.message_id
        subject = str(email.header.make_header(email.header.decode_header(str(msg["Subject"]))))
        assert re.match(r"(Re|RE|AW|SV|VS|RE\[2\]): \S", subject), subject
    assert all(s.reply_to_index is None for s in corpus if s.kind != "reply")


def test_automated_flags_match_kinds(corpus: list[Sample]) -> None:
    for s in corpus:
        assert s.automated == (s.kind in AUTOMATED_KINDS), s.kind
        msg = _parse(s)
        if s.kind == "auto_reply":
            assert (
                msg.get("Auto-Submitted") == "auto-replied"
                or msg.get("X-Autoreply") == "yes"
                or msg.get("X-Auto-Response-Suppress") is not None
            )
        elif s.kind == "bounce":
            assert msg.get_content_type() == "multipart/report"
            types = [p.get_content_type() for p in msg.walk()]
            assert "message/delivery-status" in types and "text/rfc822-headers" in types
        elif s.kind == "list":
            assert msg.get("List-Id") is not None and msg.get("List-Unsubscribe") is not None
        elif s.kind == "bulk":
            assert msg.get("Precedence") in ("bulk", "junk")


def test_senders_are_spread(corpus: list[Sample]) -> None:
    counts = Counter(s.sender for s in corpus if not s.automated)
    assert len(counts) >= 30
    assert max(counts.values()) <= len(corpus) // 8


def test_html_only_has_single_html_part(corpus: list[Sample]) -> None:
    html = [s for s in corpus if s.kind == "html_only"]
    assert html
    assert all(not _parse(s).is_multipart() and _parse(s).get_content_type() == "text/html" for s in html)
    assert any(b"display:none" in s.raw for s in html)


def test_write_maildir(tmp_path: Path) -> None:
    samples = generate(30, seed=2)
    write_maildir(samples, tmp_path / "Maildir")
    for sub in ("new", "cur", "tmp"):
        assert (tmp_path / "Maildir" / sub).is_dir()
    files = sorted((tmp_path / "Maildir" / "new").iterdir())
    assert len(files) == 30
    assert sorted(f.read_bytes() for f in files) == sorted(s.raw for s in samples)
    assert not list((tmp_path / "Maildir" / "tmp").iterdir())
    # Same input, same names.
    write_maildir(samples, tmp_path / "again")
    assert [f.name for f in files] == sorted(f.name for f in (tmp_path / "again" / "new").iterdir())
