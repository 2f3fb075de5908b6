"""A real `embassy-watch serve` over an archive built by crawling the replica three times.

Crawl 1 archives the replica; then one statement gets a one-character edit (项 → 項)
on every occurrence, a statement full of markup and one full of misleading text are
added, and another is deleted; crawls 2 and 3 record the edit, the new statements and
the take-down, and e-mail their alerts to a real SMTP server.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from tests.conftest import postgres_database
from tests.helpers import EXECUTABLE, EmbassyWatch, clean_environment, write_config
from tests.receivers import Mail, MailServer
from tests.replica.site import ReplicaSite, Statement

EDITED_SLUG = "statement-24"
HOSTILE = Statement(
    post_id=93001,
    slug="hostile",
    title="<script>alert('title')</script>声明",
    paragraphs=["正文里有<script>alert(1)</script>和<img src=x onerror=alert(2)>。"],
)
# Text that misleads where it is shown: a right-to-left override that makes "exe.txt"
# read "txt.exe", an isolate, invisible characters, a bell and a terminal escape, a
# line break; and cells that a spreadsheet would run as formulas.
MISLEADING = Statement(
    post_id=93002,
    slug="misleading",
    title="关于\u202etxt.exe\u202c的声明\u2066\u2069\u200b\ufeff\x07\x1b[2J\r\n第二行",
    paragraphs=['=HYPERLINK("http://evil.example/","点击")', "+1+1 正文"],
    tags=["@SUM(1+1)", "-2+3"],
    author="=cmd|' /C calc'!A0",
)


@dataclass
class Served:
    base: str
    ew: EmbassyWatch
    edited_id: int
    mails: list[Mail]  # the alerts that crawls 2 and 3 sent

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())

    def fetch(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, Message, bytes]:
        """Status, headers and body of any answer, errors included."""
        request = urllib.request.Request(self.base + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def page(self, path: str) -> str:
        status, _, body = self.fetch(path)
        assert status == 200, (path, status, body[:300])
        return body.decode("utf-8")

    def status(self, path: str, method: str = "GET") -> tuple[int, Any]:
        """Status and JSON body of any answer, errors included."""
        status, _, body = self.fetch(path, method=method)
        return status, json.loads(body or b"null")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _build_archive(tmp: Path, database_url: str) -> tuple[EmbassyWatch, int, list[Mail]]:
    replica = ReplicaSite().start()
    mail = MailServer().start()
    try:
        notify = {"notify": {"urls": [mail.url()]}}
        config = write_config(tmp, database_url, [replica.listing_url], sections=notify)
        ew = EmbassyWatch(config, database_url)
        ew.crawl()
        first = replica.statement(EDITED_SLUG)
        replica.edit(EDITED_SLUG, paragraphs=[p.replace("项", "項") for p in first.paragraphs])
        replica.add(HOSTILE)
        replica.add(MISLEADING)
        replica.delete("statement-05")
        ew.crawl()
        ew.crawl()  # statement-05: gone twice, unlisted -> removed
        edited_id = ew.statement_id(replica.url(first.path))
    finally:
        mail.stop()
        replica.stop()
    return ew, edited_id, list(mail.mails)


@contextmanager
def serving(backend: str, tmp: Path) -> Iterator[Served]:
    with postgres_database() if backend == "postgresql" else _sqlite(tmp) as database_url:
        ew, edited_id, mails = _build_archive(tmp, database_url)
        with serve_process(ew, tmp / "serve.log") as base:
            yield Served(base, ew, edited_id, mails)


@contextmanager
def serve_process(ew: EmbassyWatch, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real `embassy-watch serve` on a free port; yields its base URL."""
    port = _free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(EXECUTABLE), "serve", "--config", str(ew.config), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=clean_environment() | (env or {}),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


class _sqlite:
    def __init__(self, tmp: Path) -> None:
        self.url = f"sqlite:///{tmp / 'archive.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        pass


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        try:
            urllib.request.urlopen(base + "/openapi.json", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not come up")
