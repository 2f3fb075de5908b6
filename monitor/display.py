"""Text as it is shown to a person: nothing invisible, nothing that moves or hides other text.

Scraped titles and bodies may hold control characters (a terminal obeys an ESC sequence,
XML forbids most of them), bidirectional controls (after U+202E, "txt.exe" reads "exe.txt")
and other invisible format characters. Wherever text is *shown* (web pages, feeds, e-mail
subjects, the command line), each such character is replaced by its code point between
angle brackets, e.g. ⟨U+202E⟩: the reader sees that it is there and which it is, and the
text around it reads in its own order. What is *kept* is the text as it was: the archive,
and the exports that are data (JSON, JSON Lines, WARC).
"""

from __future__ import annotations

import re

# Shown as ⟨U+XXXX⟩:
# - C0 controls except tab and line feed, DEL and C1 controls;
# - format characters (Unicode category Cf, as of Unicode 15.1: bidirectional controls,
#   zero-width space, byte-order mark, soft hyphen, tag characters...) except the zero-width
#   joiner and non-joiner, which emoji sequences and Persian or Indic words need to render;
# - line and paragraph separators (some programs break lines there, others do not);
# - lone surrogates and U+FFFE/U+FFFF, which neither UTF-8 nor XML can carry.
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
    "\ud800-\udfff\ufffe\uffff]"
)
# What ends a line somewhere (str.splitlines breaks at each of these), and tabs.
_LINE_BREAKS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1e\x85\u2028\u2029]+")
OPEN, CLOSE = "⟨", "⟩"


def visible(text: str) -> str:
    """The text with every hidden character shown as ⟨U+XXXX⟩; tabs and line feeds stay."""
    return _HIDDEN.sub(_code_point, text)


def one_line(text: str | None, limit: int | None = None) -> str:
    """The text on one line: each run of line breaks and tabs one space, at most `limit` long."""
    flat = visible(_LINE_BREAKS.sub(" ", text or "")).strip()
    if limit is None or len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    opened = cut.rfind(OPEN)
    if opened > cut.rfind(CLOSE):  # never half a ⟨U+202E⟩
        cut = cut[:opened]
    return cut.rstrip() + "…"


def _code_point(match: re.Match[str]) -> str:
    return f"{OPEN}U+{ord(match.group()):04X}{CLOSE}"
