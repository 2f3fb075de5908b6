"""`embassy-watch run` against the replica site, alerting a real SMTP server and a real webhook."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from storage import models
from storage.records import RevisionSummary
from tests.helpers import EmbassyWatch, write_config
from tests.receivers import MailServer, WebhookSink, wait_until
from tests.replica.site import ReplicaSite, Statement

SLUG = "new-statement"
TITLE = "美国驻华大使馆关于签证预约的说明"
PARAGRAPHS = ["自即日起，签证预约系统将进行维护。", "申请人请留意本网站的最新通知，谢谢合作。"]


def monitor_config(
    tmp_path: Path,
    database_url: str,
    replica: ReplicaSite,
    urls: list[str],
    **schedule: object,
) -> EmbassyWatch:
    sections: dict[str, dict[str, object]] = {
        "schedule": {"interval": "1s", "jitter": 0, "removal_after": 2, **schedule},
        "notify": {"urls": urls, "check_every": "0.2s", "retry_backoff": "0.3s", "timeout": "5s"},
        "health": {"stale_after": 1000},
    }
    config = write_config(tmp_path, database_url, [replica.listing_url], sections=sections)
    return EmbassyWatch(config, database_url)


def new_statement() -> Statement:
    return Statement(post_id=90001, slug=SLUG, title=TITLE, paragraphs=list(PARAGRAPHS))


def test_every_kind_of_change_is_alerted_once_by_mail_and_webhook(
    replica: ReplicaSite,
    mail_server: MailServer,
    webhook: WebhookSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    ew = monitor_config(tmp_path, database_url, replica, [mail_server.url(), webhook.url()])
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("replica: done")
        daemon.wait_for_log("replica: done", count=2)
        assert webhook.posts == [] and mail_server.mails == [], "the baseline crawl alerted"

        replica.add(new_statement())
        (post,) = wait_until(lambda: webhook.with_title(TITLE), what="the new-statement webhook")
        assert post["title"].startswith("New statement · 新声明")
        assert replica.url(f"/zh/{SLUG}/") in post["message"]
        assert PARAGRAPHS[0] in post["message"]  # an excerpt of what it says
        mail = wait_until(lambda: [m for m in mail_server.mails if TITLE in m.subject])[0]
        assert mail.recipients == ("newsroom@example.org",)

        edited = [PARAGRAPHS[0].replace("维护", "維護"), PARAGRAPHS[1]]
        replica.edit(SLUG, paragraphs=edited)
        (changed,) = wait_until(lambda: webhook.with_title("Changed"), what="the edit alert")
        assert changed["title"] == f"Changed · 已修改 (body): {TITLE}"
        assert "[-维护-]{+維護+}" in changed["message"]
        assert "revision 1 → 2" in changed["message"]
        edit_mail = wait_until(lambda: [m for m in mail_server.mails if "Changed" in m.subject])[0]
        assert ">维护</del>" in edit_mail.html and ">維護</ins>" in edit_mail.html

        replica.edit(SLUG, title=TITLE + "（更新）")
        retitled = wait_until(lambda: webhook.with_title("(title)"), what="the title alert")[0]
        assert "title: " + TITLE + "{+（更新）+}" in retitled["message"]

        replica.edit(SLUG, title=TITLE, paragraphs=list(PARAGRAPHS))
        reverted = wait_until(lambda: webhook.with_title("Reverted"), what="the revert alert")[0]
        assert reverted["title"] == f"Reverted · 已还原 to revision 1: {TITLE}"

        replica.delete(SLUG)
        removed = wait_until(lambda: webhook.with_title("Removed"), what="the take-down alert")[0]
        assert "HTTP 404 on 2 consecutive checks" in removed["message"]
        assert replica.count(f"/zh/{SLUG}/") >= 2 + 4  # two gone checks after four readable ones

        wait_until(lambda: len(mail_server.mails) == 5, what="five mails")
        if database_url.startswith("sqlite"):
            second = ew.run("run", expect=1, timeout=30)
            assert "another `embassy-watch run`" in second.stderr  # one daemon per SQLite file
            assert len(second.stderr.strip().splitlines()) == 1
        else:  # a second `run` on PostgreSQL joins the fleet (tests/test_fleet.py)
            with ew.start_daemon(tmp_path / "second.log") as second_worker:
                second_worker.wait_for_log("fleet: joined as worker")
                assert second_worker.terminate() == 0
        assert daemon.terminate() == 0

    assert Counter(webhook.titles()) == Counter(mail.subject for mail in mail_server.mails)
    assert len(webhook.posts) == 5 and all(n == 1 for n in Counter(webhook.titles()).values())
    events = ew.json("changes")
    kinds = [event["kind"] for event in events if not event["baseline"]]
    assert kinds == ["removed", "reverted", "changed", "changed", "new"]
    outbox = ew.json("outbox")
    assert outbox["counts"] == {
        "pending": 0, "sending": 0, "delivered": 10, "failed": 0, "dropped": 0,
    }  # fmt: skip


def test_a_restart_does_not_crawl_again_before_the_sites_turn(
    replica: ReplicaSite, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [], interval="30s")
    log = tmp_path / "daemon.log"
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log("replica: done")
        assert daemon.terminate() == 0
    requests_before = len(replica.requests)
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log("replica: first crawl at", count=2)
        time.sleep(3)
        assert daemon.terminate() == 0
    assert len(replica.requests) == requests_before  # no burst on restart
    (_, restarted) = [line for line in daemon.output().splitlines() if "first crawl at" in line]
    first_run = datetime.fromisoformat(restarted.rsplit(" ", 1)[1])
    with ew.archive() as archive:
        last_crawl = archive.site_state("replica").last_crawl_at
    # The log shows whole seconds: the turn is the last crawl plus the 30 s interval.
    assert last_crawl is not None
    assert first_run + timedelta(seconds=1) > last_crawl + timedelta(seconds=30)


def fetches_and_histories(ew: EmbassyWatch) -> tuple[Counter[str], list[list[RevisionSummary]]]:
    """How many fetches of each URL are on record, and every statement's revisions."""
    with ew.archive() as archive, archive.engine.connect() as connection:
        fetches = Counter(connection.scalars(select(models.Observation.requested_url)))
        return fetches, [archive.history(s.id) for s in archive.statements()]


def test_repeated_fetches_are_thinned_by_run_at_start_and_by_the_thin_command(
    replica: ReplicaSite, tmp_path: Path, database_url: str
) -> None:
    ew = monitor_config(tmp_path, database_url, replica, [], interval="1h")
    for _ in range(3):
        ew.run("crawl", "-q")
    fetches, histories = fetches_and_histories(ew)
    assert len(fetches) > 24 and set(fetches.values()) == {3}

    # `run` thins at start (then daily); a crawl done just now keeps it from crawling yet.
    thin_now = {"EMBASSY_WATCH_DATABASE_THIN_OBSERVATIONS_AFTER": "1ms"}
    with ew.start_daemon(tmp_path / "daemon.log", env=thin_now) as daemon:
        daemon.wait_for_log(f"forgot {len(fetches)} repeated fetches")
        daemon.terminate()
    thinned, kept_histories = fetches_and_histories(ew)
    assert thinned == Counter(dict.fromkeys(fetches, 2))  # the first and the last of three
    assert kept_histories == histories

    ew.run("crawl", "-q")
    done = ew.run("thin", "--older-than", "1ms")
    assert done.stdout.startswith(f"forgot {len(fetches)} repeated fetches")
    assert fetches_and_histories(ew) == (thinned, histories)
    assert ew.run("thin").stdout.startswith("forgot 0 ")  # the default keeps 30 days whole

    refused = ew.run("thin", "--older-than", "soon", expect=2)
    assert refused.stderr.strip().splitlines() == [
        "embassy-watch: --older-than: expected a duration such as 30, '30s', '15m' or '1h'"
    ]
