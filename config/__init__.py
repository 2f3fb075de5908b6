"""Configuration: the only package that reads files and the environment."""

from config.errors import ConfigError
from config.settings import (
    THIN_OBSERVATIONS_AFTER,
    CrawlSettings,
    DatabaseSettings,
    EvidenceSettings,
    HealthSettings,
    NotifySettings,
    ScheduleSettings,
    ServeSettings,
    Settings,
    SiteSettings,
    load_settings,
    parse_duration,
)

__all__ = [
    "THIN_OBSERVATIONS_AFTER",
    "ConfigError",
    "CrawlSettings",
    "DatabaseSettings",
    "EvidenceSettings",
    "HealthSettings",
    "NotifySettings",
    "ScheduleSettings",
    "ServeSettings",
    "Settings",
    "SiteSettings",
    "load_settings",
    "parse_duration",
]
