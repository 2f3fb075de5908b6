"""Configuration: the only package that reads files and the environment."""

from config.errors import ConfigError
from config.settings import (
    CrawlSettings,
    DatabaseSettings,
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
    "ConfigError",
    "CrawlSettings",
    "DatabaseSettings",
    "HealthSettings",
    "NotifySettings",
    "ScheduleSettings",
    "ServeSettings",
    "Settings",
    "SiteSettings",
    "load_settings",
    "parse_duration",
]
