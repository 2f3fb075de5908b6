"""Dates as the site shows them: ISO 8601 metadata, `二月 8, 2021`, `February 8, 2021`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

_ZH_MONTHS = {
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
    "十一": 11,
    "十二": 12,
}
_EN_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}

# WordPress "F j, Y" with zh_CN month names; the longest month names first.
_ZH_DATE = re.compile(r"(十[一二]|[一二三四五六七八九十])月\s*(\d{1,2})\s*[,，]\s*(\d{4})")
_ZH_NUMERIC_DATE = re.compile(r"(\d{4})年\s*(\d{1,2})月\s*(\d{1,2})日")
_EN_DATE = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})")
_EN_DAY_FIRST = re.compile(r"(\d{1,2})\s+([A-Za-z]{3,9}),?\s+(\d{4})")


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


def parse_display_date(text: str | None, zone: tzinfo) -> datetime | None:
    """A visible post date (a calendar day, no time): midnight in the site's `zone`, as UTC."""
    if not text:
        return None
    for pattern, order in (
        (_ZH_DATE, "zh"),
        (_ZH_NUMERIC_DATE, "ymd"),
        (_EN_DATE, "mdy"),
        (_EN_DAY_FIRST, "dmy"),
    ):
        match = pattern.search(text)
        if match is None:
            continue
        day = _to_date(order, *match.groups())
        if day is not None:
            return day.replace(tzinfo=zone).astimezone(UTC)
    return None


def _to_date(order: str, first: str, second: str, third: str) -> datetime | None:
    """The calendar day named, as a naive midnight."""
    if order == "zh":
        year, month, day = int(third), _ZH_MONTHS[first], int(second)
    elif order == "ymd":
        year, month, day = int(first), int(second), int(third)
    elif order == "mdy":
        month_number = _EN_MONTHS.get(first.lower())
        if month_number is None:
            return None
        year, month, day = int(third), month_number, int(second)
    else:
        month_number = _EN_MONTHS.get(second.lower())
        if month_number is None:
            return None
        year, month, day = int(third), month_number, int(first)
    try:
        return datetime(year, month, day)
    except ValueError:
        return None
