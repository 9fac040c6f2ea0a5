"""A catalogue load reuses the compiled code of every text compiled before in this process, or stored by
another in the cache folder: each text renders as a fresh compile of it does, an edited text is compiled
afresh, and a text that does not compile is reported at every load."""

from __future__ import annotations

import stat
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


def _as_a_new_process(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Nothing compiled in this process, and the cache folder under `home`: the folder of the stored code."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setattr(catalog_module, "_STORED_CODE", catalog_module._StoredCode())
    catalog_module._compiled.cache_clear()
    return catalog_module._StoredCode.folder()


def test_code_stored_by_another_process_renders_as_a_fresh_compile_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    samples = load_yaml((CONTENT / "samples.yaml").read_text(encoding="utf-8"))
    folder = _as_a_new_process(monkeypatch, tmp_path)
    load_catalog(CONTENT)  # compiles every text, and stores the code
    [stored] = folder.glob("code-*.marshal")
    assert not (folder.stat().st_mode | stored.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO)

    _as_a_new_process(monkeypatch, tmp_path)
    fresh_compile = catalog_module._environment().compile
    compiled: list[str] = []
    monkeypatch.setattr(catalog_module._COMPILER, "compile", compiled.append)
    read = load_catalog(CONTENT)
    assert compiled == []  # every text's code was read
    monkeypatch.setattr(catalog_module, "_compiled", fresh_compile)
    fresh = load_catalog(CONTENT)
    assert _every_rendering(read, samples) == _every_rendering(fresh, samples)


def _one_text(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    texts = content / REFERENCE_LANGUAGE / "texts.yaml"
    texts.parent.mkdir(parents=True)
    texts.write_text("greeting: Hello {{ name }}\n", encoding="utf-8")
    return content


def test_files_for_other_keys_are_kept_four_at_most(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = _as_a_new_process(monkeypatch, tmp_path)
    folder.mkdir(mode=0o700, parents=True)
    for n in range(6):
        (folder / f"code-other{n}.marshal").write_bytes(b"")
    load_catalog(_one_text(tmp_path))
    kept = sorted(path.name for path in folder.glob("code-*.marshal"))
    assert len(kept) == catalog_module._StoredCode.FILES_KEPT
    assert catalog_module._StoredCode._path(folder).name in kept


def test_stored_code_is_not_read_from_a_folder_others_may_write_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    content = _one_text(tmp_path)
    folder = _as_a_new_process(monkeypatch, tmp_path)
    load_catalog(content)
    assert list(folder.glob("code-*.marshal"))
    folder.chmod(0o770)

    _as_a_new_process(monkeypatch, tmp_path)
    compile_text = catalog_module._COMPILER.compile
    compiled: list[str] = []

    def counted(source: str) -> object:
        compiled.append(source)
        return compile_text(source)

    monkeypatch.setattr(catalog_module._COMPILER, "compile", counted)
    assert load_catalog(content).render("greeting", "en", name="Ana") == "Hello Ana"
    assert compiled == ["Hello {{ name }}"]
