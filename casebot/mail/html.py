"""HTML to the text a reader actually sees (pure); the only importer of css_inline.

Owns dropping what a reader cannot see before inscriptis converts the rest, so hidden keywords cannot raise a
priority. The `<style>` sheets' rules about visibility are applied first (css-inline, nothing fetched: remote
sheets and `@import` are ignored), so class and id rules count like inline styles. Then, element by element:

- gone with everything inside: `display:none`, `mso-hide:all`, `opacity` 0 (up to 0.05), the `hidden` attribute,
  a zero `width`/`height`/`max-width`/`max-height` box with `overflow:hidden` (or `clip`), `template`, `noscript`,
  `script`, `style`, `title`;
- the element's own text gone, its children judged by what they set (these properties inherit, and a child can
  undo them): `visibility:hidden|collapse`, a font size under 1px/1pt or 0 (`font:0/0 a` too), a `transparent`
  text colour, a text colour equal (within 4/255 per channel) to the nearest declared background (`background`,
  `background-color`, `bgcolor`), or white text with no background declared at all. A background image or a
  colour we cannot read counts as "might be readable": the text stays.

`aria-hidden="true"` alone does not hide: it tells screen readers to skip text that sighted readers do see
(decorative labels, icons, duplicated headings), so it stays evidence unless one of the rules above hides it.
When in doubt the rule is: text a reader cannot see is not evidence for priority, so the fallbacks hide more,
not less: a sheet the CSS engine cannot apply (it fails, or the document is over `MAX_ELEMENTS` elements) is
applied by its simple selectors' last part (`.x`, `#id`, `td.x`; `.a .x` is read as `.x`), with a defect
recorded. Must not do I/O or raise: hostile markup falls back to stripped tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import css_inline
from inscriptis import get_text
from lxml import html as lxml_html

from casebot.mail.address import clean_text
from casebot.mail.css import (
    TRANSPARENT,
    Rgb,
    background,
    colour,
    declarations,
    filter_sheet,
    font_size,
    is_zero_length,
    same_colour,
)

MAX_ELEMENTS = 20_000  # above this the CSS engine's inlined copy could grow large: simple selectors instead
MAX_SHEET = 200_000  # characters of `<style>` text read; the rest is ignored
_GONE_TAGS = frozenset({"script", "style", "template", "noscript", "title"})
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SIMPLE = re.compile(r"^([a-z][a-z0-9-]*)?((?:[.#][\w-]+)+)?$")
_RELATIVE = frozenset({"em", "%", "ex", "ch"})
_UNKNOWN = "unknown"  # a background we cannot read (an image, a gradient, hsl()): text on it may be readable


@dataclass(frozen=True)
class Visible:
    text: str
    defects: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Ink:
    """The inherited state that decides whether an element's own text shows."""

    visible: bool = True
    font_zero: bool = False
    colour: Rgb | None = None
    background: Rgb | str | None = None  # nearest declared; None = nothing declared (the page is white)


def html_to_text(html: str) -> str:
    return visible_text(html).text


def visible_text(html: str) -> Visible:
    """The text a reader sees, and what went wrong on the way (as message defects)."""
    defects: list[str] = []
    try:
        doc = lxml_html.document_fromstring(_NOT_XML.sub("", html))  # libxml2 caps nesting at 256 levels
        doc = _apply_sheets(doc, defects)
        _drop_hidden(doc)
        if _gone(doc, declarations(doc.get("style"))):
            return Visible("", tuple(defects))
        return Visible(str(get_text(str(lxml_html.tostring(doc, encoding="unicode")))).strip(), tuple(defects))
    except Exception as exc:
        # lxml or inscriptis on hostile markup: strip the tags (and the obvious invisible blocks).
        defects.append(f"HTML not converted ({type(exc).__name__}): tags stripped")
        stripped = re.sub(r"(?is)<(style|script|head|template|noscript)\b.*?</\1\s*>", " ", html)
        return Visible(clean_text(re.sub(r"<[^>]+>", " ", stripped)), tuple(defects))


def _apply_sheets(doc: lxml_html.HtmlElement, defects: list[str]) -> lxml_html.HtmlElement:
    """Inline the `<style>` rules about visibility onto the elements they select; the sheets are removed."""
    styles = doc.xpath("//style")
    sheet = filter_sheet("\n".join(s.text_content() for s in styles)[:MAX_SHEET])
    for el in styles:
        el.drop_tree()
    if not sheet:
        return doc
    if sum(1 for _ in doc.iter()) > MAX_ELEMENTS:
        defects.append(f"style sheet applied by simple selectors only: over {MAX_ELEMENTS} elements")
        _apply_simple(doc, sheet)
        return doc
    try:
        inliner = css_inline.CSSInliner(
            inline_style_tags=False, keep_style_tags=False, keep_link_tags=False, keep_at_rules=False,
            load_remote_stylesheets=False, extra_css=sheet,
        )
        return lxml_html.document_fromstring(inliner.inline(str(lxml_html.tostring(doc, encoding="unicode"))))
    except Exception as exc:  # css_inline.InlineError, or a value it cannot take
        defects.append(f"style sheet applied by simple selectors only: {type(exc).__name__}: {exc}"[:300])
        _apply_simple(doc, sheet)
        return doc


def _apply_simple(doc: lxml_html.HtmlElement, sheet: str) -> None:
    """The fallback: each rule's selectors by their last compound part (`tag`, `.class`, `#id`), dynamic states
    (`:hover`) skipped; the rule goes before the inline style, so the inline style wins unless `!important`."""
    for rule in sheet.splitlines():
        selectors, _, body = rule.partition("{")
        body = body.rstrip("}")
        for selector in selectors.split(","):
            last = re.split(r"[\s>+~]+", selector.strip().lower())[-1]
            match = _SIMPLE.match(last)
            if not last or not match:
                continue
            tag, rest = match.group(1), match.group(2) or ""
            classes = set(re.findall(r"\.([\w-]+)", rest))
            ids = set(re.findall(r"#([\w-]+)", rest))
            for el in doc.iter(tag or "*"):
                if not isinstance(el.tag, str):
                    continue
                if classes and not classes <= set((el.get("class") or "").lower().split()):
                    continue
                if ids and (el.get("id") or "").lower() not in ids:
                    continue
                el.set("style", f"{body};{el.get('style') or ''}")


def _gone(el: lxml_html.HtmlElement, decls: dict[str, str]) -> bool:
    """Hidden with everything inside it."""
    if el.tag in _GONE_TAGS or el.get("hidden") is not None:
        return True
    if decls.get("display") == "none" or decls.get("mso-hide") == "all":
        return True
    opacity = decls.get("opacity", "")
    try:
        if opacity and float(opacity.rstrip("%")) / (100 if opacity.endswith("%") else 1) <= 0.05:
            return True
    except ValueError:
        pass
    clipped = any(decls.get(p) in ("hidden", "clip") for p in ("overflow", "overflow-x", "overflow-y"))
    return clipped and any(is_zero_length(decls.get(p)) for p in ("width", "height", "max-width", "max-height"))


def _inherit(el: lxml_html.HtmlElement, decls: dict[str, str], ink: _Ink) -> _Ink:
    visible, zero, text_colour, bg = ink.visible, ink.font_zero, ink.colour, ink.background
    if "visibility" in decls:
        value = decls["visibility"]
        visible = visible if value == "inherit" else value not in ("hidden", "collapse")
    size = font_size(decls)
    if size is not None:
        number, unit = size
        zero = number <= 0 or (zero and unit in _RELATIVE) or (unit in ("px", "pt") and number < 1)
    declared_colour = decls.get("color") or (el.get("color") if el.tag == "font" else None)
    if declared_colour and declared_colour.strip().lower() not in ("inherit", "currentcolor"):
        text_colour = colour(declared_colour)
    declared_bg = _background(el, decls)
    if declared_bg is not None:
        bg = declared_bg
    return _Ink(visible, zero, text_colour, bg)


def _background(el: lxml_html.HtmlElement, decls: dict[str, str]) -> Rgb | str | None:
    if el.get("background") or "url(" in decls.get("background-image", ""):
        return _UNKNOWN
    for value in (decls.get("background-color"), decls.get("background"), el.get("bgcolor")):
        if value:
            found = background(value.lower())
            if found == "image":
                return _UNKNOWN
            if found is not None:
                return found
            if value.strip().lower() not in ("none", "transparent", "inherit", "initial", "unset"):
                return _UNKNOWN
    return None


def _readable(ink: _Ink) -> bool:
    if not ink.visible or ink.font_zero or ink.colour is TRANSPARENT:
        return False
    if ink.colour is None:
        return True
    if ink.background is None:
        return not same_colour(ink.colour, (255, 255, 255))
    if isinstance(ink.background, str):
        return True
    return not same_colour(ink.colour, ink.background)


def _drop_hidden(doc: lxml_html.HtmlElement) -> None:
    """Remove what a reader never sees (the rules in the module docstring), walking without recursion."""
    gone: list[lxml_html.HtmlElement] = []
    stack: list[tuple[lxml_html.HtmlElement, _Ink]] = [(doc, _Ink())]
    while stack:
        el, ink = stack.pop()
        if not isinstance(el.tag, str):  # comments, processing instructions
            continue
        decls = declarations(el.get("style"))
        if el is not doc and _gone(el, decls):
            gone.append(el)
            continue
        ink = _inherit(el, decls, ink)
        if not _readable(ink):
            el.text = None
            for child in el:
                child.tail = None
        stack.extend((child, ink) for child in el)
    for el in gone:
        el.drop_tree()
