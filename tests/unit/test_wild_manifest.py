"""The wild-mail manifest is well-formed; fetched messages, if any, parse without raising."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from casebot import mail

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "tests" / "wild" / "manifest.toml"
INDEX = ROOT / ".cache" / "wild" / "index.json"
LABELS = {"automated", "human"}
CLASSES = {
    "bounce",
    "dsn",
    "auto_reply",
    "ooo",
    "mdn",
    "list",
    "bulk",
    "arf",
    "challenge",
    "ticket_autoresponse",
    "human",
}
KINDS = {"pypi", "npm", "deb"}
EXACT = re.compile(r"^[0-9][0-9A-Za-z.+~:-]*$")


def sources() -> list[dict[str, Any]]:
    with MANIFEST.open("rb") as f:
        data = tomllib.load(f)
    result: list[dict[str, Any]] = data["source"]
    return result


def test_sources_are_pinned() -> None:
    for s in sources():
        assert s["kind"] in KINDS, s["name"]
        assert EXACT.match(s["version"]), f"{s['name']}: {s['version']!r} is not an exact version"
        assert not any(c in s["version"] for c in "*<>=^, "), s["name"]
        assert s["licence"], s["name"]
        assert re.fullmatch(r"[0-9a-f]{64}", s.get("sha256", "")), f"{s['name']}: no sha256"
        assert s["files"], s["name"]


def test_labels_and_totals() -> None:
    counts = {"automated": 0, "human": 0}
    for s in sources():
        for e in s["files"]:
            assert e["label"] in LABELS, e
            assert e["class"] in CLASSES, e
            assert (e["class"] == "human") == (e["label"] == "human"), e
            assert isinstance(e["count"], int) and e["count"] > 0, e
            counts[e["label"]] += e["count"]
    assert counts["automated"] >= 150, counts
    assert counts["human"] >= 100, counts


def test_fetched_messages_parse() -> None:
    if not INDEX.exists():
        pytest.skip("wild corpus not fetched (run: python tests/wild/fetch.py)")
    rows: list[dict[str, Any]] = json.loads(INDEX.read_text())
    for row in rows:
        path = INDEX.parent / row["path"]
        assert path.is_file(), path
        mail.parse(path.read_bytes())
