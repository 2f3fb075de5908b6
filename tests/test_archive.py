"""One storage suite, run against every backend (SQLite file and PostgreSQL)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage import models
from storage.archive import THIN_PER_TRANSACTION, Archive
from storage.recording import Recording
from storage.records import (
    Capture,
    ExtractionFailure,
    ListingItem,
    ListingPage,
    Outcome,
    PageKind,
    StatementContent,
)

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
URL = "https://china.usembassy-china.org.cn/zh/statement/"
CONTENT = StatementContent(
    url=URL,
    title="美国正式重新加入《巴黎协定》",
    body="第一段，今天美国正式重新加入。\n\n第二段。",
    language="zh",
    post_id=40888,
    published_at=datetime(2021, 2, 19, 7, 0, tzinfo=UTC),
    published_raw="二月 19, 2021",
    author="U.S. Mission China",
    tags=("气候",),
    categories=("新闻",),
    extractor_version="1",
)


def capture(
    at: datetime = T0,
    body: bytes = b"<html>page</html>",
    url: str = URL,
    status: int | None = 200,
    kind: PageKind = PageKind.DETAIL,
) -> Capture:
    return Capture(
        site="china-zh",
        kind=kind,
        requested_url=url,
        final_url=url,
        fetched_at=at,
        status=status,
        headers={"content-type": "text/html"},
        body=body,
    )


def test_first_fetch_creates_statement_and_revision(archive: Archive) -> None:
    result = archive.record_detail(capture(), CONTENT)
    assert result.outcome is Outcome.NEW and result.revision_number == 1
    [summary] = archive.statements()
    assert (summary.url, summary.title, summary.revisions, summary.status) == (
        URL,
        CONTENT.title,
        1,
        "active",
    )
    revision = archive.revision(summary.id)
    assert revision is not None and revision.content == CONTENT
    assert revision.observed_at == T0


def test_refetch_with_noisy_bytes_writes_no_revision_and_no_body(archive: Archive) -> None:
    archive.record_detail(capture(body=b"<html>nonce=1</html>"), CONTENT)
    before = archive.counts()
    result = archive.record_detail(
        capture(T0 + timedelta(hours=1), body=b"<html>nonce=2</html>"), CONTENT
    )
    after = archive.counts()
    assert result.outcome is Outcome.UNCHANGED and result.revision_number == 1
    assert after["revisions"] == before["revisions"] == 1
    assert after["blobs"] == before["blobs"] == 1
    assert after["observations"] == before["observations"] + 1


def test_raw_body_is_stored_once_and_compressed(archive: Archive) -> None:
    body = ("<p>" + "重复的内容" * 2000 + "</p>").encode()
    archive.record_detail(capture(body=body), CONTENT)
    changed = replace(CONTENT, body=CONTENT.body + "\n\n新增一段。")
    archive.record_detail(capture(T0 + timedelta(hours=1), body=body), changed)
    assert archive.counts()["blobs"] == 1
    digest = hashlib.sha256(body).hexdigest()
    assert archive.raw_body(digest) == body
    with archive.engine.connect() as connection:
        stored = connection.scalar(select(models.Blob.data).where(models.Blob.sha256 == digest))
    assert stored is not None and len(stored) < len(body) / 10


def test_line_end_spaces_tag_order_and_modified_time_are_not_changes(archive: Archive) -> None:
    # A width variant (，→,) is a change, typographic: see tests/test_changes.py.
    tagged = replace(CONTENT, tags=("气候", "外交"))
    archive.record_detail(capture(), tagged)
    spaced = replace(
        tagged,
        body=tagged.body.replace("第二段。", "第二段。  "),
        tags=tuple(reversed(tagged.tags)),
        modified_at=T0,
    )
    result = archive.record_detail(capture(T0 + timedelta(hours=1)), spaced)
    assert result.outcome is Outcome.UNCHANGED


def test_a_content_change_makes_the_next_revision_and_names_the_fields(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT)
    edited = replace(CONTENT, title=CONTENT.title + "（更新）", body=CONTENT.body + "\n\n补充。")
    result = archive.record_detail(capture(T0 + timedelta(hours=1)), edited)
    assert result.outcome is Outcome.CHANGED and result.revision_number == 2
    statement_id = archive.statements()[0].id
    history = archive.history(statement_id)
    assert [(h.number, h.changed_fields) for h in history] == [(1, ()), (2, ("title", "body"))]
    assert archive.statements()[0].title == edited.title


def test_revision_in_force_at_a_time(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT)
    archive.record_detail(capture(T0 + timedelta(days=1)), replace(CONTENT, body="改了。"))
    statement_id = archive.statements()[0].id
    at = archive.revision(statement_id, at=T0 + timedelta(hours=12))
    assert at is not None and at.number == 1
    assert archive.revision(statement_id, at=T0 - timedelta(seconds=1)) is None
    latest = archive.revision(statement_id, at=T0 + timedelta(days=2))
    assert latest is not None and latest.number == 2


def test_identity_follows_the_post_id_across_url_changes(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT)
    moved_url = "https://cn.usembassy.gov/zh/statement-renamed/"
    moved = replace(CONTENT, url=moved_url)
    result = archive.record_detail(capture(T0 + timedelta(hours=1), url=moved_url), moved)
    assert result.outcome is Outcome.UNCHANGED
    [summary] = archive.statements()
    assert summary.url == moved_url
    old = archive.find_statement(URL)
    assert old is not None and old.id == summary.id
    assert archive.find_statement(moved_url.rstrip("/")) == summary


def test_without_post_id_identity_is_the_url(archive: Archive) -> None:
    no_id = replace(CONTENT, post_id=None)
    archive.record_detail(capture(), no_id)
    archive.record_detail(capture(T0 + timedelta(hours=1)), replace(no_id, body="新的。"))
    [summary] = archive.statements()
    assert summary.revisions == 2


def test_gone_page_marks_statement_missing_and_keeps_revisions(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT)
    result = archive.record_detail(capture(T0 + timedelta(hours=1), body=b"", status=404), None)
    assert result.outcome is Outcome.GONE
    [summary] = archive.statements()
    assert summary.status == "missing" and summary.revisions == 1
    back = archive.record_detail(capture(T0 + timedelta(hours=2)), CONTENT)
    assert back.outcome is Outcome.UNCHANGED
    assert archive.statements()[0].status == "active"


def test_extraction_failure_and_fetch_failure_write_no_revision(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT)
    failed = archive.record_detail(capture(T0 + timedelta(hours=1)), ExtractionFailure("no body"))
    errored = archive.record_detail(capture(T0 + timedelta(hours=2), status=503), None)
    assert failed.outcome is Outcome.EXTRACTION_FAILED
    assert errored.outcome is Outcome.FETCH_FAILED
    assert archive.counts()["revisions"] == 1
    assert archive.statements()[0].status == "active"  # a 503 never means "gone"


def test_listing_observation_keeps_bytes_only_when_items_change(archive: Archive) -> None:
    page = ListingPage((ListingItem(URL, "t"),))
    listing_url = "https://china.usembassy-china.org.cn/zh/news-events-zh/"
    for minute, body in enumerate((b"<html>a</html>", b"<html>b</html>")):
        archive.record_listing(
            capture(
                T0 + timedelta(minutes=minute), body=body, url=listing_url, kind=PageKind.LISTING
            ),
            page,
        )
    assert archive.counts()["blobs"] == 1
    archive.record_listing(
        capture(
            T0 + timedelta(minutes=5),
            body=b"<html>c</html>",
            url=listing_url,
            kind=PageKind.LISTING,
        ),
        ListingPage((ListingItem(URL, "t"), ListingItem(URL + "2/", "u"))),
    )
    assert archive.counts()["blobs"] == 2


LISTING_URL = "https://china.usembassy-china.org.cn/zh/news-events-zh/"
EDITED = replace(CONTENT, body=CONTENT.body + "\n\n第三段。")


def fetched_hours(archive: Archive, url: str) -> list[float]:
    """When each observation of `url` still on record was fetched, hours after T0."""
    with archive.engine.connect() as connection:
        times = connection.scalars(
            select(models.Observation.fetched_at)
            .where(models.Observation.requested_url == url)
            .order_by(models.Observation.id)
        ).all()
    return [(at.replace(tzinfo=UTC) - T0).total_seconds() / 3600 for at in times]


def fetch_a_statement_and_its_listing_for_nine_hours(archive: Archive) -> None:
    """Hourly: the statement unchanged for 6 h, edited at 6 h, then unchanged; the listing."""
    listing = ListingPage((ListingItem(URL, CONTENT.title),))
    for hour in range(9):
        at = T0 + timedelta(hours=hour)
        noisy = f"<html>nonce={hour}</html>".encode()
        archive.record_detail(capture(at, body=noisy), CONTENT if hour < 6 else EDITED)
        archive.record_listing(capture(at, noisy, LISTING_URL, kind=PageKind.LISTING), listing)


@pytest.mark.parametrize("per_transaction", [1, 2, THIN_PER_TRANSACTION])
def test_thinning_keeps_first_and_last_of_each_run_and_every_kept_page(
    archive: Archive, per_transaction: int
) -> None:
    fetch_a_statement_and_its_listing_for_nine_hours(archive)
    before = archive.counts()
    [summary] = archive.statements()
    history = archive.history(summary.id)

    limit = T0 + timedelta(hours=7, minutes=30)
    forgotten = archive.thin_observations(limit, per_transaction=per_transaction)

    # Statement: run 0-5 h keeps 0 and 5; run 6-8 h keeps 6 and 8 (7 is old and in between).
    assert fetched_hours(archive, URL) == [0, 5, 6, 8]
    # The listing, unchanged all along, keeps when it was first and last seen so.
    assert fetched_hours(archive, LISTING_URL) == [0, 8]
    assert forgotten == 18 - 6
    after = archive.counts()
    assert after["observations"] == before["observations"] - forgotten
    assert {k: v for k, v in after.items() if k != "observations"} == {
        k: v for k, v in before.items() if k != "observations"
    }
    assert archive.history(summary.id) == history
    first = archive.revision(summary.id, number=1)
    assert first is not None and first.content == CONTENT
    assert archive.thin_observations(limit) == 0

    # The next identical fetch is still known as "nothing new": no body kept.
    archive.record_detail(capture(T0 + timedelta(hours=9), body=b"<html>n</html>"), EDITED)
    assert archive.counts()["blobs"] == before["blobs"]


def test_thinning_stops_between_urls_when_cancelled(archive: Archive) -> None:
    fetch_a_statement_and_its_listing_for_nine_hours(archive)
    answers = iter([False, True])  # go on with the first URL (the listing's), then stop

    forgotten = archive.thin_observations(T0 + timedelta(hours=9), cancelled=lambda: next(answers))

    left = {URL: fetched_hours(archive, URL), LISTING_URL: fetched_hours(archive, LISTING_URL)}
    assert left == {URL: list(range(9)), LISTING_URL: [0, 8]}
    assert forgotten == 7


def test_a_failed_write_leaves_nothing_behind(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.record_detail(capture(), CONTENT)
    before = archive.counts()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # Fail after the revision row is flushed, as a full disk would at the observation.
    monkeypatch.setattr(Recording, "_add_observation", broken)
    with pytest.raises(OSError):
        archive.record_detail(capture(T0 + timedelta(hours=1)), replace(CONTENT, body="新。"))
    assert archive.counts() == before
    assert archive.statements()[0].revisions == 1


def test_reopening_an_archive_keeps_everything(database_url: str) -> None:
    first = Archive.open(database_url)
    first.record_detail(capture(), CONTENT)
    first.close()
    again = Archive.open(database_url)  # migrations run again: nothing to do
    try:
        assert [s.title for s in again.statements()] == [CONTENT.title]
    finally:
        again.close()


def test_the_old_address_answering_404_after_a_move_does_not_mark_it_missing(
    archive: Archive,
) -> None:
    archive.record_detail(capture(), CONTENT)
    moved_url = "https://china.usembassy-china.org.cn/zh/statement-renamed/"
    archive.record_detail(
        capture(T0 + timedelta(hours=1), url=moved_url), replace(CONTENT, url=moved_url)
    )
    archive.record_detail(capture(T0 + timedelta(hours=1, minutes=1), body=b"", status=404), None)
    assert archive.statements()[0].status == "active"
