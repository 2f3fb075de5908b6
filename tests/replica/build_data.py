"""Turn ../shared/seeds into tests/replica/data/statements.json (run once; the JSON is committed).

Seed 000 (a real zh listing, as text) gives 24 titles and excerpts; an excerpt is
the body's paragraphs joined by spaces and, for long statements, cut after 55
words with " ...". Seed 002 (a real detail page, as text) gives one whole body
with its byline, date, tags and category. Bodies of the other statements are
their excerpts split back into paragraphs (the cut ones lose their tail).

    python tests/replica/build_data.py ../shared/seeds
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date, timedelta
from pathlib import Path

READ_MORE = "阅读更多»"
SHOW_MORE = "展示更多"
ZH_MONTHS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]


def listing_items(text: str) -> list[tuple[str, str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    items = []
    for index, line in enumerate(lines):
        if line.strip() == READ_MORE:
            items.append((lines[index - 2].strip(), lines[index - 1].strip()))
    return items


def excerpt_paragraphs(excerpt: str) -> list[str]:
    text = excerpt.removesuffix(" ...").strip()
    # The excerpt joined paragraphs with one space; a space after a sentence end or
    # a colon is such a join (spaces inside English names are left alone).
    parts = re.split(r"(?<=[。！？”：:）)])\s+(?=\S)", text)
    return [part.strip() for part in parts if part.strip()]


def detail_seed(text: str) -> dict[str, object]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("通过 "))
    title = lines[start - 1].strip()
    author = lines[start].removeprefix("通过 ").strip()
    shown_date = next(line.strip() for line in lines[start:] if re.search(r"月 \d+, \d{4}", line))
    caption_end = max(i for i, line in enumerate(lines) if line.strip() == "DOS Seal")
    tag_line = next(i for i in range(caption_end, len(lines)) if "LGBTQI+, " in lines[i])
    body_lines = lines[caption_end + 1 : tag_line]
    paragraphs, current = [], []
    for line in [*body_lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(join_wrapped(current))
            current = []
    return {
        "title": title,
        "author": author,
        "shown_date": shown_date,
        "paragraphs": paragraphs,
        "tags": [tag.strip() for tag in lines[tag_line].split(",")],
        "categories": [lines[tag_line + 1].strip()],
    }


def join_wrapped(lines: list[str]) -> str:
    """Undo the text dump's line wrapping: no space inside Chinese, one between Latin words."""
    text = lines[0]
    for line in lines[1:]:
        latin_join = text[-1].isascii() and text[-1].isalnum() and line[0].isascii()
        text += (" " if latin_join else "") + line
    return text


def zh_date(day: date) -> str:
    return f"{ZH_MONTHS[day.month - 1]}月 {day.day}, {day.year}"


def main(seeds: Path) -> None:
    listing = (seeds / "000_d0d61ba09c0abb17.txt").read_text(encoding="utf-8")
    detail = detail_seed((seeds / "002_b3df7e5dbbcb5cc2.txt").read_text(encoding="utf-8"))
    statements = []
    day = date(2021, 3, 31)
    for index, (title, excerpt) in enumerate(listing_items(listing)):
        slug = f"statement-{index + 1:02d}"
        record = {
            "post_id": 41000 - index * 7,
            "slug": slug,
            "title": title,
            "paragraphs": excerpt_paragraphs(excerpt),
            "author": "U.S. Mission China",
            "published": f"{day.isoformat()}T07:35:12+00:00",
            "shown_date": zh_date(day),
            "tags": ["新闻简报"],
            "categories": ["新闻"],
        }
        if title == detail["title"]:
            record.update({k: detail[k] for k in ("paragraphs", "author", "tags", "categories")})
            record["shown_date"] = detail["shown_date"]
            record["published"] = "2021-02-08T07:35:12+00:00"
        statements.append(record)
        day -= timedelta(days=2)
    out = Path(__file__).with_name("data") / "statements.json"
    out.write_text(json.dumps(statements, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(statements)} statements -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/seeds"))
