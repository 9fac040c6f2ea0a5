"""The labelled messages the detector learns from: `content/<lang>/risk/examples.tsv` and every
`content/<lang>/risk/corpus/*.tsv`, each corpus file with its source, date and writer in that folder's
`sources.yaml`.

`examples.tsv` is the detector's history (sets measured blind and then used to tune the lexicon); its `none`
rows may carry any note as their category. A corpus file follows the labelling guide strictly: every row is
one of the (level, category) pairs in `PAIRS`. Nothing is learnt from a file whose origin is not written
down, and no message may appear twice anywhere (in any language, in any file): a duplicate would count twice
in training and could sit on both sides of a validation split.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.content.catalog import load_yaml, yaml_problem
from bot.risk.labelled import EvalFileError, Labelled, read_labelled
from bot.risk.levels import Category, RiskLevel

EXAMPLES_FILE = "examples.tsv"
CORPUS_DIR = "corpus"
SOURCES_FILE = "sources.yaml"
SOURCE_FIELDS = ("source", "date", "writer")

IMMINENT, HIGH, MODERATE, NONE = RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.MODERATE, RiskLevel.NONE
# The (level, category) pairs of the labelling guide: what a corpus row may be.
RISK_PAIRS: frozenset[tuple[RiskLevel, str]] = frozenset(
    {
        (IMMINENT, Category.SUICIDE),
        (IMMINENT, Category.OVERDOSE),
        (IMMINENT, Category.SELF_HARM),
        (IMMINENT, Category.HARM_OTHERS),
        (IMMINENT, Category.DANGER),
        (HIGH, Category.SUICIDE),
        (HIGH, Category.SELF_HARM),
        (HIGH, Category.RELAPSE),
        (HIGH, Category.USE_PLAN),
        (HIGH, Category.DANGER),
        (MODERATE, Category.CRAVING),
        (MODERATE, Category.HOPELESS),
    }
)
# `none` rows say which pitfall they are; all but `everyday` are hard negatives (they share words with a
# crisis message without being one).
EVERYDAY = "everyday"
HARD_NEGATIVES = frozenset(
    {"hyperbole", "slang", "negation", "past", "other_person", "recovery", "medical_ok", "humor", "lyrics"}
    | {"idiom"}
)
NONE_CATEGORIES = HARD_NEGATIVES | {EVERYDAY}
PAIRS = RISK_PAIRS | {(NONE, c) for c in NONE_CATEGORIES}


@dataclass(frozen=True)
class Example(Labelled):
    language: str = ""
    path: Path = Path()

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def hard_negative(self) -> bool:
        return self.level is NONE and self.category in HARD_NEGATIVES


def same_message(text: str) -> str:
    """What two rows must differ in: words, ignoring case, accents' absence aside, spacing and punctuation."""
    words = " ".join(re.findall(r"\w+", text.casefold()))
    return words or " ".join(text.casefold().split())  # a message of emoji alone


def _languages(root: Path) -> list[Path]:
    return sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and (d / "risk").is_dir()
    )


def _sources(folder: Path, problems: list[str]) -> dict[str, int]:
    """The files `sources.yaml` lists, each with the line it is listed on; a wrong entry is a problem."""
    path = folder / SOURCES_FILE
    if not path.is_file():
        problems.append(f"{path}:1: missing: each labelled file in {folder} with its source, date and writer")
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        problems.append(yaml_problem(path, error))
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        problems.append(
            f"{path}:1: must have `files:`, a list of entries with file, {', '.join(SOURCE_FIELDS)}"
        )
        return {}
    lines = text.splitlines()
    listed: dict[str, int] = {}
    for entry in files:
        name = entry.get("file") if isinstance(entry, dict) else None
        line = next((n for n, t in enumerate(lines, 1) if name and str(name) in t), 1)
        if not isinstance(name, str) or not isinstance(entry, dict):
            problems.append(f"{path}:{line}: each entry needs `file:`, the name of a .tsv in {folder.name}/")
            continue
        missing = [f for f in SOURCE_FIELDS if not str(entry.get(f) or "").strip()]
        if missing:
            problems.append(f"{path}:{line}: {name}: missing {', '.join(missing)}")
        date = entry.get("date")
        if date is not None and not isinstance(date, datetime.date):
            try:
                datetime.date.fromisoformat(str(date))
            except ValueError:
                problems.append(f"{path}:{line}: {name}: date {date!r} is not a date such as 2026-12-07")
        extra = set(entry) - {"file", *SOURCE_FIELDS, "note"}
        if extra:
            problems.append(f"{path}:{line}: {name}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
        if name in listed:
            problems.append(f"{path}:{line}: {name} is listed twice")
        if not (folder / name).is_file():
            problems.append(f"{path}:{line}: {name} is listed but not in {folder}")
        listed[name] = line
    return listed


def _corpus_files(risk: Path, problems: list[str]) -> list[Path]:
    folder = risk / CORPUS_DIR
    if not folder.is_dir():
        return []
    listed = _sources(folder, problems)
    found: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.name == SOURCES_FILE or path.name.startswith(".") or path.suffix == ".md":
            continue  # (notes for the people who write and review the corpus)
        if path.suffix != ".tsv":
            problems.append(f"{path}:1: only labelled .tsv files, {SOURCES_FILE} and notes (.md) belong here")
        elif path.name not in listed:
            problems.append(f"{path}:1: not listed in {folder / SOURCES_FILE}: say where it came from first")
        else:
            found.append(path)
    return found


def _check_row(item: Labelled, path: Path, strict: bool, problems: list[str]) -> bool:
    where = f"{path}:{item.line}"
    if not item.text.strip():
        problems.append(f"{where}: no message")
        return False
    if strict:
        if "\t" in item.text:
            problems.append(f"{where}: more than 3 columns (a tab inside the message?)")
            return False
        if (item.level, item.category) not in PAIRS:
            problems.append(
                f"{where}: {item.level.label}/{item.category} is not a pair of the labelling guide "
                f"(content/en/risk/README.md)"
            )
            return False
    elif item.level is not NONE and item.category not in {str(c) for c in Category}:
        # (a `none` example's category is free: a note on the pitfall it is, such as `past`)
        problems.append(
            f"{where}: category {item.category!r} is not one of {', '.join(sorted(str(c) for c in Category))}"
        )
        return False
    return True


def load_examples(root: Path, problems: list[str]) -> list[Example]:
    """Every language's labelled messages, examples.tsv then the corpus files; each wrong row, unlisted
    file and duplicate is a problem (path:line)."""
    found: list[Example] = []
    seen: dict[str, str] = {}
    if not root.is_dir():
        return found
    for language in _languages(root):
        risk = language / "risk"
        files = [(p, False) for p in [risk / EXAMPLES_FILE] if p.is_file()]
        files += [(p, True) for p in _corpus_files(risk, problems)]
        for path, strict in files:
            try:
                items = read_labelled(path)
            except EvalFileError as error:
                problems.append(str(error))
                continue
            for item in items:
                if not _check_row(item, path, strict, problems):
                    continue
                key = same_message(item.text)
                where = f"{path}:{item.line}"
                if key in seen:
                    problems.append(f"{where}: the same message as {seen[key]}")
                    continue
                seen[key] = where
                found.append(
                    Example(
                        item.line, item.level, item.category, item.text, language=language.name, path=path
                    )
                )
    return found
