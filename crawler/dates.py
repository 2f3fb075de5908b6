"""Dates as a site shows them, in any WordPress locale: ISO 8601 metadata first, then the
visible date (`二月 8, 2021`, `February 8, 2021`, `8 février 2021`, `2021년 2월 8일`).

Visible dates are read with the Unicode CLDR's month names and date patterns (Babel), not
hand tables: for a page's language, its long and medium date patterns, plus WordPress's
two common formats (`F j, Y`, the default, and `j F Y`) spelled with that language's
month names. Only what CLDR lacks is written here (`_EXTRA_MONTH_NAMES`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import cache

from babel import Locale, UnknownLocaleError

# What the watched sites write and CLDR does not list.
_EXTRA_MONTH_NAMES = {"en": {"sept": 9}}
# Languages tried when a page does not say its own (the China mission's two).
_DEFAULT_LANGUAGES = ("zh", "en")
# WordPress date formats, in CLDR pattern letters: "F j, Y" and "j F Y".
_WORDPRESS_PATTERNS = ("MMMM d, y", "d MMMM y")
_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|\s+|.")


def parse_iso_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 time as UTC; a value without offset is taken to be UTC (Yoast writes UTC)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_display_date(
    text: str | None, zone: tzinfo, language: str | None = None
) -> datetime | None:
    """A visible post date (a calendar day, no time): midnight in the site's `zone`, as UTC."""
    if not text:
        return None
    for code in (language,) if language else _DEFAULT_LANGUAGES:
        day = _find_day(text, code)
        if day is not None:
            return day.replace(tzinfo=zone).astimezone(UTC)
    return None


def _find_day(text: str, language: str) -> datetime | None:
    months = _month_names(language)
    for pattern in _patterns(language):
        for match in pattern.finditer(text):
            day = _to_date(match, months)
            if day is not None:
                return day
    return None


def _to_date(match: re.Match[str], months: dict[str, int]) -> datetime | None:
    parts = match.groupdict()
    month = int(parts["month"]) if parts.get("month") else months.get(_fold(parts["name"]))
    if month is None:
        return None
    try:
        return datetime(int(parts["year"]), month, int(parts["day"]))
    except ValueError:
        return None


@cache
def _locale(language: str) -> Locale:
    for candidate in (language.replace("-", "_"), language.split("-")[0]):
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


@cache
def _month_names(language: str) -> dict[str, int]:
    """Every spelling of every month: wide and abbreviated, in running text and alone."""
    locale = _locale(language)
    names: dict[str, int] = dict(_EXTRA_MONTH_NAMES.get(locale.language, {}))
    for context in ("format", "stand-alone"):
        for width in ("wide", "abbreviated"):
            for number, name in locale.months[context][width].items():
                names[_fold(name)] = number
    return names


@cache
def _patterns(language: str) -> tuple[re.Pattern[str], ...]:
    locale = _locale(language)
    names = sorted(_month_names(language), key=len, reverse=True)  # 十二月 before 二月
    name_pattern = "|".join(re.escape(name) for name in names)
    cldr = (locale.date_formats[width].pattern for width in ("long", "medium"))
    compiled = dict.fromkeys(_regex(p, name_pattern) for p in (*cldr, *_WORDPRESS_PATTERNS))
    return tuple(re.compile(regex, re.IGNORECASE) for regex in compiled)


def _regex(cldr_pattern: str, month_names: str) -> str:
    """A CLDR date pattern as a forgiving regex: any spacing, optional punctuation."""
    pieces = []
    for token in _TOKEN.finditer(cldr_pattern):
        text = token.group(0)
        letter = token.group(1)
        if letter:
            pieces.append(_field(letter, len(text), month_names))
        elif text.isspace():
            pieces.append(r"[\s,，]*")
        elif text.startswith("'") and len(text) > 1:
            literal = text[1:-1].replace("''", "'") or "'"
            pieces.append(rf"(?:\s*{re.escape(literal)}\s*)?")
        else:
            pieces.append(rf"{re.escape(text)}?")
    # A year or day must not be cut out of a longer number.
    return r"(?<!\d)" + "".join(pieces) + r"(?!\d)"


def _field(letter: str, width: int, month_names: str) -> str:
    if letter == "d":
        return r"(?P<day>\d{1,2})"
    if letter in "ML" and width <= 2:
        return r"(?P<month>\d{1,2})"
    if letter in "ML":
        return rf"(?P<name>{month_names})\.?"
    if letter in "yY":
        return r"(?P<year>\d{4})"
    return r"\S*?"  # weekday, era and the like: anything short, not read


def _fold(name: str) -> str:
    return name.casefold().rstrip(".")
