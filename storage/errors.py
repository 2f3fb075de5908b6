"""Database errors as users see them: one line."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The driver's own message, first line only: no SQL, no parameters, no traceback."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(error).__name__
