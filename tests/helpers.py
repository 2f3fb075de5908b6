"""Running the real `embassy-watch` program, as a user would, against test fixtures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.archive import Archive

EXECUTABLE = Path(sys.executable).with_name("embassy-watch")
FAST_CRAWL = {"delay": 0, "retries": 1, "retry_backoff": "0.05s", "timeout": "3s"}


def write_config(
    directory: Path, database_url: str, listing_urls: list[str], **crawl: object
) -> Path:
    settings = {**FAST_CRAWL, **crawl}
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[crawl]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["", "[[sites]]", 'name = "replica"', f"listing_urls = {json.dumps(listing_urls)}"]
    path = directory / "embassy-watch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def as_displayed(paragraphs: list[str]) -> str:
    """A body as a browser shows it: runs of spaces (and &nbsp;) as one, paragraphs apart."""
    return "\n\n".join(re.sub(r"\s+", " ", p.replace("\xa0", " ")).strip() for p in paragraphs)


@dataclass
class EmbassyWatch:
    config: Path
    database_url: str

    def run(
        self, *args: str, expect: int | None = 0, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        command = [str(EXECUTABLE), *args, "--config", str(self.config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBASSY_WATCH_")}
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
        archive = Archive.open(self.database_url)
        try:
            return archive.counts()
        finally:
            archive.close()

    def statement_id(self, url: str) -> int:
        return int(self.json("show", url)["id"])
