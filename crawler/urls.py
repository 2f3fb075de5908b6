"""URL normalisation and the rule that we never leave the watched site."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit


def normalise_url(url: str, base: str | None = None) -> str:
    """Absolute, without query or fragment, lower-case host, path kept as served."""
    absolute = urljoin(base, url.strip()) if base else url.strip()
    parts = urlsplit(absolute)
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", "", ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def is_http_url(url: str) -> bool:
    return urlsplit(url).scheme in {"http", "https"}
