"""`embassy-watch`: the command line.

Exit status: 0 done; 1 the job could not be done (crawl failed or interrupted,
statement not found, archive unavailable or not made yet); 2 bad configuration or
usage; 3 a crawl finished but some pages failed to fetch or extract.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from config import THIN_OBSERVATIONS_AFTER, ConfigError, Settings, load_settings
from config.missions import (
    Catalog,
    CatalogDiff,
    Mission,
    compare_catalog,
    load_catalog,
    write_catalog,
)
from config.missions import refreshed as refreshed_catalog
from crawler.dates import parse_iso_datetime
from crawler.report import CrawlReport
from crawler.switcher import SwitcherUnavailable, read_switcher
from monitor.app import App, ArchiveUnavailable, build_app
from monitor.diffing import diff_statements
from monitor.display import one_line, visible
from monitor.export import ExportFormat
from monitor.export import export as export_archive
from monitor.messages import render_diff, subject
from monitor.notify import Round
from monitor.status import Health, WorkerHealth
from monitor.views import (
    delivery_json,
    event_json,
    health_json,
    iso,
    revision_json,
    revision_summary_json,
    search_json,
    statement_json,
)
from storage.archive import ArchiveBusy, ArchiveMissing
from storage.errors import first_line
from storage.records import (
    MAX_NUMBER,
    DeliveryStatus,
    StatementFilter,
    StatementSummary,
)

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

NUMBER = click.IntRange(1, MAX_NUMBER)  # ids and revision numbers
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
MAX_PROBLEMS_SHOWN = 20

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, status: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"embassy-watch: {message}", err=True)
    sys.exit(status)


CONFIG_HELP = "TOML config file (default: ./embassy-watch.toml if present, else built-in)."


def _or_the_groups_config(ctx: click.Context, _: click.Parameter, value: str | None) -> str | None:
    """`--config` after the command wins; else the one before it, as git and docker allow."""
    if value is not None:
        return value
    given: str | None = ctx.find_root().params.get("config_path")
    return given


def config_option(command: F) -> F:
    # A plain string: config/ says in one line what is wrong with the file (a folder, say),
    # where click's own checks would print a usage block.
    return click.option(
        "--config",
        "config_path",
        metavar="PATH",
        default=None,
        callback=_or_the_groups_config,
        help=CONFIG_HELP,
    )(command)


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(command)


def _settings(config_path: str | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as error:
        _fail(f"config error: {error}", EXIT_USAGE)


@contextmanager
def _app(config_path: str | None, *, create_archive: bool = False) -> Iterator[App]:
    """The app on the configured archive; only `crawl`, `run` and `notify-test` make one."""
    try:
        app = build_app(_settings(config_path), create_archive=create_archive)
    except ConfigError as error:
        _fail(f"config error: {error}", EXIT_USAGE)
    except ArchiveMissing as error:
        _fail(f"no archive at {error} (run `embassy-watch crawl` or `run` first)")
    except ArchiveUnavailable as error:
        _fail(f"cannot open the archive: {error}")
    try:
        yield app
    finally:
        app.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="embassy-watch")
@click.option("--config", "config_path", metavar="PATH", default=None, help=CONFIG_HELP)
def main(config_path: str | None) -> None:
    """Watch the U.S. Mission China's news statements and keep every version.

    --config goes before or after the command (after wins).
    """


@main.command()
@config_option
@click.option("--site", "site_names", multiple=True, help="Crawl only this site (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines, only the summary.")
def crawl(config_path: str | None, site_names: tuple[str, ...], quiet: bool) -> None:
    """Run one crawl cycle now: every listing page, every statement.

    Ctrl-C or SIGTERM closes the crawl (pages in flight are recorded whole), exit 1;
    a second one stops at once.
    """
    with _app(config_path, create_archive=True) as app:
        _log_progress(quiet, app.settings.logging.format)
        try:
            sites = tuple(app.settings.site(name) for name in site_names) or None
        except ConfigError as error:
            _fail(str(error), EXIT_USAGE)
        run = app.crawl(sites, on_report=_print_report)
        if run.interrupted_by:
            _fail(
                f"interrupted by {run.interrupted_by}: {run.kept_line()}; nothing else crawled, "
                "alerts are sent by the next crawl or run"
            )
        reports = run.reports
        try:
            _print_round(app.dispatcher().deliver_due())
        except SQLAlchemyError as error:
            _fail(f"alerts not sent (they stay queued): {first_line(error)}")
        try:
            stamped = app.timestamper().stamp_due()
        except SQLAlchemyError as error:
            _fail(f"timestamps not requested (they stay queued): {first_line(error)}")
        if stamped:
            click.echo(stamped.summary_line())
        try:
            captured = app.archivist().settle()
        except SQLAlchemyError as error:
            _fail(f"wayback captures not requested (they stay queued): {first_line(error)}")
        if captured:
            click.echo(captured.summary_line())
    if any(report.failed for report in reports):
        sys.exit(EXIT_FAILED)
    if any(report.problems for report in reports):
        sys.exit(EXIT_PARTIAL)


@main.command()
@config_option
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
def run(config_path: str | None, quiet: bool) -> None:
    """Run the monitor: crawl on schedule, record changes, send alerts (until SIGTERM)."""
    from monitor.daemon import run_daemon  # imports Scrapy and APScheduler
    from monitor.fleet import is_fleet, run_fleet

    with _app(config_path, create_archive=True) as app:
        _log_progress(quiet, app.settings.logging.format)
        if is_fleet(app.settings.database.url):  # PostgreSQL: join the archive's fleet
            if not run_fleet(app):
                sys.exit(EXIT_FAILED)
            return
        try:
            with app.archive.exclusive_daemon():
                run_daemon(app)
        except ArchiveBusy as error:
            _fail(str(error))


@main.command()
@config_option
@click.option("--host", default=None, help="Address to listen on (default: [serve] host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port ([serve] port).")
def serve(config_path: str | None, host: str | None, port: int | None) -> None:
    """Serve the archive read-only over HTTP: pages, JSON API (/api/docs), feeds, exports."""
    import uvicorn

    with _app(config_path) as app:
        _log_progress(False, app.settings.logging.format)
        host = host or app.settings.serve.host
        port = app.settings.serve.port if port is None else port
        logging.getLogger(__name__).info(
            "serving the archive on http://%s:%d/ (API: /api/docs)", host, port
        )
        uvicorn.run(app.web(), host=host, port=port, log_level="warning")


@main.command()
@config_option
@json_option
@click.option("--since", help="Only events at or after this ISO 8601 time (UTC if no offset).")
@click.option("--site", default=None, help="Only events of this site.")
@click.option("--statement", "statement_ref", default=None, help="Only this statement (id/URL).")
@click.option("--limit", type=NUMBER, default=100, show_default=True)
def changes(
    config_path: str | None,
    as_json: bool,
    since: str | None,
    site: str | None,
    statement_ref: str | None,
    limit: int,
) -> None:
    """List change events, newest first: new, changed, reverted, removed, reappeared, health."""
    when = _parse_time(since, "--since") if since is not None else None
    with _app(config_path) as app:
        statement_id = _find(app, statement_ref).id if statement_ref else None
        events = app.archive.changes(since=when, site=site, statement_id=statement_id, limit=limit)
    if as_json:
        _print_json([event_json(event) for event in events])
        return
    if not events:
        click.echo("no change events", err=True)
    for event in events:
        quiet = "  (baseline: not alerted)" if event.baseline else ""
        click.echo(f"{event.id:>6}  {iso(event.occurred_at)}  {subject(event)}{quiet}")
        if event.url:
            click.echo(f"        {one_line(event.url)}")


@main.command()
@config_option
@json_option
@click.option(
    "--status",
    type=click.Choice([str(status) for status in DeliveryStatus]),
    default=None,
    help="Only deliveries in this state.",
)
@click.option("--retry-failed", is_flag=True, help="Queue given-up deliveries again, now.")
@click.option("--limit", type=NUMBER, default=50, show_default=True)
def outbox(
    config_path: str | None, as_json: bool, status: str | None, retry_failed: bool, limit: int
) -> None:
    """Show alert deliveries: pending, failed (with why), delivered."""
    with _app(config_path) as app:
        if retry_failed:
            count = app.archive.outbox.retry_failed(datetime.now(UTC))
            click.echo(f"{count} given-up deliveries queued again", err=True)
        counts = app.archive.outbox.counts()
        rows = app.archive.outbox.deliveries(
            DeliveryStatus(status) if status else None, limit=limit
        )
    if as_json:
        _print_json(
            {
                "counts": {str(k): v for k, v in counts.items()},
                "deliveries": [delivery_json(row) for row in rows],
            }
        )
        return
    click.echo(", ".join(f"{count} {state}" for state, count in counts.items()))
    for row in rows:
        when = row.delivered_at if row.delivered_at else row.next_attempt_at
        click.echo(
            f"{row.id:>6}  {row.status:<9} {row.attempts:>2} tries  {iso(when)}  "
            f"{row.target.label}  {subject(row.event)}"
        )
        if row.last_error and row.status is not DeliveryStatus.DELIVERED:
            click.echo(f"        last error: {row.last_error}")


@main.command()
@config_option
@json_option
def status(config_path: str | None, as_json: bool) -> None:
    """Health at a glance (as /healthz): each site's crawls, the archive, the alerts.

    Exit 0 when healthy, 1 when there is a problem (each printed on a line).
    """
    with _app(config_path) as app:
        try:
            health = app.health()
        except SQLAlchemyError as error:
            _fail(f"cannot read the archive: {first_line(error)}")
    if as_json:
        _print_json(health_json(health))
    else:
        _print_health(health)
    if not health.healthy:
        sys.exit(EXIT_FAILED)


def _print_health(health: Health) -> None:
    verdict = "healthy" if health.healthy else f"UNHEALTHY ({len(health.problems)} problem(s))"
    click.echo(f"embassy-watch: {verdict} at {iso(health.checked_at)}")
    for site in health.sites:
        state = site.state
        if site.never_crawled:
            click.echo(f"site {state.site}: not crawled yet")
            continue
        errors = ", ".join(f"{k} {v}" for k, v in sorted(state.errors_total.items())) or "none"
        took = f" in {state.last_crawl_seconds:.1f}s" if state.last_crawl_seconds else ""
        click.echo(
            f"site {state.site}: last crawl {iso(state.last_crawl_at)}{took}, "
            f"last success {iso(state.last_success_at) or 'never'}; "
            f"{state.crawls_total} crawls, {state.pages_fetched_total} pages, errors: {errors}"
        )
    tallies = health.tallies
    statements = ", ".join(f"{n} {status}" for status, n in sorted(tallies.statements.items()))
    click.echo(f"archive: {statements or 'no statements'}; {tallies.revisions} revisions")
    events = ", ".join(f"{kind} {n}" for kind, n in sorted(tallies.events.items()))
    click.echo(f"events: {events or 'none'}")
    alerts = ", ".join(f"{n} {state}" for state, n in tallies.outbox.items())
    click.echo(f"alerts: {alerts}")
    for worker in health.workers:
        click.echo(_worker_line(worker, health.checked_at))
    if tallies.wayback:
        captures = ", ".join(f"{n} {state}" for state, n in sorted(tallies.wayback.items()))
        click.echo(f"wayback captures: {captures}")
    for problem in health.problems:
        click.echo(f"problem: {problem}")


def _worker_line(worker: WorkerHealth, now: datetime) -> str:
    """A worker of the fleet, how recently it was heard from, and the sites it holds."""
    member = worker.member
    heard = f"heartbeat {max((now - member.last_heartbeat).total_seconds(), 0):.0f}s ago"
    state = heard if worker.alive else f"SILENT ({heard}; its crawls go to the others)"
    crawling = ", ".join(member.crawling) or "nothing"
    return f"worker {member.id} {member.name}: {state}; crawling {crawling}"


@main.command()
@config_option
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Thin fetches older than this, e.g. 30d (default: [database] thin_observations_after).",
)
def thin(config_path: str | None, older_than: str | None) -> None:
    """Forget repeated fetches: of each run that found a page the same, keep first and last.

    Revisions, events and kept raw pages are never touched. `run` does this at start and daily.
    """
    try:
        seconds = None if older_than is None else THIN_OBSERVATIONS_AFTER.parse(older_than)
    except ValueError as error:
        _fail(f"--older-than: {error}", EXIT_USAGE)
    with _app(config_path) as app:
        try:
            forgotten = app.thin_observations(seconds)
        except SQLAlchemyError as error:
            _fail(f"nothing thinned: {first_line(error)}")
    click.echo(f"forgot {forgotten} repeated fetches (the first and last of each run kept)")


@main.command("notify-test")
@config_option
def notify_test(config_path: str | None) -> None:
    """Send a test message to every notification target and report each result."""
    with _app(config_path, create_archive=True) as app:
        if not app.targets:
            _fail("no notification targets: set [notify] urls in the config", EXIT_USAGE)
        results = app.dispatcher().test_all()
    for result in results:
        state = "ok" if result.error is None else f"FAILED: {result.error}"
        click.echo(f"{result.target.label}: {state}")
    if any(result.error for result in results):
        sys.exit(EXIT_FAILED)


def _print_round(done: Round) -> None:
    if done:
        click.echo(done.summary_line())


class OneLineFormatter(logging.Formatter):
    """Log records on one line each: an exception is named, not traced back."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            detail = f"{type(error).__name__}: {error}"
            if str(error) not in line:
                line += f" ({detail})"
        return line.replace("\n", " ")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (`[logging] format = "json"`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["error"] = f"{type(error).__name__}: {error}"
        return json.dumps(entry, ensure_ascii=False)


def _log_progress(quiet: bool, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else OneLineFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    for noisy in ("scrapy", "twisted", "py.warnings", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # apprise's own lines repeat what our one line per delivery says (its reason included);
    # its level stays as it is, or the reasons it records for each send would be lost too.
    logging.getLogger("apprise").propagate = False


def _print_report(report: CrawlReport) -> None:
    if report.stopped_by_shutdown:
        return  # the one line saying the crawl was interrupted tells what was kept
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(f"  problem: {problem}", err=True)
    hidden = len(report.problems) - MAX_PROBLEMS_SHOWN
    if hidden > 0:
        click.echo(f"  ... and {hidden} more problems", err=True)
    for hint_error in report.hint_errors[:3]:
        click.echo(f"  hint source not read: {hint_error}", err=True)
    click.echo(report.summary_line())


@main.command()
@config_option
@json_option
@click.option("--site", default=None, help="Only statements of this site.")
@click.option("--limit", type=NUMBER, default=None, help="At most this many.  [default: all]")
@click.option("--offset", type=click.IntRange(0, MAX_NUMBER), default=0, show_default=True)
def statements(
    config_path: str | None, as_json: bool, site: str | None, limit: int | None, offset: int
) -> None:
    """List every archived statement, oldest id first (or a page of them: --limit, --offset)."""
    with _app(config_path) as app:
        page = app.archive.statement_page(StatementFilter(site=site), limit=limit, offset=offset)
        rows = page.statements
    if as_json:
        _print_json([statement_json(row) for row in rows])
        return
    if not rows:
        click.echo("no statements archived yet (run `embassy-watch crawl`)", err=True)
    for row in rows:
        published = row.published_at.date().isoformat() if row.published_at else "-"
        click.echo(
            f"{row.id:>5}  {row.status:<8} {row.revisions:>3} rev  {published}  "
            f"{one_line(row.title, 40)}  {one_line(row.url)}"
        )


@main.command()
@config_option
@json_option
@click.argument("text")
@click.option(
    "--all-revisions", is_flag=True, help="Every matching revision, not one per statement."
)
@click.option("--limit", type=NUMBER, default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
def search(
    config_path: str | None, as_json: bool, text: str, all_revisions: bool, limit: int, offset: int
) -> None:
    """Find TEXT (any length, Chinese too) in titles and bodies, newest first: each
    statement's latest revision containing it, with how many of its revisions do."""
    with _app(config_path) as app:
        results = app.archive.search(text, limit=limit, offset=offset, all_revisions=all_revisions)
    if as_json:
        _print_json(search_json(results, limit, offset))
        return
    what = "revision" if all_revisions else "statement"
    total = f"{results.total}" if results.total_exact else f"at least {results.total}"
    click.echo(f"{total} {what}{'s' if results.total != 1 else ''} contain {one_line(text)!r}")
    for hit in results.hits:
        snippet = one_line(hit.before) + "[" + one_line(hit.match) + "]" + one_line(hit.after)
        click.echo(
            f"{hit.statement_id:>5}  #{hit.revision:<3} {iso(hit.observed_at)}  "
            f"{hit.matching_revisions:>3} matching  {one_line(hit.title, 40)}\n       {snippet}"
        )


@main.command()
@config_option
@json_option
@click.argument("statement")
def history(config_path: str | None, as_json: bool, statement: str) -> None:
    """List a statement's revisions (STATEMENT: id or URL)."""
    with _app(config_path) as app:
        found = _find(app, statement)
        revisions = app.archive.history(found.id)
    if as_json:
        _print_json([revision_summary_json(row) for row in revisions])
        return
    click.echo(f"{found.id}  {one_line(found.title)}  {one_line(found.url)}")
    for row in revisions:
        changed = ", ".join(row.changed_fields) if row.changed_fields else "first seen"
        if row.number > 1 and not row.changed_fields:
            changed = "re-extracted"
        click.echo(f"  #{row.number:<3} {iso(row.observed_at)}  {row.content_hash[:12]}  {changed}")


@main.command()
@config_option
@json_option
@click.argument("statement")
@click.option("--revision", "number", type=NUMBER, help="Revision number.")
@click.option("--at", "at", help="The revision in force at this ISO 8601 time (UTC if no offset).")
def show(
    config_path: str | None, as_json: bool, statement: str, number: int | None, at: str | None
) -> None:
    """Print a statement as it read (latest, revision N, or at a time)."""
    if number is not None and at is not None:
        _fail("give --revision or --at, not both", EXIT_USAGE)
    when = _parse_time(at, "--at") if at is not None else None
    with _app(config_path) as app:
        found = _find(app, statement)
        revision = app.archive.revision(found.id, number=number, at=when)
        snapshot = app.archive.wayback_snapshot(found.id, revision.number) if revision else None
    if revision is None:
        if when is not None:
            _fail(f"statement {found.id} was not yet archived at {iso(when)}")
        _fail(f"statement {found.id} has no revision {number}")
    if as_json:
        _print_json(revision_json(found, revision, snapshot))
        return
    content = revision.content
    click.echo(one_line(content.title))
    if content.subtitle:
        click.echo(one_line(content.subtitle))
    click.echo(f"url: {one_line(found.url)}")
    if content.url != found.url:
        click.echo(f"url at this revision: {one_line(content.url)}")
    click.echo(
        f"revision: {revision.number} of {found.revisions}, seen {iso(revision.observed_at)}"
    )
    click.echo(f"published: {content.published_raw or '-'} ({iso(content.published_at)})")
    for label, value in (
        ("author", content.author),
        ("tags", ", ".join(content.tags)),
        ("categories", ", ".join(content.categories)),
    ):
        if value:
            click.echo(f"{label}: {one_line(value)}")
    click.echo("")
    click.echo(visible(content.body))


@main.command()
@config_option
@click.argument("statement")
@click.option("--from", "old_number", type=NUMBER, help="Older revision number.")
@click.option("--to", "new_number", type=NUMBER, help="Newer revision number.")
def diff(
    config_path: str | None, statement: str, old_number: int | None, new_number: int | None
) -> None:
    """Show what changed between two revisions (default: the last two)."""
    with _app(config_path) as app:
        found = _find(app, statement)
        newest = new_number or found.revisions
        oldest = old_number or newest - 1
        if oldest < 1:
            _fail(f"statement {found.id} has only one revision: nothing to compare")
        old = app.archive.revision(found.id, number=oldest)
        new = app.archive.revision(found.id, number=newest)
    if old is None or new is None:
        missing = oldest if old is None else newest
        _fail(f"statement {found.id} has no revision {missing} (it has {found.revisions})")
    click.echo(f"--- revision {old.number}  {iso(old.observed_at)}")
    click.echo(f"+++ revision {new.number}  {iso(new.observed_at)}")
    changes = diff_statements(old.content, new.content)
    click.echo(visible(render_diff(changes)) if not changes.is_empty else "no differences")


@main.command()
@config_option
@click.argument("statement", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ExportFormat]),
    default=ExportFormat.JSONL.value,
    show_default=True,
    help="jsonl/csv: every revision; warc: every raw page kept (gzipped WARC 1.1); "
    "wacz: the raw pages as a WACZ 1.1.1 package with their timestamps and proofs.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="-",
    help="File to write (written whole or not at all); default: standard output.",
)
def export(config_path: str | None, statement: str | None, fmt: str, output: str) -> None:
    """Export a statement's history, or the whole archive (no STATEMENT)."""
    with _app(config_path) as app:
        found = _find(app, statement) if statement else None
        chunks = export_archive(app.archive, ExportFormat(fmt), found)
        try:
            written = _write_whole(chunks, output)
        except OSError as error:
            _fail(f"export not written: {first_line(error)}")
    if output != "-":
        click.echo(f"wrote {written:,} bytes to {output}", err=True)


def _trusted(config_path: str | None, tsa_certs: tuple[str, ...]) -> list[Certificate]:
    """The certificates `verify` trusts: --tsa-cert, else [evidence] tsa_certificates."""
    from monitor.verify import TrustError, load_trust

    paths = tsa_certs or _settings(config_path).evidence.tsa_certificates
    if not paths:
        _fail("no trusted TSA certificate: give --tsa-cert PEM or set [evidence] "
              "tsa_certificates", EXIT_USAGE)  # fmt: skip
    try:
        roots = load_trust(paths)
    except TrustError as error:
        _fail(str(error), EXIT_USAGE)
    click.echo("trusting: " + "; ".join(root.subject.rfc4514_string() for root in roots))
    return roots


def _write_whole(chunks: Iterable[bytes], output: str) -> int:
    """Stream to stdout, or to a temporary file renamed into place once complete."""
    if output == "-":
        stream: BinaryIO = sys.stdout.buffer
        return sum(stream.write(chunk) for chunk in chunks)
    target = Path(output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as handle:
            written = sum(handle.write(chunk) for chunk in chunks)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written


@main.command()
@config_option
@click.argument("target", metavar="FILE|STATEMENT")
@click.option(
    "--tsa-cert",
    "tsa_certs",
    multiple=True,
    metavar="PEM",
    help="Trust this CA certificate file (repeatable; default: [evidence] tsa_certificates).",
)
def verify(config_path: str | None, target: str, tsa_certs: tuple[str, ...]) -> None:
    """Check the evidence of a WACZ package (FILE) or of a statement's raw pages (STATEMENT).

    Every hash, every inclusion proof and every timestamp token, offline. Exit 0 when every
    page is proven, 1 when anything was changed, 3 when intact but some pages have no
    timestamp yet.
    """
    from monitor.verify import verify_archive, verify_wacz

    if Path(target).is_file():
        report = verify_wacz(Path(target), _trusted(config_path, tsa_certs))
    else:
        with _app(config_path) as app:  # no archive: said first, as by every reading command
            found = _find(app, target)
            roots = _trusted(config_path, tsa_certs)
            report = verify_archive(app.timestamper().evidence.kept_captures(found.id), roots)
    for proven in report.proven:
        click.echo(f"proven: {proven}")
    for unproven in report.unproven:
        click.echo(f"not timestamped: {unproven}")
    for problem in report.problems:
        click.echo(f"CHANGED: {problem}")
    click.echo(report.summary_line())
    if report.tampered:
        sys.exit(EXIT_FAILED)
    if report.unproven:
        sys.exit(EXIT_PARTIAL)


@main.command()
@config_option
@json_option
@click.option("--refresh", is_flag=True, help="Compare with a live page's country switcher.")
@click.option(
    "--from",
    "page_url",
    metavar="URL",
    default=None,
    help="The page whose switcher is read (default: the first configured listing).",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    default=None,
    help="With --refresh: write the updated catalog here (default: [missions] catalog, if set).",
)
def missions(
    config_path: str | None,
    as_json: bool,
    refresh: bool,
    page_url: str | None,
    output: str | None,
) -> None:
    """List the catalog of U.S. mission sites that [[sites]] missions = [...] can name."""
    settings = _settings(config_path)
    try:
        catalog = load_catalog(settings.missions.catalog)
    except ConfigError as error:
        _fail(f"config error: {error}", EXIT_USAGE)
    if not refresh:
        _print_catalog(catalog, as_json)
        return
    url = page_url or settings.sites[0].listing_urls[0]
    try:
        page = read_switcher(url, settings.crawl)
    except SwitcherUnavailable as error:
        _fail(str(error))
    diff = compare_catalog(catalog, list(page.links))
    _print_catalog_diff(diff, url, page.languages, as_json)
    target = output or settings.missions.catalog
    if target and not diff.unchanged:
        try:
            write_catalog(refreshed_catalog(catalog, diff), target)
        except ConfigError as error:
            _fail(str(error))
        click.echo(f"wrote the updated catalog to {target}", err=True)
    elif not diff.unchanged:
        click.echo("not saved: give -o FILE, then set [missions] catalog = FILE", err=True)


def _mission_json(mission: Mission) -> dict[str, Any]:
    return {
        "key": mission.key,
        "host": mission.host,
        "mission": mission.name,
        "kind": mission.kind,
        "country_code": mission.country_code or None,
        "timezone": mission.timezone,
        "languages": list(mission.languages),
        "sites": [mission.site_name(language) for language in mission.languages],
    }


def _print_catalog(catalog: Catalog, as_json: bool) -> None:
    if as_json:
        _print_json([_mission_json(mission) for mission in catalog.missions])
        return
    for m in catalog.missions:
        click.echo(
            f"{m.key:<18} {' '.join(m.languages):<6} {m.kind:<9} {m.timezone:<30} "
            f"{one_line(m.host, 40):<32} {one_line(m.name, 60)}"
        )
    click.echo(f"{len(catalog.missions)} missions", err=True)


def _print_catalog_diff(
    diff: CatalogDiff, url: str, languages: tuple[str, ...], as_json: bool
) -> None:
    if as_json:
        _print_json(
            {
                "page": url,
                "languages": list(languages),
                "added": [_mission_json(m) for m in diff.added],
                "missing": [m.key for m in diff.missing],
                "renamed": [
                    {"key": r.mission.key, "was": r.mission.name, "now": r.label}
                    for r in diff.renamed
                ],
                "ignored": [{"label": link.label, "url": link.url} for link in diff.ignored],
            }
        )
        return
    click.echo(f"country switcher of {one_line(url)}:")
    for m in diff.added:
        click.echo(f"  new      {m.key:<18} {one_line(m.host, 40)}  {one_line(m.name, 60)}")
    for item in diff.renamed:
        click.echo(
            f"  renamed  {item.mission.key:<18} {one_line(item.mission.name, 40)} -> "
            f"{one_line(item.label, 60)}"
        )
    for m in diff.missing:
        click.echo(f"  unlinked {m.key:<18} {m.host} (kept in the catalog)")
    for link in diff.ignored:
        click.echo(f"  ignored  {one_line(link.url, 60)} (not a mission platform host)")
    if diff.unchanged:
        click.echo("  the catalog matches the switcher")
    # A mission's languages in the catalog are set by hand; this shows what the page offers.
    click.echo(f"languages on this page: {', '.join(languages) or 'none linked'}")


def _find(app: App, ref: str) -> StatementSummary:
    found = app.archive.find_statement(ref)
    if found is None:
        _fail(f"no statement matches {ref!r} (give an id from `embassy-watch statements` or a URL)")
    return found


def _parse_time(text: str, option: str) -> datetime:
    parsed = parse_iso_datetime(text)
    if parsed is None:
        _fail(f"{option}: not an ISO 8601 time: {text!r} (e.g. 2021-02-08T12:00:00Z)", EXIT_USAGE)
    return parsed


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
