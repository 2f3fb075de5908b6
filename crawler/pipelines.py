"""The item pipeline: each fetched page into the archive, one transaction each."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.items import CRAWL_FACT, DetailFetched, ListingFetched
from crawler.report import (
    ArchiveRefused,
    ArchiveSink,
    CrawlFact,
    FaultKind,
    PageFailed,
    PageFault,
    Source,
    StatementRecorded,
)
from storage.errors import first_line
from storage.records import ExtractionFailure, Outcome

log = logging.getLogger(__name__)


class ArchivePipeline:
    """Hands each fetched page to the archive and states what recording it did.

    The archive (`sink`) is the spider's argument for this crawl, taken once when the
    spider opens; nothing else is read from the spider.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._sink: ArchiveSink | None = None
        self._refused: str | None = None  # why the archive stopped taking writes
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self._sink = self.crawler.spider.sink  # type: ignore[union-attr]

    def process_item(self, item: Any) -> Any:
        if self._refused is not None:
            raise DropItem("the archive is not accepting writes")
        assert self._sink is not None
        try:
            if isinstance(item, ListingFetched):
                self._sink.record_listing(item.capture, item.page)
            elif isinstance(item, DetailFetched):
                self._record_detail(self._sink, item)
        except Exception as error:
            # A full disk or a lost database: nothing more can be kept, so stop at once
            # rather than fetch pages whose content would be thrown away.
            self._refused = f"cannot write to the archive: {first_line(error)}"
            log.error("%s", self._refused)
            self._state(ArchiveRefused(self._refused))
            self._closing = asyncio.ensure_future(
                self.crawler.engine.close_spider_async(reason="archive-error")
            )
            raise DropItem(self._refused) from error
        return item

    def _record_detail(self, sink: ArchiveSink, item: DetailFetched) -> None:
        result = sink.record_detail(item.capture, item.extraction, unlisted=item.unlisted)
        url = item.capture.requested_url
        self._state(StatementRecorded(url, result.outcome))
        fault = _fault(item, result.outcome)
        if fault is not None:
            self._state(PageFailed(Source.STATEMENT, fault))
        level = logging.DEBUG if result.outcome is Outcome.UNCHANGED else logging.INFO
        log.log(level, "%s: %s", result.outcome, url)

    def _state(self, fact: CrawlFact) -> None:
        self.crawler.signals.send_catch_log(CRAWL_FACT, fact=fact)


def _fault(item: DetailFetched, outcome: Outcome) -> PageFault | None:
    """Why a statement page gave nothing to archive (a page gone is no fault: it is news)."""
    capture = item.capture
    url = capture.requested_url
    if outcome is Outcome.EXTRACTION_FAILED and isinstance(item.extraction, ExtractionFailure):
        return PageFault(url, FaultKind.NOT_EXTRACTED, capture.status, item.extraction.reason)
    if outcome is not Outcome.FETCH_FAILED:
        return None
    if item.fault is not None:
        return item.fault
    return PageFault(url, FaultKind.HTTP_STATUS, capture.status)
