"""Hidden text in HTML mail (issue 8 item 9): what a reader cannot see never reaches the priority rules.

The table covers style sheets (class, id, `!important`, media queries), Outlook's `mso-hide`, colour on colour,
zero sizes, inherited properties a child undoes, and text that must stay (aria-hidden, white on a dark or image
background, a zero-font layout cell's children). One real-world spam from mail-parser's test suite hides its
hash-buster words in white text; it is read when the wild corpus is fetched.
"""

from __future__ import annotations

import json
from pathlib import Path

import css_inline
import pytest

from casebot import mail
from casebot.mail import css
from casebot.mail import html as html_module
from casebot.mail.html import visible_text

ROOT = Path(__file__).resolve().parents[2]
WILD = ROOT / ".cache" / "wild"

HIDDEN = [
    ("class rule", "<style>.x{display:none}</style>", '<p class="x">URGENT outage</p>'),
    ("id rule, visibility", "<style>#y{visibility:hidden}</style>", '<div id="y">URGENT outage</div>'),
    ("descendant rule", "<style>.a .b{display:none}</style>",
     '<div class="a"><span class="b">URGENT outage</span></div>'),
    ("rule !important beats inline", "<style>.x{display:none!important}</style>",
     '<p class="x" style="display:block">URGENT outage</p>'),
    ("mso-hide", "", '<div style="mso-hide:all">URGENT outage</div>'),
    ("preheader", "", '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">URGENT outage</div>'),
    ("white, no background", "", '<span style="color:#FFFFFF">URGENT outage</span>'),
    ("near-white on white", "", '<div style="background:#fff"><span style="color:#fefefe">URGENT outage</span></div>'),
    ("same colour via bgcolor and <font>", "",
     '<table bgcolor="#336699"><tr><td><font color="#336699">URGENT outage</font></td></tr></table>'),
    ("colour class on background class", "<style>.bg{background-color:rgb(0,0,0)} .ink{color:#000}</style>",
     '<div class="bg"><p class="ink">URGENT outage</p></div>'),
    ("transparent", "", '<span style="color:rgba(0,0,0,0)">URGENT outage</span>'),
    ("font-size 0", "", '<span style="font-size:0px">URGENT outage</span>'),
    ("font shorthand 0/0", "", '<span style="font:0/0 a">URGENT outage</span>'),
    ("relative size of zero", "", '<div style="font-size:0"><span style="font-size:200%">URGENT outage</span></div>'),
    ("zero height, overflow hidden", "", '<div style="height:0;overflow:hidden">URGENT outage</div>'),
    ("max-width 0, overflow clip", "", '<div style="max-width:0px;overflow-x:clip">URGENT outage</div>'),
    ("opacity", "", '<div style="opacity:0.0">URGENT outage</div>'),
    ("hidden attribute", "", "<p hidden>URGENT outage</p>"),
    ("last declaration wins", "", '<div style="display:block; display:none">URGENT outage</div>'),
    ("hidden class in a malformed sheet", "<style>p{color:red;;;;} .x{display :none;;color:;:} .z{font-</style>",
     '<p class="x">URGENT outage</p>'),
]

SHOWN = [
    ("aria-hidden alone", "", '<span aria-hidden="true">URGENT outage</span>'),
    ("white on a dark background", "",
     '<td style="background:#000"><span style="color:#fff">URGENT outage</span></td>'),
    ("white on an image", "", '<td background="hero.jpg"><span style="color:#fff">URGENT outage</span></td>'),
    ("white on a gradient", "", '<div style="background:linear-gradient(#000,#333)"><b style="color:#fff">'
     "URGENT outage</b></div>"),
    ("child undoes visibility", "", '<div style="visibility:hidden"><p style="visibility:visible">URGENT outage</p>'
     "</div>"),
    ("zero-font layout cell, sized child", "", '<td style="font-size:0"><div style="font-size:14px">URGENT outage'
     "</div></td>"),
    ("max-height 0 without overflow hidden", "", '<div style="max-height:0">URGENT outage</div>'),
    ("hover rule", "<style>p:hover{display:none}</style>", "<p>URGENT outage</p>"),
    ("media-query rule", "<style>@media (max-width:600px){.m{display:none}}</style>", '<p class="m">URGENT outage</p>'),
    ("inline beats a plain rule", "<style>.x{display:none}</style>", '<p class="x" style="display:block !important">'
     "URGENT outage</p>"),
    ("unknown colour", "", '<span style="color:hsl(0,0%,100%)">URGENT outage</span>'),
]


def _page(style: str, body: str) -> str:
    return f"<html><head>{style}</head><body><p>How do I change my password?</p>{body}<p>Thanks</p></body></html>"


@pytest.mark.parametrize(("what", "style", "body"), HIDDEN, ids=[h[0] for h in HIDDEN])
def test_hidden_text_is_dropped(what: str, style: str, body: str) -> None:
    seen = visible_text(_page(style, body))
    assert "URGENT" not in seen.text, what
    assert "change my password" in seen.text and "Thanks" in seen.text
    assert seen.defects == ()


@pytest.mark.parametrize(("what", "style", "body"), SHOWN, ids=[s[0] for s in SHOWN])
def test_visible_text_stays(what: str, style: str, body: str) -> None:
    assert "URGENT outage" in visible_text(_page(style, body)).text, what


def test_hidden_text_keeps_the_visible_text_around_it() -> None:
    text = visible_text('<div style="color:#fff">URGENT <b style="color:#000">visible</b> outage</div>after').text
    assert text.split() == ["visible", "after"]


def test_a_remote_style_sheet_is_never_fetched_and_changes_nothing() -> None:
    page = ('<html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
            '<style>@import url("http://127.0.0.1:9/y.css"); .x{display:none}</style></head>'
            '<body><p class="x">URGENT outage</p><p>hello</p></body></html>')
    seen = visible_text(page)
    assert seen.text == "hello"
    assert seen.defects == ()


def test_deep_nesting_does_not_reach_the_css_engine_unbounded() -> None:
    # css-inline's parser recurses: 50,000 levels crash the process. lxml caps the tree first.
    deep = 50_000
    page = "<style>.x{display:none}</style>" + '<div class="y">' * deep + '<p class="x">URGENT</p>' + "</div>" * deep
    assert "URGENT" not in visible_text(page).text


def test_a_failing_css_engine_falls_back_to_simple_selectors_with_a_defect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken:
        def __init__(self, **_kwargs: object) -> None:
            pass

        def inline(self, _html: str) -> str:
            raise css_inline.InlineError("bad sheet")

    monkeypatch.setattr(css_inline, "CSSInliner", Broken)
    seen = visible_text(_page("<style>td.x, #y {display:none} .a .z{visibility:hidden}</style>",
                              '<table><tr><td class="x">URGENT</td></tr></table><p id="y">outage</p>'
                              '<div class="a"><span class="z">critical</span></div>'))
    assert "URGENT" not in seen.text and "outage" not in seen.text and "critical" not in seen.text
    assert "change my password" in seen.text
    assert seen.defects and "simple selectors" in seen.defects[0]


def test_too_many_elements_use_the_simple_selectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_module, "MAX_ELEMENTS", 10)
    seen = visible_text(_page("<style>.x{display:none}</style>", '<p class="x">URGENT</p>' + "<i>a</i>" * 20))
    assert "URGENT" not in seen.text
    assert any("over 10 elements" in d for d in seen.defects)


@pytest.mark.parametrize("markup", ["", "<", "\x00\udcff<p>a</p>", "<style>" + "{" * 10_000 + "</style>x",
                                    "<p style='color:" + "(" * 5_000 + "'>x</p>", "<html></html>"])
def test_hostile_markup_never_raises(markup: str) -> None:
    assert isinstance(visible_text(markup).text, str)


def test_parse_records_the_css_defect_on_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_module, "MAX_ELEMENTS", 3)
    raw = ("From: a@client.example\r\nSubject: hi\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           + _page("<style>.x{display:none}</style>", '<p class="x">URGENT outage</p>') + "\r\n").encode()
    m = mail.parse(raw)
    assert "URGENT" not in m.text
    assert any("simple selectors" in d for d in m.defects)


@pytest.mark.parametrize(("value", "rgb"), [
    ("#fff", (255, 255, 255)), ("#FFFFFF", (255, 255, 255)), ("white", (255, 255, 255)),
    ("rgb(255, 255, 255)", (255, 255, 255)), ("rgb(100%,100%,100%)", (255, 255, 255)), ("#0000", css.TRANSPARENT),
    ("rgba(1,2,3,0)", css.TRANSPARENT), ("#12", None), ("hsl(0,0%,0%)", None), ("", None),
])
def test_colours(value: str, rgb: tuple[int, int, int] | None) -> None:
    assert css.colour(value) == rgb


def test_sheet_filter_keeps_only_visibility_rules() -> None:
    sheet = css.filter_sheet("/* c */ p{margin:0;display:none !important} @media x{.m{display:none}} "
                             "@import url(a.css); .y{color:#fff;font-family:Arial}")
    assert sheet.splitlines() == ["p{display:none !important}", ".y{color:#fff}"]


def _wild(path: str) -> bytes:
    index = WILD / "index.json"
    if not index.exists():
        pytest.skip("wild corpus not fetched (run: .venv/bin/python tests/wild/fetch.py)")
    if not any(e["path"] == path for e in json.loads(index.read_text())):
        pytest.skip(f"{path} not in the fetched corpus")
    return (WILD / path).read_bytes()


def test_real_spam_hash_buster_in_white_text_is_dropped() -> None:
    # mail-parser 4.8.0's tests/mails/mail_test_8: spam that pads itself with random words in
    # `<div style="color:#FFFFFF">` so filters see a different message each time. A reader sees none of them.
    m = mail.parse(_wild("mail-parser-4.8.0/mail_parser-4.8.0/tests/mails/mail_test_8"))
    assert m.html is not None and "/Wheel/Highway" in m.html
    assert "Wheel" not in m.text
    assert "Enjoy Real-Life Flying Today" in m.text  # the visible offer is still read


def test_wild_html_mail_converts_without_defects_or_lost_visible_text() -> None:
    index = WILD / "index.json"
    if not index.exists():
        pytest.skip("wild corpus not fetched (run: .venv/bin/python tests/wild/fetch.py)")
    converted = 0
    for entry in json.loads(index.read_text()):
        m = mail.parse((WILD / entry["path"]).read_bytes())
        if m.html is None:
            continue
        seen = visible_text(m.html)
        converted += 1
        assert not any("not converted" in d or "simple selectors" in d for d in seen.defects), entry["path"]
    assert converted >= 30
