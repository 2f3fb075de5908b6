"""Delivering the outbox through apprise: at least once, with backoff, never again once delivered.

A row is claimed with a lease before sending, so a sender killed mid-send leaves
a row that is retried when the lease runs out; it is marked delivered only after
the service accepted it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import apprise

from config import NotifySettings
from monitor.messages import EventDetail, Format, Message, digest, one_line, render, what_changed
from storage.archive import Archive
from storage.records import ChangeEvent, Delivery, EventKind, NotifyTarget

log = logging.getLogger(__name__)

_NOTIFY_TYPES = {
    EventKind.PROBLEM: apprise.NotifyType.FAILURE,
    EventKind.RECOVERED: apprise.NotifyType.SUCCESS,
    EventKind.REMOVED: apprise.NotifyType.WARNING,
}
_NATIVE_FORMATS = {
    apprise.NotifyFormat.HTML: Format.HTML,
    apprise.NotifyFormat.MARKDOWN: Format.MARKDOWN,
    apprise.NotifyFormat.TEXT: Format.TEXT,
}


class NotifyConfigError(ValueError):
    """A notification URL apprise cannot use; the message names it (secrets masked)."""


@dataclass(frozen=True)
class Target:
    """A configured apprise URL and what its service accepts."""

    url: str = field(repr=False)
    label: str
    format: Format
    max_length: int

    @property
    def key(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    @property
    def record(self) -> NotifyTarget:
        return NotifyTarget(self.key, self.label)


def make_targets(urls: Sequence[str]) -> tuple[Target, ...]:
    targets = []
    for index, url in enumerate(urls, start=1):
        service = apprise.Apprise.instantiate(url)
        if service is None:
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            raise NotifyConfigError(
                f"notify.urls[{index}]: apprise cannot use this {scheme}:// URL "
                "(unknown service or missing parts)"
            )
        native = service.notify_format
        native = native[0] if isinstance(native, tuple) else native
        targets.append(
            Target(
                url=url,
                label=_label(service.url(privacy=True)),  # type: ignore[no-untyped-call]
                format=_NATIVE_FORMATS.get(native, Format.TEXT),
                max_length=int(service.body_maxlen),
            )
        )
    return tuple(targets)


def _label(masked_url: str) -> str:
    """The masked URL without apprise's default options: enough to tell targets apart."""
    return masked_url.split("?", 1)[0]


@dataclass(frozen=True)
class SendResult:
    target: Target
    error: str | None


def send_with_apprise(
    target: Target, message: Message, kind: EventKind | None, timeout: float = 30.0
) -> str | None:
    """Send one message to one target; the failure's one-line reason, or None when accepted."""
    sender = apprise.Apprise()
    if not sender.add(target.url):
        return "apprise cannot use this URL"
    result = sender.notify(
        body=message.body,
        title=message.title,
        body_format=str(message.format),
        notify_type=_NOTIFY_TYPES.get(kind, apprise.NotifyType.INFO) if kind else "info",
        timeout=timeout,
    )
    if result:
        return None
    reasons = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    return one_line(reasons[-1] if reasons else f"not delivered ({result.status.name})", 500)


@dataclass
class Round:
    """What one pass over the outbox did."""

    delivered: int = 0
    failed: int = 0
    given_up: int = 0

    def __bool__(self) -> bool:
        return bool(self.delivered or self.failed or self.given_up)

    def summary_line(self) -> str:
        return (
            f"alerts: {self.delivered} delivered, {self.failed} failed (will retry), "
            f"{self.given_up} given up"
        )


class Dispatcher:
    def __init__(
        self,
        archive: Archive,
        targets: tuple[Target, ...],
        settings: NotifySettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.archive = archive
        self.targets = {target.key: target for target in targets}
        self.settings = settings
        self.clock = clock
        self.stopping = threading.Event()
        self._what_changed: dict[int, EventDetail] = {}

    def send(self, target: Target, message: Message, kind: EventKind | None) -> str | None:
        return send_with_apprise(target, message, kind, self.settings.timeout)

    def deliver_due(self) -> Round:
        """Send every due outbox row (one message each, or one digest per target)."""
        done = Round()
        due = self.archive.outbox.due(self.clock(), limit=500)
        self._what_changed.clear()  # revisions are read and diffed once per event per round
        batches: list[list[Delivery]] = [[delivery] for delivery in due]
        if self.settings.digest:
            by_target: dict[str, list[Delivery]] = {}
            for delivery in due:
                by_target.setdefault(delivery.target.key, []).append(delivery)
            batches = list(by_target.values())
        for batch in batches:
            if self.stopping.is_set():
                break
            self._deliver(batch, done)
        return done

    def _deliver(self, rows: list[Delivery], done: Round) -> None:
        now = self.clock()
        # Longer than a send can take, so a slow send is never claimed twice; short enough
        # that a killed sender's row is retried soon after a restart.
        lease = now + timedelta(seconds=2 * self.settings.timeout + 5)
        target = self.targets.get(rows[0].target.key)
        claimed = [row for row in rows if self.archive.outbox.claim(row.id, now, lease)]
        if not claimed:
            return
        if target is None:
            for row in claimed:
                self.archive.outbox.mark_attempt_failed(
                    row.id, "target no longer configured", retry_at=None
                )
                done.given_up += 1
            return
        message = self._message(target, [row.event for row in claimed])
        kind = claimed[0].event.kind if len(claimed) == 1 else None
        error = self.send(target, message, kind)
        finished = self.clock()
        for row in claimed:
            if error is None:
                self.archive.outbox.mark_delivered(row.id, finished)
                done.delivered += 1
                log.info("alert delivered to %s: %s", target.label, message.title)
                continue
            retry_at = self._retry_at(row, finished)
            self.archive.outbox.mark_attempt_failed(row.id, error, retry_at)
            if retry_at is None:
                done.given_up += 1
                log.error("alert to %s given up: %s (%s)", target.label, message.title, error)
            else:
                done.failed += 1
                log.warning(
                    "alert to %s failed (%s); retrying at %s",
                    target.label,
                    error,
                    retry_at.isoformat(timespec="seconds"),
                )

    def _retry_at(self, row: Delivery, now: datetime) -> datetime | None:
        if now - row.created_at >= timedelta(seconds=self.settings.give_up_after):
            return None
        wait = self.settings.retry_backoff * 2 ** min(row.attempts, 30)
        return now + timedelta(seconds=min(wait, self.settings.max_backoff))

    def _message(self, target: Target, events: list[ChangeEvent]) -> Message:
        if len(events) > 1:
            return digest(events, target.format, target.max_length)
        return self._message_for(events[0], target.format, target.max_length)

    def _message_for(self, event: ChangeEvent, fmt: Format, max_length: int) -> Message:
        if event.id not in self._what_changed:
            self._what_changed[event.id] = what_changed(self.archive, event)
        detail = self._what_changed[event.id]
        return render(event, detail.changes, fmt, max_length, detail.excerpt)

    def test_all(self) -> list[SendResult]:
        """Send a test message to every target now (the outbox is not involved)."""
        message = Message(
            "embassy-watch test message · 测试消息",
            "If you can read this, embassy-watch can reach you here.\n"
            "如果您看到此消息，通知已配置成功。",
            Format.TEXT,
        )
        return [
            SendResult(target, self.send(target, message, None)) for target in self.targets.values()
        ]
