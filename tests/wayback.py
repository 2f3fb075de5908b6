"""A local stand-in for the Internet Archive's Save Page Now 2 API on 127.0.0.1.

`POST /save` (form `url=`) answers `{"job_id": ...}`; `GET /save/status/<job>` answers
pending `pending_polls` times, then success with a timestamp, or error when `failing`.
`refusals` lists HTTP statuses to answer the next capture requests with first (429,
503...). Every request's Authorization header is kept, to check where the keys went.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Job:
    url: str
    polls: int = 0


@dataclass
class LocalWayback:
    pending_polls: int = 1
    failing: bool = False
    refusals: list[int] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # URLs accepted for capture
    refused: int = 0
    authorizations: list[str] = field(default_factory=list)
    request_lines: list[str] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalWayback:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._note(self)
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if self.path != "/save":
                    return self._answer(404, {"message": "not found"})
                status, body = stand_in._save(form.get("url", [""])[0])
                self._answer(status, body)

            def do_GET(self) -> None:
                stand_in._note(self)
                prefix = "/save/status/"
                if not self.path.startswith(prefix):
                    return self._answer(404, {"message": "not found"})
                self._answer(200, stand_in._status(self.path.removeprefix(prefix)))

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _note(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.authorizations.append(request.headers.get("Authorization", ""))
            self.request_lines.append(request.requestline)

    def _save(self, url: str) -> tuple[int, dict[str, object]]:
        with self._lock:
            if self.refusals:
                self.refused += 1
                return self.refusals.pop(0), {"message": "busy"}
            job_id = f"spn2-{len(self.jobs) + 1:04d}"
            self.jobs[job_id] = Job(url)
            self.submitted.append(url)
            return 200, {"url": url, "job_id": job_id}

    def _status(self, job_id: str) -> dict[str, object]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return {"status": "error", "message": "no such job"}
            job.polls += 1
            if job.polls <= self.pending_polls:
                return {"status": "pending", "job_id": job_id}
            if self.failing:
                return {"status": "error", "status_ext": "error:not-found", "message": "gone"}
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            return {
                "status": "success",
                "job_id": job_id,
                "timestamp": stamp,
                "original_url": job.url,
            }
