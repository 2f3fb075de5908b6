"""A real RFC 3161 Time-Stamp Authority on 127.0.0.1: OpenSSL's `ts -reply` behind HTTP.

`TestCA` makes, with the `openssl` command, a root CA and a TSA certificate it issues
(extended key usage timeStamping, critical, as RFC 3161 requires). `LocalTSA` answers
each POSTed TimeStampReq by piping it to `openssl ts -reply`; it can refuse (HTTP 503)
while `refusing` is set, and it counts the requests it stamped.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.pem
certs = {dir}/tsa.pem
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
TSA_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=critical,timeStamping\n"
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class TestCA:
    """A root CA and one TSA certificate it issued, as files in `directory`."""

    directory: Path
    name: str

    __test__ = False  # not a pytest test class

    @classmethod
    def make(cls, directory: Path, name: str = "Test TSA") -> TestCA:
        directory.mkdir(parents=True, exist_ok=True)
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "3650", "-subj", f"/CN={name} Root CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
            "-subj", f"/CN={name}", cwd=directory,
        )  # fmt: skip
        (directory / "tsa.ext").write_text(TSA_EXTENSIONS, encoding="ascii")
        _openssl(
            "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "tsa.pem", "-days", "3650", "-extfile", "tsa.ext",
            cwd=directory,
        )  # fmt: skip
        (directory / "serial").write_text("01\n", encoding="ascii")
        (directory / "ts.cnf").write_text(TSA_CONFIG.format(dir=directory), encoding="ascii")
        return cls(directory, name)

    @property
    def root_pem(self) -> Path:
        return self.directory / "ca.pem"


class LocalTSA:
    def __init__(self, ca: TestCA) -> None:
        self.ca = ca
        self.refusing = False
        self.stamped = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> LocalTSA:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsr"

    def reply(self, query: bytes) -> bytes:
        # One at a time: `openssl ts` increments the serial file it shares.
        with self.lock, tempfile.TemporaryDirectory() as work:
            query_file, reply_file = Path(work) / "q.tsq", Path(work) / "r.tsr"
            query_file.write_bytes(query)
            _openssl(
                "ts", "-reply", "-config", str(self.ca.directory / "ts.cnf"),
                "-queryfile", str(query_file), "-out", str(reply_file),
                cwd=self.ca.directory,
            )  # fmt: skip
            self.stamped += 1
            return reply_file.read_bytes()


def _handler(tsa: LocalTSA) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if tsa.refusing or self.headers.get("Content-Type") != "application/timestamp-query":
                self._answer(503, "text/plain", b"not now")
                return
            self._answer(200, "application/timestamp-reply", tsa.reply(query))

        def _answer(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
