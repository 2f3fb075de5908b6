"""The `serve` application: JSON API, web pages, feeds and exports over one archive.

Read-only by construction: only GET (and HEAD) routes exist and the archive is read
through read-only sessions. Every response forbids scripts and foreign styles.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Sequence

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import SiteSettings
from monitor.export import ExportFormat, export
from monitor.missions import MissionIndex
from monitor.status import Health
from monitor.web.api import api, docs_page, find_or_404
from monitor.web.feeds import feeds
from monitor.web.operations import operations
from monitor.web.pages import HERE, SiteLabels, pages, templates
from monitor.web.params import Language, Mission, StatementId
from storage.archive import Archive

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MACHINE_PREFIXES = ("/api/", "/openapi.json", "/feeds/", "/export/", "/healthz", "/metrics")


def create_app(
    archive: Archive, health: Callable[[], Health], sites: Sequence[SiteSettings] = ()
) -> FastAPI:
    app = FastAPI(
        title="embassy-watch archive",
        version="1",
        description="Every version of every statement of the U.S. Mission China, read-only.",
        docs_url=None,  # the stock docs page loads scripts from a CDN; ours is self-contained
        redoc_url=None,
    )
    missions = MissionIndex(tuple(sites), archive.sites)
    app.include_router(api(archive, missions), prefix="/api")
    app.include_router(pages(archive, SiteLabels.of(sites), missions))
    app.include_router(feeds(archive, missions))
    app.include_router(operations(health))
    _add_exports(app, archive, missions)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> str:
        return docs_page(app.openapi())

    _add_error_pages(app)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            # A route may only tighten these: the captured-page frame sets its own policy.
            if name not in response.headers:
                response.headers[name] = value
        return response

    app.add_middleware(HeadAsGet)
    return app


class HeadAsGet:
    """Answer HEAD as GET without the body (FastAPI's GET routes alone answer HEAD 405).

    Uptime checkers and `curl -I` ask with HEAD; they get the status and headers a GET
    would, Content-Length included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def _add_exports(app: FastAPI, archive: Archive, missions: MissionIndex) -> None:
    @app.get("/export/archive.{suffix}", include_in_schema=False)
    def whole_archive(
        suffix: str, mission: Mission = None, language: Language = None
    ) -> StreamingResponse:
        fmt = _export_format(suffix)
        sites = missions.sites(mission, language)
        stem = "-".join(["embassy-watch-archive", *(p for p in (mission, language) if p)])
        return _download(export(archive, fmt, sites=sites), fmt, _filename_safe(stem))

    @app.get("/export/statements/{statement_id:int}.{suffix}", include_in_schema=False)
    def one_statement(statement_id: StatementId, suffix: str) -> StreamingResponse:
        fmt = _export_format(suffix)
        found = find_or_404(archive, statement_id)
        return _download(export(archive, fmt, found), fmt, f"statement-{statement_id}")


def _export_format(suffix: str) -> ExportFormat:
    found = ExportFormat.from_suffix(suffix)
    if found is None:
        known = ", ".join(f.filename_suffix.lstrip(".") for f in ExportFormat)
        raise HTTPException(422, f"no export as {suffix!r}: ask for one of {known}")
    return found


def _filename_safe(stem: str) -> str:
    """A download name from what the reader typed: nothing that could break the header."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def _download(chunks: Iterator[bytes], fmt: ExportFormat, stem: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=fmt.media_type,
        headers={"Content-Disposition": f'attachment; filename="{stem}{fmt.filename_suffix}"'},
    )


def _add_error_pages(app: FastAPI) -> None:
    """JSON errors for programs, a page with the same one-line message for people."""
    page = templates().TemplateResponse

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith(MACHINE_PREFIXES):
            return await http_exception_handler(request, error)
        message = str(error.detail)
        return page(
            request,
            "error.html",
            {"status": error.status_code, "message": message},
            status_code=error.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, error: RequestValidationError) -> Response:
        if request.url.path.startswith(MACHINE_PREFIXES):
            return await request_validation_exception_handler(request, error)
        message = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
            for problem in error.errors()
        )
        return page(request, "error.html", {"status": 422, "message": message}, status_code=422)
