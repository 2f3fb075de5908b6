"""Missions by name: the catalog, `[[sites]] missions = [...]`, and `missions --refresh`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest

from config import ConfigError, load_settings
from config.missions import catalog_csv, load_catalog
from config.settings import DEFAULT_LISTING_URL
from tests.helpers import EmbassyWatch
from tests.replica.site import Canned, ReplicaSite, english_twins, seed_statements

CATALOG = load_catalog()


def write(tmp_path: Path, text: str, name: str = "embassy-watch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sites_of(tmp_path: Path, sites_toml: str, environ: dict[str, str] | None = None) -> dict:
    settings = load_settings(write(tmp_path, sites_toml), environ=environ or {})
    return {site.name: (site.listing_urls, site.timezone) for site in settings.sites}


# -- the packaged catalog ---------------------------------------------------------------


def test_the_packaged_catalog_holds_every_mission_of_the_shared_list() -> None:
    shared = Path(__file__).parents[2] / "shared" / "data" / "us-missions.csv"
    assert len(CATALOG.missions) == 196
    if shared.exists():  # the source list beside the project, when it is there
        hosts = {line.split(",")[1] for line in shared.read_text("utf-8").splitlines()[1:]}
        assert {m.host for m in CATALOG.missions} == hosts
    assert len(set(CATALOG.keys)) == 196


@pytest.mark.parametrize(
    ("key", "host", "zone", "languages"),
    [
        ("china", "china.usembassy-china.org.cn", "Asia/Shanghai", ("en", "zh")),
        ("uk", "uk.usembassy.gov", "Europe/London", ("en",)),
        ("jp", "jp.usembassy.gov", "Asia/Tokyo", ("en",)),
        ("ru", "ru.usembassy.gov", "Europe/Moscow", ("en",)),  # not Kaliningrad, zone.tab's first
        ("br", "br.usembassy.gov", "America/Sao_Paulo", ("en",)),
        ("au", "au.usembassy.gov", "Australia/Sydney", ("en",)),
        ("usun", "usun.usmission.gov", "America/New_York", ("en",)),
        ("geneva", "geneva.usmission.gov", "Europe/Zurich", ("en",)),
        ("ait", "www.ait.org.tw", "Asia/Taipei", ("en",)),
    ],
)
def test_catalog_rows(key: str, host: str, zone: str, languages: tuple[str, ...]) -> None:
    mission = CATALOG.find(key)
    assert (mission.host, mission.timezone, mission.languages) == (host, zone, languages)


# -- [[sites]] missions = [...] -----------------------------------------------------------


def test_missions_by_name_expand_to_one_site_per_language(tmp_path: Path) -> None:
    sites = sites_of(tmp_path, '[[sites]]\nmissions = ["china", "uk", "jp"]\n')
    assert sites == {
        "china-en": (("https://china.usembassy-china.org.cn/news-events/",), "Asia/Shanghai"),
        "china-zh": ((DEFAULT_LISTING_URL,), "Asia/Shanghai"),
        "uk-en": (("https://uk.usembassy.gov/news-events/",), "Europe/London"),
        "jp-en": (("https://jp.usembassy.gov/news-events/",), "Asia/Tokyo"),
    }


def test_all_missions_and_a_language_filter(tmp_path: Path) -> None:
    every = sites_of(tmp_path, '[[sites]]\nmissions = "all"\n')
    assert len(every) == 197 and "china-zh" in every and "usun-en" in every
    chinese = sites_of(tmp_path, '[[sites]]\nmissions = "all"\nlanguages = ["zh"]\n')
    assert list(chinese) == ["china-zh"]


def test_sites_by_url_keep_working_beside_missions(tmp_path: Path) -> None:
    sites = sites_of(
        tmp_path,
        '[[sites]]\nname = "own"\nlisting_urls = ["https://example.org/news/"]\n'
        '[[sites]]\nmissions = ["uk"]\n',
    )
    assert sites["own"][0] == ("https://example.org/news/",) and "uk-en" in sites


@pytest.mark.parametrize(
    ("sites_toml", "message"),
    [
        ('[[sites]]\nmissions = ["ukk"]\n', "no mission 'ukk' in the catalog (did you mean uk"),
        ('[[sites]]\nmissions = ["uk"]\nname = "x"\n', "takes only 'missions' and 'languages'"),
        ("[[sites]]\nmissions = 3\n", 'expected "all" or a list of mission keys'),
        ("[[sites]]\nmissions = []\n", 'expected "all" or a list of mission keys'),
        ('[[sites]]\nmissions = ["uk"]\nlanguages = ["zh"]\n', "no listing in the languages"),
        ('[[sites]]\nmissions = ["uk"]\n[[sites]]\nmissions = ["uk"]\n', "must be unique: uk-en"),
        ('[missions]\ncatalog = "nowhere.csv"\n[[sites]]\nmissions = ["uk"]\n', "nowhere.csv"),
    ],
)
def test_bad_mission_sites_are_refused_in_one_line(
    tmp_path: Path, sites_toml: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, sites_toml), environ={})
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_catalog_of_ones_own_from_file_or_environment(tmp_path: Path) -> None:
    own = catalog_csv(CATALOG) + "zz,zz.usembassy.gov,Zedland,embassy,ZZ,Asia/Tokyo,en fr\n"
    path = write(tmp_path, own, "missions.csv")
    in_file = sites_of(tmp_path, f'[missions]\ncatalog = "{path}"\n[[sites]]\nmissions = ["zz"]\n')
    assert in_file["zz-fr"] == (("https://zz.usembassy.gov/fr/news-events-fr/",), "Asia/Tokyo")
    from_env = sites_of(
        tmp_path, '[[sites]]\nmissions = ["zz"]\n', {"EMBASSY_WATCH_MISSIONS_CATALOG": str(path)}
    )
    assert set(from_env) == {"zz-en", "zz-fr"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("zz,zz.usembassy.gov,Zedland,embassy,ZZ,Mars/Olympus,en", "line 198: unknown time zone"),
        ("zz,uk.usembassy.gov,Zedland,embassy,ZZ,UTC,en", "host 'uk.usembassy.gov' appears twice"),
        ("zz,zz.usembassy.gov,Zedland,palace,ZZ,UTC,en", "line 198: kind 'palace'"),
        ("zz,not a host,Zedland,embassy,ZZ,UTC,en", "line 198: host 'not a host'"),
        ("zz,zz.usembassy.gov,Zedland,embassy,ZZ,UTC", "line 198: expected 7 columns"),
    ],
)
def test_a_broken_catalog_is_refused_naming_the_line(
    tmp_path: Path, row: str, message: str
) -> None:
    path = write(tmp_path, catalog_csv(CATALOG) + row + "\n", "missions.csv")
    with pytest.raises(ConfigError, match=message):
        load_catalog(path)


# -- the command --------------------------------------------------------------------------


@pytest.fixture
def ew(tmp_path: Path) -> EmbassyWatch:
    config = write(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n')
    return EmbassyWatch(config, f"sqlite:///{tmp_path}/a.db")


def test_missions_lists_the_catalog(ew: EmbassyWatch) -> None:
    lines = ew.run("missions").stdout.splitlines()
    assert len(lines) == 196
    china = next(line for line in lines if line.startswith("china "))
    assert "en zh" in china and "Asia/Shanghai" in china and "china.usembassy-china.org.cn" in china
    listed = ew.json("missions")
    assert next(m for m in listed if m["key"] == "uk")["sites"] == ["uk-en"]


@pytest.fixture
def mission_page() -> Iterator[ReplicaSite]:
    site = ReplicaSite().start()
    yield site
    site.stop()


def switcher_page(links: list[tuple[str, str]]) -> bytes:
    items = "".join(f'<li><a href="{escape(url)}">{escape(label)}</a></li>' for url, label in links)
    return (
        "<html><body><header><div class='countries'><span>国家</span><ul>"
        f"{items}</ul></div></header><main>…</main></body></html>"
    ).encode()


def live_switcher() -> list[tuple[str, str]]:
    """The catalog as a switcher shows it, then a closed mission, a new one, a renamed one."""
    changed = {"sm", "tg", "kr"}  # San Marino closed; Togo and Korea come back below
    links = [
        (f"https://{m.host}/", m.name.replace(" and ", " & "))
        for m in CATALOG.missions
        if m.key not in changed
    ]
    links.append(("https://zz.usembassy.gov/", "Zedland"))
    links.append(("https://evil.example/", "Free visas"))
    links.append(("https://tg.usembassy.gov/", "Togolese Republic"))
    links.append(("https://kr.usembassy.gov/", "Korea"))  # the catalog spells it South Korea
    return links


def test_refresh_reports_the_switchers_differences_and_writes_the_catalog(
    ew: EmbassyWatch, mission_page: ReplicaSite, tmp_path: Path
) -> None:
    mission_page.serve(
        "/zh/", Canned(200, {"Content-Type": "text/html"}, switcher_page(live_switcher()))
    )
    updated = tmp_path / "missions.csv"
    done = ew.run("missions", "--refresh", "--from", mission_page.url("/zh/"), "-o", str(updated))
    report = done.stdout
    assert "new      zz" in report and "Zedland" in report
    assert "renamed  tg" in report and "Togolese Republic" in report
    assert "unlinked sm" in report
    assert "ignored  https://evil.example/" in report
    assert "kr" not in report.split()  # a known spelling is not a rename
    assert mission_page.count("/zh/") == 1  # one request

    catalog = load_catalog(updated)
    assert catalog.find("zz").host == "zz.usembassy.gov"
    assert catalog.find("tg").name == "Togolese Republic"
    assert catalog.find("sm")  # kept: the switcher no longer links it, a config may still
    assert catalog.by_host("evil.example") is None
    assert len(catalog.missions) == 197


def test_refresh_json_and_no_write_when_unchanged(
    ew: EmbassyWatch, mission_page: ReplicaSite, tmp_path: Path
) -> None:
    links = [(f"https://{m.host}/", m.name) for m in CATALOG.missions]
    mission_page.serve("/zh/", Canned(200, {"Content-Type": "text/html"}, switcher_page(links)))
    target = tmp_path / "missions.csv"
    answer = json.loads(
        ew.run(
            "missions", "--refresh", "--json", "--from", mission_page.url("/zh/"), "-o", str(target)
        ).stdout
    )
    assert answer["added"] == [] and answer["missing"] == [] and answer["renamed"] == []
    assert not target.exists()


def test_refresh_shows_hostile_labels_inert(ew: EmbassyWatch, mission_page: ReplicaSite) -> None:
    links = [("https://zz.usembassy.gov/", "Zed\x1b[2J\u202eland")]
    mission_page.serve("/zh/", Canned(200, {"Content-Type": "text/html"}, switcher_page(links)))
    done = ew.run("missions", "--refresh", "--from", mission_page.url("/zh/"))
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout and "U+202E" in done.stdout
    assert "not saved: give -o FILE" in done.stderr


@pytest.mark.parametrize(
    ("canned", "message"),
    [
        (Canned(404), "answered HTTP 404"),
        (
            Canned(200, {"Content-Type": "text/html"}, b"<html><main>no switcher</main></html>"),
            "has no country switcher",
        ),
        (Canned(301, {"Location": "https://elsewhere.example/"}), "redirects off its site"),
    ],
)
def test_refresh_failures_are_one_line(
    ew: EmbassyWatch, mission_page: ReplicaSite, canned: Canned, message: str
) -> None:
    mission_page.serve("/zh/", canned)
    done = ew.run("missions", "--refresh", "--from", mission_page.url("/zh/"), expect=1)
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_refresh_reads_the_first_configured_listing_by_default(
    mission_page: ReplicaSite, tmp_path: Path
) -> None:
    config = write(
        tmp_path,
        f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n'
        f'[[sites]]\nname = "replica"\nlisting_urls = ["{mission_page.listing_url}"]\n',
    )
    report = EmbassyWatch(config, "").run("missions", "--refresh").stdout
    # The replica's header links three countries: every other mission reads as unlinked.
    assert report.count("unlinked") == 196 - 3
    assert "languages on this page: none linked" in report  # the Chinese-only listing
    assert mission_page.count("/") == 1


def test_refresh_reports_the_languages_the_page_offers(tmp_path: Path) -> None:
    chinese = seed_statements()[:2]
    site = ReplicaSite(chinese, english=english_twins(chinese)).start()
    try:
        ew = EmbassyWatch(write(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/a.db"\n'), "")
        text = ew.run("missions", "--refresh", "--from", site.listing_url).stdout
        answer = json.loads(
            ew.run("missions", "--refresh", "--json", "--from", site.url(chinese[0].path)).stdout
        )
    finally:
        site.stop()
    assert "languages on this page: en, zh" in text
    assert answer["languages"] == ["en", "zh"]
