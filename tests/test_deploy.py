"""The deployment kit agrees with the program: docker-compose.yml, Dockerfile, systemd unit.

Docker does not run here, so this checks what would break a `docker compose up`:
commands and health checks that do not exist, environment variables the config
rejects, services or volumes referred to but not declared, ports that do not meet.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from config import load_settings
from monitor.cli import main
from monitor.fleet import is_fleet
from tests.served import Served

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
UNIT = (ROOT / "deploy" / "embassy-watch.service").read_text()
README = (ROOT / "README.md").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if s.get("build") == "."}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def test_the_compose_file_runs_the_daemon_the_web_server_postgres_and_a_mail_catcher() -> None:
    commands = {name: service["command"] for name, service in OURS.items()}
    assert sorted(commands.values()) == [["run"], ["serve"]]
    for command in commands.values():
        assert command[0] in main.commands, f"no subcommand {command[0]}"
    assert "postgres" in SERVICES["postgres"]["image"]
    assert "mailpit" in SERVICES["mailpit"]["image"]
    for name, service in SERVICES.items():
        for needed in service.get("depends_on", {}):
            assert needed in SERVICES, f"{name} depends on undeclared {needed}"


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    mounts = [m.split(":") for m in SERVICES["postgres"]["volumes"]]
    assert [(volume, path) for volume, path in mounts] == [("archive", "/var/lib/postgresql/data")]
    assert "archive" in COMPOSE["volumes"]


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_setting_in_the_compose_file_is_one_the_config_understands(name: str) -> None:
    environment = _environment(OURS[name])
    assert all(key.startswith("EMBASSY_WATCH_") for key in environment)
    settings = load_settings(None, environ=environment)  # unknown or invalid: ConfigError
    database = urlsplit(settings.database.url)
    postgres = _environment(SERVICES["postgres"])
    assert database.hostname == "postgres" and database.port == 5432
    assert (database.username, database.password, database.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    for url in settings.notify.urls:
        assert urlsplit(url).hostname in SERVICES, f"alerts go to an undeclared host: {url}"


@pytest.mark.parametrize("served", ["sqlite"], indirect=True)
def test_the_web_server_listens_where_the_port_and_health_check_point(served: Served) -> None:
    web = next(s for s in OURS.values() if s["command"] == ["serve"])
    settings = load_settings(None, environ=_environment(web))
    assert settings.serve.host == "0.0.0.0"
    assert [p.split(":")[-1] for p in web["ports"]] == [str(settings.serve.port)]
    assert f"EXPOSE {settings.serve.port}" in DOCKERFILE
    probe = " ".join(web["healthcheck"]["test"])
    (url,) = re.findall(r"http://[^'\" ]+", probe)
    assert urlsplit(url).port == settings.serve.port
    assert served.fetch(urlsplit(url).path)[0] == 200  # the probe's path, on a real server


def test_the_daemon_health_check_is_a_real_command() -> None:
    watcher = next(s for s in OURS.values() if s["command"] == ["run"])
    test = watcher["healthcheck"]["test"]
    assert test[:2] == ["CMD", "embassy-watch"] and test[2] in main.commands
    assert _seconds(watcher["stop_grace_period"]) > 30  # SIGTERM: exit within 30 s


def test_the_daemon_scales_to_a_fleet_with_compose_scale() -> None:
    watcher = next(s for s in OURS.values() if s["command"] == ["run"])
    # Replicas of a service with a fixed container name or host port could not all start.
    assert "container_name" not in watcher and "ports" not in watcher
    settings = load_settings(None, environ=_environment(watcher))
    assert is_fleet(settings.database.url)  # PostgreSQL: each replica joins the fleet
    scale = "docker compose up -d --scale watcher=3"
    assert scale in README and scale in (ROOT / "docker-compose.yml").read_text()


def test_the_image_is_built_from_pyproject_with_every_package() -> None:
    assert "COPY pyproject.toml" in DOCKERFILE and "pip install ." in DOCKERFILE
    top_level = {name.split(".")[0] for name in PROJECT["tool"]["setuptools"]["packages"]}
    for package in top_level:
        assert f"COPY {package} ./{package}" in DOCKERFILE, f"{package} not in the image"
    (script,) = PROJECT["project"]["scripts"]
    assert f'ENTRYPOINT ["{script}"]' in DOCKERFILE
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.M), "the image must not run as root"


def test_the_systemd_unit_runs_the_daemon_and_waits_for_a_clean_stop() -> None:
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", UNIT, re.M)
    program, command, *options = shlex.split(exec_start)
    assert program.endswith("/embassy-watch") and command == "run"
    run_options = {o for p in main.commands["run"].params for o in getattr(p, "opts", [])}
    assert {o for o in options if o.startswith("--")} <= run_options
    (timeout,) = re.findall(r"^TimeoutStopSec=(\d+)$", UNIT, re.M)
    assert int(timeout) > 30
    environment = dict(re.findall(r"^Environment=(\w+)=(.*)$", UNIT, re.M))
    assert environment
    load_settings(None, environ=environment)  # unknown or invalid: ConfigError


def _seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([sm])", value).groups()  # type: ignore[union-attr]
    return int(number) * (60 if unit == "m" else 1)
