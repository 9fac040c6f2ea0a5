"""The labelled corpus: every file's origin is written down, every row is a pair of the labelling guide, no
message is there twice, and the shipped corpus passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.risk.corpus import CORPUS_DIR, PAIRS, SOURCES_FILE, load_examples
from bot.risk.levels import Category, RiskLevel

CONTENT = Path(__file__).resolve().parent.parent / "content"
SOURCE = "written by an LLM helper session from a labelling guide, not from patients"


def _content(tmp_path: Path, files: dict[str, str], sources: str | None = None) -> Path:
    """A content folder with an English risk folder holding these corpus files and sources.yaml (listing
    every file unless `sources` is given)."""
    folder = tmp_path / "content" / "en" / "risk" / CORPUS_DIR
    folder.mkdir(parents=True)
    for name, rows in files.items():
        (folder / name).write_text("level\tcategory\ttext\n" + rows, encoding="utf-8")
    if sources is None:
        sources = "files:\n" + "".join(
            f"  - file: {name}\n    source: {SOURCE}\n    date: 2026-12-07\n    writer: a test\n"
            for name in files
        )
    (folder / SOURCES_FILE).write_text(sources, encoding="utf-8")
    return tmp_path / "content"


def _load(root: Path) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    found = load_examples(root, problems)
    return [f"{e.level.label}/{e.category}" for e in found], problems


def test_the_shipped_corpus_loads_with_its_sources() -> None:
    problems: list[str] = []
    found = load_examples(CONTENT, problems)
    assert problems == []
    corpus = [e for e in found if e.path.parent.name == CORPUS_DIR]
    assert len(found) >= 5000 and len(corpus) >= 3900
    assert sum(e.hard_negative for e in found) / len(found) >= 0.4
    assert sum(e.language == "es" for e in found) / len(found) >= 0.3
    assert {(e.level, e.category) for e in corpus} <= PAIRS


def test_imminent_self_harm_and_danger_are_pairs_of_the_guide(tmp_path: Path) -> None:
    rows = "imminent\tself_harm\tcut too deep, it wont stop\nimminent\tdanger\the has a knife at the door\n"
    labels, problems = _load(_content(tmp_path, {"a.tsv": rows}))
    assert problems == [] and labels == ["imminent/self_harm", "imminent/danger"]
    assert Category("danger") in Category and RiskLevel.parse("imminent") is RiskLevel.IMMINENT


def test_a_file_not_listed_in_sources_is_refused(tmp_path: Path) -> None:
    root = _content(tmp_path, {"a.tsv": "none\teveryday\thello there\n"}, sources="files: []\n")
    labels, problems = _load(root)
    assert labels == [] and len(problems) == 1 and "a.tsv:1: not listed in" in problems[0]


def test_a_listed_file_needs_source_date_and_writer_and_must_exist(tmp_path: Path) -> None:
    sources = "files:\n  - file: a.tsv\n    source: x\n    date: someday\n  - file: gone.tsv\n    source: x\n"
    root = _content(tmp_path, {"a.tsv": "none\teveryday\thello there\n"}, sources=sources)
    _, problems = _load(root)
    text = "\n".join(problems)
    assert "a.tsv: missing writer" in text and "date 'someday' is not a date" in text
    assert "gone.tsv is listed but not in" in text and "gone.tsv: missing date, writer" in text


@pytest.mark.parametrize(
    "row",
    [
        "moderate\tsuicide\ti feel low",  # not a pair of the guide
        "none\tjoke\tlol",  # `none` rows say which pitfall, from the guide's list
        "urgent\tsuicide\tbye",  # not a level
        "imminent\tsuicide\t ",  # no message
    ],
)
def test_a_row_outside_the_guide_is_refused(tmp_path: Path, row: str) -> None:
    labels, problems = _load(_content(tmp_path, {"a.tsv": row + "\n"}))
    assert labels == [] and len(problems) == 1 and "a.tsv:2:" in problems[0]


def test_the_same_message_twice_is_refused_across_files_and_languages(tmp_path: Path) -> None:
    root = _content(
        tmp_path,
        {"a.tsv": "none\tslang\tim dead 💀\n", "b.tsv": "high\trelapse\tI used last night\n"},
    )
    spanish = root / "es" / "risk"
    spanish.mkdir(parents=True)
    (spanish / "examples.tsv").write_text(
        "level\tcategory\ttext\nnone\t\tIm dead!! 💀\nhigh\trelapse\ti USED last night.\n", encoding="utf-8"
    )
    labels, problems = _load(root)
    assert labels == ["none/slang", "high/relapse"]
    assert len(problems) == 2 and all("the same message as" in p for p in problems)
