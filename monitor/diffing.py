"""Readable diffs of Chinese (and English) statements with diff-match-patch.

Character level with semantic cleanup, so a one-character edit shows as that
character; long texts are aligned sentence by sentence first, which keeps the
diff fast and stops it from pairing unrelated sentences; every call is bounded
by a time limit (diff-match-patch then returns a coarser but still exact diff).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum

from diff_match_patch import diff_match_patch

from storage.content import compare
from storage.records import NO_CHANGE, Change, StatementContent

DIFF_TIMEOUT_SECONDS = 1.0
# Shown where a paragraph was split or joined: the break itself is otherwise invisible.
PARAGRAPH_MARK = "¶"
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")


class Op(StrEnum):
    EQUAL = "equal"
    DELETE = "delete"
    INSERT = "insert"


@dataclass(frozen=True)
class DiffOp:
    op: Op
    text: str


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: str
    new: str
    typographic: bool = False  # equal once width variants, quotes and spacing are folded


@dataclass(frozen=True)
class StatementDiff:
    """What changed (`change`, as `storage.content.compare` decided), and how it reads."""

    fields: tuple[FieldChange, ...]
    body: tuple[DiffOp, ...]
    change: Change = NO_CHANGE

    @property
    def is_empty(self) -> bool:
        return not self.change.fields

    @property
    def body_typographic(self) -> bool:
        return "body" in self.change.typographic_fields


_DMP_OPS = {0: Op.EQUAL, -1: Op.DELETE, 1: Op.INSERT}


def _engine(timeout: float) -> diff_match_patch:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = timeout
    return dmp


def diff_text(old: str, new: str, timeout: float = DIFF_TIMEOUT_SECONDS) -> list[DiffOp]:
    """Sentence alignment first, then characters inside each replaced run of sentences.

    One deadline covers the whole diff: once it has passed, remaining replaced runs are
    shown whole (deleted, then inserted) instead of character by character.
    """
    dmp = _engine(timeout)
    deadline = time.time() + timeout  # diff-match-patch measures deadlines with time.time()
    old_sentences, new_sentences = _sentences(old), _sentences(new)
    vocabulary: dict[str, str] = {}
    encoded_old = _encode(old_sentences, vocabulary)
    encoded_new = _encode(new_sentences, vocabulary)
    decode = {code: sentence for sentence, code in vocabulary.items()}
    coarse = [
        (op, "".join(decode[code] for code in codes))
        for op, codes in dmp.diff_main(encoded_old, encoded_new, False, deadline)
    ]
    result: list[DiffOp] = []
    index = 0
    while index < len(coarse):
        op, text = coarse[index]
        following = coarse[index + 1] if index + 1 < len(coarse) else None
        if op == -1 and following is not None and following[0] == 1:
            result.extend(_char_diff(dmp, text, following[1], deadline))
            index += 2
            continue
        result.append(DiffOp(_DMP_OPS[op], text))
        index += 1
    return _merge(result)


def _char_diff(dmp: diff_match_patch, old: str, new: str, deadline: float) -> list[DiffOp]:
    if time.time() >= deadline:
        return [DiffOp(Op.DELETE, old), DiffOp(Op.INSERT, new)]
    diffs = dmp.diff_main(old, new, True, deadline)
    dmp.diff_cleanupSemantic(diffs)
    return [DiffOp(_DMP_OPS[op], text) for op, text in diffs]


def _sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text) if part]


def _encode(sentences: list[str], vocabulary: dict[str, str]) -> str:
    # Private-use code points stand for whole sentences, as dmp's own line mode does.
    return "".join(vocabulary.setdefault(s, chr(0xF0000 + len(vocabulary))) for s in sentences)


def _merge(ops: list[DiffOp]) -> list[DiffOp]:
    merged: list[DiffOp] = []
    for op in ops:
        if not op.text:
            continue
        if merged and merged[-1].op is op.op:
            merged[-1] = DiffOp(op.op, merged[-1].text + op.text)
        else:
            merged.append(op)
    return merged


def diff_statements(old: StatementContent, new: StatementContent) -> StatementDiff:
    """The fields `compare` finds changed, metadata listed apart from the body's character diff."""
    change = compare(old, new)
    fields = tuple(
        FieldChange(
            name,
            _field_text(old, name),
            _field_text(new, name),
            typographic=name in change.typographic_fields,
        )
        for name in change.fields
        if name != "body"
    )
    body = tuple(diff_text(old.body, new.body)) if "body" in change.fields else ()
    return StatementDiff(fields, body, change)


def _field_text(content: StatementContent, name: str) -> str:
    value = getattr(content, name)
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ", ".join(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def render_marked(ops: list[DiffOp] | tuple[DiffOp, ...]) -> str:
    """Plain text with [-removed-]{+added+} marks (wdiff style)."""
    parts = []
    for op in ops:
        if op.op is Op.DELETE:
            parts.append(f"[-{op.text}-]")
        elif op.op is Op.INSERT:
            parts.append(f"{{+{op.text}+}}")
        else:
            parts.append(op.text)
    return "".join(parts)


def marked_paragraphs(ops: tuple[DiffOp, ...]) -> list[tuple[list[DiffOp], bool]]:
    """The diff cut into paragraphs, each with whether it holds a change.

    A paragraph split or join (a paragraph break inserted or deleted between text kept on
    both sides) ends its paragraph with an inserted or deleted PARAGRAPH_MARK.
    """
    pieces: list[list[DiffOp]] = [[]]
    breaks: list[Op] = []  # how each paragraph but the last ended
    for op in ops:
        for index, piece in enumerate(op.text.split("\n\n")):
            if index:
                breaks.append(op.op)
                pieces.append([])
            if piece:
                pieces[-1].append(DiffOp(op.op, piece))
    for index, ended in enumerate(breaks):
        if ended is not Op.EQUAL and _keeps_text(pieces[index]) and _keeps_text(pieces[index + 1]):
            pieces[index].append(DiffOp(ended, PARAGRAPH_MARK))
    return [(paragraph, any(op.op is not Op.EQUAL for op in paragraph)) for paragraph in pieces]


def _keeps_text(paragraph: list[DiffOp]) -> bool:
    return any(op.op is Op.EQUAL and op.text.strip() for op in paragraph)


@dataclass(frozen=True)
class Edit:
    """One place where the text changed, with a little unchanged text either side."""

    before: str
    removed: str
    added: str
    after: str
    paragraph: int = 0  # where it is in `marked_paragraphs`, counting from 0


def edits(ops: list[DiffOp] | tuple[DiffOp, ...], context: int = 12) -> list[Edit]:
    """Each run of deletions/insertions, so a one-character edit can be listed on its own."""
    found: list[Edit] = []
    index = 0
    paragraph = 0
    while index < len(ops):
        if ops[index].op is Op.EQUAL:
            paragraph += ops[index].text.count("\n\n")
            index += 1
            continue
        start = index
        while index < len(ops) and ops[index].op is not Op.EQUAL:
            index += 1
        run = ops[start:index]
        before = ops[start - 1].text[-context:] if start > 0 else ""
        after = ops[index].text[:context] if index < len(ops) else ""
        found.append(
            Edit(
                before=before,
                removed=_visible_breaks("".join(op.text for op in run if op.op is Op.DELETE)),
                added=_visible_breaks("".join(op.text for op in run if op.op is Op.INSERT)),
                after=after,
                paragraph=paragraph,
            )
        )
        paragraph += sum(op.text.count("\n\n") for op in run)
    return found


def _visible_breaks(text: str) -> str:
    return text.replace("\n\n", PARAGRAPH_MARK)
