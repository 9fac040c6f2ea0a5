"""Loading a lexicon whose data was compiled before reuses that compile: the same lexicon as a fresh compile,
with its own file paths, and never once a lexicon file has changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.risk import lexicon as lexicon_module
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


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def test_a_copy_of_compiled_data_is_the_lexicon_a_fresh_compile_gives(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(CONTENT)
    reused = _load(copy)
    assert reused.entries[0].phrases[0].where.startswith(str(copy))
    monkeypatch.setattr(lexicon_module, "_RECENT_COMPILES", {})
    assert _everything(reused) == _everything(_load(copy))


def test_an_edited_lexicon_is_the_lexicon_a_fresh_compile_gives(
    copy: Path, monkeypatch: pytest.MonkeyPatch
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
    monkeypatch.setattr(lexicon_module, "_RECENT_COMPILES", {})
    assert _everything(edited) == _everything(_load(copy))
