"""Loading a lexicon whose data was compiled before reuses that compile (in the process, or stored in the
cache folder by another): the same lexicon as a fresh compile, with its own file paths, and never once a
lexicon file has changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.risk import lexicon as lexicon_module
from bot.risk import semantic
from bot.risk.detector import Detector
from bot.risk.lexicon import Lexicon, Phrase, load_lexicon

CONTENT = Path(__file__).resolve().parent.parent / "content"


def _load(root: Path) -> Lexicon:
    problems: list[str] = []
    lexicon = load_lexicon(root, problems)
    assert problems == []
    assert lexicon is not None
    return lexicon


def _phrases(phrases: list[Phrase] | tuple[Phrase, ...]) -> list[tuple[str, str, str, object]]:
    return [(p.source, p.where, p.regex.pattern, p.anchor) for p in phrases]


def _everything(lexicon: Lexicon) -> object:
    normalizer = lexicon.normalizer
    return (
        [(e.entry, e.where, _phrases(e.phrases)) for e in lexicon.entries],
        [_phrases(p) for p in (lexicon.benign, lexicon.not_negation, lexicon.past, lexicon.recent)],
        [_phrases(p) for p in (lexicon.others, lexicon.reported, lexicon.denial, lexicon.refusal)],
        [_phrases(p) for p in (lexicon.stories, lexicon.earlier, lexicon.resolved)],
        [_phrases(p) for p in (lexicon.hedges, lexicon.present, lexicon.offers)],
        (lexicon.negation, lexicon.first_person, lexicon.subjects, lexicon.humor),
        (lexicon.negation_reach, lexicon.dating, lexicon.possessive, lexicon.negation_stop),
        (lexicon.examples, lexicon.safe_examples),
        (normalizer.rewrites, normalizer.joins, normalizer._known, normalizer._fuzzy),
    )


def _fresh(root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Lexicon:
    """A compile from scratch: none kept in this process, none in the (empty) cache folder."""
    empty = tmp_path / "no-cache"
    empty.mkdir(exist_ok=True)
    with monkeypatch.context() as patch:
        patch.setattr(lexicon_module, "_RECENT_COMPILES", {})
        patch.setenv(semantic.CACHE_ENV, str(empty))
        return _load(root)


def _first_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No compile kept in this process, and an empty cache folder (returned): what a first process finds."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(semantic.CACHE_ENV, str(folder))
    monkeypatch.setattr(lexicon_module, "_RECENT_COMPILES", {})
    return folder


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def test_a_copy_of_compiled_data_is_the_lexicon_a_fresh_compile_gives(
    copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _load(CONTENT)
    reused = _load(copy)
    assert reused.entries[0].phrases[0].where.startswith(str(copy))
    assert _everything(reused) == _everything(_fresh(copy, monkeypatch, tmp_path))


def test_a_compile_stored_by_another_process_is_the_lexicon_a_fresh_compile_gives(
    copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _first_process(monkeypatch, tmp_path)
    fresh = _load(copy)  # compiled here, and stored
    (stored,) = folder.glob("lexicon-*.json")
    calls: list[str] = []
    phrase = lexicon_module._Compiler.phrase

    def counted(compiler: lexicon_module._Compiler, source: str, seen: tuple[str, ...] = ()) -> object:
        calls.append(source)
        return phrase(compiler, source, seen)

    monkeypatch.setattr(lexicon_module._Compiler, "phrase", counted)
    monkeypatch.setattr(lexicon_module, "_RECENT_COMPILES", {})  # as a new process finds it
    read = _load(copy)
    assert calls == []  # nothing compiled: the stored compile was read
    assert _everything(read) == _everything(fresh)
    assert Detector(read).screen("i want to kill myself tonight").matches

    other = stored.read_text(encoding="utf-8").replace('"key": "', '"key": "x', 1)
    stored.write_text(other, encoding="utf-8")
    monkeypatch.setattr(lexicon_module, "_RECENT_COMPILES", {})
    assert _everything(_load(copy)) == _everything(fresh)
    assert calls  # a file for other data (here: its key changed) is not read: compiled again


def test_an_edited_lexicon_is_the_lexicon_a_fresh_compile_gives(
    copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _load(CONTENT)
    path = copy / "en" / "risk" / "lexicon.yaml"
    text = path.read_text(encoding="utf-8")
    phrase = "      - kill|killing|kil|shoot|shooting|hang|hanging|drown|drowning myself\n"
    assert phrase in text
    path.write_text(
        text.replace(phrase, "").replace(
            "  - category: suicide\n",
            "  - category: suicide\n    level: high\n    patterns: [zorblax quintafine]\n"
            "  - category: suicide\n",
            1,
        ),
        encoding="utf-8",
    )
    edited = _load(copy)
    assert Detector(edited).screen("zorblax quintafine").matches
    assert _everything(edited) == _everything(_fresh(copy, monkeypatch, tmp_path))


def test_only_the_compiles_used_last_are_stored(
    copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _first_process(monkeypatch, tmp_path)
    monkeypatch.setattr(lexicon_module, "STORED_COMPILES_KEPT", 1)
    _load(CONTENT)
    [shipped] = folder.glob("lexicon-*.json")
    path = copy / "en" / "risk" / "lexicon.yaml"
    edited_text = path.read_text(encoding="utf-8").replace('reviewed: "', 'reviewed: "again ', 1)
    path.write_text(edited_text, encoding="utf-8")
    _load(copy)
    [edited] = folder.glob("lexicon-*.json")
    assert edited != shipped
