"""A second witness: each new revision's URL captured by the Internet Archive (SPN2).

Save Page Now 2: `POST {endpoint}/save` (form `url=...`) answers a job id; `GET
{endpoint}/save/status/{job}` says pending, success (with the capture's timestamp) or
error. Requests are sent apart from the crawl, from the durable queue of
storage.wayback, at most `wayback_per_minute` capture requests a minute (counted in the
database, so `crawl` and `run` share the budget). The keys go only in the
Authorization header: never in a URL, a log line or a stored error.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from config import EvidenceSettings
from storage.wayback import CaptureDue, WaybackQueue

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 64 * 1024  # SPN2's answers are a few hundred bytes of JSON
LEASE_MARGIN_SECONDS = 30.0
RATE_WINDOW = timedelta(minutes=1)
# A job the Archive still calls pending after this is asked for again.
JOB_GIVE_UP = timedelta(hours=1)
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"


class WaybackError(Exception):
    """SPN2 did not do what was asked; the message says why, in one line, without keys."""

    def __init__(
        self, message: str, *, busy: bool = False, retry_after: float = 0.0, job_over: bool = False
    ) -> None:
        super().__init__(message)
        self.busy = busy  # refused for load (429, 5xx, unreachable): ask nothing more this round
        self.retry_after = retry_after
        self.job_over = job_over  # the job failed or was lost: the next attempt submits afresh


@dataclass(frozen=True)
class JobStatus:
    status: str  # "pending", "success" or "error"
    timestamp: str | None
    original_url: str | None
    message: str


@dataclass(frozen=True)
class Spn2:
    """The Save Page Now 2 API at `endpoint`, with an account's S3-style keys."""

    endpoint: str
    access_key: str
    secret_key: str
    timeout: float
    user_agent: str

    def submit(self, url: str) -> str:
        """Ask for a capture of `url`; its job id."""
        form = urllib.parse.urlencode({"url": url, "skip_first_archive": "1"}).encode()
        answer = self._call(f"{self.endpoint}/save", form)
        job_id = answer.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            said = answer.get("message") or answer.get("status_ext") or "no job id in the answer"
            raise WaybackError(f"capture refused: {_one_line(said)}")
        return job_id

    def status(self, job_id: str) -> JobStatus:
        answer = self._call(f"{self.endpoint}/save/status/{urllib.parse.quote(job_id, safe='')}")
        said = answer.get("message") or answer.get("status_ext") or ""
        return JobStatus(
            status=str(answer.get("status", "")),
            timestamp=_text(answer.get("timestamp")),
            original_url=_text(answer.get("original_url")),
            message=_one_line(said),
        )

    def snapshot_url(self, timestamp: str, original_url: str) -> str:
        return f"{self.endpoint}/web/{timestamp}/{original_url}"

    def _call(self, url: str, form: bytes | None = None) -> dict[str, Any]:
        headers = {
            "Accept": "application/json",
            "Authorization": f"LOW {self.access_key}:{self.secret_key}",
            "User-Agent": self.user_agent,
        }
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=form, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_REPLY_BYTES + 1)
        except urllib.error.HTTPError as error:
            busy = error.code == 429 or error.code >= 500
            wait = _retry_after(error.headers.get("Retry-After"))
            raise WaybackError(
                f"HTTP {error.code} {error.reason}", busy=busy, retry_after=wait
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise WaybackError(f"cannot reach {self.endpoint}: {reason}", busy=True) from None
        if len(body) > MAX_REPLY_BYTES:
            raise WaybackError("the answer is over 64 KiB: not SPN2's")
        try:
            parsed = json.loads(body)
        except ValueError:
            raise WaybackError("the answer is not JSON: not SPN2's") from None
        if not isinstance(parsed, dict):
            raise WaybackError("the answer is not a JSON object: not SPN2's")
        return parsed


@dataclass(frozen=True)
class WaybackRound:
    submitted: int = 0
    saved: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()

    def __add__(self, other: WaybackRound) -> WaybackRound:
        return WaybackRound(
            self.submitted + other.submitted,
            self.saved + other.saved,
            self.failed + other.failed,
            self.errors + other.errors,
        )

    def __bool__(self) -> bool:
        return bool(self.submitted or self.saved or self.failed)

    def summary_line(self) -> str:
        line = (
            f"wayback: {self.submitted} submitted, {self.saved} saved, "
            f"{self.failed} failed (retried later)"
        )
        return line + "".join(f"\n  {error}" for error in self.errors[:5])


@dataclass
class Archivist:
    """Works the queue: submits due rows (within the rate limit), polls accepted jobs."""

    queue: WaybackQueue
    settings: EvidenceSettings
    user_agent: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    @property
    def enabled(self) -> bool:
        return self.settings.wayback

    @property
    def api(self) -> Spn2:
        s = self.settings
        return Spn2(
            s.wayback_endpoint,
            s.wayback_access_key.get_secret_value(),
            s.wayback_secret_key.get_secret_value(),
            s.timeout,
            self.user_agent,
        )

    def work_due(self, stopping: Callable[[], bool] = lambda: False) -> WaybackRound:
        """Each due row once: submitted if within the rate limit, polled if accepted."""
        if not self.enabled:
            return WaybackRound()
        now = self.clock()
        budget = self.settings.wayback_per_minute - self.queue.submitted_since(now - RATE_WINDOW)
        done = WaybackRound()
        for due in self.queue.due(now):
            if stopping():
                break
            if due.job_id is None and budget <= 0:
                continue  # over the rate limit: it waits for a later round, untried
            try:
                done += self._work(due)
            except WaybackError as error:
                done += WaybackRound(failed=1, errors=(f"{due.url}: {error}",))
                if error.busy:
                    break  # the Archive is overloaded or away: the other rows wait
            if due.job_id is None:
                budget -= 1
        return done

    def settle(self, stopping: Callable[[], bool] = lambda: False) -> WaybackRound:
        """Rounds until the queue is done or `wayback_wait` is up (for `crawl`).

        Rows due later than that (a long backoff, the rate limit) wait for `run` or the
        next `crawl`: leaving is never blocked past `wayback_wait`.
        """
        done = self.work_due(stopping)
        deadline = time.monotonic() + self.settings.wayback_wait
        while not stopping() and (left := deadline - time.monotonic()) > 0:
            if not self.queue.waiting(self.clock() + timedelta(seconds=left)):
                break
            self.sleep(min(self.settings.wayback_poll_every, left))
            done += self.work_due(stopping)
        return done

    def _work(self, due: CaptureDue) -> WaybackRound:
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.timeout + LEASE_MARGIN_SECONDS)
        if not self.queue.claim(due.id, now, lease):
            return WaybackRound()  # another sender has it
        try:
            return self._submit(due) if due.job_id is None else self._poll(due, due.job_id)
        except WaybackError as error:
            forget = due.job_id is None or error.job_over
            self._failed(due, str(error), forget_job=forget, wait=error.retry_after)
            raise

    def _submit(self, due: CaptureDue) -> WaybackRound:
        job_id = self.api.submit(due.url)
        now = self.clock()
        poll_at = now + timedelta(seconds=self.settings.wayback_poll_every)
        self.queue.mark_submitted(due.id, job_id, now, poll_at)
        log.info("wayback: capture of %s requested (job %s)", due.url, job_id)
        return WaybackRound(submitted=1)

    def _poll(self, due: CaptureDue, job_id: str) -> WaybackRound:
        api = self.api
        job = api.status(job_id)
        now = self.clock()
        if job.status == "success" and job.timestamp:
            snapshot_at = datetime.strptime(job.timestamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            url = api.snapshot_url(job.timestamp, job.original_url or due.url)
            self.queue.mark_saved(due.id, url, snapshot_at)
            log.info("wayback: %s captured as %s", due.url, url)
            return WaybackRound(saved=1)
        if job.status == "pending":
            if due.submitted_at is not None and now - due.submitted_at > JOB_GIVE_UP:
                raise WaybackError("the capture was still pending after an hour", job_over=True)
            poll_at = now + timedelta(seconds=self.settings.wayback_poll_every)
            self.queue.mark_polled(due.id, poll_at)
            return WaybackRound()
        said = job.message or job.status or "no status given"
        raise WaybackError(f"capture failed: {said}", job_over=True)

    def _failed(self, due: CaptureDue, error: str, *, forget_job: bool, wait: float) -> None:
        attempts = due.attempts + 1
        retry_at = None
        if attempts < self.settings.wayback_max_attempts:
            retry_at = self.clock() + timedelta(seconds=max(self._backoff(due.attempts), wait))
        self.queue.mark_attempt_failed(due.id, error, retry_at, forget_job=forget_job)
        given_up = "" if retry_at else " (given up)"
        log.warning("wayback: capture of %s failed%s: %s", due.url, given_up, error)

    def _backoff(self, attempts: int) -> float:
        wait: float = self.settings.retry_backoff * 2 ** min(attempts, 30)
        return min(wait, self.settings.max_backoff)


def _retry_after(value: str | None) -> float:
    try:
        return min(float(value or 0), 3600.0)
    except ValueError:
        return 0.0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:300]
