"""HTML to the text a reader actually sees (pure).

Owns dropping hidden markup (hidden attribute, `display:none` even with !important, zero font size or opacity,
template/noscript) and converting the rest with inscriptis, so hidden keywords cannot raise a priority. Must not
do I/O or raise: hostile markup falls back to stripped tags.
"""

from __future__ import annotations

import re

from inscriptis import get_text
from lxml import html as lxml_html

from casebot.mail.address import clean_text

_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:;|!|$)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:;|!|$)|max-height\s*:\s*0(?:px)?\s*(?:;|!|$)",
    re.IGNORECASE,
)
_HIDDEN_XPATH = (
    "//*[@hidden] | //template | //noscript | //script | //style | //head/title"
    " | //*[@aria-hidden='true'] | //*[@style]"
)


def _drop_hidden(html: str) -> str:
    """Remove what a reader never sees (hidden attribute, `display:none` even with !important, zero font size or
    opacity, template/noscript), so hidden keywords cannot raise a message's priority. Class-based CSS hiding
    is not evaluated: rules read the visible text only as far as inline markup tells."""
    doc = lxml_html.document_fromstring(html)
    for el in doc.xpath(_HIDDEN_XPATH):
        style = el.get("style")
        if style is None or _HIDDEN_STYLE.search(style):
            el.drop_tree()
    return str(lxml_html.tostring(doc, encoding="unicode"))


def html_to_text(html: str) -> str:
    try:
        return str(get_text(_drop_hidden(html))).strip()
    except Exception:
        # inscriptis on hostile markup: fall back to stripping tags.
        return clean_text(re.sub(r"<[^>]+>", " ", html))

