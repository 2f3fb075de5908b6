"""What a person sees, in real headless Chromium (Debian's `chromium`, driven by Playwright).

Over the same crawled archive as the API tests: the statement list on a phone, a
statement full of markup shown as text (nothing runs), a timeline, and a one-character
edit in the inline and side-by-side diffs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.served import HOSTILE, Served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = pytest.mark.parametrize("served", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is not installed: run the set-up in the README (Tests)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Visit:
    """A browser tab that records every dialog (alert) and script error it sees."""

    def __init__(self, browser: Browser, viewport: dict[str, int]) -> None:
        self.page: Page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    def fits_the_screen(self) -> bool:
        width: int = self.page.evaluate("document.documentElement.scrollWidth")
        return width <= self.page.viewport_size["width"]  # type: ignore[index]


@pytest.fixture
def phone(browser: Browser) -> Iterator[Visit]:
    visit = Visit(browser, PHONE)
    yield visit
    visit.page.close()


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Visit]:
    visit = Visit(browser, DESKTOP)
    yield visit
    visit.page.close()


def test_on_a_phone_the_list_reads_and_markup_in_a_statement_never_runs(
    served: Served, phone: Visit
) -> None:
    page = phone.page
    page.goto(served.base + "/")
    expect(page.locator("h1")).to_contain_text("Statements · 声明")
    expect(page.locator("ol.statements > li")).to_have_count(26)
    assert phone.fits_the_screen()
    hostile = page.locator("ol.statements").get_by_role("link", name=HOSTILE.title)
    expect(hostile).to_be_visible()  # the title's markup, shown as its text
    hostile.click()
    expect(page.locator("h1")).to_have_text(HOSTILE.title)
    page.get_by_role("link", name="Current text · 当前文本").click()
    article = page.locator("article.text")
    expect(article).to_contain_text("<script>alert(1)</script>")
    expect(article).to_contain_text("<img src=x onerror=alert(2)>")
    assert page.locator("article img, script").count() == 0
    assert phone.fits_the_screen()
    assert phone.dialogs == [] and phone.errors == []


def test_from_a_timeline_to_a_diff_a_one_character_edit_stands_out(
    served: Served, desktop: Visit
) -> None:
    page = desktop.page
    page.goto(f"{served.base}/statements/{served.edited_id}")
    expect(page.locator("ol.timeline > li")).to_have_count(2)
    page.get_by_role("link", name="what changed · 修改内容").click()
    expect(page.locator("h2").first).to_contain_text("6 edits in the body")
    first_edit = page.locator("ol.edits > li").first
    expect(first_edit.locator("del")).to_have_text("项")
    expect(first_edit.locator("ins")).to_have_text("項")
    ringed = first_edit.locator("ins").evaluate(
        "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).backgroundColor]"
    )
    assert ringed[0] == "solid" and ringed[1] != "rgba(0, 0, 0, 0)"
    struck = page.locator(".inline del").first.evaluate(
        "e => getComputedStyle(e).textDecorationLine"
    )
    assert struck == "line-through"

    page.get_by_role("link", name="Side by side · 并排显示").click()
    old = page.locator(".cell.old.changed").first
    new = page.locator(".cell.new.changed").first
    expect(old.locator("del")).to_have_text("项")
    expect(new.locator("ins")).to_have_text("項")
    expect(old.locator("ins")).to_be_hidden()  # each side shows only its own half
    expect(new.locator("del")).to_be_hidden()
    old_box, new_box = old.bounding_box(), new.bounding_box()
    assert old_box and new_box
    assert old_box["x"] + old_box["width"] <= new_box["x"]  # two columns, same row
    assert abs(old_box["y"] - new_box["y"]) < 1
    assert desktop.dialogs == [] and desktop.errors == []


def test_side_by_side_falls_back_to_inline_on_a_phone_and_search_finds_two_characters(
    served: Served, phone: Visit
) -> None:
    page = phone.page
    page.goto(f"{served.base}/statements/{served.edited_id}/diff?view=side")
    expect(page.locator(".cell.old").first).to_be_hidden()
    changed = page.locator(".cell.new.changed").first
    expect(changed.locator("del")).to_be_visible()  # one column, deletions and insertions
    expect(changed.locator("ins")).to_be_visible()
    assert phone.fits_the_screen()
    # An edit in the list takes the reader to its place in the body.
    page.goto(f"{served.base}/statements/{served.edited_id}/diff")
    page.locator("ol.edits a.goto").nth(2).click()
    target = page.evaluate("location.hash")
    expect(page.locator(target)).to_be_in_viewport()
    page.get_by_label("Search · 搜索").first.fill("拜登")
    page.get_by_role("button", name="Search · 搜索").click()
    expect(page.locator("p.notice")).to_contain_text("contain “拜登”")
    expect(page.locator("ol.hits mark").first).to_have_text("拜登")
    assert phone.dialogs == []


def test_the_page_as_captured_shows_the_text_and_loads_nothing_from_anywhere(
    served: Served, desktop: Visit
) -> None:
    page = desktop.page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{served.base}/statements/{served.edited_id}/revisions/1")
    page.get_by_role("link", name="The page as captured · 原始页面").click()
    frame = page.frame_locator("iframe.captured")
    expect(frame.locator("body")).to_contain_text("签署了一项总统备忘录")
    expect(frame.locator(".embassy-watch-placeholder").first).to_be_visible()  # the logo
    assert asked and all(url.startswith(served.base + "/") for url in asked), asked
    assert desktop.dialogs == [] and desktop.errors == []


def test_chinese_renders_as_glyphs_not_boxes(served: Served, desktop: Visit) -> None:
    """Without a CJK font every character draws as the same empty box (tests/setup-browser)."""
    page = desktop.page
    page.goto(f"{served.base}/statements/{served.edited_id}/revisions/1")
    drawn = page.evaluate(
        """() => {
            const canvas = document.createElement("canvas");
            canvas.width = canvas.height = 64;
            const pen = canvas.getContext("2d");
            const draw = (text) => {
                pen.clearRect(0, 0, 64, 64);
                pen.font = "48px sans-serif";
                pen.fillText(text, 0, 48);
                return Array.from(pen.getImageData(0, 0, 64, 64).data).join();
            };
            return [draw("香"), draw("港"), draw(String.fromCodePoint(0x10FFFD))];
        }"""
    )
    xiang, gang, unassigned = drawn
    assert xiang != gang  # two glyphs, not two boxes
    assert unassigned not in (xiang, gang)
