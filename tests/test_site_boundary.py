"""Redirects off the watched site: a statement page never leads the crawler to another host.

Only a permanent redirect of the listing itself moves the site (tests/test_crawl_cli.py
follows such a move); every other redirect off the site is a failed fetch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import models
from tests.helpers import EmbassyWatch, write_config
from tests.receivers import WebhookSink
from tests.replica.site import Canned, ReplicaSite, render_detail_current

STRANGER_TEXT = "这是另一个网站的文字，不是使馆的声明。"


class Stranger:
    """Another host (127.0.0.2) that answers every path with a statement-like page."""

    def __init__(self, replica: ReplicaSite) -> None:
        self.paths: list[str] = []
        page = replica.statement("statement-03")
        html = render_detail_current(replica, page).replace(page.paragraphs[0], STRANGER_TEXT)
        body = html.encode()
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.2:{self._server.server_address[1]}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stranger(replica: ReplicaSite) -> Iterator[Stranger]:
    server = Stranger(replica)
    yield server
    server.stop()


def meta_refresh_to(url: str) -> Canned:
    html = f'<html><head><meta http-equiv="refresh" content="0; url={url}"></head></html>'
    return Canned(200, {"Content-Type": "text/html; charset=UTF-8"}, html.encode(), times=None)


def test_a_statement_redirected_off_the_site_is_a_failed_fetch_never_a_revision(
    replica: ReplicaSite,
    stranger: Stranger,
    webhook: WebhookSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    sections = {
        "schedule": {"interval": "1s", "jitter": 0},
        "notify": {"urls": [webhook.url()], "check_every": "0.2s"},
        "health": {"stale_after": 1000},
    }
    config = write_config(tmp_path, database_url, [replica.listing_url], sections=sections)
    ew = EmbassyWatch(config, database_url)
    victims = {
        "statement-01": "301",
        "statement-02": "302",
        "statement-03": "meta refresh",
        "statement-04": "on-site 301, then off-site 307",
    }
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("replica: done", count=2)  # the baseline, then a settled cycle
        paths = {slug: replica.statement(slug).path for slug in victims}
        replica.redirects[paths["statement-01"]] = stranger.url(paths["statement-01"])
        replica.serve(
            paths["statement-02"],
            Canned(302, {"Location": stranger.url("/x/")}, times=None),
        )
        replica.serve(paths["statement-03"], meta_refresh_to(stranger.url("/refresh/")))
        replica.redirects[paths["statement-04"]] = replica.url("/zh/hop/")
        replica.serve("/zh/hop/", Canned(307, {"Location": stranger.url("/hop/")}, times=None))
        daemon.wait_for_log("replica: done", count=5)
        assert daemon.terminate() == 0
        log = daemon.output()

    assert stranger.paths == [], "the other host was contacted"
    assert "redirected off the site to " + stranger.url(paths["statement-01"]) in log
    with ew.archive() as archive, archive.engine.connect() as connection:
        for slug in victims:
            url = replica.url(paths[slug])
            summary = archive.find_statement(url)
            assert summary is not None and summary.url == url, f"{slug} moved"
            assert summary.revisions == 1, f"{slug} got a revision"
            errors = connection.scalars(
                select(models.Observation.error).where(
                    models.Observation.requested_url == url, models.Observation.error.is_not(None)
                )
            ).all()
            assert errors and all(
                error.startswith("redirected off the site to http://127.0.0.2:") for error in errors
            ), (slug, victims[slug], errors)
        statuses = connection.scalars(
            select(models.Observation.status).where(
                models.Observation.requested_url == replica.url(paths["statement-01"]),
                models.Observation.error.is_not(None),
            )
        ).all()
        assert set(statuses) == {301}
        kinds = {str(event.kind) for event in archive.changes(include_baseline=False)}
        queued = sum(archive.outbox.counts().values())
    assert kinds == set(), kinds  # the baseline's events only: no changed, removed or problem
    assert queued == 0 and webhook.posts == []


def test_a_listing_that_redirects_off_the_site_temporarily_is_not_followed(
    replica: ReplicaSite, stranger: Stranger, sqlite_url: str, tmp_path: Path
) -> None:
    """A 302 is not a move: a login wall or a WAF's challenge host is no new home."""
    replica.serve("/old-news/", Canned(302, {"Location": stranger.url("/news/")}, times=None))
    old_listing = replica.url("/old-news/")
    ew = EmbassyWatch(write_config(tmp_path, sqlite_url, [old_listing]), sqlite_url)
    done = ew.crawl(expect=1)
    assert f"redirected off the site to {stranger.url('/news/')}" in done.stderr
    assert stranger.paths == []
    assert ew.json("statements") == []
