"""Alert messages for change events: plain text, Markdown (Slack, chat) and HTML (email).

Every scraped string is escaped for the format it goes into. A message never
exceeds the target's length limit: the diff is trimmed at a paragraph and says so.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from monitor import display
from monitor.diffing import (
    DiffOp,
    Op,
    StatementDiff,
    diff_statements,
    diff_text,
    marked_paragraphs,
    render_marked,
)
from storage.archive import Archive
from storage.records import Change, ChangeEvent, EventKind, StatementSummary


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    format: Format


LABELS = {
    EventKind.NEW: ("New statement", "新声明"),
    EventKind.CHANGED: ("Changed", "已修改"),
    EventKind.REVERTED: ("Reverted", "已还原"),
    EventKind.REMOVED: ("Removed", "已删除"),
    EventKind.REAPPEARED: ("Back online", "重新出现"),
    EventKind.PROBLEM: ("Problem", "故障"),
    EventKind.RECOVERED: ("Recovered", "已恢复"),
}
MAX_TITLE = 200
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_~\[\]()<>#|!])")

PAGE_STYLE = "font-family:sans-serif;font-size:14px;max-width:760px"
DEL_STYLE = "background:#ffd7d5;color:#82071e;text-decoration:line-through"
INS_STYLE = "background:#ccffd8;color:#055d20;text-decoration:none;font-weight:bold"


@dataclass(frozen=True)
class TwinNote:
    """The statement's other-language version, as the archive knew it when the alert was made."""

    statement_id: int
    language: str | None
    changed_at: datetime | None  # its latest change after `since`; None: unchanged since
    since: datetime  # the changed statement's previous revision, or the twin's first, if later
    last_checked: datetime


@dataclass(frozen=True)
class EventDetail:
    """What an event's message shows beyond its facts: a diff, or the start of a new text."""

    changes: StatementDiff | None = None
    excerpt: str | None = None
    twin: TwinNote | None = None


EXCERPT_CHARS = 400


def what_changed(archive: Archive, event: ChangeEvent) -> EventDetail:
    if event.statement_id is None or event.revision is None:
        return EventDetail()
    new = archive.revision(event.statement_id, number=event.revision)
    if new is None:
        return EventDetail()
    if event.previous_revision:
        old = archive.revision(event.statement_id, number=event.previous_revision)
        if old is None:
            return EventDetail()
        return EventDetail(
            changes=diff_statements(old.content, new.content),
            twin=twin_note(archive, event.statement_id, old.observed_at),
        )
    if event.kind is EventKind.NEW:
        return EventDetail(excerpt=one_line(new.content.body.replace("\n\n", " "), EXCERPT_CHARS))
    return EventDetail()


def find_twin(archive: Archive, statement: StatementSummary) -> StatementSummary | None:
    """The statement's other-language version (its hreflang twin), if archived."""
    twin = archive.find_statement(statement.twin_url) if statement.twin_url else None
    return twin if twin is not None and twin.id != statement.id else None


def twin_note(archive: Archive, statement_id: int, since: datetime) -> TwinNote | None:
    """Whether the statement's twin (hreflang) changed too since `since`, as far as archived."""
    found = archive.find_statement(str(statement_id))
    twin = find_twin(archive, found) if found else None
    if twin is None:
        return None
    history = archive.history(twin.id)
    if not history:
        return None
    first, latest = history[0], history[-1]
    changed = latest.observed_at if latest.number > 1 and latest.observed_at > since else None
    # A twin first archived after `since` is known unchanged only from then on.
    known_since = max(since, first.observed_at)
    return TwinNote(twin.id, twin.language, changed, known_since, twin.last_seen_at)


LANGUAGE_NAMES = {"zh": "Chinese · 中文", "en": "English · 英文"}


def twin_line(note: TwinNote) -> str:
    """One line, the same in every format and on the pages: did the other version change too?"""
    name = LANGUAGE_NAMES.get((note.language or "").split("-")[0], note.language or "other")
    if note.changed_at is not None:
        return (
            f"Its {name} version (statement {note.statement_id}) changed too, "
            f"at {_iso(note.changed_at)} · 另一语言版本也已修改"
        )
    return (
        f"Only this language version changed · 仅此语言版本修改: its {name} version "
        f"(statement {note.statement_id}) is unchanged since {_iso(note.since)} "
        f"(last checked {_iso(note.last_checked)})"
    )


def one_line(text: str | None, limit: int = MAX_TITLE) -> str:
    """Subjects and titles as shown (monitor/display.py): one line, nothing hidden."""
    return display.one_line(text, limit)


def subject(event: ChangeEvent) -> str:
    english, chinese = LABELS[event.kind]
    if event.kind in (EventKind.PROBLEM, EventKind.RECOVERED):
        return one_line(f"{english} · {chinese} ({event.site}): {event.condition}")
    what = f"{english} · {chinese}"
    if event.kind is EventKind.CHANGED and event.changed_fields:
        what += f" ({changed_fields_line(event.change)})"
    if event.kind is EventKind.REVERTED and event.reverted_to:
        what += f" to revision {event.reverted_to}"
    return one_line(f"{what}: {event.title or event.url}")


TYPOGRAPHIC = "typographic · 仅排版"


def changed_fields_line(change: Change) -> str:
    """`title, body`; those only restyled named apart: `body; typographic: title`."""
    edited = ", ".join(change.edited_fields)
    if not change.typographic_fields:
        return edited
    restyled = f"typographic: {', '.join(change.typographic_fields)}"
    return f"{edited}; {restyled}" if edited else restyled


def facts(event: ChangeEvent) -> list[str]:
    """The lines every format shows above the diff, as plain text."""
    lines = [f"Site: {event.site}", f"When: {_iso(event.occurred_at)}"]
    if event.url:
        lines.insert(0, event.url)
    if event.statement_id is not None:
        revision = f"Statement {event.statement_id}"
        if event.previous_revision and event.revision:
            revision += f", revision {event.previous_revision} → {event.revision}"
        elif event.revision:
            revision += f", revision {event.revision}"
        lines.append(revision)
    if event.detail:
        lines.append(f"Detail: {one_line(event.detail, 2000)}")
    return lines


def render(
    event: ChangeEvent,
    changes: StatementDiff | None,
    fmt: Format,
    max_length: int,
    excerpt: str | None = None,
    twin: TwinNote | None = None,
) -> Message:
    """One event as a message; `changes` is the diff for changed/reverted/reappeared events."""
    renderer = _RENDERERS[fmt]
    head = renderer.head(event)
    sections = _sections(event, changes, excerpt, renderer)
    if twin is not None:  # before the diff: a trimmed message still says it
        sections.insert(0, renderer.note(twin_line(twin)))
    body = _fit(head, sections, renderer, max_length, event)
    return Message(subject(event), body, fmt)


def render_diff(changes: StatementDiff, fmt: Format = Format.TEXT) -> str:
    """Just the changes (fields, then changed paragraphs), as the `diff` command shows them."""
    renderer = _RENDERERS[fmt]
    return renderer.wrap(_sections(None, changes, None, renderer))


def digest(events: list[ChangeEvent], fmt: Format, max_length: int) -> Message:
    """Several events in one message: each event's subject and link (digest mode)."""
    renderer = _RENDERERS[fmt]
    count = len(events)
    title = f"{count} change{'s' if count != 1 else ''} · {count} 条变更"
    parts = [renderer.digest_line(event) for event in events]
    body = _fit("", parts, renderer, max_length, None)
    return Message(title, body, fmt)


# -- formats ----------------------------------------------------------------------------


class _Text:
    """Plain text; scraped text has its hidden characters shown (monitor.display)."""

    paragraph_gap = "\n\n"

    def escape(self, text: str) -> str:
        return display.visible(text)

    def head(self, event: ChangeEvent) -> str:
        return subject(event) + "\n" + "\n".join(self.escape(line) for line in facts(event))

    def field(self, name: str, ops: list[DiffOp]) -> str:
        return f"{name}: {self.marked(ops)}"

    def marked(self, ops: list[DiffOp] | tuple[DiffOp, ...]) -> str:
        return "".join(self.op(op) for op in ops)

    def op(self, op: DiffOp) -> str:
        return render_marked((DiffOp(op.op, self.escape(op.text)),))

    def heading(self, text: str) -> str:
        return text

    def quote(self, text: str) -> str:
        return "  " + text.replace("\n", "\n  ")

    def note(self, text: str) -> str:
        return f"[{text}]"

    def digest_line(self, event: ChangeEvent) -> str:
        return f"{subject(event)}\n{self.escape(event.url or event.site)}"

    def wrap(self, parts: list[str]) -> str:
        return self.paragraph_gap.join(part for part in parts if part)


class _Markdown(_Text):
    def escape(self, text: str) -> str:
        return _MARKDOWN_SPECIAL.sub(r"\\\1", display.visible(text))

    def head(self, event: ChangeEvent) -> str:
        lines = [f"**{self.escape(subject(event))}**"]
        lines += [self.escape(line) for line in facts(event)]
        return "\n".join(lines)

    def op(self, op: DiffOp) -> str:
        text = self.escape(op.text)
        if not text.strip():
            return text
        if op.op is Op.DELETE:
            return f"~~{text}~~"
        if op.op is Op.INSERT:
            return f"**{text}**"
        return text

    def field(self, name: str, ops: list[DiffOp]) -> str:
        return f"*{name}*: {self.marked(ops)}"

    def heading(self, text: str) -> str:
        return f"*{self.escape(text)}*"

    def quote(self, text: str) -> str:
        return "> " + text.replace("\n", "\n> ")

    def note(self, text: str) -> str:
        return f"_{self.escape(text)}_"

    def digest_line(self, event: ChangeEvent) -> str:
        return f"**{self.escape(subject(event))}**\n{self.escape(event.url or event.site)}"


class _Html(_Text):
    paragraph_gap = "\n"

    def escape(self, text: str) -> str:
        return html.escape(display.visible(text), quote=True)

    def head(self, event: ChangeEvent) -> str:
        lines = [f'<h2 style="font-size:18px;margin:0 0 8px">{self.escape(subject(event))}</h2>']
        for line in facts(event):
            if line == event.url:
                url = self.escape(line)
                lines.append(f'<div><a href="{url}">{url}</a></div>')
            else:
                lines.append(f'<div style="color:#555">{self.escape(line)}</div>')
        return "\n".join(lines)

    def op(self, op: DiffOp) -> str:
        text = self.escape(op.text).replace("\n", "<br>")
        if op.op is Op.DELETE:
            return f'<del style="{DEL_STYLE}">{text}</del>'
        if op.op is Op.INSERT:
            return f'<ins style="{INS_STYLE}">{text}</ins>'
        return text

    def field(self, name: str, ops: list[DiffOp]) -> str:
        return f"<p><b>{self.escape(name)}</b>: {self.marked(ops)}</p>"

    def heading(self, text: str) -> str:
        return f'<h3 style="font-size:15px;margin:16px 0 4px">{self.escape(text)}</h3>'

    def quote(self, text: str) -> str:
        return f'<p style="margin:0 0 10px;line-height:1.6">{text}</p>'

    def note(self, text: str) -> str:
        return f'<p style="color:#777"><i>{self.escape(text)}</i></p>'

    def digest_line(self, event: ChangeEvent) -> str:
        link = self.escape(event.url or "")
        return f'<p><b>{self.escape(subject(event))}</b><br><a href="{link}">{link}</a></p>'

    def wrap(self, parts: list[str]) -> str:
        inner = "\n".join(part for part in parts if part)
        return f'<div style="{PAGE_STYLE}">\n{inner}\n</div>'


_RENDERERS: dict[Format, _Text] = {
    Format.TEXT: _Text(),
    Format.MARKDOWN: _Markdown(),
    Format.HTML: _Html(),
}


def _sections(
    event: ChangeEvent | None, changes: StatementDiff | None, excerpt: str | None, renderer: _Text
) -> list[str]:
    sections: list[str] = []
    if changes is not None:
        if changes.change.typographic:
            sections.append(renderer.note(f"{TYPOGRAPHIC}: {_RESTYLE_NOTE}"))
        for change in changes.fields:
            name = f"{change.name} ({TYPOGRAPHIC})" if change.typographic else change.name
            sections.append(renderer.field(name, diff_text(change.old, change.new)))
        if changes.body:
            heading = "body · 正文" + (f" ({TYPOGRAPHIC})" if changes.body_typographic else "")
            sections.append(renderer.heading(heading))
            sections += _changed_paragraphs(changes.body, renderer)
    elif excerpt:
        sections.append(renderer.quote(renderer.escape(excerpt)))
    return sections


_RESTYLE_NOTE = "only width variants, quote styles or spacing changed, not the wording"


def _changed_paragraphs(ops: tuple[DiffOp, ...], renderer: _Text) -> list[str]:
    """Changed paragraphs with one of context around them; skipped runs are counted."""
    paragraphs = marked_paragraphs(ops)
    changed = {i for i, (_, is_changed) in enumerate(paragraphs) if is_changed}
    keep = {j for i in changed for j in (i - 1, i, i + 1)}
    shown: list[str] = []
    skipped = 0
    for index, (pieces, _) in enumerate(paragraphs):
        if index not in keep:
            skipped += 1
            continue
        if skipped:
            shown.append(renderer.note(_skipped(skipped)))
            skipped = 0
        shown.append(renderer.quote(renderer.marked(pieces)))
    if skipped:
        shown.append(renderer.note(_skipped(skipped)))
    return shown


def _skipped(count: int) -> str:
    return f"… {count} unchanged paragraph{'s' if count > 1 else ''} …"


def _fit(
    head: str, sections: list[str], renderer: _Text, max_length: int, event: ChangeEvent | None
) -> str:
    """The whole message if it fits; else as many sections as fit, and a note saying so.

    `max_length` counts UTF-8 bytes (a Chinese character is 3): within it in bytes, a message
    is within it whatever unit the service counts.
    """
    whole = renderer.wrap([head, *sections])
    if _bytes(whole) <= max_length:
        return whole
    hint = "full diff: embassy-watch diff " + (
        str(event.statement_id) if event and event.statement_id is not None else ""
    )
    kept: list[str] = []
    for index, section in enumerate(sections):
        remaining = len(sections) - index
        note = renderer.note(f"… trimmed: {remaining} more part(s) not shown; {hint}".strip())
        if _bytes(renderer.wrap([head, *kept, section, note])) > max_length:
            return _cut(renderer.wrap([head, *kept, note]), max_length)
        kept.append(section)
    return _cut(whole, max_length)


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, never half a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
