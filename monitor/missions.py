"""Which sites make up a mission, and which language each site is in: the one definition.

A mission's sites are named `{key}-{language}` (config/missions.py expands each catalogued
mission so), and a site is one listing in one language. So a site's mission key is its
name before a final `-xx` (or `-xxx`) language code, and its language is that code; a site
named otherwise (e.g. "replica") is a mission of its own, in no known language. The name
shown is the configured `SiteSettings.mission` (e.g. "China"), else the key.

The site's language, not each statement's detected one, is what `language=` filters by:
events (health events too) have only a site, and the site column is indexed, so a
mission or language filter becomes `site IN (...)` in SQL for lists and changes alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from config import SiteSettings

_LANGUAGE_SUFFIX = re.compile(r"^(?P<key>.+)-(?P<language>[a-z]{2,3})$")


@dataclass(frozen=True)
class SiteParts:
    site: str
    mission: str  # the mission's key, e.g. "china"
    language: str | None  # e.g. "zh"; None: the name does not say


@dataclass(frozen=True)
class MissionGroup:
    key: str
    name: str  # as pages name it, e.g. "China"
    sites: tuple[str, ...]
    languages: tuple[str, ...]


def parts_of(site: str) -> SiteParts:
    named = _LANGUAGE_SUFFIX.match(site)
    if named is None:
        return SiteParts(site, site, None)
    return SiteParts(site, named["key"], named["language"])


@dataclass(frozen=True)
class Missions:
    """The missions of the configured and the archived sites, by key, in key order."""

    groups: tuple[MissionGroup, ...]

    @classmethod
    def of(cls, configured: Sequence[SiteSettings], archived: Iterable[str] = ()) -> Missions:
        names = {site.name: site.mission for site in configured if site.mission}
        by_key: dict[str, list[SiteParts]] = {}
        for site in sorted({*(s.name for s in configured), *archived}):
            parts = parts_of(site)
            by_key.setdefault(parts.mission, []).append(parts)
        groups = tuple(
            MissionGroup(
                key=key,
                name=next((names[p.site] for p in members if p.site in names), key),
                sites=tuple(p.site for p in members),
                languages=tuple(sorted({p.language for p in members if p.language})),
            )
            for key, members in sorted(by_key.items())
        )
        return cls(groups)

    def find(self, key: str) -> MissionGroup | None:
        return next((group for group in self.groups if group.key == key), None)

    def key_of(self, site: str) -> str:
        return parts_of(site).mission

    def name_of(self, site: str) -> str:
        group = self.find(parts_of(site).mission)
        return group.name if group else site

    def sites(self, mission: str | None, language: str | None) -> tuple[str, ...] | None:
        """The sites of `mission` in `language` (either None: any); None when neither is asked.

        An unknown mission or language selects no site at all: an empty list, not everything.
        """
        if not mission and not language:
            return None
        return tuple(
            site
            for group in self.groups
            if not mission or group.key == mission
            for site in group.sites
            if not language or parts_of(site).language == language
        )

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({code for group in self.groups for code in group.languages}))


@dataclass(frozen=True)
class MissionIndex:
    """The missions as of now: the configured sites and those the archive holds (read per
    request, as crawls add sites)."""

    configured: tuple[SiteSettings, ...]
    archived: Callable[[], Iterable[str]]

    def now(self) -> Missions:
        return Missions.of(self.configured, self.archived())

    def sites(self, mission: str | None, language: str | None) -> tuple[str, ...] | None:
        """As `Missions.sites`; the archive is not read when no filter is asked for."""
        if not mission and not language:
            return None
        return self.now().sites(mission, language)
