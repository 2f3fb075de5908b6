"""Alert delivery end to end: `embassy-watch run` against the replica, a real SMTP server
(aiosmtpd, default limits) and real webhook receivers.

Long Chinese titles reach a strict mail server; a hung mail server delays no webhook;
an alert is owed to the targets configured while it waits.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from monitor.diffing import diff_statements
from monitor.messages import Format, render
from monitor.notify import make_targets
from storage.records import ChangeEvent, Delivery, DeliveryStatus, EventKind
from tests.helpers import EmbassyWatch, write_config
from tests.receivers import HungMailServer, MailServer, WebhookSink, wait_until
from tests.replica.site import ReplicaSite, Statement
from tests.test_archive import CONTENT, T0

DONE = "replica: done"
SENTENCE = "美国驻华大使馆今天就签证预约系统的维护安排发表声明，"  # 26 characters


def alert_config(
    tmp_path: Path, database_url: str, replica: ReplicaSite, urls: list[str], **notify: object
) -> EmbassyWatch:
    """A daemon crawling the replica every second and reading the outbox five times as often."""
    sections: dict[str, dict[str, object]] = {
        "schedule": {"interval": "1s", "jitter": 0},
        "notify": {
            "urls": urls,
            "check_every": "0.2s",
            "retry_backoff": "0.3s",
            "timeout": "5s",
            **notify,
        },
        "health": {"stale_after": 1000},
    }
    config = write_config(tmp_path, database_url, [replica.listing_url], sections=sections)
    return EmbassyWatch(config, database_url)


def statement(n: int, title: str | None = None, paragraph: str | None = None) -> Statement:
    return Statement(
        post_id=93000 + n,
        slug=f"delivery-{n}",
        title=title or f"第{n}号投递测试声明",
        paragraphs=[paragraph or f"第{n}号声明正文。"],
    )


def new_subject(title: str) -> str:
    return f"New statement · 新声明: {title}"


def tried_and_waiting(ew: EmbassyWatch) -> list[Delivery]:
    """Pending rows that have been tried at least once."""
    with ew.archive() as archive:
        return [row for row in archive.outbox.deliveries(DeliveryStatus.PENDING) if row.attempts]


@pytest.fixture
def hung_mail_server() -> Iterator[HungMailServer]:
    server = HungMailServer().start()
    yield server
    server.stop()


@pytest.fixture
def second_webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    yield sink
    sink.stop()


# -- part 2: long Chinese titles -------------------------------------------------------------


def test_a_300_character_chinese_title_reaches_a_strict_mail_server(
    replica: ReplicaSite,
    mail_server: MailServer,
    webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    title = (SENTENCE * 12)[:300]
    paragraph = SENTENCE * 60  # 1,560 characters, one paragraph without a line break
    ew = alert_config(tmp_path, sqlite_url, replica, [mail_server.url(), webhook.url()])
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log(DONE)
        replica.add(statement(1, title, paragraph))
        (post,) = wait_until(lambda: webhook.with_title(title[:50]), what="the webhook alert")
        (mail,) = wait_until(lambda: mail_server.mails, timeout=15, what="the mail")
        assert daemon.terminate() == 0

    # The webhook takes the whole subject (trimmed to 200 characters, as every title is).
    meant = post["title"]
    assert meant.startswith(new_subject(title[:150])) and len(meant) == 200
    # The mail's Subject, decoded, is the whole of it, folded into lines of at most 78.
    assert mail.subject == meant
    assert mail.longest_header_line() <= 78
    assert mail.longest_line() <= 998  # RFC 5322 (aiosmtpd refuses over 1,001 with the CRLF)
    assert paragraph[:300] in mail.html and paragraph[:300] in mail.text  # the excerpt
    assert mail_server.refused == 0 and ew.json("outbox")["counts"]["delivered"] == 2


def test_message_limits_are_counted_in_bytes() -> None:
    """Slack's limit held in UTF-8 bytes by a Chinese diff three times as long in bytes."""
    (slack,) = make_targets(["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"])
    paragraphs = [SENTENCE * 15 + f"第{n}段。" for n in range(40)]  # ~16,000 characters
    old = replace(CONTENT, body="\n\n".join(paragraphs))
    new = replace(old, body=old.body.replace("今天", "昨天"))
    event = ChangeEvent(
        1, "china-zh", EventKind.CHANGED, T0, statement_id=7, url=CONTENT.url, title="标题",
        revision=2, previous_revision=1, changed_fields=("body",),
    )  # fmt: skip
    message = render(event, diff_statements(old, new), Format.MARKDOWN, slack.max_length)
    size = len(message.body.encode("utf-8"))
    assert slack.max_length - 2000 < size <= slack.max_length
    assert "trimmed" in message.body and "embassy-watch diff 7" in message.body


# -- part 3: one slow target never delays another --------------------------------------------


def test_a_hung_mail_server_delays_no_webhook_alert(
    replica: ReplicaSite,
    hung_mail_server: HungMailServer,
    webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    timeout = 2.0
    urls = [hung_mail_server.url(), webhook.url()]
    ew = alert_config(tmp_path, sqlite_url, replica, urls, timeout=f"{timeout}s")
    count = 6
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log(DONE)
        replica.statements = [*(statement(n) for n in range(count, 0, -1)), *replica.statements]
        wait_until(lambda: len(webhook.posts) == count, timeout=30, what="every webhook alert")
        # One send to the hung server costs a timeout; no webhook alert waited for one.
        with ew.archive() as archive:
            hooked = archive.outbox.deliveries(DeliveryStatus.DELIVERED)
        waits = [(row.delivered_at - row.created_at).total_seconds() for row in hooked]
        assert len(waits) == count and max(waits) < timeout, f"webhook alerts waited {waits}"
        assert hung_mail_server.connections, "the mail server was never tried"

        # Given up at the timeout (by apprise, or by the socket: whichever comes first).
        wait_until(lambda: tried_and_waiting(ew), what="a mail tried and still pending")
        started = time.monotonic()
        assert daemon.terminate(timeout=30) == 0  # while a send to the hung server is running
        assert time.monotonic() - started < 15
    assert Counter(webhook.titles()) == Counter(
        new_subject(statement(n).title) for n in range(1, count + 1)
    )


# -- part 4: alerts are owed to the targets configured when they are sent --------------------


def test_a_corrected_mail_target_gets_the_backlog_once_and_a_removed_one_nothing(
    replica: ReplicaSite,
    mail_server: MailServer,
    webhook: WebhookSink,
    second_webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    broken = mail_server.url().replace(f":{mail_server.port}?", ":1?")  # nothing listens there
    removed = second_webhook
    removed.refusing = True
    ew = alert_config(tmp_path, sqlite_url, replica, [broken, webhook.url(), removed.url()])
    log = tmp_path / "daemon.log"
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log(DONE)
        replica.statements = [statement(2), statement(1), *replica.statements]
        wait_until(lambda: len(webhook.posts) == 2, what="the two webhook alerts")

        wait_until(
            lambda: len(tried_and_waiting(ew)) == 4,
            what="two mails and two refused webhooks tried and waiting",
        )
        assert daemon.terminate() == 0

    # The operator corrects the mail URL and removes the second webhook, which is back up.
    ew = alert_config(tmp_path, sqlite_url, replica, [mail_server.url(), webhook.url()])
    removed.refusing = False
    with ew.start_daemon(log) as daemon:
        wait_until(lambda: len(mail_server.mails) == 2, what="the backlog by mail")
        time.sleep(1.5)  # several more delivery rounds: nothing may be sent again
        assert daemon.terminate() == 0

    subjects = [new_subject(statement(n).title) for n in (1, 2)]
    assert sorted(mail_server.subjects()) == sorted(subjects)
    assert sorted(webhook.titles()) == sorted(subjects)  # not again after the restart
    assert removed.posts == []
    outbox = ew.json("outbox")
    assert outbox["counts"] == {
        "pending": 0, "sending": 0, "delivered": 4, "failed": 0, "dropped": 4,
    }  # fmt: skip
    dropped = ew.run("outbox", "--status", "dropped").stdout
    assert dropped.count("last error: target removed") == 4
    assert "problem" not in ew.run("status").stdout  # dropped alerts are no health problem
