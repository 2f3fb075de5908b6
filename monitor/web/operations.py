"""Operations endpoints: /healthz for orchestrators, /metrics for Prometheus.

Both read the archive on every request (a handful of aggregate queries), so they
tell the truth whichever process serves them and whatever restarted in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from monitor.status import Health
from monitor.views import health_json
from storage.errors import first_line

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def operations(health: Callable[[], Health]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArchiveCollector(health))

    @router.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            found = health()
        except SQLAlchemyError as error:
            body = {"healthy": False, "problems": [f"archive unreadable: {first_line(error)}"]}
            return JSONResponse(body, status_code=503)
        return JSONResponse(health_json(found), status_code=200 if found.healthy else 503)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=PROMETHEUS)

    return router


class ArchiveCollector(Collector):
    def __init__(self, health: Callable[[], Health]) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        found = self.health()
        tallies = found.tallies
        yield _gauge("healthy", "1 when `embassy-watch status` finds no problem", [], [
            ((), 1.0 if found.healthy else 0.0)
        ])  # fmt: skip
        states = [site.state for site in found.sites]
        yield _counter(
            "crawls", "crawls finished", ["site"], [((s.site,), s.crawls_total) for s in states]
        )
        yield _counter(
            "pages_fetched", "listing and statement pages fetched", ["site"],
            [((s.site,), s.pages_fetched_total) for s in states],
        )  # fmt: skip
        yield _counter(
            "crawl_errors", "crawl errors by kind (listing, fetch, extraction, blocked)",
            ["site", "kind"],
            [((s.site, kind), count) for s in states for kind, count in s.errors_total.items()],
        )  # fmt: skip
        yield _gauge(
            "crawl_duration_seconds", "duration of the last crawl", ["site"],
            [((s.site,), s.last_crawl_seconds) for s in states if s.last_crawl_seconds is not None],
        )  # fmt: skip
        yield _gauge(
            "last_successful_crawl_timestamp_seconds", "when the last successful crawl finished",
            ["site"],
            [((s.site,), s.last_success_at.timestamp()) for s in states if s.last_success_at],
        )  # fmt: skip
        yield _gauge(
            "site_condition", "raised health conditions (1 while raised)", ["site", "condition"],
            [((s.site, str(c)), 1.0) for s in states for c in s.conditions],
        )  # fmt: skip
        yield _counter(
            "events", "change events recorded, by kind", ["kind"],
            [((kind,), count) for kind, count in sorted(tallies.events.items())],
        )  # fmt: skip
        yield _gauge(
            "statements", "statements archived, by status", ["status"],
            [((status,), count) for status, count in sorted(tallies.statements.items())],
        )  # fmt: skip
        yield _gauge("revisions", "revisions archived", [], [((), tallies.revisions)])
        yield _gauge(
            "outbox_deliveries", "alert deliveries, by status", ["status"],
            [((status,), count) for status, count in sorted(tallies.outbox.items())],
        )  # fmt: skip
        yield _gauge(
            "wayback_captures", "Save Page Now captures of new revisions, by status", ["status"],
            [((status,), count) for status, count in sorted(tallies.wayback.items())],
        )  # fmt: skip
        waited = (
            (found.checked_at - tallies.oldest_waiting_at).total_seconds()
            if tallies.oldest_waiting_at
            else 0.0
        )
        yield from _fleet(found)
        yield _gauge(
            "outbox_oldest_waiting_seconds", "age of the oldest alert not yet delivered (0: none)",
            [], [((), waited)],
        )  # fmt: skip


Samples = list[tuple[tuple[str, ...], float]]


def _fleet(found: Health) -> Iterator[Metric]:
    """The workers of a PostgreSQL fleet and the sites each is crawling (none on SQLite)."""
    workers = found.workers
    yield _gauge(
        "fleet_workers", "workers of the fleet heard from lately", [],
        [((), float(sum(w.alive for w in workers)))],
    )  # fmt: skip
    yield _gauge(
        "fleet_worker_heartbeat_timestamp_seconds", "a worker's last heartbeat", ["worker"],
        [((w.member.name,), w.member.last_heartbeat.timestamp()) for w in workers],
    )  # fmt: skip
    yield _gauge(
        "fleet_worker_crawling", "1 while the worker crawls the site (holds it)",
        ["worker", "site"],
        [((w.member.name, site), 1.0) for w in workers for site in w.member.crawling],
    )  # fmt: skip


def _counter(name: str, doc: str, labels: list[str], samples: Samples) -> Metric:
    return _family(CounterMetricFamily(f"embassy_watch_{name}", doc, labels=labels), samples)


def _gauge(name: str, doc: str, labels: list[str], samples: Samples) -> Metric:
    return _family(GaugeMetricFamily(f"embassy_watch_{name}", doc, labels=labels), samples)


def _family(family: CounterMetricFamily | GaugeMetricFamily, samples: Samples) -> Metric:
    for values, value in samples:
        family.add_metric(list(values), value)
    return family
