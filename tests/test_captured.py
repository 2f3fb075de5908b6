"""The page as captured, made inert: what would run or load is gone, what reads stays."""

from __future__ import annotations

import re

import pytest

from monitor.captured import inert_page
from tests.replica.site import ReplicaSite

# Anything that makes a browser run code or send a request.
FETCHING = re.compile(
    r"<\s*(script|iframe|frame|object|embed|link|base|img|video|audio|source|svg)\b"
    r"|\s(src|srcset|href|action|formaction|poster|background|ping|on\w+)\s*="
    r"|url\s*\(|@import|http-equiv",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    ("name", "page", "kept"),
    [
        ("script", "<p>正文</p><script>alert(1)</script>", "正文"),
        ("event handler", '<p onclick="alert(1)" onmouseover=x>正文</p>', "正文"),
        (
            "image",
            '<p>前<img src="https://x.example/a.png" alt="大使照片">后</p>',
            "[img: 大使照片]",
        ),
        (
            "responsive image",
            '<picture><source srcset="a.webp"><img src="a.png"></picture>',
            "[picture]",
        ),
        ("svg", '<svg><use xlink:href="https://x.example/s.svg#i"/></svg><p>t</p>', "[svg]"),
        ("frame", '<iframe src="https://www.youtube.com/embed/x"></iframe><p>视频</p>', "视频"),
        ("object", '<object data="https://x.example/f.swf"></object><p>t</p>', "t"),
        ("stylesheet", '<link rel="stylesheet" href="https://x.example/s.css"><p>样式</p>', "样式"),
        (
            "css fetches",
            "<style>@import 'x.css'; p{background:url(https://x.example/b.png)}</style><p>t</p>",
            "p{background:none}",
        ),
        (
            "inline css fetch",
            '<p style="color:red;background:url(//x.example/b.png)">红</p>',
            "color:red",
        ),
        ("refresh", '<meta http-equiv="refresh" content="0;url=https://x.example/"><p>t</p>', "t"),
        ("base", '<base href="https://x.example/"><a href="/zh/">链接</a>', 'title="/zh/"'),
        ("link", '<a href="https://china.usembassy-china.org.cn/zh/">首页</a>', "首页"),
        ("form", '<form action="https://search.usembassy.gov/"><input name=q></form><p>t</p>', "t"),
        ("javascript url", '<a href="javascript:alert(1)">点</a>', "点"),
    ],
)
def test_what_would_run_or_load_is_removed_and_the_text_stays(
    name: str, page: str, kept: str
) -> None:
    shown = inert_page(f"<html><head></head><body>{page}</body></html>".encode()).html
    assert not FETCHING.search(shown), (name, shown)
    assert kept in shown, (name, shown)


def test_a_real_statement_page_keeps_its_text_and_counts_what_it_disarmed() -> None:
    site = ReplicaSite()
    site.public_base = "https://china.usembassy-china.org.cn"
    statement = site.statements[0]
    status, _, raw = site.respond(statement.path)
    assert status == 200
    inert = inert_page(raw)
    assert statement.title in inert.html and statement.paragraphs[0][:20] in inert.html
    assert inert.images >= 1 and inert.links >= 10  # logo placeholder; navigation kept as text
    assert not FETCHING.search(inert.html)


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe", b"<", "<p>只有片段".encode("gb18030")])
def test_broken_bytes_still_give_an_inert_page(raw: bytes) -> None:
    shown = inert_page(raw).html
    assert shown.startswith("<!doctype html>") and not FETCHING.search(shown)
