"""Extraction from the site's HTML: listing pages and statement detail pages.

Pure functions of (html text, url). Both theme generations are handled: the
current USWDS-era theme (2021-) and the older Sage-based "cms3" theme (2016-2020);
see ../shared/notes/embassy-site.md section 4 for the evidence behind each selector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from copy import deepcopy
from datetime import UTC, datetime, tzinfo

from lxml import etree
from parsel import Selector

from crawler.dates import parse_display_date, parse_iso_datetime
from crawler.urls import is_http_url, normalise_url
from storage.records import ExtractionFailure, ListingItem, ListingPage, StatementContent

# Bump when a rule change would make the same page extract differently, so a new
# revision can be told apart from a new extractor.
EXTRACTOR_VERSION = "1"

_TITLE_SELECTORS = ("main h1.entry-title", "main h1", ".mo-breadcrumbs h1", "h1.entry-title", "h1")
_BODY_SELECTORS = (
    "main .entry-content",
    ".main article .entry-content",
    "article .entry-content",
    ".entry-content",
    ".mo-page-content",
)
# Inside a body: captions, share widgets, metadata blocks, banners, embedded code.
_BODY_NOISE = ", ".join(
    (
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "form",
        "button",
        "nav",
        "aside",
        "figure",
        "figcaption",
        ".wp-caption",
        ".wp-caption-text",
        ".byline",
        "time",
        ".reading-time",
        ".post-meta",
        ".post-tags",
        ".post-categories",
        ".sharedaddy",
        ".share",
        "[class*='sharing']",
        "[class*='addthis']",
        "[class*='addtoany']",
        "[class*='social']",
        "[id^='cmplz']",
        "[class*='cmplz']",
        "[class*='cookie']",
        ".mo-related-articles-post-footer",
        ".related-posts",
        ".screen-reader-text",
        ".sr-only",
    )
)
_ADDTHIS_MARKER = "AddThis Advanced Settings above via filter on the_content"
_SITE_NAME_SUFFIX = re.compile(r"\s+[-|–]\s+(美国驻华大使馆和领事馆|U\.S\. Embassy .*)$")
_BYLINE_PREFIX = re.compile(r"^\s*(通过|By)\s+", re.IGNORECASE)
_POST_ID_IN_CLASS = re.compile(r"\bpostid-(\d+)\b")
_POST_ID_IN_ARTICLE = re.compile(r"\bpost-(\d+)\b")
_SHORTLINK_ID = re.compile(r"[?&]p=(\d+)")
_PAGE_NUMBER = re.compile(r"/page/(\d+)/?$")
_HTML_END = re.compile(r"</html\s*>", re.IGNORECASE)

_BLOCK_TAG_NAMES = (
    "address article aside blockquote dd div dl dt figure footer h1 h2 h3 h4 h5 h6 header"
    " hr li main ol p pre section table tbody thead tfoot tr ul"
)
_BLOCK_TAGS = frozenset(_BLOCK_TAG_NAMES.split())
_INLINE_SPACES = re.compile(r"[^\S\n]+")

READ_MORE_TEXTS = frozenset({"阅读更多»", "阅读更多 »", "Read More»", "Read More »", "Read more»"})
_OLDER_POSTS = re.compile(r"older|更早|旧文章|下一页|next", re.IGNORECASE)


# -- detail pages ------------------------------------------------------------------------

_NOT_FOUND_BODY = re.compile(r"<body\b[^>]*\bclass\s*=\s*[\"'][^\"']*\berror404\b", re.I)


def is_not_found_page(text: str) -> bool:
    """WordPress's 404 template (body class `error404`), even when served with status 200."""
    return bool(_NOT_FOUND_BODY.search(text[:65536]))


def extract_statement(text: str, url: str, *, zone: tzinfo) -> StatementContent | ExtractionFailure:
    """The statement on a detail page, or why there is none; `zone`: the site's time zone."""
    if not text.strip():
        return ExtractionFailure("empty page")
    if not _HTML_END.search(text[-4096:]):
        # WordPress always closes its pages; a page cut short would archive a cut body.
        return ExtractionFailure("truncated page (no closing </html>)")
    page = Selector(text=text)
    title = _title(page)
    if not title:
        return ExtractionFailure("no title")
    body = _body(page)
    if not body:
        return ExtractionFailure("no body")
    language = _language(page, url)
    published_raw = _visible_date(page, language)
    return StatementContent(
        url=_canonical(page, url),
        title=title,
        body=body,
        language=language,
        post_id=_post_id(page),
        subtitle=_first_text(page, ("main .subtitle", "main h2.subtitle", ".entry-subtitle")),
        published_at=_published_at(page, published_raw, zone, language),
        published_raw=published_raw or page.css(_META_PUBLISHED).attrib.get("content"),
        modified_at=_modified_at(page),
        author=_author(page),
        tags=_rel_links(page, "tag", exclude="category"),
        categories=_rel_links(page, "category"),
        twin_url=_twin_url(page, url, language),
        extractor_version=EXTRACTOR_VERSION,
    )


_META_PUBLISHED = 'meta[property="article:published_time"]'
_META_MODIFIED = 'meta[property="article:modified_time"]'


def _title(page: Selector) -> str:
    found = _first_text(page, _TITLE_SELECTORS)
    if found:
        return found
    for candidate in (
        page.css('meta[property="og:title"]').attrib.get("content"),
        page.css("title::text").get(),
    ):
        if candidate and candidate.strip():
            return _SITE_NAME_SUFFIX.sub("", _collapse(candidate))
    return ""


def _first_text(page: Selector, selectors: Iterable[str]) -> str | None:
    for selector in selectors:
        for node in page.css(selector):
            text = _collapse(" ".join(node.css("::text").getall()))
            if text:
                return text
    return None


def _body(page: Selector) -> str:
    container = _body_container(page)
    if container is None:
        return ""
    element = _cleaned_copy(container.root)
    return "\n\n".join(paragraphs(element))


def _body_container(page: Selector) -> Selector | None:
    for selector in _BODY_SELECTORS:
        found = page.css(selector)
        if found:
            return found[0]
    # Confirmed on the current theme in 2023: the body is the <p>s of `main div.row`.
    rows = page.css("main div.row")
    return rows[0] if rows and rows[0].css("p") else None


def _cleaned_copy(element: etree._Element) -> etree._Element:
    # A copy of the parsed tree, not a second parse of its markup: the page is parsed once.
    copy = deepcopy(element)
    copy.tail = None  # the text after the container is not part of it
    _cut_after_addthis_marker(copy)
    noise = Selector(root=copy).css(_BODY_NOISE)
    for node in noise:
        if node.root is not copy and node.root.getparent() is not None:
            node.root.drop_tree()
    for heading in Selector(root=copy).css("h1"):
        heading.root.drop_tree()  # the page title, when a theme puts it inside the body
    return copy


def _cut_after_addthis_marker(root: etree._Element) -> None:
    for comment in root.iter(etree.Comment):
        if _ADDTHIS_MARKER in (comment.text or ""):
            for sibling in list(comment.itersiblings()):
                sibling.getparent().remove(sibling)
            comment.getparent().remove(comment)
            return


def paragraphs(root: etree._Element) -> list[str]:
    """Block elements become paragraphs; <br> a line break; other whitespace one space."""
    found: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = "\n".join(_collapse(line) for line in "".join(current).split("\n"))
        text = text.strip()
        if text:
            found.append(text)
        current.clear()

    def walk(node: etree._Element) -> None:
        if not isinstance(node.tag, str):  # comments and processing instructions
            current.append(node.tail or "")
            return
        tag = node.tag.lower()
        block = tag in _BLOCK_TAGS
        if block:
            flush()
        if tag == "br":
            current.append("\n")
        else:
            current.append(node.text or "")
            for child in node:
                walk(child)
        if block:
            flush()
        current.append(node.tail or "")

    current.append(root.text or "")
    for child in root:
        walk(child)
    flush()
    return found


def _collapse(text: str) -> str:
    return _INLINE_SPACES.sub(" ", text.replace("\xa0", " ").replace("\u200b", "")).strip()


def _canonical(page: Selector, url: str) -> str:
    for candidate in (
        page.css('link[rel="canonical"]').attrib.get("href"),
        page.css('meta[property="og:url"]').attrib.get("content"),
    ):
        if candidate and is_http_url(normalise_url(candidate, url)):
            return normalise_url(candidate, url)
    return normalise_url(url)


def _language(page: Selector, url: str) -> str | None:
    for candidate in (
        page.xpath("/html/@lang").get(),
        page.css('meta[property="og:locale"]').attrib.get("content"),
    ):
        if candidate:
            return _language_code(candidate)
    return "zh" if "/zh/" in url else None


def _language_code(value: str) -> str:
    return re.split(r"[-_]", value.strip())[0].lower()


def _post_id(page: Selector) -> int | None:
    shortlink = page.css('link[rel="shortlink"]').attrib.get("href", "")
    for pattern, value in (
        (_SHORTLINK_ID, shortlink),
        (_POST_ID_IN_CLASS, page.xpath("//body/@class").get() or ""),
        (
            _POST_ID_IN_ARTICLE,
            " ".join(page.css("article::attr(id), article::attr(class)").getall()),
        ),
    ):
        match = pattern.search(value)
        if match:
            return int(match.group(1))
    return None


def _visible_date(page: Selector, language: str | None) -> str | None:
    text = _first_text(
        page,
        (
            "main time.entry-date",
            "main .post-meta time",
            "time.entry-date",
            "time.published",
            "time.updated",
            "main time",
        ),
    )
    return text if text and parse_display_date(text, UTC, language) else None


def _published_at(
    page: Selector, visible: str | None, zone: tzinfo, language: str | None
) -> datetime | None:
    return (
        parse_iso_datetime(page.css(_META_PUBLISHED).attrib.get("content"))
        or parse_iso_datetime(page.css("time[datetime]").attrib.get("datetime"))
        or _json_ld_time(page, "datePublished")
        or parse_display_date(visible, zone, language)
    )


def _modified_at(page: Selector) -> datetime | None:
    return parse_iso_datetime(page.css(_META_MODIFIED).attrib.get("content")) or _json_ld_time(
        page, "dateModified"
    )


def _json_ld_time(page: Selector, key: str) -> datetime | None:
    for script in page.css('script[type="application/ld+json"]::text').getall():
        try:
            data = json.loads(script)
        except ValueError:
            continue
        graph = data.get("@graph", [data]) if isinstance(data, dict) else data
        for node in graph if isinstance(graph, list) else []:
            if isinstance(node, dict) and isinstance(node.get(key), str):
                return parse_iso_datetime(node[key])
    return None


def _author(page: Selector) -> str | None:
    text = _first_text(page, ('a[rel="author"]', ".byline .fn", ".byline", "main .author"))
    if not text:
        return None
    return _BYLINE_PREFIX.sub("", text).strip() or None


def _rel_links(page: Selector, rel: str, exclude: str | None = None) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for link in page.css("a[rel]"):
        rels = (link.attrib.get("rel") or "").split()
        if rel not in rels or (exclude and exclude in rels):
            continue
        if link.xpath("ancestor::aside or ancestor::*[contains(@class, 'widget')]").get() == "1":
            continue
        text = _collapse(" ".join(link.css("::text").getall()))
        if text:
            found[text] = None
    return tuple(found)


def _twin_url(page: Selector, url: str, language: str | None) -> str | None:
    for link in page.css('link[rel="alternate"][hreflang]'):
        hreflang = link.attrib.get("hreflang", "")
        href = link.attrib.get("href")
        if href and hreflang != "x-default" and _language_code(hreflang) != language:
            return normalise_url(href, url)
    for option in page.css("#language-switch option[lang]"):
        value = option.attrib.get("value", "")
        if is_http_url(value) and _language_code(option.attrib["lang"]) != language:
            return normalise_url(value)
    return None


_CODE = re.compile(r"[a-z]{2,3}")


def page_languages(text: str) -> tuple[str, ...]:
    """The languages a page says it exists in (Polylang's hreflang alternates and its
    `#language-switch` options), as codes ("en", "zh"), sorted; x-default is no language."""
    page = Selector(text=text or "<html></html>")
    found = page.css('link[rel~="alternate"]::attr(hreflang)').getall()
    found += page.css("#language-switch option::attr(lang)").getall()
    codes = {_language_code(value) for value in found}
    # Codes only (not x-default, not junk): the list is shown on a terminal.
    return tuple(sorted(code for code in codes if _CODE.fullmatch(code)))


# -- listing pages -----------------------------------------------------------------------


def extract_listing(text: str, url: str) -> ListingPage:
    """Every statement linked from a listing page (hidden ones too) and the next page's URL."""
    page = Selector(text=text or "<html></html>")
    items: dict[str, ListingItem] = {}
    for anchor in _item_anchors(page):
        href = anchor.attrib.get("href")
        if not href:
            continue
        item_url = normalise_url(href, url)
        if is_http_url(item_url) and item_url not in items:
            items[item_url] = ListingItem(item_url, _item_title(anchor))
    return ListingPage(tuple(items.values()), _next_urls(page, url))


def _item_anchors(page: Selector) -> list[Selector]:
    anchors = page.xpath(
        "//article//*[self::h2 or self::h3][contains(concat(' ', @class, ' '), ' entry-title ')]//a"
        " | //article//h2//a | //article//h3//a"
    )
    read_more = [
        a
        for a in page.css("a[href]")
        if _collapse("".join(a.css("::text").getall())) in READ_MORE_TEXTS
    ]
    return sorted([*anchors, *read_more], key=_document_order(page))


def _document_order(page: Selector):  # type: ignore[no-untyped-def]
    position = {id(node): index for index, node in enumerate(page.root.iter())}
    return lambda anchor: position.get(id(anchor.root), 0)


def _item_title(anchor: Selector) -> str:
    own = _collapse(" ".join(anchor.css("::text").getall()))
    if own and own not in READ_MORE_TEXTS:
        return own
    heading = anchor.xpath(
        "ancestor::article[1]//*[self::h2 or self::h3][1] | preceding::*[self::h2 or self::h3][1]"
    )
    return _collapse(" ".join(heading[0].css("::text").getall())) if heading else ""


def _next_urls(page: Selector, url: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for href in page.css('link[rel="next"]::attr(href), a[rel~="next"]::attr(href)').getall():
        found[normalise_url(href, url)] = None
    for anchor in page.css(".nav-previous a, .posts-navigation a, .pagination a, a.next"):
        text = _collapse(" ".join(anchor.css("::text").getall()))
        target = anchor.attrib.get("href")
        classes = anchor.attrib.get("class") or ""
        if target and (_OLDER_POSTS.search(text) or "next" in classes):
            found[normalise_url(target, url)] = None
    listing, number = _listing_base(normalise_url(url))
    for href in page.css("a::attr(href)").getall():
        absolute = normalise_url(href, url)
        if _listing_base(absolute) == (listing, number + 1):
            found[absolute] = None
    return tuple(
        next_url for next_url in found if is_http_url(next_url) and next_url != normalise_url(url)
    )


def _listing_base(url: str) -> tuple[str, int]:
    """`.../news/page/3/` -> (`.../news/`, 3); a URL without /page/N/ is page 1."""
    match = _PAGE_NUMBER.search(url)
    if match is None:
        return url, 1
    return url[: match.start()] + "/", int(match.group(1))
