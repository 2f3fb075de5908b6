"""How text is shown: hidden characters visible, titles on one line, CSV cells inert."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from monitor.display import one_line, visible
from monitor.export import csv_cell

KEPT_FORMAT_CHARACTERS = {"\u200c", "\u200d"}  # joiners: emoji sequences, Persian, Indic


def test_every_format_character_python_knows_is_made_visible() -> None:
    hidden = [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Cs", "Zl", "Zp")
        and chr(code) not in KEPT_FORMAT_CHARACTERS | {"\t", "\n"}
    ]
    assert len(hidden) > 2000  # C0, C1, bidi controls, tags, surrogates...
    assert [c for c in hidden if visible(c) != f"⟨U+{ord(c):04X}⟩"] == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("invoice_\u202egnp.exe", "invoice_⟨U+202E⟩gnp.exe"),
        ("a\u2066b\u2069c\u200bd\ufeff", "a⟨U+2066⟩b⟨U+2069⟩c⟨U+200B⟩d⟨U+FEFF⟩"),
        ("bell\x07 escape\x1b[2J", "bell⟨U+0007⟩ escape⟨U+001B⟩[2J"),
        ("段落一\n\n段落二\t表", "段落一\n\n段落二\t表"),  # pages keep paragraphs and tabs
        ("👨\u200d👩\u200d👧 香港", "👨\u200d👩\u200d👧 香港"),
    ],
)
def test_visible_shows_what_hides_and_keeps_what_reads(text: str, shown: str) -> None:
    assert visible(text) == shown


def test_one_line_puts_every_kind_of_line_break_on_one_line() -> None:
    assert (
        one_line("第一行\r\n第二行\r第三\x85行\u2028四\x0b五\t六")
        == "第一行 第二行 第三 行 四 五 六"
    )
    assert one_line(None) == "" and one_line("  \n ") == ""


def test_one_line_clips_without_splitting_a_code_point_mark() -> None:
    assert one_line("abcdef\u202eghi", 9) == "abcdef…"
    assert one_line("abcdefghij", 5) == "abcd…"
    assert len(one_line("声明" * 200, 200)) == 200


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        (["=a", "b"], "'=a; b"),
        ("a=b", "a=b"),
        ("声明", "声明"),
        (7, 7),
        (None, None),
    ],
)
def test_csv_cells_starting_like_a_formula_get_a_quote(value: object, cell: object) -> None:
    assert csv_cell(value) == cell
