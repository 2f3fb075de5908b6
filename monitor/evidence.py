"""Trusted timestamps: each cycle's kept raw pages sealed in a hash tree, its root stamped.

The cycle seals (one short write); the requests to the Time-Stamp Authorities are sent
apart from it (after `crawl`, on their own schedule in `run`), so a slow or down TSA
never holds a crawl up: its request waits in the queue and is retried with backoff.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    decode_timestamp_response,
)

from config import EvidenceSettings
from storage.errors import first_line
from storage.evidence import Evidence, Sealed, StampDue

log = logging.getLogger(__name__)

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 1024 * 1024
# A claimed request is retried by another sender after this, beyond the request timeout.
LEASE_MARGIN_SECONDS = 30.0


class TimestampError(Exception):
    """A TSA did not give a usable token; the message says why, in one line."""


@dataclass(frozen=True)
class StampRound:
    stamped: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()

    def summary_line(self) -> str:
        line = f"timestamps: {self.stamped} stamped, {self.failed} failed (retried later)"
        return line + "".join(f"\n  {error}" for error in self.errors[:5])

    def __bool__(self) -> bool:
        return bool(self.stamped or self.failed)


def imprint_of(root_hex: str) -> bytes:
    """What a TSA signs for a tree: SHA-256 of its 32-byte root."""
    return hashlib.sha256(bytes.fromhex(root_hex)).digest()


def tsa_name(response: TimeStampResponse) -> str:
    """Who signed: the signer certificate's subject, else the TSA name in the token."""
    signers = response.signed_data.signer_infos
    for der in response.signed_data.certificates:
        certificate = x509.load_der_x509_certificate(der)
        if any(
            certificate.serial_number == s.serial_number and certificate.issuer == s.issuer
            for s in signers
        ):
            return certificate.subject.rfc4514_string()
    name = response.tst_info.name
    return str(getattr(name, "value", name)) if name is not None else "unnamed TSA"


def request_token(url: str, root_hex: str, timeout: float, user_agent: str) -> TimeStampResponse:
    """Ask one TSA to stamp a tree's root; the answer checked against what was asked."""
    request = (
        TimestampRequestBuilder()
        .data(bytes.fromhex(root_hex))
        .hash_algorithm(HashAlgorithm.SHA256)
        .cert_request(cert_request=True)
        .build()
    )
    http = urllib.request.Request(
        url,
        data=request.as_bytes(),
        headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE, "User-Agent": user_agent},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:
            body = answer.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise TimestampError(f"HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TimestampError(f"cannot reach the TSA: {reason}") from None
    if len(body) > MAX_REPLY_BYTES:
        raise TimestampError("the answer is over 1 MiB: not a timestamp reply")
    try:
        response = decode_timestamp_response(body)
    except ValueError as error:
        raise TimestampError(f"not a timestamp reply: {first_line(error)}") from None
    if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        said = "; ".join(response.status_string) or "no reason given"
        raise TimestampError(f"refused (PKI status {response.status}: {said})")
    if response.tst_info.message_imprint.message != imprint_of(root_hex):
        raise TimestampError("the token stamps other data than the root asked for")
    if request.nonce is not None and response.tst_info.nonce != request.nonce:
        raise TimestampError("the token answers another request (nonce differs)")
    return response


@dataclass
class Timestamper:
    evidence: Evidence
    settings: EvidenceSettings
    user_agent: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.tsa_urls)

    def seal(self, site: str) -> Sealed | None:
        """Seal the site's new raw pages in a tree; off while no TSA is configured.

        Pages kept meanwhile are sealed by the first cycle after a TSA is configured.
        """
        if not self.enabled:
            return None
        sealed = self.evidence.seal(site, self.clock(), self.settings.tsa_urls)
        if sealed is not None:
            log.info(
                "%s: %d raw page(s) sealed in hash tree %d (root %s), timestamps queued",
                site,
                sealed.tree_size,
                sealed.batch_id,
                sealed.root[:16],
            )
        return sealed

    def stamp_due(self, stopping: Callable[[], bool] = lambda: False) -> StampRound:
        """Send every due request once; each failure is retried later with backoff."""
        if not self.enabled:
            return StampRound()
        stamped, failed, errors = 0, 0, []
        down: set[str] = set()
        for due in self.evidence.due(self.clock(), self.settings.tsa_urls):
            if stopping():
                break
            if due.tsa_url in down:
                continue  # one timeout per TSA and round: its other requests wait, untried
            error = self._stamp(due)
            if error is None:
                stamped += 1
            elif error:
                failed += 1
                errors.append(f"{due.tsa_url}: {error}")
                down.add(due.tsa_url)
        return StampRound(stamped, failed, tuple(errors))

    def _stamp(self, due: StampDue) -> str | None:
        """None when stamped; the error when not; "" when another sender has the request."""
        now = self.clock()
        lease = now + timedelta(seconds=self.settings.timeout + LEASE_MARGIN_SECONDS)
        if not self.evidence.claim(due.id, now, lease):
            return ""
        try:
            response = request_token(due.tsa_url, due.root, self.settings.timeout, self.user_agent)
        except TimestampError as error:
            retry_at = self.clock() + timedelta(seconds=self._backoff(due.attempts))
            self.evidence.mark_attempt_failed(due.id, str(error), retry_at)
            log.warning("timestamp of tree %d by %s failed: %s", due.batch_id, due.tsa_url, error)
            return str(error)
        gen_time = response.tst_info.gen_time.astimezone(UTC)
        self.evidence.mark_stamped(due.id, response.as_bytes(), gen_time, tsa_name(response))
        log.info("tree %d timestamped %s by %s", due.batch_id, gen_time.isoformat(), due.tsa_url)
        return None

    def _backoff(self, attempts: int) -> float:
        wait: float = self.settings.retry_backoff * 2 ** min(attempts, 30)
        return min(wait, self.settings.max_backoff)
