"""What the spider hands on: fetched pages (items, to the pipeline) and crawl facts (a signal).

Frozen values only: the spider, the pipeline and the middlewares share no mutable state;
the crawl's runner adds the facts up in its `CrawlReport`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crawler.report import PageFault
from storage.records import Capture, ExtractionFailure, ListingPage, StatementContent

# Scrapy signal: sent with `fact=` (a crawler.report.CrawlFact) by the spider and pipeline.
CRAWL_FACT = object()


@dataclass(frozen=True)
class ListingFetched:
    capture: Capture
    page: ListingPage | None


@dataclass(frozen=True)
class DetailFetched:
    capture: Capture
    extraction: StatementContent | ExtractionFailure | None
    unlisted: bool = False  # the listing was read and does not show this URL
    fault: PageFault | None = None  # why no answer came, when none did
