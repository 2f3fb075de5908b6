"""The catalog of U.S. mission sites: who they are, where they are, which languages they post in.

The packaged `missions.csv` starts from `shared/data/us-missions.csv` (hosts from public
analytics and .gov data) with each mission's time zone and known languages added.
`embassy-watch missions --refresh` compares it with a live page's country switcher and can
write an updated copy, which `[missions] catalog` then points to.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.errors import ConfigError

COLUMNS = ("key", "host", "mission", "kind", "country_code", "timezone", "languages")
KINDS = frozenset({"embassy", "consulate", "mission"})
ALL = "all"
DEFAULT_LANGUAGE = "en"
MAX_CATALOG_BYTES = 1024 * 1024
MAX_NAME = 200
UNKNOWN_ZONE = "UTC"

_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")
_HOST = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
# Hosts of the State Department's shared mission platform. A switcher link elsewhere is
# never taken into the catalog: `missions = "all"` must not crawl a host a page injected.
_PLATFORM = re.compile(r"[a-z0-9-]+\.(usembassy|usconsulate|usmission)\.gov|[a-z0-9-]+\.state\.gov")
# The catalog names missions as the switcher does, with these few labels spelled out.
_LABEL_SPELLINGS = {
    "Korea": "South Korea",
    "Curacao": "Curaçao",
    "Republic of Congo": "Republic of the Congo",
}


@dataclass(frozen=True)
class Mission:
    key: str
    host: str
    name: str
    kind: str
    country_code: str
    timezone: str
    languages: tuple[str, ...]

    def site_name(self, language: str) -> str:
        return f"{self.key}-{language}"

    def listing_url(self, language: str) -> str:
        """The news listing of one language: English at the root, others under /<lang>/.

        Polylang puts a language's pages under its code, with the page slug suffixed by it
        (the China mission's `/zh/news-events-zh/`, a guess nobody here has confirmed).
        """
        if language == DEFAULT_LANGUAGE:
            return f"https://{self.host}/news-events/"
        return f"https://{self.host}/{language}/news-events-{language}/"


@dataclass(frozen=True)
class Catalog:
    missions: tuple[Mission, ...]

    def find(self, key: str) -> Mission:
        for mission in self.missions:
            if mission.key == key:
                return mission
        raise ConfigError(f"no mission {key!r} in the catalog{_suggestion(key, self.keys)}")

    def by_host(self, host: str) -> Mission | None:
        host = host.lower()
        return next((m for m in self.missions if m.host == host), None)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(mission.key for mission in self.missions)


@dataclass(frozen=True)
class SwitcherLink:
    """One entry of a page's country switcher, as scraped (hostile text)."""

    label: str
    url: str


@dataclass(frozen=True)
class Renamed:
    mission: Mission
    label: str


@dataclass(frozen=True)
class CatalogDiff:
    added: tuple[Mission, ...]
    missing: tuple[Mission, ...]  # in the catalog, not linked by the switcher
    renamed: tuple[Renamed, ...]
    ignored: tuple[SwitcherLink, ...]  # links off the mission platform

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.missing or self.renamed)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog at `path`, else the packaged one."""
    if path is None or str(path) == "":
        text = resources.files("config").joinpath("missions.csv").read_text("utf-8")
        return parse_catalog(text, "the packaged catalog")
    return parse_catalog(_read_catalog_file(Path(path)), str(path))


def _read_catalog_file(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CATALOG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read mission catalog {path}: {error.strerror}") from None
    if len(data) > MAX_CATALOG_BYTES:
        raise ConfigError(f"mission catalog {path} is larger than {MAX_CATALOG_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"mission catalog {path} is not UTF-8 text") from None


def parse_catalog(text: str, source: str) -> Catalog:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ConfigError(f"{source}: the header must be {','.join(COLUMNS)}")
    missions: list[Mission] = []
    for row in reader:
        try:
            missions.append(_mission(row))
        except ValueError as error:
            raise ConfigError(f"{source}, line {reader.line_num}: {error}") from None
    _check_unique(missions, source)
    return Catalog(tuple(missions))


def _mission(row: dict[str, str | None]) -> Mission:
    if None in row.values() or None in row:
        raise ValueError(f"expected {len(COLUMNS)} columns")
    values = {name: (row[name] or "").strip() for name in COLUMNS}
    mission = Mission(
        key=values["key"],
        host=values["host"].lower(),
        name=values["mission"],
        kind=values["kind"],
        country_code=values["country_code"],
        timezone=values["timezone"],
        languages=tuple(values["languages"].split()),
    )
    _check_mission(mission)
    return mission


def _check_mission(mission: Mission) -> None:
    if not _KEY.fullmatch(mission.key):
        raise ValueError(f"key {mission.key!r}: use lower-case letters, digits or '-'")
    if not _HOST.fullmatch(mission.host):
        raise ValueError(f"host {mission.host!r} is not a host name")
    if not 0 < len(mission.name) <= MAX_NAME:
        raise ValueError(f"mission name must be 1 to {MAX_NAME} characters")
    if mission.kind not in KINDS:
        raise ValueError(f"kind {mission.kind!r}: expected one of {', '.join(sorted(KINDS))}")
    if mission.country_code and not re.fullmatch(r"[A-Z]{2}", mission.country_code):
        raise ValueError(f"country code {mission.country_code!r}: expected two capital letters")
    if not mission.languages or not all(_LANGUAGE.fullmatch(code) for code in mission.languages):
        raise ValueError("languages: one or more codes such as 'en zh'")
    try:
        ZoneInfo(mission.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {mission.timezone!r}") from None


def _check_unique(missions: list[Mission], source: str) -> None:
    for field in ("key", "host"):
        seen: set[str] = set()
        for mission in missions:
            value = getattr(mission, field)
            if value in seen:
                raise ConfigError(f"{source}: {field} {value!r} appears twice")
            seen.add(value)


def catalog_csv(catalog: Catalog) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for m in catalog.missions:
        languages = " ".join(m.languages)
        writer.writerow((m.key, m.host, m.name, m.kind, m.country_code, m.timezone, languages))
    return out.getvalue()


def write_catalog(catalog: Catalog, path: str | Path) -> None:
    """Write whole or not at all: a catalog cut short would drop missions from configs."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(catalog_csv(catalog), encoding="utf-8")
        partial.replace(target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write mission catalog {target}: {error.strerror}") from None


# --- Comparing with a live country switcher ------------------------------------------


def compare_catalog(catalog: Catalog, links: list[SwitcherLink]) -> CatalogDiff:
    """What the switcher lists that the catalog lacks, and the reverse; matched by host."""
    added: list[Mission] = []
    renamed: list[Renamed] = []
    ignored: list[SwitcherLink] = []
    linked: set[str] = set()
    for link in links:
        host = _link_host(link.url)
        if host is None or not (catalog.by_host(host) or _PLATFORM.fullmatch(host)):
            ignored.append(link)
            continue
        if host in linked:
            continue
        linked.add(host)
        label = _catalog_spelling(link.label)
        known = catalog.by_host(host)
        if known is None:
            added.append(_new_mission(host, label, catalog))
        elif known.country_code and label and label != known.name:
            renamed.append(Renamed(known, label))
    missing = tuple(m for m in catalog.missions if m.host not in linked)
    return CatalogDiff(tuple(added), missing, tuple(renamed), tuple(ignored))


def refreshed(catalog: Catalog, diff: CatalogDiff) -> Catalog:
    """The catalog with the switcher's new missions and names; unlinked missions stay.

    A mission the switcher stops linking is reported, not dropped: its site may still
    publish, and a config naming it must keep loading.
    """
    names = {item.mission.key: item.label for item in diff.renamed}
    kept = tuple(replace(m, name=names.get(m.key, m.name)) for m in catalog.missions)
    return Catalog(tuple(sorted(kept + diff.added, key=lambda m: (m.kind, m.key))))


def _link_host(url: str) -> str | None:
    match = re.fullmatch(r"https?://([^/:?#]+)(:\d+)?(/.*)?", url.strip())
    host = match.group(1).lower() if match else ""
    return host if _HOST.fullmatch(host) else None


def _catalog_spelling(label: str) -> str:
    label = " ".join(label.split())[:MAX_NAME].replace("&", "and")
    return _LABEL_SPELLINGS.get(label, label)


def _new_mission(host: str, label: str, catalog: Catalog) -> Mission:
    first = host.split(".")[0]
    key = first if first not in catalog.keys else host.replace(".", "-")[:63]
    kind = "consulate" if ".usconsulate." in host else "mission"
    kind = "embassy" if ".usembassy." in host else kind
    code = first.upper() if len(first) == 2 and kind != "mission" else ""
    zone = next((m.timezone for m in catalog.missions if code and m.country_code == code), None)
    return Mission(
        key=key,
        host=host,
        name=label or host,
        kind=kind,
        country_code=code,
        timezone=zone or UNKNOWN_ZONE,
        languages=(DEFAULT_LANGUAGE,),
    )


def _suggestion(key: str, keys: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, keys, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else " (see `embassy-watch missions`)"
