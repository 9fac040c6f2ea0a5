"""A catalogue load reuses the compiled code of every text compiled before in this process: each text renders
as a fresh compile of it does, an edited text is compiled afresh, and a text that does not compile is reported
at every load."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import catalog as catalog_module
from bot.content.catalog import REFERENCE_LANGUAGE, Catalog, load_catalog, load_yaml

CONTENT = Path(__file__).resolve().parent.parent / "content"


def _every_rendering(catalog: Catalog, samples: dict[str, object]) -> dict[tuple[str, str], str]:
    """Every text in every language with the sample values, or the error it raises."""
    rendered: dict[tuple[str, str], str] = {}
    for language in catalog.languages:
        for key in catalog.keys(REFERENCE_LANGUAGE):
            try:
                rendered[language, key] = catalog.render(key, language, **samples)
            except Exception as error:  # an error is an outcome to compare too
                rendered[language, key] = f"{type(error).__name__}: {error}"
    return rendered


def test_every_text_renders_as_a_fresh_compile_of_it_does(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = load_yaml((CONTENT / "samples.yaml").read_text(encoding="utf-8"))
    load_catalog(CONTENT)
    reused = load_catalog(CONTENT)
    monkeypatch.setattr(catalog_module, "_compiled", catalog_module._COMPILER.compile)
    fresh = load_catalog(CONTENT)
    assert len(reused.keys()) > 300
    assert _every_rendering(reused, samples) == _every_rendering(fresh, samples)


def test_an_edited_text_is_compiled_afresh_and_a_broken_one_is_reported_at_every_load(tmp_path: Path) -> None:
    texts = tmp_path / REFERENCE_LANGUAGE / "texts.yaml"
    texts.parent.mkdir()
    texts.write_text("greeting: Hello {{ name }}\n", encoding="utf-8")
    assert load_catalog(tmp_path).render("greeting", "en", name="Ana") == "Hello Ana"
    texts.write_text("greeting: Hi {{ name }}, welcome\n", encoding="utf-8")
    assert load_catalog(tmp_path).render("greeting", "en", name="Ana") == "Hi Ana, welcome"
    texts.write_text("greeting: Hi {{ name\n", encoding="utf-8")
    for _ in range(2):
        problems: list[str] = []
        broken = load_catalog(tmp_path, problems)
        assert ("en", "greeting") in broken.broken
        assert len(problems) == 1 and "template error in 'greeting'" in problems[0], problems
