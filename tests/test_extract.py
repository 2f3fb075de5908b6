"""Extraction, table-driven from fixture pages of both theme generations (tests/fixtures/pages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crawler.dates import parse_display_date, parse_iso_datetime
from crawler.extract import extract_listing, extract_statement, page_languages
from storage.records import ExtractionFailure, StatementContent

PAGES = Path(__file__).parent / "fixtures" / "pages"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the China mission's time zone (the [[sites]] default)
SITE = "https://china.usembassy-china.org.cn"
LGBT_TITLE = "增进全世界男女同性恋、双性恋、跨性别者、酷儿及间性人群体的人权的新闻声明"
LGBT_FIRST = "国务院\n\n发言人办公室\n\n" + LGBT_TITLE
LGBT_LAST = "是美国对外政策的一项要务。"


def page_text(name: str) -> str:
    raw = (PAGES / name).read_bytes()
    return raw.decode("gb18030" if name.startswith("gb18030") else "utf-8")


@dataclass(frozen=True)
class DetailCase:
    page: str
    expected: dict[str, Any]
    body_starts: str = ""
    body_ends: str = ""
    body_excludes: tuple[str, ...] = (
        "DOS Seal",
        "快速阅读",
        "Manage consent",
        "相关文章",
        "Skip to",
    )


LGBT_FIELDS = {
    "url": f"{SITE}/zh/statement-24/",
    "title": LGBT_TITLE,
    "post_id": 40839,
    "language": "zh",
    "published_at": datetime(2021, 2, 8, 7, 35, 12, tzinfo=UTC),
    "published_raw": "二月 8, 2021",
    "author": "U.S. Mission China",
    "tags": ("LGBTQI+", "安东尼·J·布林肯", "新闻简报"),
    "categories": ("新闻",),
    "twin_url": f"{SITE}/statement-24-en/",
}

DETAIL_CASES = [
    DetailCase(
        "current_detail.html",
        {
            **LGBT_FIELDS,
            "modified_at": datetime(2021, 2, 8, 7, 35, 12, tzinfo=UTC),
            "subtitle": None,
        },
        LGBT_FIRST,
        LGBT_LAST,
    ),
    DetailCase(
        "cms3_detail.html",
        {**LGBT_FIELDS, "modified_at": None},
        LGBT_FIRST,
        LGBT_LAST,
        body_excludes=("DOS Seal", "分享此文章", "Facebook", "通过", "二月 8, 2021"),
    ),
    DetailCase(
        "english_detail.html",
        {
            **LGBT_FIELDS,
            "language": "en",
            "published_raw": "February 8, 2021",
            "twin_url": f"{SITE}/zh/statement-24/",
        },
        LGBT_FIRST,
        LGBT_LAST,
    ),
    DetailCase(
        "current_detail_visible_date_only.html",
        {
            "title": "香港政策法报告",
            "subtitle": "2021年3月31日 国务卿声明",
            "post_id": 41000,
            # Only a visible date: midnight of that day in Beijing.
            "published_at": datetime(2021, 3, 30, 16, tzinfo=UTC),
            "published_raw": "三月 31, 2021",
        },
        "香港政策法报告 2021年3月31日",
        "阅读《2021年香港政策法报告》(英文)。",
    ),
    DetailCase(
        "gb18030_detail.html",
        {"title": "香港政策法报告", "post_id": 41000, "published_raw": "三月 31, 2021"},
        "香港政策法报告",
    ),
]


@pytest.mark.parametrize("case", DETAIL_CASES, ids=lambda case: case.page)
def test_detail_page_extraction(case: DetailCase) -> None:
    result = extract_statement(page_text(case.page), f"{SITE}/zh/anything/", zone=SHANGHAI)
    assert isinstance(result, StatementContent), result
    for name, value in case.expected.items():
        assert getattr(result, name) == value, name
    assert result.body.startswith(case.body_starts)
    assert result.body.endswith(case.body_ends)
    for noise in case.body_excludes:
        assert noise not in result.body, noise
    assert "\n\n\n" not in result.body and "  " not in result.body


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        ("truncated_detail.html", "truncated page"),
        ("not_found.html", "no body"),
    ],
)
def test_pages_without_a_statement_are_failures(page: str, reason: str) -> None:
    result = extract_statement(page_text(page), f"{SITE}/zh/x/", zone=SHANGHAI)
    assert isinstance(result, ExtractionFailure) and result.reason.startswith(reason)


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("", "empty page"),
        ("<html><body><div class='entry-content'><p>正文</p></div></body></html>", "no title"),
        ("<html><body><main><h1>标题</h1></main></body></html>", "no body"),
        ("\x00\xff<<<<p>>>", "truncated page"),
    ],
)
def test_broken_markup_is_an_extraction_failure(html: str, reason: str) -> None:
    result = extract_statement(html, f"{SITE}/zh/x/", zone=SHANGHAI)
    assert isinstance(result, ExtractionFailure) and result.reason.startswith(reason)


@dataclass(frozen=True)
class ListingCase:
    page: str
    url: str
    count: int
    first_title: str
    next_urls: tuple[str, ...]
    contains: tuple[str, ...] = field(default=())


LISTING = f"{SITE}/zh/news-events-zh/"
LISTING_CASES = [
    ListingCase(
        "current_listing.html",
        LISTING,
        24,
        "香港政策法报告",
        (f"{LISTING}page/2/",),
        contains=(f"{SITE}/zh/statement-24/",),  # hidden behind "展示更多"
    ),
    ListingCase("cms3_listing.html", LISTING, 10, "香港政策法报告", (f"{LISTING}page/2/",)),
    ListingCase(
        "listing_numbers_page2.html",
        f"{LISTING}page/2/",
        10,
        "国务卿布林肯和国防部长奥斯汀与日本首相菅义伟会谈",
        (f"{LISTING}page/3/",),
    ),
]


@pytest.mark.parametrize("case", LISTING_CASES, ids=lambda case: case.page)
def test_listing_extraction(case: ListingCase) -> None:
    page = extract_listing(page_text(case.page), case.url)
    assert len(page.items) == case.count
    assert page.items[0].title == case.first_title
    assert page.next_urls == case.next_urls
    urls = [item.url for item in page.items]
    assert len(set(urls)) == len(urls)
    assert all(url.startswith(f"{SITE}/zh/statement-") for url in urls)
    for url in case.contains:
        assert url in urls


def test_text_before_the_first_paragraph_stays_first() -> None:
    html = """<html><head><title>t</title></head><body><main><h1>标题</h1>
    <div class="entry-content">导语。<p>第一段。</p>第一段后的文字<p>第二段。</p></div>
    </main></body></html>"""
    result = extract_statement(html, f"{SITE}/zh/x/", zone=SHANGHAI)
    assert isinstance(result, StatementContent)
    assert result.body == "导语。\n\n第一段。\n\n第一段后的文字\n\n第二段。"


def test_read_more_links_outside_articles_are_items() -> None:
    html = """<html><body><main><h2>第一篇</h2><p>摘要 ...</p><a href="/zh/one/">阅读更多»</a>
    <h2>第二篇</h2><p>摘要</p><a href="/zh/two/">阅读更多»</a>
    <a href="https://af.usembassy.gov/">Afghanistan</a></main></body></html>"""
    page = extract_listing(html, LISTING)
    assert [(i.url, i.title) for i in page.items] == [
        (f"{SITE}/zh/one/", "第一篇"),
        (f"{SITE}/zh/two/", "第二篇"),
    ]


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("二月 8, 2021", (2021, 2, 8)),
        ("十一月 30, 2023", (2023, 11, 30)),
        ("十二月 1, 2020", (2020, 12, 1)),
        ("十月 5, 2022", (2022, 10, 5)),
        ("February 8, 2021", (2021, 2, 8)),
        ("29 July, 2021", (2021, 7, 29)),
        ("2021年3月31日", (2021, 3, 31)),
        ("二月 30, 2021", None),
        ("no date here", None),
    ],
)
def test_display_dates_are_midnight_in_the_sites_zone(
    text: str, day: tuple[int, int, int] | None
) -> None:
    expected = datetime(*day, tzinfo=SHANGHAI).astimezone(UTC) if day else None
    assert parse_display_date(text, SHANGHAI) == expected
    assert parse_display_date(text, UTC) == (datetime(*day, tzinfo=UTC) if day else None)


@pytest.mark.parametrize(
    ("language", "text", "day"),
    [
        ("fr", "8 février 2021", (2021, 2, 8)),
        ("fr", "1 déc. 2020", (2020, 12, 1)),
        ("es", "8 de febrero de 2021", (2021, 2, 8)),
        ("pt", "8 de fevereiro de 2021", (2021, 2, 8)),
        ("de", "8. Februar 2021", (2021, 2, 8)),
        ("ru", "8 февраля 2021 г.", (2021, 2, 8)),
        ("uk", "8 лютого 2021", (2021, 2, 8)),
        ("ar", "8 فبراير 2021", (2021, 2, 8)),
        ("ko", "2021년 2월 8일", (2021, 2, 8)),
        ("ja", "2021年2月8日", (2021, 2, 8)),
        ("vi", "8 tháng 2, 2021", (2021, 2, 8)),
        ("hy", "2021 թ. փետրվարի 8", (2021, 2, 8)),
        ("mn", "2021 оны 2-р сарын 8", (2021, 2, 8)),
        ("en", "Sept. 8, 2021", (2021, 9, 8)),  # CLDR has "Sep" only
        ("en", "Feb. 8, 2021", (2021, 2, 8)),
        ("zh", "二月 8, 2021", (2021, 2, 8)),
        ("zh-CN", "十二月 1, 2020", (2020, 12, 1)),
        ("fr", "32 février 2021", None),
        ("fr", "février", None),
        ("de", "Telefon 12345 2021", None),
    ],
)
def test_display_dates_in_any_wordpress_locale(
    language: str, text: str, day: tuple[int, int, int] | None
) -> None:
    expected = datetime(*day, tzinfo=UTC) if day else None
    assert parse_display_date(text, UTC, language) == expected


def test_a_visible_date_in_beijing_is_the_evening_before_in_utc() -> None:
    assert parse_display_date("二月 8, 2021", SHANGHAI) == datetime(2021, 2, 7, 16, tzinfo=UTC)


def test_iso_times_become_utc() -> None:
    assert parse_iso_datetime("2021-02-08T15:35:12+08:00") == datetime(
        2021, 2, 8, 7, 35, 12, tzinfo=UTC
    )
    assert parse_iso_datetime("2021-02-08T07:35:12") == datetime(2021, 2, 8, 7, 35, 12, tzinfo=UTC)
    assert parse_iso_datetime("yesterday") is None


@pytest.mark.parametrize(
    ("html", "languages"),
    [
        # Polylang's hreflang alternates, this page's own language included
        (
            '<link rel="alternate" href="/a-en/" hreflang="en" />'
            '<link rel="alternate" href="/zh/a/" hreflang="zh" />',
            ("en", "zh"),
        ),
        # region subtags and x-default are not languages of their own
        (
            '<link rel="alternate" hreflang="en-US" href="/"><link rel="alternate" '
            'hreflang="x-default" href="/"><link rel="alternate" hreflang="zh_CN" href="/zh/">',
            ("en", "zh"),
        ),
        # the language switch alone (the cms3 theme's select)
        (
            '<ul id="language-switch"><select><option value="en" lang="en-US">English</option>'
            '<option value="zh" lang="zh-CN" selected>中文</option></select></ul>',
            ("en", "zh"),
        ),
        # both, overlapping; a switch option without lang says nothing
        (
            '<link rel="alternate" hreflang="fr" href="/fr/"><ul id="language-switch">'
            '<option lang="en-US">English</option><option>?</option></ul>',
            ("en", "fr"),
        ),
        # other <option lang> and feed alternates are not the page's languages
        (
            '<select><option lang="de">Deutsch</option></select>'
            '<link rel="alternate" type="application/rss+xml" href="/feed/">',
            (),
        ),
        # junk codes are dropped: the list is shown on a terminal
        (
            '<link rel="alternate" hreflang="\x1b[2J" href="/"><link rel="alternate" hreflang="">',
            (),
        ),
        ("", ()),
    ],
)
def test_page_languages(html: str, languages: tuple[str, ...]) -> None:
    assert page_languages(html) == languages
