"""One mission page's country switcher, for `embassy-watch missions --refresh`.

This is a single request made by a person at a terminal, not a crawl: it goes through
urllib with the crawl's user agent, timeout and page-size bound, and follows redirects
only on the host it was asked for.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urljoin, urlsplit

from parsel import Selector

from config import CrawlSettings
from config.missions import SwitcherLink
from crawler.extract import page_languages

MAX_LINKS = 1000
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


class SwitcherUnavailable(Exception):
    """The page could not be read or has no country switcher; the message is one line."""


@dataclass(frozen=True)
class SwitcherPage:
    """What one mission page offers: other missions (country switcher), its own languages."""

    links: tuple[SwitcherLink, ...]
    languages: tuple[str, ...]  # from its hreflang links and language switch; may be empty


def read_switcher(url: str, crawl: CrawlSettings) -> SwitcherPage:
    page = fetch_page(url, crawl)
    links = country_switcher(page, url)
    if not links:
        raise SwitcherUnavailable(f"{url} has no country switcher (.countries list of links)")
    return SwitcherPage(tuple(links), page_languages(page.decode("utf-8", errors="replace")))


def country_switcher(page: bytes, url: str) -> list[SwitcherLink]:
    """The `.countries` list's links, as absolute URLs with their labels."""
    selector = Selector(text=page.decode("utf-8", errors="replace"))
    anchors = selector.css(".countries ul li a")[:MAX_LINKS]
    return [
        SwitcherLink(label=" ".join(a.css("::text").getall()).strip(), url=urljoin(url, href))
        for a in anchors
        if (href := a.attrib.get("href"))
    ]


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, host: str) -> None:
        self.host = host

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).hostname != self.host:
            raise SwitcherUnavailable(f"{req.full_url} redirects off its site, to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_page(url: str, crawl: CrawlSettings) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SwitcherUnavailable(f"not an http(s) URL: {url!r}")
    opener = urllib.request.build_opener(_SameHostRedirects(parts.hostname))
    request = urllib.request.Request(url, headers={"User-Agent": crawl.user_agent})
    deadline = time.monotonic() + crawl.timeout
    try:
        with opener.open(request, timeout=crawl.timeout) as response:
            body = _read_bounded(response, url, crawl.max_page_bytes, deadline)
    except urllib.error.HTTPError as error:
        raise SwitcherUnavailable(f"{url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SwitcherUnavailable(f"cannot read {url}: {reason}") from None
    return body


def _read_bounded(response: IO[bytes], url: str, limit: int, deadline: float) -> bytes:
    # The socket timeout bounds each read; the deadline bounds a server that drips bytes.
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise SwitcherUnavailable(f"{url} is larger than {limit} bytes")
        if time.monotonic() > deadline:
            raise SwitcherUnavailable(f"{url} took longer than the crawl timeout to send")
        chunks.append(chunk)
    return b"".join(chunks)
