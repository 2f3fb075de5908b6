"""Typed, frozen settings: built-in defaults < TOML file < EMBASSY_WATCH_* environment.

Only this package reads files and the environment. Everything else receives a
`Settings` value from the composition root (`monitor.app`).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from config.errors import ConfigError
from config.missions import ALL, Catalog, load_catalog

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
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            seconds = math.inf
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("expected a duration such as 30, '30s', '15m' or '1h'")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    # TOML has `inf` and `nan`; a delay of `inf` would hang the crawl for ever.
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


@dataclass(frozen=True)
class DurationRange:
    """The sane values of one duration setting, written as the user writes them ("1h")."""

    low: str
    high: str

    def check(self, seconds: float) -> float:
        if not parse_duration(self.low) <= seconds <= parse_duration(self.high):
            raise ValueError(f"must be from {self.low} to {self.high}")
        return seconds

    def parse(self, value: Any) -> float:
        """A duration given outside the config file (a command-line option), bounds checked."""
        return self.check(parse_duration(value))

    @property
    def validator(self) -> AfterValidator:
        return AfterValidator(self.check)


def within(low: str, high: str) -> AfterValidator:
    """Bounds for a `Duration` field: `Annotated[Duration, within("0s", "1h")]`."""
    return DurationRange(low, high).validator


def _not_a_bool(value: Any) -> Any:
    # pydantic reads `true` as 1: `retries = true` must be refused, not taken as one retry.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Count = Annotated[int, BeforeValidator(_not_a_bool)]
Fraction = Annotated[float, BeforeValidator(_not_a_bool)]

THIN_OBSERVATIONS_AFTER = DurationRange("0s", "3650d")
RECHECK_AGE = DurationRange("1s", "3650d")
MAX_RECHECK_TIERS = 20
MAX_URLS = 100
MAX_SITES = 500  # every mission in every catalogued language fits
GIB = 1024**3


class _Section(BaseModel):
    # No float setting may be inf or nan, whatever its type says.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class DatabaseSettings(_Section):
    url: str = "sqlite:///embassy-watch.db"
    thin_observations_after: Annotated[Duration, THIN_OBSERVATIONS_AFTER.validator] = Field(
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
    user_agent: str = Field(
        default=f"embassy-watch/0.1 (+{PROJECT_URL})", min_length=1, max_length=500
    )
    delay: Annotated[Duration, within("0s", "1h")] = Field(
        default=5.0, description="pause between two requests to one host"
    )
    timeout: Annotated[Duration, within("1s", "10m")] = 30.0
    retries: Count = Field(default=3, ge=0, le=10)
    retry_backoff: Annotated[Duration, within("0s", "1h")] = Field(
        default=2.0, description="first retry wait; doubles each time"
    )
    max_retry_after: Annotated[Duration, within("0s", "1d")] = Field(
        default=300.0, description="longest Retry-After obeyed"
    )
    max_page_bytes: Count = Field(default=10 * 1024 * 1024, ge=1024, le=GIB)
    max_listing_pages: Count = Field(default=50, ge=1, le=1000)
    max_duration: Annotated[Duration, within("1s", "1d")] = Field(
        default=3600.0, description="a crawl is stopped after"
    )
    obey_robots_txt: bool = True
    concurrent_requests_per_host: Count = Field(default=1, ge=1, le=8)


class SiteSettings(_Section):
    name: str
    listing_urls: tuple[str, ...] = Field(min_length=1, max_length=MAX_URLS)
    # Where the site says what changed: sitemaps (<lastmod>) and WordPress REST post lists
    # (`modified_gmt`). Hints only make a statement be read sooner.
    sitemap_urls: tuple[str, ...] = Field(default=(), max_length=MAX_URLS)
    rest_urls: tuple[str, ...] = Field(default=(), max_length=MAX_URLS)
    extra_hosts: tuple[str, ...] = Field(default=(), max_length=MAX_URLS)
    # The site's own time zone: a page showing only a calendar date is dated midnight there.
    timezone: str = "Asia/Shanghai"
    # Whom the site speaks for, as pages and citations name it ("China"); set for missions.
    mission: str = Field(default="", max_length=200)

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
    def server(self) -> str:
        """The server its listing is on (host and port): crawls of one server take turns."""
        return (urlsplit(self.listing_urls[0]).netloc or "").lower()

    @property
    def hosts(self) -> frozenset[str]:
        """Hosts this site may be crawled on (a host it redirects to is added at crawl time)."""
        listed = {urlsplit(url).hostname or "" for url in self.listing_urls}
        return frozenset(listed | {host.lower() for host in self.extra_hosts})


def _default_recheck() -> dict[str, float]:
    # NewsDiffs-like: young or recently changed statements often, older ones less often.
    return {"3h": 0.0, "1d": 3600.0, "7d": 3 * 3600.0, "30d": 86400.0}


class ScheduleSettings(_Section):
    interval: Annotated[Duration, within("1s", "7d")] = Field(
        default=900.0, description="each site's crawl cycle"
    )
    jitter: Annotated[Duration, within("0s", "1d")] = Field(
        default=30.0, description="random delay added to each cycle"
    )
    recheck: dict[str, Annotated[Duration, within("0s", "365d")]] = Field(
        default_factory=_default_recheck,
        max_length=MAX_RECHECK_TIERS,
        description="statement age (since its last change) -> how often its page is re-read",
    )
    recheck_floor: Annotated[Duration, within("1s", "365d")] = Field(
        default=7 * 86400.0, description="every statement is re-read at least this often"
    )
    removal_after: Count = Field(
        default=2, ge=1, le=100, description="gone this many crawls in a row"
    )
    alert_on_first_crawl: bool = False

    @field_validator("recheck")
    @classmethod
    def _ages_are_durations(cls, tiers: dict[str, float]) -> dict[str, float]:
        for age in tiers:
            try:
                RECHECK_AGE.parse(age)
            except ValueError as error:
                raise ValueError(f"age {age!r}: {error}") from None
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
    urls: tuple[str, ...] = Field(
        default=(), max_length=MAX_URLS, description="apprise URLs: mailto://, slack://, ..."
    )
    digest: bool = Field(default=False, description="one message per target per cycle")
    check_every: Annotated[Duration, within("0.1s", "1h")] = Field(
        default=10.0, description="how often the outbox is read"
    )
    timeout: Annotated[Duration, within("1s", "10m")] = Field(
        default=30.0, description="longest one send may take"
    )
    retry_backoff: Annotated[Duration, within("0.1s", "1d")] = Field(
        default=30.0, description="first retry wait; doubles"
    )
    max_backoff: Annotated[Duration, within("1s", "7d")] = 3600.0
    give_up_after: Annotated[Duration, within("1m", "90d")] = 7 * 86400.0
    typographic: bool = Field(
        default=False, description="alert revisions that only restyle the text (quotes, widths)"
    )

    @field_validator("urls", mode="before")
    @classmethod
    def _split_env_list(cls, value: Any) -> Any:
        # From the environment: URLs separated by whitespace (apprise URLs may hold commas).
        return tuple(value.split()) if isinstance(value, str) else value


class HealthSettings(_Section):
    stale_after: Count = Field(
        default=3, ge=1, le=1000, description="alert after this many intervals without a good crawl"
    )
    blocked_after: Count = Field(
        default=2, ge=1, le=1000, description="alert after this many crawls refused with 403/429"
    )
    extraction_failure_ratio: Fraction = Field(default=0.5, gt=0, le=1)


class MissionsSettings(_Section):
    catalog: str = Field(
        default="", description="mission catalog CSV (empty: the packaged one)", max_length=4096
    )


class ServeSettings(_Section):
    host: str = Field(default="127.0.0.1", description="address `serve` listens on")
    port: Count = Field(default=8080, ge=0, le=65535)


class LoggingSettings(_Section):
    format: Literal["text", "json"] = Field(
        default="text", description="text: one line per event; json: one JSON object per line"
    )


class EvidenceSettings(_Section):
    tsa_urls: tuple[str, ...] = Field(
        default=(),
        max_length=MAX_URLS,
        description="RFC 3161 Time-Stamp Authorities each cycle's captures are stamped by",
    )
    tsa_certificates: tuple[str, ...] = Field(
        default=(),
        max_length=MAX_URLS,
        description="PEM files of the CA certificates trusted when verifying timestamps",
    )
    timeout: Annotated[Duration, within("1s", "10m")] = Field(
        default=30.0, description="longest one timestamp request may take"
    )
    retry_backoff: Annotated[Duration, within("0.1s", "1d")] = Field(
        default=60.0, description="first retry wait after a TSA failed; doubles"
    )
    max_backoff: Annotated[Duration, within("1s", "7d")] = 3600.0
    check_every: Annotated[Duration, within("0.1s", "1h")] = Field(
        default=10.0, description="how often `run` sends the timestamp requests due"
    )
    wayback: bool = Field(
        default=False,
        description="submit each new revision's URL to the Internet Archive's Save Page Now",
    )
    wayback_endpoint: str = Field(
        default="https://web.archive.org", description="the Save Page Now (SPN2) service"
    )
    # SecretStr: a key never appears in a repr, a log line or an error message.
    wayback_access_key: SecretStr = SecretStr("")
    wayback_secret_key: SecretStr = SecretStr("")
    wayback_per_minute: Count = Field(
        default=4, ge=1, le=60, description="most capture requests sent in any minute"
    )
    wayback_poll_every: Annotated[Duration, within("0.1s", "1h")] = Field(
        default=20.0, description="wait between asking how a capture is going"
    )
    wayback_wait: Annotated[Duration, within("0s", "1h")] = Field(
        default=60.0, description="how long `crawl` waits for its captures before leaving"
    )
    wayback_max_attempts: Count = Field(
        default=8, ge=1, le=100, description="failed attempts before a capture is given up"
    )

    @field_validator("tsa_urls", "tsa_certificates", mode="before")
    @classmethod
    def _split_env_list(cls, value: Any) -> Any:
        # From the environment: separated by whitespace, as [notify] urls.
        return tuple(value.split()) if isinstance(value, str) else value

    @field_validator("wayback_endpoint")
    @classmethod
    def _http_endpoint(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _wayback_keys(self) -> EvidenceSettings:
        keys = (self.wayback_access_key, self.wayback_secret_key)
        if self.wayback and not all(key.get_secret_value() for key in keys):
            raise ValueError("wayback = true needs wayback_access_key and wayback_secret_key")
        return self

    @field_validator("tsa_urls")
    @classmethod
    def _http_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
        if len(set(urls)) != len(urls):
            raise ValueError("a TSA is listed twice")
        return urls


def _default_sites() -> tuple[SiteSettings, ...]:
    return (SiteSettings(name="china-zh", listing_urls=(DEFAULT_LISTING_URL,), mission="China"),)


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    crawl: CrawlSettings = CrawlSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    notify: NotifySettings = NotifySettings()
    health: HealthSettings = HealthSettings()
    serve: ServeSettings = ServeSettings()
    logging: LoggingSettings = LoggingSettings()
    missions: MissionsSettings = MissionsSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    sites: tuple[SiteSettings, ...] = Field(
        default_factory=_default_sites, min_length=1, max_length=MAX_SITES
    )

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
    "missions": MissionsSettings,
    "evidence": EvidenceSettings,
}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from `path`, else ./embassy-watch.toml if present, else defaults; then env."""
    environ = os.environ if environ is None else environ
    data = _read_file(_config_path(path, environ))
    _apply_environment(data, environ)
    _expand_missions(data)
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_first_error(error)) from None


def _expand_missions(data: dict[str, Any]) -> None:
    """`[[sites]] missions = [...]` becomes one site per mission and language."""
    sites = data.get("sites")
    if not isinstance(sites, list) or not any(_names_missions(entry) for entry in sites):
        return
    catalog = load_catalog(_catalog_path(data))
    data["sites"] = [site for entry in sites for site in _site_entries(entry, catalog)]


def _names_missions(entry: Any) -> bool:
    return isinstance(entry, dict) and "missions" in entry


def _catalog_path(data: dict[str, Any]) -> str:
    section = data.get("missions", {})
    path = section.get("catalog", "") if isinstance(section, dict) else ""
    if not isinstance(path, str):
        raise ConfigError("[missions] catalog: expected a file path")
    return path


_MISSION_KEYS = frozenset({"missions", "languages"})


def _site_entries(entry: Any, catalog: Catalog) -> list[Any]:
    if not _names_missions(entry):
        return [entry]
    unknown = sorted(set(entry) - _MISSION_KEYS)
    if unknown:
        raise ConfigError(
            f"[[sites]] with missions takes only 'missions' and 'languages', not {unknown[0]!r}"
        )
    named, languages = entry["missions"], entry.get("languages")
    if named == ALL:
        missions = catalog.missions
    elif isinstance(named, list) and named and all(isinstance(key, str) for key in named):
        missions = tuple(catalog.find(key) for key in named)
    else:
        raise ConfigError('[[sites]] missions: expected "all" or a list of mission keys')
    if languages is not None and not (
        isinstance(languages, list) and all(isinstance(code, str) for code in languages)
    ):
        raise ConfigError('[[sites]] languages: expected a list of codes such as ["en"]')
    sites = [
        {
            "name": mission.site_name(language),
            "listing_urls": [mission.listing_url(language)],
            "timezone": mission.timezone,
            "mission": mission.name,
        }
        for mission in missions
        for language in mission.languages
        if languages is None or language in languages
    ]
    if not sites:
        raise ConfigError("[[sites]] missions: no listing in the languages asked for")
    return sites


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
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}): TOML files are UTF-8"
        ) from None
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


def _env_value(value: str) -> str:
    # Left as text: pydantic reads "true", "yes", "on", "0"... for a bool, and a number
    # field refuses "yes" (as True it would have been read as 1) naming what was written.
    return value.strip()


# pydantic's wording of a bound, said the way the other refusals say it.
_BOUND_MESSAGES = {
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "finite_number": "must be a finite number",
}
MAX_SHOWN_INPUT = 60


def _first_error(error: ValidationError) -> str:
    """One line naming the offending key, e.g. `crawl.delay: expected a duration ...`."""
    first = error.errors()[0]
    location = _location(first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown setting {location}"
    bound = _BOUND_MESSAGES.get(first["type"])
    message = (
        bound.format(**first.get("ctx", {}))
        if bound
        else str(first["msg"]).removeprefix("Value error, ")
    )
    given = first.get("input")
    shown = (
        "" if isinstance(given, dict | list | tuple) or given is None else f" (got {_clip(given)})"
    )
    return f"{location}: {message}{shown}" if location else message


def _clip(given: object) -> str:
    shown = str(given).lower() if isinstance(given, bool) else repr(given)  # as TOML writes it
    return shown if len(shown) <= MAX_SHOWN_INPUT else shown[: MAX_SHOWN_INPUT - 1] + "…"


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(part)
    return ".".join(parts)
