"""A local replica of the embassy's WordPress site, served on 127.0.0.1 (port 0).

It renders statements (from data/statements.json, built from the real seeds) in
either theme generation, in Chinese and, for the statements given English twins
(`english_twins`), in English too as the real Polylang site does (`/{slug}-en/`, an
English listing at `/news-events/`, hreflang links and a language switch both ways), with the noise the real pages carry (nonces, `?ver=`
asset URLs, reading time, a rotating sidebar, a cookie banner), and lets a test
add, edit and delete statements or make the server misbehave between crawls.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

DATA = Path(__file__).with_name("data") / "statements.json"
SITE_NAME = "美国驻华大使馆和领事馆"
LISTING_PATH = "/zh/news-events-zh/"
# Polylang: English (the default language) at the root, Chinese under /zh/.
LISTING_PATHS = {"zh": LISTING_PATH, "en": "/news-events/"}
LOCALES = {"zh": "zh-CN", "en": "en-US"}
SITE_NAMES = {"zh": SITE_NAME, "en": "U.S. Embassy & Consulates in China"}


@dataclass
class Statement:
    post_id: int
    slug: str
    title: str
    paragraphs: list[str]
    author: str = "U.S. Mission China"
    published: str = "2021-03-31T07:35:12+00:00"
    modified: str | None = None
    shown_date: str = "三月 31, 2021"
    tags: list[str] = field(default_factory=lambda: ["新闻简报"])
    categories: list[str] = field(default_factory=lambda: ["新闻"])
    subtitle: str | None = None
    caption: str | None = "DOS Seal"
    link: str | None = None  # where the listing points, if not this replica's own page
    machine_dates: bool = True  # False: only the visible date (no meta, no <time datetime>)
    language: str = "zh"  # "en": the English twin of the Chinese statement with this slug

    @property
    def path(self) -> str:
        return language_path(self.slug, self.language)

    def excerpt(self) -> str:
        """wp_trim_words(content, 55): whitespace words, so most zh bodies are whole."""
        words = " ".join(self.paragraphs).split()
        return " ".join(words) if len(words) <= 55 else " ".join(words[:55]) + " ..."


def language_path(slug: str, language: str) -> str:
    """Where Polylang puts a post: Chinese under /zh/, English at the root, slug suffixed."""
    return f"/zh/{slug}/" if language == "zh" else f"/{slug}-{language}/"


def seed_statements() -> list[Statement]:
    return [Statement(**record) for record in json.loads(DATA.read_text(encoding="utf-8"))]


def english_twin(statement: Statement) -> Statement:
    """The English version of a Chinese statement: its own post (id), text and terms."""
    published = datetime.fromisoformat(statement.published)
    return Statement(
        post_id=statement.post_id + 100000,
        slug=statement.slug,
        title=f"Statement on {statement.slug.replace('-', ' ')}",
        paragraphs=[
            f"English text of paragraph {number} of {statement.slug}."
            for number in range(1, len(statement.paragraphs) + 1)
        ],
        author=statement.author,
        published=statement.published,
        shown_date=f"{published:%B} {published.day}, {published.year}",
        tags=["Press Briefing"],
        categories=["News"],
        caption=statement.caption,
        machine_dates=statement.machine_dates,
        language="en",
    )


def english_twins(statements: list[Statement]) -> list[Statement]:
    return [english_twin(statement) for statement in statements]


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic()


@dataclass
class Canned:
    """A response served instead of the real page, `times` times (None: until cleared)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int | None = 1
    delay: float = 0.0


class ReplicaSite:
    def __init__(
        self,
        statements: list[Statement] | None = None,
        *,
        theme: str = "current",
        per_page: int = 10,
        pagination: tuple[str, ...] = ("link", "nav"),
        charset: str = "utf-8",
        english: list[Statement] | None = None,
    ) -> None:
        self.statements = statements if statements is not None else seed_statements()
        # English twins (language "en"), listed at /news-events/; none by default.
        self.english = english if english is not None else []
        self.theme = theme
        self.per_page = per_page
        self.pagination = pagination
        self.charset = charset
        self.robots_txt = "User-agent: *\nDisallow: /wp-admin/\n"
        self.truncate_details_at: int | None = None
        self.redirects: dict[str, str] = {}
        self.public_base: str | None = None  # render links for this origin (fixture pages)
        self.latency = 0.0  # seconds every answer waits (a slow site)
        self.soft_404 = False  # answer missing pages with the 404 template but status 200
        self.requests: list[Request] = []
        self._canned: dict[str, list[Canned]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- running -----------------------------------------------------------------------

    def start(self) -> ReplicaSite:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        if self.public_base is not None:
            return self.public_base
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def listing_url(self) -> str:
        return self.url(LISTING_PATH)

    def listing_url_for(self, language: str) -> str:
        return self.url(LISTING_PATHS[language])

    def versions(self, language: str) -> list[Statement]:
        """The statements of one language, newest first."""
        return self.statements if language == "zh" else self.english

    def twin_of(self, statement: Statement) -> Statement | None:
        """The statement's version in the other language, if the site has one."""
        other = "en" if statement.language == "zh" else "zh"
        return next((s for s in self.versions(other) if s.slug == statement.slug), None)

    # -- what tests change ---------------------------------------------------------------

    def statement(self, slug: str, lang: str = "zh") -> Statement:
        return next(s for s in self.versions(lang) if s.slug == slug)

    def add(self, statement: Statement) -> None:
        """Publish a statement (an English one: a twin for the Chinese one of its slug)."""
        with self._lock:
            self.versions(statement.language).insert(0, statement)

    def edit(self, slug: str, /, *, lang: str = "zh", **changes: object) -> Statement:
        """Change one language version of a statement (`lang="en"`: the English twin only)."""
        with self._lock:
            statement = self.statement(slug, lang)
            for name, value in changes.items():
                setattr(statement, name, copy.deepcopy(value))
            statement.modified = datetime.now(UTC).replace(microsecond=0).isoformat()
            return statement

    def restyle(self, transform: Callable[[str], str]) -> list[str]:
        """A theme or texturize switch: every title and paragraph rewritten at once, the posts'
        modification times untouched. Returns the slugs whose text it changed."""
        changed = []
        with self._lock:
            for statement in self.statements:
                title, paragraphs = (
                    transform(statement.title),
                    list(map(transform, statement.paragraphs)),
                )
                if (title, paragraphs) != (statement.title, statement.paragraphs):
                    statement.title, statement.paragraphs = title, paragraphs
                    changed.append(statement.slug)
        return changed

    def delete(self, slug: str) -> None:
        with self._lock:
            self.statements = [s for s in self.statements if s.slug != slug]

    def serve(self, path: str, canned: Canned) -> None:
        """Answer `path` ("*" for every path) with `canned` for its next `times` requests."""
        with self._lock:
            self._canned.setdefault(path, []).append(canned)

    def clear_canned(self) -> None:
        with self._lock:
            self._canned.clear()

    def count(self, path_prefix: str) -> int:
        return sum(1 for request in self.requests if request.path.startswith(path_prefix))

    # -- answering -----------------------------------------------------------------------

    def _take_canned(self, path: str) -> Canned | None:
        with self._lock:
            for key in (path, "*"):
                queue = self._canned.get(key)
                if queue:
                    canned = queue[0]
                    if canned.times is not None:
                        canned.times -= 1
                        if canned.times <= 0:
                            queue.pop(0)
                    return canned
        return None

    def respond(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.latency:
            time.sleep(self.latency)
        canned = self._take_canned(path)
        if canned is not None:
            if canned.delay:
                time.sleep(canned.delay)
            return canned.status, canned.headers, canned.body
        if path in self.redirects:
            return 301, {"Location": self.redirects[path]}, b""
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, self.robots_txt.encode()
        if path in ("/sitemap_index.xml", "/post-sitemap.xml"):
            with self._lock:
                statements = self.statements + self.english
            xml = (
                self._sitemap_index() if path == "/sitemap_index.xml" else self._sitemap(statements)
            )
            return 200, {"Content-Type": "application/xml; charset=UTF-8"}, xml.encode()
        if path == "/wp-json/wp/v2/posts":
            with self._lock:
                statements = self.statements + self.english
            return 200, {"Content-Type": "application/json"}, self._rest_posts(statements)
        for language, prefix in LISTING_PATHS.items():
            page = _listing_page_number(path, prefix)
            if page is not None and (language == "zh" or self.english):
                with self._lock:
                    listed = list(self.versions(language))
                return self._listing(listed, page, language)
        with self._lock:
            statements = self.statements + self.english
        for statement in statements:
            if statement.path == path:
                return self._detail(statement)
        status = 200 if self.soft_404 else 404
        return status, self._html_headers(), self._encode(render_not_found(self))

    def _sitemap_index(self) -> str:
        """Yoast's index: the post sitemap (the one with statements) and another."""
        entries = "".join(
            f"<sitemap><loc>{self.url(path)}</loc></sitemap>"
            for path in ("/post-sitemap.xml", "/page-sitemap.xml")
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>{_SITEMAP_INDEX_OPEN}{entries}</sitemapindex>'
        )

    def _sitemap(self, statements: list[Statement]) -> str:
        entries = "".join(
            f"<url><loc>{self.url(s.path)}</loc><lastmod>{s.modified or s.published}</lastmod></url>"
            for s in statements
        )
        return f'<?xml version="1.0" encoding="UTF-8"?>{_URLSET_OPEN}{entries}</urlset>'

    def _rest_posts(self, statements: list[Statement]) -> bytes:
        """`/wp-json/wp/v2/posts?orderby=modified`: times in UTC without an offset."""
        posts = [
            {
                "id": s.post_id,
                "link": self.url(s.path),
                "modified_gmt": (s.modified or s.published).removesuffix("+00:00"),
                "title": {"rendered": s.title},
            }
            for s in statements
        ]
        posts.sort(key=lambda post: str(post["modified_gmt"]), reverse=True)
        return json.dumps(posts, ensure_ascii=False).encode()

    def _listing(
        self, statements: list[Statement], page: int, language: str = "zh"
    ) -> tuple[int, dict[str, str], bytes]:
        chunk = statements[(page - 1) * self.per_page : page * self.per_page]
        if not chunk and page > 1:
            return 404, self._html_headers(), self._encode(render_not_found(self))
        has_next = page * self.per_page < len(statements)
        render = render_listing_cms3 if self.theme == "cms3" else render_listing_current
        body = render(self, chunk, page, has_next, language)
        return 200, self._html_headers(), self._encode(body)

    def _detail(self, statement: Statement) -> tuple[int, dict[str, str], bytes]:
        render = render_detail_cms3 if self.theme == "cms3" else render_detail_current
        body = self._encode(render(self, statement))
        if self.truncate_details_at is not None:
            body = body[: self.truncate_details_at]
        return 200, self._html_headers(), body

    def _html_headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"text/html; charset={self.charset}",
            "X-Request-Nonce": uuid.uuid4().hex,
        }

    def _encode(self, html: str) -> bytes:
        return html.encode(self.charset, errors="xmlcharrefreplace")


_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
_SITEMAP_INDEX_OPEN = f'<sitemapindex xmlns="{_SITEMAP_NS}">'
_URLSET_OPEN = f'<urlset xmlns="{_SITEMAP_NS}">'


def _listing_page_number(path: str, prefix: str = LISTING_PATH) -> int | None:
    if path == prefix:
        return 1
    if path.startswith(prefix + "page/"):
        number = path[len(prefix + "page/") :].strip("/")
        return int(number) if number.isdigit() else None
    return None


def _handler_for(site: ReplicaSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, a keep-alive client waits
        # for the delayed ACK (~40 ms) before the body, which no real server makes it do.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            site.requests.append(Request(path, dict(self.headers.items()), time.monotonic()))
            status, headers, body = site.respond(path)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


# -- rendering: shared noise ------------------------------------------------------------


def _noise_head(site: ReplicaSite) -> str:
    version = random.randint(100000, 999999)
    nonce = uuid.uuid4().hex[:10]
    return (
        f'<link rel="stylesheet" href="{site.base_url}/wp-content/themes/embassy/style.css?ver={version}">\n'
        f"<script nonce=\"{nonce}\">window.wpNonce='{uuid.uuid4().hex}';"
        f"ga('create','UA-30733798-4','auto');</script>\n"
    )


def _cookie_banner() -> str:
    consent = uuid.uuid4().hex[:8]
    return (
        f'<div id="cmplz-cookiebanner-container"><div class="cmplz-cookiebanner" data-id="{consent}">'
        "<p>Manage consent. We use cookies to optimise our website. {vendor_count} vendors.</p>"
        "<button>Accept</button></div></div>"
    )


def _sidebar(site: ReplicaSite) -> str:
    picks = random.sample(site.statements, k=min(3, len(site.statements)))
    items = "".join(f'<li><a href="{site.url(s.path)}">{escape(s.title)}</a></li>' for s in picks)
    return f'<aside class="sidebar widget"><h3>相关文章</h3><ul>{items}</ul></aside>'


def _uswds_header(site: ReplicaSite) -> str:
    countries = "".join(
        f'<li><a href="https://{code}.usembassy.gov/">{name}</a></li>'
        for code, name in (("af", "Afghanistan"), ("al", "Albania"), ("dz", "Algeria"))
    )
    return f"""<a class="usa-skipnav" href="#main">Skip to main content</a>
<section class="usa-banner"><p>An official website of the United States government</p>
<p>Here's how you know</p><p>Official websites use .gov</p></section>
<header class="header"><a href="{site.url("/zh/")}"><img src="{site.base_url}/wp-content/themes/embassy/img/use-beijing-logo.png" alt=""></a>
<span class="site-title">{SITE_NAME}</span>
<nav class="primary-nav"><span>目录</span><ul><li><a href="{site.url("/zh/visas-zh/")}">美国签证服务</a></li>
<li><a href="{site.listing_url}">新闻及活动</a></li></ul></nav>
<div class="side-nav"><img alt="Side Navigation Logo"><form action="https://search.usembassy.gov/search/"><input name="query"><button>搜索</button></form>
<div class="countries"><span>国家</span><ul>{countries}</ul></div></div></header>"""


def _footer() -> str:
    return (
        f"<footer><p>{SITE_NAME}</p><ul><li>白宫</li><li>国务院</li><li>隐私政策</li>"
        "<li>与我们联络</li><li>FOIA</li><li>无恐惧法</li></ul></footer>"
    )


def _paragraphs_html(statement: Statement) -> str:
    return "\n".join(f"<p>{escape(p)}</p>" for p in statement.paragraphs)


def _caption_html(statement: Statement) -> str:
    if not statement.caption:
        return ""
    return (
        f'<div id="attachment_678" class="wp-caption alignnone"><img alt="{escape(statement.caption)}" '
        f'src="/wp-content/uploads/seal.jpg"><p class="wp-caption-text">{escape(statement.caption)}</p></div>'
    )


def _term_links(site: ReplicaSite, names: list[str], kind: str, rel: str) -> str:
    return ", ".join(
        f'<a href="{site.url(f"/zh/{kind}/{i}/")}" rel="{rel}">{escape(name)}</a>'
        for i, name in enumerate(names)
    )


def _reading_time(statement: Statement) -> int:
    # Rounded per request (the real plugin's estimate wobbles between page loads).
    return max(1, len("".join(statement.paragraphs)) // 400 + random.randint(0, 1))


def _machine_dates(s: Statement, modified: str) -> str:
    if not s.machine_dates:
        return ""
    return (
        f'<meta property="article:published_time" content="{s.published}" />\n'
        f'<meta property="article:modified_time" content="{modified}" />\n'
    )


def _datetime_attribute(s: Statement) -> str:
    return f' datetime="{s.published}"' if s.machine_dates else ""


# -- rendering: the current theme (2021-) -----------------------------------------------


def _alternates(site: ReplicaSite, s: Statement, close: str) -> str:
    """Polylang's hreflang links: every language's version, this one's included."""
    return "\n".join(
        f'<link rel="alternate" href="{site.url(language_path(s.slug, code))}" hreflang="{code}"{close}>'
        for code in ("en", "zh")
    )


SELECTED = ' selected="selected"'


def _switch_options(site: ReplicaSite, s: Statement, urls: bool) -> str:
    """The language switch's options; `urls`: values are the versions' URLs, else codes."""
    labels = {"en": "English", "zh": "中文"}
    return "".join(
        f'<option value="{site.url(language_path(s.slug, code)) if urls else code}" '
        f'lang="{LOCALES[code]}"{SELECTED if code == s.language else ""}>'
        f"{labels[code]}</option>"
        for code in ("en", "zh")
    )


def _language_switch_current(site: ReplicaSite, s: Statement) -> str:
    # Only where a twin exists: the Chinese-only replica's pages stay as they always were.
    if site.twin_of(s) is None:
        return ""
    return (
        '<div class="language-switcher"><ul id="language-switch"><select name="lang_choice_1">'
        f"{_switch_options(site, s, urls=True)}</select></ul></div>\n"
    )


def render_detail_current(site: ReplicaSite, s: Statement) -> str:
    url = site.url(s.path)
    modified = s.modified or s.published
    subtitle = f'<h2 class="subtitle">{escape(s.subtitle)}</h2>' if s.subtitle else ""
    name = SITE_NAMES[s.language]
    by, minutes = ("By", "minute read") if s.language == "en" else ("通过", "快速阅读")
    return f"""<!doctype html>
<html class="no-js" lang="{LOCALES[s.language]}">
<head>
<meta charset="{site.charset}">
<title>{escape(s.title)} - {name}</title>
<meta name='robots' content='index, follow, max-image-preview:large' />
{_alternates(site, s, " /")}
<link rel="canonical" href="{url}" />
<meta property="og:locale" content="{LOCALES[s.language].replace("-", "_")}" />
<meta property="og:title" content="{escape(s.title)} - {name}" />
<meta property="og:url" content="{url}" />
{_machine_dates(s, modified)}<link rel='shortlink' href='{site.base_url}/?p={s.post_id}' />
{_noise_head(site)}</head>
<body class="post-template-default single single-post postid-{s.post_id} single-format-standard">
{_uswds_header(site)}
{_language_switch_current(site, s)}<main id="main">
 <div class="container"><div class="row">
  <ol class="breadcrumbs"><li><a href="{site.url("/zh/")}"></a></li><li></li><li></li></ol>
  <h1 class="entry-title">{escape(s.title)}</h1>
  {subtitle}
  <div class="post-meta">
   <span class="author">{by} <a href="{site.url("/zh/按照/missioncn/")}" rel="author">{escape(s.author)}</a></span>
   <span class="reading-time">{_reading_time(s)} {minutes}</span>
   <div class="share"><a href="https://twitter.com/intent/tweet?url={url}"><span class="icon"></span></a></div>
   <time class="entry-date"{_datetime_attribute(s)}>{escape(s.shown_date)}</time>
  </div>
  <article class="post-{s.post_id} post type-post status-publish format-standard hentry">
   <div class="entry-content">
    {_caption_html(s)}
    {_paragraphs_html(s)}
   </div>
  </article>
  <div class="post-tags">{_term_links(site, s.tags, "tag", "tag")}</div>
  <div class="post-categories">{_term_links(site, s.categories, "category", "category tag")}</div>
  {_sidebar(site)}
 </div></div>
</main>
{_footer()}
{_cookie_banner()}
</body></html>"""


_LISTING_WORDS = {
    "zh": ("新闻及活动", "阅读更多»", "展示更多 &or;"),
    "en": ("News &amp; Events", "Read More »", "Show More &or;"),
}


def render_listing_current(
    site: ReplicaSite, chunk: list[Statement], page: int, has_next: bool, language: str = "zh"
) -> str:
    heading, read_more, show_more = _LISTING_WORDS[language]
    articles = []
    for index, s in enumerate(chunk):
        hidden = " shohid" if index >= 6 else ""
        href = s.link or site.url(s.path)
        articles.append(
            f"""<article class="post-{s.post_id} post type-post{hidden}"><div class="archivegrid">
<h2 class="entry-title"><a href="{href}">{escape(s.title)}</a></h2>
<div class="entry-summary"><p>{escape(s.excerpt())}</p>
<a href="{href}">{read_more}</a></div></div></article>"""
        )
    return f"""<!doctype html>
<html class="no-js" lang="{LOCALES[language]}"><head><meta charset="{site.charset}">
<title>{heading} - {SITE_NAMES[language]}</title>
{_listing_alternates(site)}{_pagination_head(site, page, has_next, language)}{_noise_head(site)}
<style>.archive .shohid {{ display: none }}</style></head>
<body class="blog archive">
{_uswds_header(site)}
<main id="main"><div class="container"><div class="row">
<h1>{heading}</h1>
<div class="archive">
{"".join(articles)}
<div class="centmore"><span class="loadmore">{show_more}</span></div>
</div>
{_pagination_nav(site, page, has_next, language)}
{_sidebar(site)}
</div></div></main>
{_footer()}
{_cookie_banner()}
</body></html>"""


def _listing_alternates(site: ReplicaSite) -> str:
    # Only on the bilingual replica: the Chinese-only one's listings stay as they were.
    if not site.english:
        return ""
    return "".join(
        f'<link rel="alternate" href="{site.listing_url_for(code)}" hreflang="{code}" />\n'
        for code in ("en", "zh")
    )


def _page_url(site: ReplicaSite, page: int, language: str = "zh") -> str:
    first = site.listing_url_for(language)
    return first if page == 1 else site.url(f"{LISTING_PATHS[language]}page/{page}/")


def _pagination_head(site: ReplicaSite, page: int, has_next: bool, language: str = "zh") -> str:
    if "link" in site.pagination and has_next:
        return f'<link rel="next" href="{_page_url(site, page + 1, language)}" />\n'
    return ""


def _pagination_nav(site: ReplicaSite, page: int, has_next: bool, language: str = "zh") -> str:
    parts = []
    older = "Older posts" if language == "en" else "较早文章"
    if "nav" in site.pagination and has_next:
        parts.append(
            '<nav class="navigation posts-navigation"><div class="nav-links">'
            f'<div class="nav-previous"><a href="{_page_url(site, page + 1, language)}">{older}</a></div>'
            "</div></nav>"
        )
    if "numbers" in site.pagination:
        last = max(1, -(-len(site.versions(language)) // site.per_page))
        numbers = " ".join(
            f'<a class="page-numbers" href="{_page_url(site, n, language)}">{n}</a>'
            for n in range(1, last + 1)
            if n != page
        )
        parts.append(f'<div class="pagination">{numbers}</div>')
    return "\n".join(parts)


def render_not_found(site: ReplicaSite) -> str:
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="{site.charset}">
<title>未找到页面 - {SITE_NAME}</title></head><body class="error404">{_uswds_header(site)}
<main id="main"><div class="container"><h1>未找到页面</h1><p>抱歉，您要找的页面不存在。</p></div></main>
{_footer()}</body></html>"""


# -- rendering: the cms3 theme (2016-2020, Sage 8 based) ---------------------------------


def render_detail_cms3(site: ReplicaSite, s: Statement) -> str:
    url = site.url(s.path)
    return f"""<!doctype html>
<html class="no-js" lang="{LOCALES[s.language]}">
<head>
<meta charset="{site.charset}">
<title>{escape(s.title)} | {SITE_NAMES[s.language]}</title>
<link rel="canonical" href="{url}">
<meta property="og:locale" content="zh_CN">
<meta property="og:type" content="article">
<meta property="og:title" content="{escape(s.title)} | {SITE_NAMES[s.language]}">
<meta property="og:url" content="{url}">
<meta property="article:published_time" content="{s.published}">
<link rel="shortlink" href="{site.base_url}/?p={s.post_id}">
{_alternates(site, s, "")}
{_noise_head(site)}</head>
<body class="post-template-default single single-post postid-{s.post_id} {s.slug} sidebar-primary">
<header class="banner"><div class="mo-header"><div class="container"><div class="mo-language">
<ul id="language-switch"><label for="lang_choice_1"><select name="lang_choice_1" id="lang_choice_1">
{_switch_options(site, s, urls=False)}
</select></label></ul></div></div></div></header>
<div class="mo-breadcrumbs"><div class="container"><header><h1>
   {escape(s.title)} </h1></header></div></div>
<div class="container"><p class="breadcrumbs"><span><a href="{site.url("/zh/")}">首页</a> | <span class="breadcrumb_last">{escape(s.title)}</span></span></p></div>
<div id="main" class="wrap container " role="document">
 <div class="content row">
  <main class="main">
   <article class="post-{s.post_id} post type-post status-publish format-standard hentry">
    <div class="mo-wrapper">
     <div class="entry-content">
      <div class="mo-featured-image">{_caption_html(s)}</div>
      <time class="updated" datetime="{s.published}">{escape(s.shown_date)}</time>
      <p class="byline author vcard">{"By" if s.language == "en" else "通过"} <a href="{site.url("/zh/author/missioncn/")}" rel="author" class="fn">{escape(s.author)}</a></p>
      {_paragraphs_html(s)}
      <!-- AddThis Advanced Settings above via filter on the_content -->
      <div class="mo-sharing-buttons"><a class="sharing-facebook" href="#">Facebook</a></div>
      <p>分享此文章</p>
     </div>
     <footer><p class="mo-tags">标签: {_term_links(site, s.tags, "tag", "tag")}</p>
     <p class="mo-categories">{_term_links(site, s.categories, "category", "category tag")}</p></footer>
    </div>
   </article>
  </main>
  {_sidebar(site)}
 </div>
</div>
<div class="mo-footer"><footer class="content-info">{SITE_NAME}</footer></div>
{_cookie_banner()}
</body></html>"""


def render_listing_cms3(
    site: ReplicaSite, chunk: list[Statement], page: int, has_next: bool, language: str = "zh"
) -> str:
    heading, _, show_more = _LISTING_WORDS[language]
    articles = "".join(
        f"""<article class="post-{s.post_id} post type-post"><div class="archivegrid">
<h2 class="entry-title"><a href="{site.url(s.path)}">{escape(s.title)}</a></h2>
<p class="blog-meta">{escape(s.shown_date)}</p>
<div class="entry-summary"><p>{escape(s.excerpt())}</p></div></div></article>"""
        for s in chunk
    )
    return f"""<!doctype html><html lang="{LOCALES[language]}"><head><meta charset="{site.charset}">
<title>{heading} | {SITE_NAMES[language]}</title>{_listing_alternates(site)}{_pagination_head(site, page, has_next, language)}{_noise_head(site)}</head>
<body class="archive category">
<div class="mo-breadcrumbs"><div class="container"><header><h1>{heading}</h1></header></div></div>
<div id="main" class="wrap container " role="document"><div class="content row"><main class="main">
<div class="archive">{articles}<div class="centmore"><span class="loadmore">{show_more}</span></div></div>
{_pagination_nav(site, page, has_next, language)}
</main>{_sidebar(site)}</div></div></body></html>"""
