"""The page as captured, made inert: the stored raw HTML as a reader sees it, and nothing more.

The result is shown in a sandboxed frame whose Content-Security-Policy blocks every
script and every request (see `monitor/web/site.py`); this module removes what would
run or load anyway, so the page is inert even if it is opened outside that frame.
Scripts, frames, embeds and stylesheets go; images become labelled placeholders;
links keep their text and show their address on hover but lead nowhere.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from lxml import etree, html
from lxml_html_clean import Cleaner

MAX_PLACEHOLDER_TEXT = 200
# Inline CSS may still fetch (background images, fonts, @import): those references go.
_CSS_FETCHES = re.compile(r"url\s*\([^)]*\)|@import[^;]*;?", re.IGNORECASE)
_DECLARED_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", re.I)
_MEDIA = ("img", "picture", "video", "audio", "svg", "canvas", "input[type=image]")
_PLACEHOLDER_STYLE = (
    "display:inline-block;border:1px dashed #999;color:#555;background:#f4f4f4;"
    "padding:2px 6px;font:12px sans-serif"
)

_CLEANER = Cleaner(
    scripts=True,
    javascript=True,
    comments=True,
    style=False,  # the page's own inline styles keep its look; their fetches are cut below
    inline_style=False,
    links=True,  # <link rel=stylesheet>, preload, icons
    meta=True,  # refresh, and any other http-equiv
    page_structure=False,
    processing_instructions=True,
    embedded=True,  # object, embed, applet
    frames=True,
    forms=True,
    annoying_tags=False,
    remove_unknown_tags=False,
    safe_attrs_only=False,
)


@dataclass(frozen=True)
class InertPage:
    html: str
    images: int  # how many images became placeholders
    links: int  # how many links were made inert


def inert_page(raw: bytes) -> InertPage:
    """The captured bytes as a page that runs nothing and loads nothing."""
    document = _parse(raw)
    images = _replace_media(document)
    links = _disarm_links(document)
    _strip_fetching_css(document)
    _CLEANER(document)
    _drop_base_and_charset(document)
    head = document.find("head")
    if head is None:
        head = etree.SubElement(document, "head")
        document.insert(0, head)
    head.insert(0, etree.Element("meta", charset="utf-8"))
    text = html.tostring(document, encoding="unicode", method="html", doctype="<!doctype html>")
    return InertPage(text, images, links)


def _parse(raw: bytes) -> html.HtmlElement:
    parser = html.HTMLParser(encoding=_encoding(raw))
    try:
        return html.document_fromstring(raw, parser=parser)
    except (etree.ParserError, ValueError):  # empty or unparseable: say so, inertly
        return html.document_fromstring("<html><body><p>(empty page)</p></body></html>")


def _encoding(raw: bytes) -> str:
    """The page's declared charset, else UTF-8 if it decodes so, else Windows-1252.

    libxml2 alone reads a page without a <meta charset> as Latin-1, which turns Chinese
    into mojibake; the site serves UTF-8 and says so in its HTTP header, kept apart.
    """
    declared = _DECLARED_CHARSET.search(raw[:4096])
    if declared:
        try:
            return codecs.lookup(declared.group(1).decode("ascii")).name
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "windows-1252"


def _replace_media(document: html.HtmlElement) -> int:
    count = 0
    for element in document.cssselect(", ".join(_MEDIA)):
        if element.getparent() is None:
            continue
        label = element.get("alt") or element.get("title") or element.get("aria-label") or ""
        placeholder = etree.Element("span", style=_PLACEHOLDER_STYLE)
        placeholder.set("class", "embassy-watch-placeholder")
        placeholder.text = f"[{element.tag}{': ' + label[:MAX_PLACEHOLDER_TEXT] if label else ''}]"
        placeholder.tail = element.tail
        element.getparent().replace(element, placeholder)
        count += 1
    return count


def _disarm_links(document: html.HtmlElement) -> int:
    count = 0
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        for name in (
            "href",
            "src",
            "srcset",
            "action",
            "formaction",
            "poster",
            "background",
            "ping",
            "xlink:href",
            "data",
        ):
            value = element.attrib.pop(name, None)
            if value is not None and name == "href" and element.tag == "a":
                element.set("title", value[:2048])
                count += 1
    return count


def _strip_fetching_css(document: html.HtmlElement) -> None:
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag == "style" and element.text:
            element.text = _CSS_FETCHES.sub("none", element.text)
        style = element.get("style")
        if style and element.get("class") != "embassy-watch-placeholder":
            element.set("style", _CSS_FETCHES.sub("none", style))


def _drop_base_and_charset(document: html.HtmlElement) -> None:
    for element in document.cssselect("base, meta[charset]"):
        element.drop_tree()
