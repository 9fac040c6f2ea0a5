"""`python -m bot content preview --html DIR`: a page per module and language showing the chat as the patient
sees it (messages in order, buttons included), for a clinician to review an edit without running the bot."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from bot.content.modules import Module, ModuleLibrary
from bot.content_check import check
from bot.content_check.check import Report
from bot.content_check.preview import module_messages, write_pages
from tests.harness import CommandLine


@pytest.fixture
def report(shipped_report: Report, monkeypatch: pytest.MonkeyPatch) -> Report:
    monkeypatch.setattr(check, "check_content", lambda root: shipped_report)  # checked once per run
    assert shipped_report.catalog is not None and shipped_report.modules is not None
    return shipped_report


def _messages(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<div class="message">(.*?)</div>', page, re.S)]


def _buttons(page: str) -> list[str]:
    return [html.unescape(b) for b in re.findall(r"<span>(.*?)</span>", page)]


def test_a_page_per_module_and_language_as_the_patient_sees_it(
    cli: CommandLine, report: Report, tmp_path: Path
) -> None:
    catalog, library = report.catalog, report.modules
    assert catalog is not None and library is not None
    result = cli("content", "preview", "--html", str(tmp_path / "pages"))
    assert result.returncode == 0, result.stderr
    pages = sorted(p.name for p in (tmp_path / "pages").glob("*.*.html"))
    assert pages == sorted(f"{i}.{lang}.html" for i in library.ids() for lang in catalog.languages)
    assert result.stderr.strip() == f"wrote {len(pages)} pages; open {tmp_path / 'pages' / 'index.html'}"
    index = (tmp_path / "pages" / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{name}"' in index for name in pages)

    for language in catalog.languages:
        module = library.get("box_breathing", language)
        assert module is not None
        page = (tmp_path / "pages" / f"box_breathing.{language}.html").read_text(encoding="utf-8")
        shown = _messages(page)
        steps = len(module.steps)
        assert len(shown) == 1 + steps + 2  # the "before" rating, each step, the "after" rating, the close
        assert shown[0] == catalog.render(
            "coping.rate_before", language, title=module.title, summary=module.summary
        )
        for number, step in enumerate(module.steps, start=1):
            expected = catalog.render(
                "coping.step", language, title=module.title, number=number, total=steps, text=step.text
            )
            assert shown[number] == expected
        assert shown[-2] == catalog.render("coping.rate_after", language)
        buttons = _buttons(page)
        # Next and Stop under every step but the last; the 0-10 scale and Skip under both ratings.
        assert buttons.count(catalog.render("coping.next_button", language)) == steps - 1
        assert buttons.count(catalog.render("coping.stop_button", language)) == steps - 1
        assert buttons.count(catalog.render("coping.skip_button", language)) == 2
        assert buttons.count("10") == 2


def test_texts_are_escaped_in_the_page(report: Report, tmp_path: Path) -> None:
    assert report.catalog is not None
    sneaky = Module(
        id="sneaky",
        title="<b>Bold</b>",
        category="breathing",  # type: ignore[arg-type]
        minutes=2,
        summary="A & B",
        steps=({"text": "<script>alert(1)</script>"}, {"text": "two"}, {"text": "three"}),  # type: ignore[arg-type]
    )
    library = ModuleLibrary({"en": {"sneaky": sneaky}})
    (page,) = write_pages(report.catalog, library, tmp_path, only="sneaky")[:1]
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>Bold</b>" not in text
    assert _messages(text) == [m.text for m in module_messages(report.catalog, sneaky, "en")]


def test_preview_without_a_module_or_html_says_what_to_give(cli: CommandLine, report: Report) -> None:
    result = cli("content", "preview")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: name a module (e.g. box_breathing), or give --html DIR for pages of them all"
    )
    unknown = cli("content", "preview", "box_breathin", "--html", "pages")
    assert unknown.returncode == 1 and "no module 'box_breathin'" in unknown.stderr
