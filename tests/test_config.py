"""Configuration: defaults, the TOML file, EMBASSY_WATCH_* overrides, one-line refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from config import ConfigError, load_settings, parse_duration
from config.settings import DEFAULT_LISTING_URL
from tests.helpers import EXECUTABLE, clean_environment


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


# Every duration and number setting with its documented range (README, Configuration).
DURATION_RANGES = {
    "database.thin_observations_after": ("0s", "3650d"),
    "crawl.delay": ("0s", "1h"),
    "crawl.timeout": ("1s", "10m"),
    "crawl.retry_backoff": ("0s", "1h"),
    "crawl.max_retry_after": ("0s", "1d"),
    "crawl.max_duration": ("1s", "1d"),
    "schedule.interval": ("1s", "7d"),
    "schedule.jitter": ("0s", "1d"),
    "schedule.recheck_floor": ("1s", "365d"),
    "notify.check_every": ("0.1s", "1h"),
    "notify.timeout": ("1s", "10m"),
    "notify.retry_backoff": ("0.1s", "1d"),
    "notify.max_backoff": ("1s", "7d"),
    "notify.give_up_after": ("1m", "90d"),
}
NUMBER_RANGES = {
    "crawl.retries": (0, 10),
    "crawl.max_page_bytes": (1024, 1024**3),
    "crawl.max_listing_pages": (1, 1000),
    "crawl.concurrent_requests_per_host": (1, 8),
    "schedule.removal_after": (1, 100),
    "health.stale_after": (1, 1000),
    "health.blocked_after": (1, 1000),
    "serve.port": (0, 65535),
}
HUGE = "1" + "0" * 400  # a TOML integer far past any float


def setting(key: str, toml_value: str) -> str:
    section, name = key.split(".")
    return f"[{section}]\n{name} = {toml_value}\n"


def bad_durations() -> list[tuple[str, str]]:
    cases = []
    for key, (low, high) in DURATION_RANGES.items():
        over = parse_duration(high) * 1.5
        cases += [(key, v) for v in ("inf", "nan", "-inf", "-1", "'-5s'", HUGE, f"'{HUGE}s'")]
        cases += [(key, "true"), (key, "'99999999d'"), (key, repr(over))]
        if parse_duration(low) > 0:
            cases.append((key, repr(parse_duration(low) / 2)))
    return cases


def bad_numbers() -> list[tuple[str, str]]:
    cases = []
    for key, (low, high) in NUMBER_RANGES.items():
        cases += [(key, v) for v in ("inf", "nan", "true", "'many'", "2.5", HUGE)]
        cases += [(key, str(low - 1)), (key, str(high + 1))]
    return cases


@pytest.mark.parametrize(
    ("key", "value"),
    bad_durations() + bad_numbers(),
    ids=lambda case: case if len(case) < 24 else case[:20] + "...",
)
def test_every_duration_and_number_is_finite_and_within_its_range(
    tmp_path: Path, key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, setting(key, value)), environ={})
    message = str(refused.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message and len(message) < 200


@pytest.mark.parametrize("key", [*DURATION_RANGES, *NUMBER_RANGES])
def test_the_ends_of_each_range_are_accepted(tmp_path: Path, key: str) -> None:
    ends = DURATION_RANGES.get(key) or NUMBER_RANGES[key]
    section, name = key.split(".")
    for end in ends:
        value = f"'{end}'" if isinstance(end, str) else str(end)
        settings = load_settings(write(tmp_path, setting(key, value)), environ={})
        expected = parse_duration(end) if isinstance(end, str) else end
        assert getattr(getattr(settings, section), name) == expected


@pytest.mark.parametrize(
    ("recheck", "message"),
    [
        ("{ '1d' = inf }", "schedule.recheck.1d: a duration must be a finite number"),
        ("{ '1d' = '400d' }", "schedule.recheck.1d: must be from 0s to 365d"),
        ("{ '1d' = -1 }", "schedule.recheck.1d: a duration cannot be negative"),
        ("{ '0s' = '1h' }", "schedule.recheck: age '0s': must be from 1s to 3650d"),
        ("{ '99999d' = '1h' }", "schedule.recheck: age '99999d': must be from 1s to 3650d"),
        ("{ 'inf' = '1h' }", "schedule.recheck: age 'inf': expected a duration"),
        (
            "{ " + ", ".join(f"'{n}d' = '1h'" for n in range(1, 22)) + " }",
            "schedule.recheck: Dictionary should have at most 20 items",
        ),
    ],
)
def test_recheck_tiers_ages_and_periods_are_bounded(
    tmp_path: Path, recheck: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, f"[schedule]\nrecheck = {recheck}\n"), environ={})
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EMBASSY_WATCH_CRAWL_DELAY", "inf", "crawl.delay: expected a duration"),
        ("EMBASSY_WATCH_CRAWL_TIMEOUT", "2h", "crawl.timeout: must be from 1s to 10m (got '2h')"),
        ("EMBASSY_WATCH_CRAWL_RETRIES", "yes", "crawl.retries: "),
        ("EMBASSY_WATCH_SERVE_PORT", "99999", "serve.port: must be at most 65535"),
        ("EMBASSY_WATCH_HEALTH_EXTRACTION_FAILURE_RATIO", "nan", "health.extraction_failure_ratio"),
    ],
)
def test_environment_overrides_are_bounded_the_same_way(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, environ={name: value})
    assert str(refused.value).startswith(message)


def run_with_config(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """The real program's stderr, after checking it exited 2 with one line."""
    done = subprocess.run(
        [str(EXECUTABLE), *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,  # today `delay = inf` never ends
        env=clean_environment() | (env or {}),
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr.strip()


CLOSED_PORT_SITE = "[[sites]]\nname = 'local'\nlisting_urls = ['http://127.0.0.1:9/']\n"


@pytest.mark.parametrize(
    ("text", "env", "line"),
    [
        (
            "[crawl]\ndelay = inf\n",
            {},
            "crawl.delay: a duration must be a finite number of seconds (got inf)",
        ),
        ("[crawl]\ntimeout = -1\n", {}, "crawl.timeout: a duration cannot be negative (got -1)"),
        (
            "[crawl]\nmax_page_bytes = 99999999999\n",
            {},
            "crawl.max_page_bytes: must be at most 1073741824 (got 99999999999)",
        ),
        (
            "",
            {"EMBASSY_WATCH_NOTIFY_GIVE_UP_AFTER": "1000d"},
            "notify.give_up_after: must be from 1m to 90d (got '1000d')",
        ),
    ],
)
def test_the_crawl_command_refuses_an_absurd_value_in_one_line(
    tmp_path: Path, text: str, env: dict[str, str], line: str
) -> None:
    config = write(
        tmp_path, f"[database]\nurl = 'sqlite:///{tmp_path}/a.db'\n{text}{CLOSED_PORT_SITE}"
    )
    assert run_with_config(config, "crawl", env=env) == f"embassy-watch: config error: {line}"
    assert not (tmp_path / "a.db").exists()


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "embassy-watch.toml"
    config.write_bytes("[crawl]\nuser_agent = '新闻'\n".encode("gb18030"))
    assert run_with_config(config, "status") == (
        f"embassy-watch: config error: {config} is not UTF-8 text "
        "(byte 0xd0 at offset 22): TOML files are UTF-8"
    )


def test_a_config_path_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    assert run_with_config(tmp_path, "status") == (
        f"embassy-watch: config error: cannot read config file {tmp_path}: Is a directory"
    )
