"""Configuration: defaults, the TOML file, EMBASSY_WATCH_* overrides, one-line refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from config import ConfigError, load_settings, parse_duration
from config.settings import DEFAULT_LISTING_URL
from tests.helpers import EXECUTABLE


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "embassy-watch.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_built_in_defaults_watch_the_china_mission_in_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database.url.startswith("sqlite:///")
    assert [site.listing_urls for site in settings.sites] == [(DEFAULT_LISTING_URL,)]
    assert settings.crawl.obey_robots_txt and settings.crawl.delay >= 1
    assert settings.crawl.user_agent.startswith("embassy-watch/")


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[database]\nurl = "sqlite:///a.db"\n[crawl]\ndelay = "2m"\n'
        '[[sites]]\nname = "zh"\nlisting_urls = ["https://example.org/zh/"]\n',
    )
    settings = load_settings(
        path,
        environ={
            "EMBASSY_WATCH_DATABASE_URL": "postgresql://db/archive",
            "EMBASSY_WATCH_CRAWL_OBEY_ROBOTS_TXT": "false",
        },
    )
    assert settings.database.url == "postgresql://db/archive"
    assert settings.crawl.delay == 120 and settings.crawl.obey_robots_txt is False
    assert settings.site("zh").hosts == frozenset({"example.org"})


def test_config_file_found_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[database]\nurl = "sqlite:///here.db"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).database.url == "sqlite:///here.db"


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[crawl]\ndelai = 3\n", {}, "unknown setting crawl.delai"),
        ("[crawl]\ndelay = 'soon'\n", {}, "crawl.delay: expected a duration"),
        ("[crawl]\nretries = -1\n", {}, "crawl.retries"),
        ("[database]\nurl = 'mysql://x'\n", {}, "database.url"),
        ("[[sites]]\nname = 'Bad Name'\nlisting_urls = ['https://x/']\n", {}, "sites[0].name"),
        ("[[sites]]\nname = 'a'\nlisting_urls = ['ftp://x/']\n", {}, "not an http(s) URL"),
        ("[[sites]]\nname = 'a'\nlisting_urls = []\n", {}, "sites[0].listing_urls"),
        ("[crawl\n", {}, "not valid TOML"),
        ("", {"EMBASSY_WATCH_CRAWL_DELAY": "never"}, "crawl.delay"),
        ("", {"EMBASSY_WATCH_COLOUR": "blue"}, "unknown environment variable EMBASSY_WATCH_COLOUR"),
        ("[schedule]\ninterval = '0.5s'\n", {}, "schedule.interval"),
        ("[schedule]\nrecheck = { '3 hours' = '1h' }\n", {}, "schedule.recheck"),
        ("[schedule]\nremoval_after = 0\n", {}, "schedule.removal_after"),
        ("[notify]\nurl = 'mailto://x'\n", {}, "unknown setting notify.url"),
        ("", {"EMBASSY_WATCH_NOTIFY_DIGEST": "maybe"}, "notify.digest"),
        ("[health]\nextraction_failure_ratio = 2\n", {}, "health.extraction_failure_ratio"),
    ],
)
def test_bad_configuration_is_refused_in_one_line(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, text), environ=environ)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_monitor_settings_from_file_and_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[schedule]\ninterval = '5m'\nrecheck = { '1d' = '2h' }\n"
        "[notify]\nurls = ['mailto://a@example.org']\n",
    )
    settings = load_settings(
        path,
        environ={
            "EMBASSY_WATCH_NOTIFY_URLS": "json://127.0.0.1/a  mailto://127.0.0.1?to=x@example.org,y@example.org",
            "EMBASSY_WATCH_SCHEDULE_REMOVAL_AFTER": "3",
            "EMBASSY_WATCH_HEALTH_STALE_AFTER": "5",
        },
    )
    assert settings.schedule.interval == 300 and settings.schedule.removal_after == 3
    assert settings.notify.urls == (
        "json://127.0.0.1/a",
        "mailto://127.0.0.1?to=x@example.org,y@example.org",
    )
    assert settings.health.stale_after == 5
    assert settings.schedule.recheck_every(3600) == 7200  # under a day: every 2 hours
    assert settings.schedule.recheck_every(30 * 86400) == settings.schedule.recheck_floor


def test_duplicate_site_names_are_refused(tmp_path: Path) -> None:
    site = "[[sites]]\nname = 'a'\nlisting_urls = ['https://x/']\n"
    with pytest.raises(ConfigError, match="unique"):
        load_settings(write(tmp_path, site * 2), environ={})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nowhere\.toml"):
        load_settings(tmp_path / "nowhere.toml", environ={})


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30.0), ("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("1.5", 1.5)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_the_command_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[crawl]\ndelai = 3\n")
    done = subprocess.run(
        [str(EXECUTABLE), "statements", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "embassy-watch: config error: unknown setting crawl.delai"


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///from-env.db"\n')
    settings = load_settings(environ={"EMBASSY_WATCH_CONFIG": str(path)})
    assert settings.database.url == "sqlite:///from-env.db"
