"""The kinds of request parameter every route shares, each refused whole (422) when bad.

The bounds are those of what the archive can hold, so no request reaches the database
with a value it would refuse: PostgreSQL's INTEGER columns end at 2**31 - 1 and its text
never holds U+0000.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

from storage.records import MAX_NUMBER as MAX_NUMBER  # re-exported for the routes

MAX_PAGE = 500


def without_nul(text: str | None) -> str | None:
    if text is not None and "\x00" in text:
        raise ValueError("must not contain the NUL character (U+0000)")
    return text


def as_utc(value: datetime | None) -> datetime | None:
    """Times without an offset are UTC; every time is compared in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00
        raise ValueError("must fall within the years 1 to 9999 once in UTC") from None


def blank_as_none(value: Any) -> Any:
    """A form's empty field (`from=`) means no bound, not a bad date."""
    return None if value == "" else value


def day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, UTC)


def day_end(day: date | None) -> datetime | None:
    """The day's last instant: a range "to" a day includes that whole day (UTC)."""
    return None if day is None else datetime.combine(day, time.max, UTC)


Text = Annotated[str | None, AfterValidator(without_nul)]
# A day as a date input sends it (YYYY-MM-DD, years 1 to 9999), in UTC.
Day = Annotated[date | None, BeforeValidator(blank_as_none)]
Mission = Annotated[
    str | None,
    Query(max_length=64, description="a mission's key, e.g. china (its sites `china-*`)"),
    AfterValidator(without_nul),
]
Language = Annotated[
    str | None,
    Query(max_length=16, description="the sites' language, e.g. zh (sites named `*-zh`)"),
    AfterValidator(without_nul),
]
Time = Annotated[datetime | None, AfterValidator(as_utc)]
StatementId = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="a statement's id")]
RevisionNumber = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="from 1, oldest first")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="how many to return")]
Offset = Annotated[int, Query(ge=0, le=MAX_NUMBER, description="how many to skip")]
