"""What counts as a change: the one comparison of two versions of a statement.

Every change of the published text is a revision: fields are compared exactly (after
only canonicalising line ends and the spaces that end a line). A changed field is
*typographic* when it is equal once folded: Unicode width variants (NFKC: `，` and `,`,
full-width spaces), WordPress's texturized quotes and dashes, zero-width characters,
and spacing inside Chinese text. A theme or texturize switch restyles every page
this way; it is archived as revisions marked typographic, and alerted only on request.

Tags and categories are compared as sets: their order on the page is the theme's
query order, not something an author wrote. `compare` is the only place that
decides; the revision hash, the event's changed fields, the alert subject and
every diff shown follow from it.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from storage.records import Change, StatementContent

# Fields whose change makes a new revision, in the order they are reported.
COMPARED_FIELDS = (
    "title",
    "subtitle",
    "published_at",
    "author",
    "body",
    "tags",
    "categories",
)
_LINE_ENDS = re.compile(r"\r\n?")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_SPACES = re.compile(r"[^\S\n]+")
_DASHES = re.compile(r"-{2,}")
# Ideographs, kana, CJK symbols and punctuation: spacing next to them is layout, not wording.
_CJK = "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3200-\u9fff\uf900-\ufaff"
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}]) | (?=[{_CJK}])")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_TEXTURIZED = str.maketrans(
    {
        "\u201c": '"',  # “ ” „ ‟ ″ « »: wptexturize's double quotes and their kin
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2018": "'",  # ‘ ’ ‚ ‛ ′: single quotes and apostrophes
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u2013": "-",  # – —: wptexturize writes them for -- and ---
        "\u2014": "-",
    }
)
# Archives written before `[[sites]] timezone` hold a visible-only date as midnight UTC; read
# now in the site's zone it moves by that zone's offset (at most 14 h, in quarter hours).
_MIDNIGHT_UTC = datetime(2000, 1, 1, tzinfo=UTC).timetz()
_MAX_UTC_OFFSET = timedelta(hours=14)


def exact_text(text: str | None) -> str:
    """The published text, only line ends and line-ending spaces canonicalised."""
    if not text:
        return ""
    text = _BLANK_LINES.sub("\n\n", _LINE_ENDS.sub("\n", text))
    return "\n".join(line.strip(" \t") for line in text.strip(" \t\n").split("\n"))


def fold_text(text: str | None) -> str:
    """The text with every typographic variant folded away (see the module's docstring)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_TEXTURIZED)
    text = _DASHES.sub("-", _SPACES.sub(" ", text))
    return exact_text(_SPACE_BY_CJK.sub("", text))


def _value(content: StatementContent, name: str, canonical: Callable[[str], str]) -> object:
    value = getattr(content, name)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, tuple):
        return sorted({canonical(item) for item in value} - {""})
    return canonical(value or "")


def compare(old: StatementContent, new: StatementContent) -> Change:
    """Which fields' published text differs, and which of those only typographically."""
    fields = tuple(
        name
        for name in COMPARED_FIELDS
        if _value(old, name, exact_text) != _value(new, name, exact_text)
        and not (name == "published_at" and _redated_into_site_zone(old, new))
    )
    typographic = tuple(
        name for name in fields if _value(old, name, fold_text) == _value(new, name, fold_text)
    )
    return Change(fields, typographic)


def _redated_into_site_zone(old: StatementContent, new: StatementContent) -> bool:
    """The same visible date, read as midnight UTC before and as midnight in the site's zone now.

    Archives written before dates were read in the site's time zone hold such dates;
    re-reading them must not look like the statement was re-dated.
    """
    before, after = old.published_at, new.published_at
    if before is None or after is None or not old.published_raw:
        return False
    if old.published_raw != new.published_raw or before.astimezone(UTC).timetz() != _MIDNIGHT_UTC:
        return False
    shift = after - before
    return (
        shift != timedelta(0)
        and abs(shift) <= _MAX_UTC_OFFSET
        and shift % timedelta(minutes=15) == timedelta(0)
    )


def content_hash(content: StatementContent) -> str:
    """SHA-256 of the exactly compared fields: contents with equal hashes never `compare` changed.

    Revision hashes written before typographic changes were kept were over folded text;
    migration 0005 recomputed them with this definition.
    """
    canonical = {name: _value(content, name, exact_text) for name in COMPARED_FIELDS}
    encoded = json.dumps(canonical, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
