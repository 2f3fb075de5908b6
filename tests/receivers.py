"""Real receivers for alerts: an SMTP server (aiosmtpd) and an HTTP endpoint for json:// webhooks.

Both can refuse messages for a while, and both can hold a message before
acknowledging it; a message whose sender hung up before the acknowledgement
is not counted as received, as a real server would not have accepted it.
HungMailServer accepts connections and never says a word.
"""

from __future__ import annotations

import email
import email.policy
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Mail:
    subject: str  # decoded
    text: str
    html: str
    recipients: tuple[str, ...]
    raw: bytes = b""  # as it came over the wire

    def longest_line(self) -> int:
        """In bytes, without the line break."""
        return max(len(line) for line in self.raw.splitlines())

    def longest_header_line(self) -> int:
        """In bytes: the header ends at the first empty line."""
        header = self.raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        return max(len(line) for line in header.splitlines())


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition}")


class _Refusals:
    """Shared knobs: refuse every message while `refusing`, or hold each before answering."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refusing = False
        self.hold_seconds = 0.0
        self.refused = 0
        self.arrivals = 0  # messages whose sending began (accepted or not)

    def should_refuse(self) -> bool:
        with self.lock:
            self.arrivals += 1
            if self.refusing:
                self.refused += 1
            return self.refusing


class MailServer(_Refusals):
    def __init__(self) -> None:
        super().__init__()
        self.mails: list[Mail] = []
        self._controller: Controller | None = None

    def start(self) -> MailServer:
        port = _free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=port)
        self._controller.start()
        self.port = port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def url(self, to: str = "newsroom@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=embassy-watch@example.org&to={to}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.should_refuse():
            return "451 4.3.0 try again later"
        if self.hold_seconds:
            import asyncio

            await asyncio.sleep(self.hold_seconds)
            transport = server.transport
            if transport is None or transport.is_closing():
                return "451 4.3.0 sender went away"
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.mails.append(_mail(message, tuple(envelope.rcpt_tos), raw))
        return "250 OK"

    def subjects(self) -> list[str]:
        with self.lock:
            return [mail.subject for mail in self.mails]


def _mail(message: EmailMessage, recipients: tuple[str, ...], raw: bytes) -> Mail:
    text = html = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not text:
            text = str(part.get_content())
        elif part.get_content_type() == "text/html" and not html:
            html = str(part.get_content())
    return Mail(str(message["Subject"] or ""), text, html, recipients, raw)


class HungMailServer:
    """Accepts SMTP connections, then never answers (not even the greeting)."""

    def __init__(self) -> None:
        self.connections: list[socket.socket] = []
        self._listener = socket.socket()
        self._stopped = threading.Event()

    def start(self) -> HungMailServer:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)

    def url(self, to: str = "newsroom@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=embassy-watch@example.org&to={to}"

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        for connection in self.connections:
            connection.close()


class WebhookSink(_Refusals):
    """Receives apprise json:// POSTs: {"title", "message", "type", ...}."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookSink:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _webhook_handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def url(self, path: str = "/hook") -> str:
        assert self._server is not None
        return f"json://127.0.0.1:{self._server.server_address[1]}{path}"

    def titles(self) -> list[str]:
        with self.lock:
            return [post["title"] for post in self.posts]

    def with_title(self, fragment: str) -> list[dict[str, Any]]:
        with self.lock:
            return [post for post in self.posts if fragment in post["title"]]


def _webhook_handler(sink: WebhookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            if sink.should_refuse():
                self._answer(503)
                return
            if sink.hold_seconds:
                time.sleep(sink.hold_seconds)
                if _peer_gone(self.connection):
                    return
            with sink.lock:
                sink.posts.append(payload)
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _peer_gone(connection: socket.socket) -> bool:
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
