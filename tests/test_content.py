from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import ContentError, load_catalog
from bot.enrollment.onboarding import COMMON_TIMEZONES
from tests.harness import SHIPPED_CONTENT, load_content_once, shipped_check

CONTENT = Path(__file__).resolve().parent.parent / "content"
# That every shipped text renders, non-empty and within Telegram's limits, in every language, is
# `content check`'s job: see tests/test_content_check.py::test_shipped_content_passes.


def test_shipped_languages() -> None:
    assert {"en", "es"} <= set(load_catalog(CONTENT).languages)


def test_spanish_has_every_english_text() -> None:
    catalog = load_catalog(CONTENT)
    assert set(catalog.keys("es")) == set(catalog.keys("en"))


def test_every_offered_zone_has_a_label() -> None:
    catalog = load_catalog(CONTENT)
    for zone in COMMON_TIMEZONES:
        assert catalog.has(f"onboarding.zones.{zone.split('/')[-1].lower()}")


@pytest.mark.parametrize("language", ["en", "es"])
def test_skip_has_one_name_in_each_language(language: str) -> None:
    """Every Skip button reads the same, and a text that tells the patient to tap it uses that name."""
    catalog = load_catalog(CONTENT)
    skips = [k for k in catalog.keys(language) if k.rsplit(".", 1)[-1] in ("skip", "skip_button")]
    labels = {catalog.render(k, language) for k in skips}
    assert len(skips) >= 4 and len(labels) == 1, labels
    [skip] = labels
    asks = ("schedule.ask_reason", "checkin.ask.note")
    assert all(skip in catalog.render(key, language) for key in asks)


def test_missing_translation_falls_back_to_english(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "es").mkdir()
    (tmp_path / "en" / "a.yaml").write_text("greeting: Hello {{ name }}\nonly_en: Just English\n")
    (tmp_path / "es" / "a.yaml").write_text("greeting: Hola {{ name }}\n")
    catalog = load_catalog(tmp_path)
    assert catalog.render("greeting", "es", name="Ana") == "Hola Ana"
    assert catalog.render("only_en", "es") == "Just English"


def test_broken_template_is_reported_with_path_and_line(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.yaml").write_text("fine: ok\nbroken: Hello {{ name\n")
    with pytest.raises(ContentError) as caught:
        load_catalog(tmp_path)
    assert f"{tmp_path / 'en' / 'a.yaml'}:2:" in str(caught.value)


def test_duplicate_key_and_bad_yaml_are_reported(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.yaml").write_text("x: one\n")
    (tmp_path / "en" / "b.yaml").write_text("x: two\n")
    (tmp_path / "en" / "c.yaml").write_text("y: [unclosed\n")
    with pytest.raises(ContentError) as caught:
        load_catalog(tmp_path)
    problems = caught.value.problems
    assert any("duplicate key 'x'" in p and "b.yaml:1" in p for p in problems)
    assert any("c.yaml" in p and "not valid YAML" in p for p in problems)


def test_undefined_variable_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.yaml").write_text("greeting: Hello {{ nmae }}\n")
    catalog = load_catalog(tmp_path)
    with pytest.raises(Exception, match="nmae"):
        catalog.render("greeting", "en", name="Ana")


def test_the_content_repr_names_its_folder_not_every_text() -> None:
    """Whatever holds the content (a Runtime, an asyncio task that returned one) is repr'd in tracebacks and
    in asyncio's own messages: a thousand texts there cost milliseconds each time and tell nobody anything."""
    shown = repr(load_content_once(SHIPPED_CONTENT))
    assert str(SHIPPED_CONTENT) in shown and len(shown) < 20_000, len(shown)  # the texts alone: 280,000


def test_the_shipped_content_is_checked_once_per_test_run() -> None:
    """Checking every text takes seconds: `shipped_check` hands out the check that loading the shipped content
    made, not a new one each time it is asked."""
    load_content_once(SHIPPED_CONTENT)
    assert shipped_check() is shipped_check()
