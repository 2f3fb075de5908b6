"""Diffs of Chinese statements: one changed character shows as that character."""

from __future__ import annotations

import random

from monitor.diffing import (
    DiffOp,
    Op,
    diff_statements,
    diff_text,
    marked_paragraphs,
    render_marked,
)
from monitor.messages import render_diff
from storage.records import StatementContent


def rebuild(ops: list, side: Op) -> str:  # type: ignore[type-arg]
    return "".join(op.text for op in ops if op.op in (Op.EQUAL, side))


def test_one_character_edit_is_that_character() -> None:
    old = "外交部发言人表示，中方坚决反对。今天，拜登总统签署了一项总统备忘录。"
    new = old.replace("一项", "一項")
    assert render_marked(diff_text(old, new)) == (
        "外交部发言人表示，中方坚决反对。今天，拜登总统签署了一[-项-]{+項+}总统备忘录。"
    )


def test_word_replacement_is_not_a_whole_line_block() -> None:
    old = "外交部发言人表示，中方坚决反对。"
    new = "外交部发言人指出，中方强烈反对。"
    marked = render_marked(diff_text(old, new))
    assert marked.startswith("外交部发言人")
    assert "[-表示-]{+指出+}" in marked


def test_long_texts_are_aligned_by_sentence_and_stay_exact() -> None:
    rng = random.Random(7)
    alphabet = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质"
    sentences = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(15, 60))) + "。" for _ in range(400)
    ]
    old = "".join(sentences)
    edited = list(sentences)
    for index in range(5, 400, 40):
        edited[index] = edited[index][:3] + "改" + edited[index][4:]
    new = "".join(edited)
    ops = diff_text(old, new)
    assert rebuild(ops, Op.DELETE) == old and rebuild(ops, Op.INSERT) == new
    changed = [op for op in ops if op.op is not Op.EQUAL]
    assert all(len(op.text) <= 2 for op in changed)


def test_metadata_changes_are_listed_apart_from_the_body() -> None:
    old = StatementContent(url="u", title="标题", body="第一段。\n\n第二段。", tags=("a",))
    new = StatementContent(url="u", title="新标题", body="第一段。\n\n第二段！", tags=("a", "b"))
    diff = diff_statements(old, new)
    assert [change.name for change in diff.fields] == ["title", "tags"]
    text = render_diff(diff)
    assert "title: {+新+}标题" in text
    assert "tags: a{+, b+}" in text
    assert "第二段[-。-]{+！+}" in text


def test_identical_content_has_an_empty_diff() -> None:
    same = StatementContent(url="u", title="t", body="正文。")
    assert diff_statements(same, same).is_empty


def test_past_the_deadline_a_diff_is_coarser_but_still_exact() -> None:
    old = "第一句没有变。第二句有一处修改。第三句也一样。" * 50
    new = old.replace("修改", "變更").replace("第三句", "第3句")
    for timeout in (0.0, 1.0):
        ops = diff_text(old, new, timeout=timeout)
        assert "".join(op.text for op in ops if op.op is not Op.INSERT) == old
        assert "".join(op.text for op in ops if op.op is not Op.DELETE) == new
    # With no time left, the changed stretch is shown whole (deleted, then inserted).
    coarse = diff_text(old, new, timeout=0.0)
    assert [op.op for op in coarse] == [Op.EQUAL, Op.DELETE, Op.INSERT]
    assert coarse[0] == DiffOp(Op.EQUAL, "第一句没有变。")


def test_a_paragraph_split_or_join_shows_a_pilcrow_where_the_break_changed() -> None:
    one = "第一句话，接着说。第二句话。\n\n另一段。"
    two = "第一句话，接着说。\n\n第二句话。\n\n另一段。"
    split = marked_paragraphs(tuple(diff_text(one, two)))
    assert [render_marked(pieces) for pieces, _ in split] == [
        "第一句话，接着说。{+¶+}",
        "第二句话。",
        "另一段。",
    ]
    assert [changed for _, changed in split] == [True, False, False]
    joined = marked_paragraphs(tuple(diff_text(two, one)))
    assert render_marked(joined[0][0]) == "第一句话，接着说。[-¶-]"
    # A whole paragraph added is marked as added text, without a pilcrow.
    added = marked_paragraphs(tuple(diff_text(one, one + "\n\n新的一段。")))
    assert [render_marked(pieces) for pieces, _ in added][-1] == "{+新的一段。+}"
    assert "¶" not in render_diff(
        diff_statements(
            StatementContent(url="u", title="t", body=one),
            StatementContent(url="u", title="t", body=one + "\n\n新的一段。"),
        )
    )


def test_the_diff_shows_only_what_compare_calls_changed() -> None:
    old = StatementContent(url="u", title="美国 声明", body="正文，第一句。", tags=("a", "b"))
    new = StatementContent(url="u", title="美国声明", body="正文,第一句。", tags=("b", "a"))
    diff = diff_statements(old, new)
    assert [(f.name, f.typographic) for f in diff.fields] == [("title", True)]
    assert diff.body_typographic and diff.change.typographic and not diff.is_empty
    assert "tags" not in render_diff(diff)
