"""Delivering the outbox through apprise: at least once, with backoff, never again once delivered.

A row is claimed with a lease before sending, so a sender killed mid-send leaves
a row that is retried when the lease runs out; it is marked delivered only after
the service accepted it. Each target has its own sending lane (a thread), so a
slow or hung service delays only its own alerts.
"""

from __future__ import annotations

import email
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.header import Header, decode_header, make_header
from typing import Any

import apprise
from apprise.apprise import any_abandoned_calls_still_running
from apprise.plugins.email import NotifyEmail

from config import NotifySettings
from monitor.messages import (
    MAX_TITLE,
    EventDetail,
    Format,
    Message,
    digest,
    one_line,
    render,
)
from storage.outbox import Outbox
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


# A service without a title field gets the title on the body's first line (apprise).
_TITLE_IN_BODY_BYTES = 4 * MAX_TITLE + 2


@dataclass(frozen=True)
class Target:
    """A configured apprise URL and what its service accepts."""

    url: str = field(repr=False)
    label: str
    format: Format
    max_length: int  # of a message body, in UTF-8 bytes

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
        # apprise's limits count characters; a limit counted in bytes holds for every
        # service, whichever unit it counts (UTF-8 bytes, UTF-16 units or characters).
        max_length = int(service.body_maxlen)
        if int(service.title_maxlen) <= 0:
            max_length -= _TITLE_IN_BODY_BYTES
        targets.append(
            Target(
                url=url,
                label=_label(service.url(privacy=True)),  # type: ignore[no-untyped-call]
                format=_NATIVE_FORMATS.get(native, Format.TEXT),
                max_length=max(max_length, 0),
            )
        )
    return tuple(targets)


def _label(masked_url: str) -> str:
    """The masked URL without apprise's default options: enough to tell targets apart."""
    return masked_url.split("?", 1)[0]


# -- e-mail headers, folded (RFC 5322 section 2.2.3) --------------------------------------
# apprise encodes the Subject per RFC 2047 but writes the message with as_string(), which
# never folds a header: about 110 Chinese characters made one line over 998 bytes, and a
# strict server refused the mail ("500 Line too long"). Its e-mail `send` builds messages
# through NotifyEmail.prepare_emails, looked up at call time: that one step is wrapped.
FOLD_HEADERS_AT = 78
_apprise_prepare_emails = NotifyEmail.prepare_emails


def fold_headers(message_text: str) -> str:
    """A whole e-mail with its Subject re-encoded in short RFC 2047 words, headers folded."""
    message = email.message_from_string(message_text)
    subject = message.get("Subject")
    if subject is not None:
        text = str(make_header(decode_header(subject)))
        charset = None if text.isascii() else "utf-8"
        folded = Header(text, charset, header_name="Subject")  # compat32 takes a Header
        message.replace_header("Subject", folded)  # type: ignore[arg-type]
    return message.as_string(maxheaderlen=FOLD_HEADERS_AT)


def _prepare_folded_emails(*args: Any, **kwargs: Any) -> Iterator[Any]:
    for prepared in _apprise_prepare_emails(*args, **kwargs):
        yield replace(prepared, body=fold_headers(prepared.body))


setattr(NotifyEmail, "prepare_emails", staticmethod(_prepare_folded_emails))  # noqa: B010


@dataclass(frozen=True)
class SendResult:
    target: Target
    error: str | None


def send_with_apprise(
    target: Target, message: Message, kind: EventKind | None, timeout: float = 30.0
) -> str | None:
    """Send one message to one target; the failure's one-line reason, or None when accepted."""
    service = apprise.Apprise.instantiate(target.url)
    if service is None:
        return "apprise cannot use this URL"
    # apprise abandons a call after `timeout` but its thread waits on the socket until the
    # service's own timeouts (15 s for SMTP): bound those too, or hung sends pile up.
    service.socket_connect_timeout = min(service.socket_connect_timeout, timeout)
    service.socket_read_timeout = min(service.socket_read_timeout, timeout)
    sender = apprise.Apprise()
    sender.add(service)
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


def sends_abandoned_in_flight() -> bool:
    """apprise still has a send it gave up waiting for (its thread ends at the socket timeout)."""
    return any_abandoned_calls_still_running()


@dataclass
class Round:
    """What one pass over the outbox did (for one target, or all of them added up)."""

    delivered: int = 0
    failed: int = 0
    given_up: int = 0

    def __bool__(self) -> bool:
        return bool(self.delivered or self.failed or self.given_up)

    def __add__(self, other: Round) -> Round:
        return Round(
            self.delivered + other.delivered,
            self.failed + other.failed,
            self.given_up + other.given_up,
        )

    def summary_line(self) -> str:
        return (
            f"alerts: {self.delivered} delivered, {self.failed} failed (will retry), "
            f"{self.given_up} given up"
        )


DUE_PER_ROUND = 500  # rows read per target per round; the rest wait for the next round
_CACHED_DETAILS = 256


class Dispatcher:
    """Sends due outbox rows, each target on its own lane: one slow target delays no other."""

    def __init__(
        self,
        outbox: Outbox,
        targets: tuple[Target, ...],
        settings: NotifySettings,
        describe: Callable[[ChangeEvent], EventDetail],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`describe` says what an event changed (reading its revisions), once per event."""
        self.outbox = outbox
        self.describe = describe
        self.targets = {target.key: target for target in targets}
        self.settings = settings
        self.clock = clock
        self.stopping = threading.Event()
        # One thread per target: its alerts go out in order, one at a time, whatever the others do.
        self._lanes = {
            key: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"alerts-{number}")
            for number, key in enumerate(self.targets, start=1)
        }
        self._running: dict[str, Future[Round]] = {}
        self._lock = threading.Lock()
        self._details: dict[int, EventDetail] = {}  # events are immutable: diffed once

    def send(self, target: Target, message: Message, kind: EventKind | None) -> str | None:
        return send_with_apprise(target, message, kind, self.settings.timeout)

    def deliver_due(self) -> Round:
        """One round for every target at once, waiting for them all (`crawl`, tests)."""
        total = Round()
        for lane in self.start_round():
            total += lane.result()
        return total

    def start_round(self) -> list[Future[Round]]:
        """Owe waiting alerts to the targets configured now, then start each idle target's sends.

        A target still sending from an earlier round is left to it: its rows stay due.
        """
        now = self.clock()
        records = tuple(target.record for target in self.targets.values())
        give_up_after = timedelta(seconds=self.settings.give_up_after)
        changed = self.outbox.reconcile(records, now, give_up_after)
        if changed:
            log.info(
                "alerts: %d queued for targets configured since, %d dropped (target removed)",
                changed.queued,
                changed.dropped,
            )
        started = []
        for target in self.targets.values():
            if self.busy(target.key):
                continue
            due = self.outbox.due(now, limit=DUE_PER_ROUND, target_key=target.key)
            with self._lock:
                if not due or self.stopping.is_set():
                    continue
                lane = self._lanes[target.key].submit(self._deliver_to, target, due)
                self._running[target.key] = lane
            started.append(lane)
        return started

    def busy(self, target_key: str) -> bool:
        with self._lock:
            lane = self._running.get(target_key)
            return lane is not None and not lane.done()

    def sending(self) -> list[Future[Round]]:
        """The lanes still at work."""
        with self._lock:
            return [lane for lane in self._running.values() if not lane.done()]

    def shutdown(self) -> None:
        """No more sends: queued ones are cancelled, one in progress ends on its own."""
        with self._lock:
            self.stopping.set()
            for lane in self._lanes.values():
                lane.shutdown(wait=False, cancel_futures=True)

    def _deliver_to(self, target: Target, due: list[Delivery]) -> Round:
        """A target's due rows, in order: one message each, or one digest of them all."""
        done = Round()
        batches = [due] if self.settings.digest else [[row] for row in due]
        for batch in batches:
            if self.stopping.is_set():
                break
            self._deliver(target, batch, done)
        return done

    def _deliver(self, target: Target, rows: list[Delivery], done: Round) -> None:
        now = self.clock()
        # Longer than a send can take (apprise gives up after the timeout), so a slow send is
        # never claimed twice; short enough that a killed sender's row is retried soon after.
        lease = now + timedelta(seconds=2 * self.settings.timeout + 5)
        claimed = [row for row in rows if self.outbox.claim(row.id, now, lease)]
        if not claimed:
            return
        message = self._message(target, [row.event for row in claimed])
        kind = claimed[0].event.kind if len(claimed) == 1 else None
        error = self.send(target, message, kind)
        finished = self.clock()
        for row in claimed:
            if error is None:
                self.outbox.mark_delivered(row.id, finished)
                done.delivered += 1
                log.info("alert delivered to %s: %s", target.label, message.title)
                continue
            retry_at = self._retry_at(row, finished)
            self.outbox.mark_attempt_failed(row.id, error, retry_at)
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
        detail = self._detail(event)
        return render(event, detail.changes, fmt, max_length, detail.excerpt, detail.twin)

    def _detail(self, event: ChangeEvent) -> EventDetail:
        """What changed, computed once for all targets (revisions read and diffed once)."""
        with self._lock:
            detail = self._details.get(event.id)
        if detail is None:
            detail = self.describe(event)
            with self._lock:
                if len(self._details) >= _CACHED_DETAILS:
                    self._details.clear()
                self._details[event.id] = detail
        return detail

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
