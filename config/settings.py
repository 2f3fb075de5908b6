"""Typed, frozen settings: built-in defaults < TOML file < EMBASSY_WATCH_* environment.

Only this package reads files and the environment. Everything else receives a
`Settings` value from the composition root (`monitor.app`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from config.errors import ConfigError

ENV_PREFIX = "EMBASSY_WATCH_"
DEFAULT_CONFIG_FILE = "embassy-watch.toml"
DEFAULT_LISTING_URL = "https://china.usembassy-china.org.cn/zh/news-events-zh/"
PROJECT_URL = "https://github.com/embassy-watch/embassy-watch"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "30s", "15m", "1h", "1.5"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, '30s', '15m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("expected a duration such as 30, '30s', '15m' or '1h'")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(_Section):
    url: str = "sqlite:///embassy-watch.db"
    thin_observations_after: Duration = Field(
        default=30 * 86400.0,
        description="repeated fetches older than this keep only the first and last (0: never)",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(f"expected a sqlite:/// or postgresql:// URL, got {scheme!r}")
        return url


class CrawlSettings(_Section):
    user_agent: str = f"embassy-watch/0.1 (+{PROJECT_URL})"
    delay: Duration = Field(default=5.0, description="pause between two requests to one host")
    timeout: Duration = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    retry_backoff: Duration = Field(default=2.0, description="first retry wait; doubles each time")
    max_retry_after: Duration = Field(default=300.0, description="longest Retry-After obeyed")
    max_page_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_listing_pages: int = Field(default=50, ge=1)
    max_duration: Duration = Field(default=3600.0, gt=0, description="a crawl is stopped after")
    obey_robots_txt: bool = True
    concurrent_requests_per_host: int = Field(default=1, ge=1, le=8)


class SiteSettings(_Section):
    name: str
    listing_urls: tuple[str, ...] = Field(min_length=1)
    # Where the site says what changed: sitemaps (<lastmod>) and WordPress REST post lists
    # (`modified_gmt`). Hints only make a statement be read sooner.
    sitemap_urls: tuple[str, ...] = ()
    rest_urls: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    # The site's own time zone: a page showing only a calendar date is dated midnight there.
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("unknown time zone; use an IANA name like 'Asia/Shanghai'") from None
        return zone

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            raise ValueError("use lower-case letters, digits, '-' or '_'")
        return name

    @field_validator("listing_urls", "sitemap_urls", "rest_urls")
    @classmethod
    def _http_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
        return urls

    @property
    def hosts(self) -> frozenset[str]:
        """Hosts this site may be crawled on (a host it redirects to is added at crawl time)."""
        listed = {urlsplit(url).hostname or "" for url in self.listing_urls}
        return frozenset(listed | {host.lower() for host in self.extra_hosts})


def _default_recheck() -> dict[str, float]:
    # NewsDiffs-like: young or recently changed statements often, older ones less often.
    return {"3h": 0.0, "1d": 3600.0, "7d": 3 * 3600.0, "30d": 86400.0}


class ScheduleSettings(_Section):
    interval: Duration = Field(default=900.0, ge=1, description="each site's crawl cycle")
    jitter: Duration = Field(default=30.0, description="random delay added to each cycle")
    recheck: dict[str, Duration] = Field(
        default_factory=_default_recheck,
        description="statement age (since its last change) -> how often its page is re-read",
    )
    recheck_floor: Duration = Field(
        default=7 * 86400.0, gt=0, description="every statement is re-read at least this often"
    )
    removal_after: int = Field(default=2, ge=1, description="gone this many crawls in a row")
    alert_on_first_crawl: bool = False

    @field_validator("recheck")
    @classmethod
    def _ages_are_durations(cls, tiers: dict[str, float]) -> dict[str, float]:
        for age in tiers:
            parse_duration(age)
        return tiers

    # (age in seconds, period), youngest first: parsed once, read for every statement.
    _tiers: tuple[tuple[float, float], ...] = PrivateAttr(default=())

    def model_post_init(self, context: Any) -> None:
        self._tiers = tuple(sorted((parse_duration(age), e) for age, e in self.recheck.items()))

    def recheck_every(self, age_seconds: float) -> float:
        """How often a statement last changed `age_seconds` ago is re-read."""
        for age, every in self._tiers:
            if age_seconds < age:
                return min(every, self.recheck_floor)
        return self.recheck_floor


class NotifySettings(_Section):
    urls: tuple[str, ...] = Field(default=(), description="apprise URLs: mailto://, slack://, ...")
    digest: bool = Field(default=False, description="one message per target per cycle")
    check_every: Duration = Field(default=10.0, gt=0, description="how often the outbox is read")
    timeout: Duration = Field(default=30.0, gt=0, description="longest one send may take")
    retry_backoff: Duration = Field(default=30.0, gt=0, description="first retry wait; doubles")
    max_backoff: Duration = Field(default=3600.0, gt=0)
    give_up_after: Duration = Field(default=7 * 86400.0, gt=0)
    typographic: bool = Field(
        default=False, description="alert revisions that only restyle the text (quotes, widths)"
    )

    @field_validator("urls", mode="before")
    @classmethod
    def _split_env_list(cls, value: Any) -> Any:
        # From the environment: URLs separated by whitespace (apprise URLs may hold commas).
        return tuple(value.split()) if isinstance(value, str) else value


class HealthSettings(_Section):
    stale_after: int = Field(
        default=3, ge=1, description="alert after this many intervals without a good crawl"
    )
    blocked_after: int = Field(
        default=2, ge=1, description="alert after this many crawls refused with 403/429"
    )
    extraction_failure_ratio: float = Field(default=0.5, gt=0, le=1)


class ServeSettings(_Section):
    host: str = Field(default="127.0.0.1", description="address `serve` listens on")
    port: int = Field(default=8080, ge=0, le=65535)


class LoggingSettings(_Section):
    format: Literal["text", "json"] = Field(
        default="text", description="text: one line per event; json: one JSON object per line"
    )


def _default_sites() -> tuple[SiteSettings, ...]:
    return (SiteSettings(name="china-zh", listing_urls=(DEFAULT_LISTING_URL,)),)


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    crawl: CrawlSettings = CrawlSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    notify: NotifySettings = NotifySettings()
    health: HealthSettings = HealthSettings()
    serve: ServeSettings = ServeSettings()
    logging: LoggingSettings = LoggingSettings()
    sites: tuple[SiteSettings, ...] = Field(default_factory=_default_sites, min_length=1)

    @model_validator(mode="after")
    def _unique_site_names(self) -> Settings:
        names = [site.name for site in self.sites]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"site names must be unique: {', '.join(duplicates)}")
        return self

    def site(self, name: str) -> SiteSettings:
        for site in self.sites:
            if site.name == name:
                return site
        raise ConfigError(f"no site named {name!r} (configured: {', '.join(self.site_names)})")

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(site.name for site in self.sites)

    @property
    def stale_after_seconds(self) -> float:
        """A site with no successful crawl for this long is unhealthy."""
        return self.schedule.interval * self.health.stale_after


# Sections whose scalar keys can be set as EMBASSY_WATCH_<SECTION>_<KEY>.
_ENV_SECTIONS: dict[str, type[_Section]] = {
    "database": DatabaseSettings,
    "crawl": CrawlSettings,
    "schedule": ScheduleSettings,
    "notify": NotifySettings,
    "health": HealthSettings,
    "serve": ServeSettings,
    "logging": LoggingSettings,
}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from `path`, else ./embassy-watch.toml if present, else defaults; then env."""
    environ = os.environ if environ is None else environ
    data = _read_file(_config_path(path, environ))
    _apply_environment(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_first_error(error)) from None


def _config_path(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if ENV_PREFIX + "CONFIG" in environ:
        return Path(environ[ENV_PREFIX + "CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        section, key = _env_target(name)
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"[{section}] must be a table to apply {name}")
        target[key] = _env_value(value)


def _env_target(name: str) -> tuple[str, str]:
    rest = name[len(ENV_PREFIX) :].lower()
    for section, model in _ENV_SECTIONS.items():
        key = rest.removeprefix(section + "_")
        if key != rest and key in model.model_fields:
            return section, key
    known = sorted(
        f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        for section, model in _ENV_SECTIONS.items()
        for key in model.model_fields
    )
    raise ConfigError(f"unknown environment variable {name} (known: {', '.join(known)})")


def _env_value(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    return value


def _first_error(error: ValidationError) -> str:
    """One line naming the offending key, e.g. `crawl.delay: expected a duration ...`."""
    first = error.errors()[0]
    location = _location(first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown setting {location}"
    message = str(first["msg"]).removeprefix("Value error, ")
    given = first.get("input")
    shown = "" if isinstance(given, dict | list | tuple) or given is None else f" (got {given!r})"
    return f"{location}: {message}{shown}" if location else message


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(part)
    return ".".join(parts)
