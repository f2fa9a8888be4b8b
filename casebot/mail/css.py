"""The few CSS facts that decide whether text can be seen (pure): declarations, colours, sizes, style sheets.

Owns reading an inline `style` attribute into its cascaded declarations (the last wins, `!important` wins over
plain), colours (`#fff`, `#ffffff`, `rgb()`/`rgba()`, the common names, `transparent`) and their near-equality,
font sizes (also inside the `font` shorthand), zero lengths, and filtering `<style>` sheets down to the rules
about visibility (so the inliner's output stays small and a malformed sheet is read as far as it can be). Must
not do I/O, decide what is hidden (`casebot.mail.html` does) or raise on bad input: what cannot be read is
"unknown".
"""

from __future__ import annotations

import re

# Properties that can make text invisible: the only ones worth inlining from a style sheet.
VISIBILITY_PROPERTIES = frozenset({
    "display", "visibility", "mso-hide", "opacity", "color", "font-size", "font", "background", "background-color",
    "background-image", "width", "height", "max-width", "max-height", "overflow", "overflow-x", "overflow-y",
})
_MAX_VALUE = 200  # longer values are not colours or sizes: dropped before inlining
_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_NUMBER = re.compile(r"^([+-]?\d*\.?\d+)([a-z%]*)$")
_RGB = re.compile(r"^rgba?\(\s*([^)]*)\)$")
Rgb = tuple[int, int, int]
TRANSPARENT: Rgb = (-1, -1, -1)  # a colour nobody can see, compared by identity
_NAMES: dict[str, Rgb] = {
    "white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "gray": (128, 128, 128), "grey": (128, 128, 128), "silver": (192, 192, 192),
    "navy": (0, 0, 128), "maroon": (128, 0, 0), "orange": (255, 165, 0), "purple": (128, 0, 128),
    "whitesmoke": (245, 245, 245), "snow": (255, 250, 250), "ivory": (255, 255, 240),
    "lightgray": (211, 211, 211), "lightgrey": (211, 211, 211), "darkgray": (169, 169, 169),
}


def declarations(style: str | None) -> dict[str, str]:
    """`"color:#FFF; display: none !important; display:block"` -> {"color": "#fff", "display": "none"}: property
    names and values lower-cased, `!important` stripped after it decided the cascade."""
    return {name: value for name, (value, _important) in cascade(style).items()}


def cascade(style: str | None) -> dict[str, tuple[str, bool]]:
    """Property -> (value, important) after the cascade within one declaration block."""
    out: dict[str, tuple[str, bool]] = {}
    if not style:
        return out
    for decl in _split(_COMMENT.sub(" ", style), ";"):
        name, colon, value = decl.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if not colon or not name or not value:
            continue
        important = re.search(r"!\s*important$", value) is not None
        if important:
            value = re.sub(r"\s*!\s*important$", "", value)
        elif out.get(name, ("", False))[1]:
            continue
        out[name] = (value, important)
    return out


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes (`url(a;b)`)."""
    parts: list[str] = []
    buf: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == sep and not depth:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def colour(value: str | None) -> Rgb | None:
    """A colour value as RGB; `TRANSPARENT` for `transparent` or alpha 0; None when it is not one we can read."""
    if not value:
        return None
    value = value.strip().lower()
    if value == "transparent":
        return TRANSPARENT
    if value in _NAMES:
        return _NAMES[value]
    if value.startswith("#") and re.fullmatch(r"#[0-9a-f]{3,8}", value):
        digits = value[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        if len(digits) not in (6, 8):
            return None
        if len(digits) == 8 and digits[6:] == "00":
            return TRANSPARENT
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    match = _RGB.match(value)
    if match:
        parts = [p.strip() for p in re.split(r"[,\s/]+", match.group(1).strip()) if p.strip()]
        try:
            channels = [round(float(p[:-1]) * 2.55) if p.endswith("%") else round(float(p)) for p in parts[:3]]
            alpha = float(parts[3].rstrip("%")) if len(parts) > 3 else 1.0
        except ValueError:
            return None
        if len(channels) != 3:
            return None
        if alpha == 0:
            return TRANSPARENT
        r, g, b = (max(0, min(255, c)) for c in channels)
        return r, g, b
    return None


def background(value: str | None) -> Rgb | str | None:
    """The colour a `background`/`background-color` value paints: RGB, "image" when an image is painted (the text
    may be readable on it), None when it paints nothing we can read (`none`, `transparent`, unknown)."""
    if not value:
        return None
    if "url(" in value or "gradient(" in value:
        return "image"
    for token in _split(value, " "):
        found = colour(token)
        if found is not None:
            return None if found is TRANSPARENT else found
    return None


def same_colour(a: Rgb, b: Rgb, tolerance: int = 4) -> bool:
    """Equal within `tolerance` per channel: `#fefefe` on `#ffffff` is white on white."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def is_zero_length(value: str | None) -> bool:
    """`0`, `0px`, `0.0em`, `0%` (a size that shows nothing)."""
    if not value:
        return False
    match = _NUMBER.match(value.strip())
    return match is not None and float(match.group(1)) == 0


def font_size(decls: dict[str, str]) -> tuple[float, str] | None:
    """The font size an element sets, as (number, unit), from `font-size` or the `font` shorthand (`font:0/0 a`);
    a keyword (`medium`) gives (16, "px"); None when it sets none."""
    value = decls.get("font-size")
    if value is None and "font" in decls:
        shorthand = decls["font"]
        if "/" in shorthand:
            before = shorthand.split("/", 1)[0].split()
            value = before[-1] if before else None
        else:
            value = next((t for t in shorthand.split() if (m := _NUMBER.match(t)) and m.group(2)), None)
    if value is None:
        return None
    match = _NUMBER.match(value.strip())
    if match is None:
        return (16.0, "px") if re.fullmatch(r"[a-z-]+", value.strip()) else None
    return float(match.group(1)), match.group(2) or "px"


def filter_sheet(css: str) -> str:
    """A style sheet reduced to its plain rules' visibility declarations (`sel{display:none}`): comments and at-rules
    (`@media`, `@font-face`, `@import`: a media query's overrides are not what every reader sees, and nothing is
    fetched) left out, values that cannot be colours or sizes dropped. Unbalanced braces end the sheet there."""
    out: list[str] = []
    text = _COMMENT.sub(" ", css)
    i, n = 0, len(text)
    while i < n:
        open_at = text.find("{", i)
        semi = text.find(";", i)
        if open_at < 0:
            break
        prelude = text[i:open_at].strip()
        if prelude.startswith("@") and 0 <= semi < open_at:  # `@import url(x);` or `@charset "x";`
            i = semi + 1
            continue
        close_at = _block_end(text, open_at)
        body = text[open_at + 1:close_at]
        i = close_at + 1
        if prelude.startswith("@") or not prelude:
            continue
        kept = [f"{k}:{v}{' !important' if important else ''}" for k, (v, important) in cascade(body).items()
                if k in VISIBILITY_PROPERTIES and len(v) <= _MAX_VALUE and "{" not in v and "}" not in v]
        if kept and "{" not in prelude and "}" not in prelude:
            out.append(f"{prelude}{{{';'.join(kept)}}}")
    return "\n".join(out)


def _block_end(text: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text)
