"""What counts as a change: the normalised form of a statement's content and its hash.

The stored text is kept as extracted; normalisation only decides whether two
extractions are "the same statement text" (full-width/half-width forms, spacing).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import datetime

from storage.records import StatementContent

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

_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def normalise_text(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).replace("\u200b", "")
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.strip().split("\n"))


def _normalised_value(content: StatementContent, name: str) -> object:
    value = getattr(content, name)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return sorted({normalise_text(item) for item in value} - {""})
    if isinstance(value, str):
        return normalise_text(value)
    return value


def content_fingerprint(content: StatementContent) -> dict[str, object]:
    return {name: _normalised_value(content, name) for name in COMPARED_FIELDS}


def content_hash(content: StatementContent) -> str:
    canonical = json.dumps(content_fingerprint(content), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def changed_fields(old: StatementContent, new: StatementContent) -> tuple[str, ...]:
    before, after = content_fingerprint(old), content_fingerprint(new)
    return tuple(name for name in COMPARED_FIELDS if before[name] != after[name])
