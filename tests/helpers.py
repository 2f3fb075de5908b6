"""Running the real `embassy-watch` program, as a user would, against test fixtures."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.archive import Archive

EXECUTABLE = Path(sys.executable).with_name("embassy-watch")
FAST_CRAWL = {"delay": 0, "retries": 1, "retry_backoff": "0.05s", "timeout": "3s"}


def write_config(
    directory: Path,
    database_url: str,
    listing_urls: list[str],
    *,
    sections: dict[str, dict[str, object]] | None = None,
    **crawl: object,
) -> Path:
    """A config for the replica; `sections` adds tables such as schedule, notify, health."""
    tables: dict[str, dict[str, object]] = {"crawl": {**FAST_CRAWL, **crawl}, **(sections or {})}
    lines = ["[database]", f"url = {json.dumps(database_url)}"]
    for name, values in tables.items():
        lines += ["", f"[{name}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    lines += ["", "[[sites]]", 'name = "replica"', f"listing_urls = {json.dumps(listing_urls)}"]
    path = directory / "embassy-watch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def as_displayed(paragraphs: list[str]) -> str:
    """A body as a browser shows it: runs of spaces (and &nbsp;) as one, paragraphs apart."""
    return "\n\n".join(re.sub(r"\s+", " ", p.replace("\xa0", " ")).strip() for p in paragraphs)


def clean_environment() -> dict[str, str]:
    """This process's environment without any EMBASSY_WATCH_* setting the tester may have."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EMBASSY_WATCH_")}


@dataclass
class EmbassyWatch:
    config: Path
    database_url: str

    def run(
        self,
        *args: str,
        expect: int | None = 0,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [str(EXECUTABLE), *args, "--config", str(self.config)]
        env = clean_environment() | (env or {})
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if expect is not None and done.returncode != expect:
            raise AssertionError(
                f"{' '.join(args)} exited {done.returncode}, expected {expect}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def crawl(self, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return self.run("crawl", expect=expect)

    def counts(self) -> dict[str, int]:
        with self.archive() as archive:
            return archive.counts()

    def statement_id(self, url: str) -> int:
        return int(self.json("show", url)["id"])

    @contextmanager
    def archive(self) -> Iterator[Archive]:
        opened = Archive.open(self.database_url)
        try:
            yield opened
        finally:
            opened.close()

    def start_daemon(self, log: Path, env: dict[str, str] | None = None) -> Daemon:
        return self.start("run", log=log, env=env)

    def start(self, *args: str, log: Path, env: dict[str, str] | None = None) -> Daemon:
        """The command running in the background (`run`, a long `crawl`), its output to `log`."""
        env = clean_environment() | (env or {})
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [str(EXECUTABLE), *args, "--config", str(self.config)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return Daemon(process, log)


@dataclass
class Daemon:
    """A running `embassy-watch` command (`run`, a long `crawl`), its output going to `log`."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, fragment: str, timeout: float = 60, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(fragment) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"no {fragment!r} x{count} in the daemon's log:\n{self.output()}")

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.kill()
