"""Alert messages: what each format shows, hostile content escaped, long diffs bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.diffing import diff_statements
from monitor.messages import Format, render, subject
from storage.records import ChangeEvent, EventKind, HealthCondition, StatementContent

AT = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
URL = "https://china.usembassy-china.org.cn/zh/statement/"


def event(kind: EventKind = EventKind.CHANGED, **fields: object) -> ChangeEvent:
    values: dict[str, object] = {
        "id": 7,
        "site": "china-zh",
        "kind": kind,
        "occurred_at": AT,
        "statement_id": 3,
        "url": URL,
        "title": "关于人权问题的声明",
        "revision": 2,
        "previous_revision": 1,
        "changed_fields": ("body",),
    }
    values.update(fields)
    return ChangeEvent(**values)  # type: ignore[arg-type]


OLD = StatementContent(
    url=URL, title="关于人权问题的声明", body="第一段没有变。\n\n美国对此表示关切。\n\n第三段。"
)
NEW = StatementContent(
    url=URL, title="关于人权问题的声明", body="第一段没有变。\n\n美国对此表示严重关切。\n\n第三段。"
)


@pytest.mark.parametrize(
    ("fmt", "deleted_or_inserted"),
    [
        (Format.TEXT, "美国对此表示{+严重+}关切。"),
        (Format.MARKDOWN, "美国对此表示**严重**关切。"),
        (
            Format.HTML,
            '美国对此表示<ins style="background:#ccffd8;color:#055d20;text-decoration:none;font-weight:bold">严重</ins>关切。',
        ),
    ],
)
def test_each_format_marks_the_inserted_characters(fmt: Format, deleted_or_inserted: str) -> None:
    message = render(event(), diff_statements(OLD, NEW), fmt, 10_000)
    assert deleted_or_inserted in message.body
    assert message.title == "Changed · 已修改 (body): 关于人权问题的声明"
    assert "revision 1 → 2" in message.body
    assert URL in message.body


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        (EventKind.NEW, {}, "New statement · 新声明: 关于人权问题的声明"),
        (
            EventKind.CHANGED,
            {"changed_fields": ("title", "tags")},
            "Changed · 已修改 (title, tags): 关于人权问题的声明",
        ),
        (
            EventKind.REVERTED,
            {"reverted_to": 1},
            "Reverted · 已还原 to revision 1: 关于人权问题的声明",
        ),
        (EventKind.REMOVED, {}, "Removed · 已删除: 关于人权问题的声明"),
        (EventKind.REAPPEARED, {}, "Back online · 重新出现: 关于人权问题的声明"),
        (
            EventKind.PROBLEM,
            {"condition": HealthCondition.BLOCKED},
            "Problem · 故障 (china-zh): blocked",
        ),
        (
            EventKind.RECOVERED,
            {"condition": HealthCondition.BLOCKED},
            "Recovered · 已恢复 (china-zh): blocked",
        ),
        (
            EventKind.NEW,
            {"title": "标题\n换行\r\x00注入"},
            "New statement · 新声明: 标题 换行 ⟨U+0000⟩注入",
        ),
    ],
)
def test_subject_lines_say_what_happened_and_to_which_statement(
    kind: EventKind, fields: dict[str, object], expected: str
) -> None:
    assert subject(event(kind, **fields)) == expected


def test_scraped_markup_is_escaped_in_html_and_markdown() -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    old = StatementContent(url=URL, title="t", body="正文。")
    new = StatementContent(url=URL, title="t", body="正文。" + hostile)
    changes = diff_statements(old, new)
    html = render(event(title=hostile), changes, Format.HTML, 10_000).body
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = render(
        event(title="*粗体* [链接](http://evil.example)"), changes, Format.MARKDOWN, 10_000
    ).body
    assert "\\[链接\\]\\(http://evil.example\\)" in markdown and "\\*粗体\\*" in markdown


def test_a_long_diff_is_trimmed_to_the_targets_limit_and_says_so() -> None:
    paragraphs = [f"第{n}段开始。" + "这一段的内容很长。" * 20 for n in range(60)]
    edited = [p.replace("开始", "开头") if n % 3 == 0 else p for n, p in enumerate(paragraphs)]
    old = StatementContent(url=URL, title="t", body="\n\n".join(paragraphs))
    new = StatementContent(url=URL, title="t", body="\n\n".join(edited))
    for fmt in Format:
        body = render(event(), diff_statements(old, new), fmt, 4_000).body
        assert len(body) <= 4_000
        assert "trimmed" in body and "embassy-watch diff 3" in body
        assert "第0段开" in body and "头" in body  # the first change is shown


def test_a_new_statement_shows_an_excerpt_not_a_diff() -> None:
    message = render(
        event(EventKind.NEW, previous_revision=None),
        None,
        Format.TEXT,
        10_000,
        excerpt="美国正式重新加入。",
    )
    assert "美国正式重新加入。" in message.body and "[-" not in message.body


def test_a_slack_alert_carries_the_marked_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack cannot be reached from here: its HTTP call is captured instead (tech-notes 5)."""
    import requests

    from monitor.notify import make_targets, send_with_apprise

    sent: list[dict[str, object]] = []

    def capture(method: str, url: str, **kwargs: object) -> requests.Response:
        sent.append({"url": url, "data": kwargs.get("data")})
        response = requests.Response()
        response.status_code = 200
        response._content = b"ok"
        return response

    monkeypatch.setattr(requests, "request", capture)
    (target,) = make_targets(["slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#statements"])
    assert target.format is Format.MARKDOWN
    message = render(event(), diff_statements(OLD, NEW), target.format, target.max_length)
    assert send_with_apprise(target, message, EventKind.CHANGED) is None
    (call,) = sent
    assert str(call["url"]).startswith("https://hooks.slack.com/services/T1JJ3T3L2/")
    payload = json.loads(str(call["data"]))
    (attachment,) = payload["attachments"]
    assert payload["channel"] == "#statements"
    assert attachment["title"] == "Changed · 已修改 (body): 关于人权问题的声明"
    assert "美国对此表示*严重*关切。" in attachment["text"]  # Markdown bold, as Slack writes it
    assert "revision 1 → 2" in attachment["text"]

    # Scraped text cannot ping a channel or forge a link in Slack.
    hostile = StatementContent(
        url=URL, title="<!channel>", body=NEW.body + "<!here> <https://evil.example|官方链接>"
    )
    message = render(
        event(title="<!channel>"), diff_statements(OLD, hostile), target.format, target.max_length
    )
    assert send_with_apprise(target, message, EventKind.CHANGED) is None
    payload = json.loads(str(sent[-1]["data"]))
    text = payload["attachments"][0]["text"] + payload["attachments"][0]["title"]
    assert "<!" not in text and "<https://evil" not in text
    assert "&lt;!here&gt;" in text and "&lt;!channel&gt;" in text


def test_a_typographic_change_is_named_as_such_in_subject_and_diff() -> None:
    old = StatementContent(url=URL, title="关于“人权”问题的声明", body="第一段，没有变。")
    new = StatementContent(url=URL, title='关于"人权"问题的声明', body="第一段,没有变。更多。")
    changes = diff_statements(old, new)
    typographic = event(changed_fields=("title", "body"), typographic_fields=("title",))
    assert subject(typographic) == "Changed · 已修改 (body; typographic: title): 关于人权问题的声明"
    only = event(changed_fields=("body",), typographic_fields=("body",))
    assert subject(only) == "Changed · 已修改 (typographic: body): 关于人权问题的声明"
    text = render(typographic, changes, Format.TEXT, 10_000).body
    assert 'title (typographic · 仅排版): 关于[-“-]{+"+}人权' in text
    assert "body · 正文\n" in text  # the body's wording changed too: no mark


def test_slack_markdown_marks_a_paragraph_split() -> None:
    old = StatementContent(url=URL, title="t", body="第一句。第二句。")
    new = StatementContent(url=URL, title="t", body="第一句。\n\n第二句。")
    markdown = render(event(), diff_statements(old, new), Format.MARKDOWN, 10_000).body
    assert "> 第一句。**¶**\n\n> 第二句。" in markdown


@pytest.mark.parametrize("fmt", list(Format))
def test_hidden_characters_in_a_diff_or_excerpt_are_shown_in_every_format(fmt: Format) -> None:
    old = StatementContent(url=URL, title="t", body="文件名：report.txt。")
    new = StatementContent(url=URL, title="t", body="文件名：report\u202etxt.exe\u202c。\x1b[2J")
    changed = render(event(title="t\u2066"), diff_statements(old, new), fmt, 10_000).body
    excerpt = render(event(EventKind.NEW), None, fmt, 10_000, excerpt=new.body).body
    for body in (changed, excerpt):
        assert not any(c in body for c in "\u202e\u202c\u2066\x1b"), body
        assert "⟨U+202E⟩" in body and "⟨U+001B⟩" in body
