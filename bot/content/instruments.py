"""Validated questionnaires (PHQ-9, GAD-7, the Brief Addiction Monitor): `content/<lang>/measures/<id>.yaml`,
each with its items, answer options, scores and bands, validated against a schema (errors as `path:line`).

English is the reference. A translation must have the same items, option values, conditions, scores, bands and
flags as the English file (only the words differ), or `content check` refuses it: a score must never depend on
the language it was asked in. A translation not published by the instrument's owners says `official: false`
and is listed as a warning until a clinician has reviewed it.

The scoring itself is in `bot.measures.scoring`; this module only reads and checks the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.content.catalog import REFERENCE_LANGUAGE
from bot.content.modules import line_of, read_model

ID_PATTERN = r"^[a-z][a-z0-9_]{0,11}$"  # questionnaire ids travel in button data and settings
ITEM_PATTERN = r"^[a-z0-9]{1,12}$"
MAX_TEXT = 600
MAX_OPTION_VALUE = 99


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: int = Field(ge=0, le=MAX_OPTION_VALUE)  # what the answer adds to a score
    label: str = Field(min_length=1, max_length=40)  # the button


class Condition(BaseModel):
    """Ask an item only when `item` was answered above `above`, or, without `item`, when any scored item
    was (the "if you checked off any problems" question)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str | None = None
    above: int = Field(default=0, ge=0, le=MAX_OPTION_VALUE)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ITEM_PATTERN)
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    # Shown above the item; None: the questionnaire's stem; "": none (the item is a whole question).
    stem: str | None = Field(default=None, max_length=MAX_TEXT)
    options: str  # the name of one of the questionnaire's option sets
    ask_if: Condition | None = None
    # An answer above the lowest option starts the suicide screener at once (PHQ-9 item 9), and ends the
    # questionnaire there: crisis first.
    safety: bool = False


class Band(BaseModel):
    """From `min` up to the next band's `min`: a severity band (e.g. PHQ-9 10-14, "moderate")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=40)


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    name: str = Field(min_length=1, max_length=40)
    items: tuple[str, ...] = Field(min_length=1)  # the sum of these items' values
    higher_is: Literal["worse", "better"] = "worse"
    bands: tuple[Band, ...] = ()
    # The care team's flag (/caseload, and a notice): at or above `flag_at`, or risen by `flag_rise` or more
    # since the last complete one. For a score where higher is better, a fall by `flag_rise` or more.
    flag_at: int | None = Field(default=None, ge=0)
    flag_rise: int | None = Field(default=None, ge=1)


class Instrument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=20)  # short, as buttons and lists show it: "PHQ-9"
    title: str = Field(min_length=1, max_length=120)
    # False: a translation not published by the instrument's owners (shown as such; review it clinically).
    official: bool = True
    intro: str = Field(min_length=1, max_length=MAX_TEXT)  # before the first question
    stem: str = Field(default="", max_length=MAX_TEXT)
    option_sets: dict[str, tuple[Option, ...]]
    items: tuple[Item, ...] = Field(min_length=1, max_length=40)
    scores: tuple[Score, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        for name, options in self.option_sets.items():
            values = [o.value for o in options]
            if not 2 <= len(options) <= 10:
                raise ValueError(f"option set {name!r}: 2 to 10 options")
            if len(set(values)) != len(values):
                raise ValueError(f"option set {name!r}: two options have the same value")
        seen: list[str] = []
        for item in self.items:
            if item.id in seen:
                raise ValueError(f"item {item.id!r} twice")
            if item.options not in self.option_sets:
                raise ValueError(f"item {item.id!r}: no option set {item.options!r}")
            condition = item.ask_if
            if condition is not None and condition.item is not None and condition.item not in seen:
                raise ValueError(f"item {item.id!r}: ask_if names {condition.item!r}, not an earlier item")
            seen.append(item.id)
        for score in self.scores:
            unknown = [i for i in score.items if i not in seen]
            if unknown:
                raise ValueError(f"score {score.id!r}: no item {', '.join(unknown)}")
            low, high = self.range_of(score)
            starts = [band.min for band in score.bands]
            if score.bands and (starts[0] != low or starts != sorted(set(starts)) or starts[-1] > high):
                raise ValueError(f"score {score.id!r}: bands must start at {low} and rise, up to {high}")
            if score.flag_at is not None and not low <= score.flag_at <= high:
                raise ValueError(f"score {score.id!r}: flag_at outside {low}-{high}")
        if len({s.id for s in self.scores}) != len(self.scores):
            raise ValueError("two scores with the same id")
        scored = {i for s in self.scores for i in s.items}
        last_scored = max(i for i, item in enumerate(self.items) if item.id in scored)
        for index, item in enumerate(self.items):
            if item.id in scored and item.ask_if is not None:
                raise ValueError(f"item {item.id!r}: a scored item is asked of everyone (no ask_if)")
            if item.ask_if is not None and item.ask_if.item is None and index < last_scored:
                raise ValueError(f"item {item.id!r}: an ask_if on any scored item comes after them all")
        return self

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def options_of(self, item: Item) -> tuple[Option, ...]:
        return self.option_sets[item.options]

    def range_of(self, score: Score) -> tuple[int, int]:
        """The lowest and highest the score can be."""
        sets = [self.option_sets[self.item(i).options] for i in score.items]
        return sum(min(o.value for o in s) for s in sets), sum(max(o.value for o in s) for s in sets)

    def scored_items(self) -> frozenset[str]:
        return frozenset(i for score in self.scores for i in score.items)

    def structure(self) -> tuple[Any, ...]:
        """Everything that decides what is asked and how it is scored (not the words): a translation must
        have the same."""
        return (
            tuple(
                (
                    item.id,
                    tuple(o.value for o in self.options_of(item)),
                    item.ask_if,
                    item.safety,
                )
                for item in self.items
            ),
            tuple(
                (s.id, s.items, s.higher_is, tuple(b.min for b in s.bands), s.flag_at, s.flag_rise)
                for s in self.scores
            ),
        )


@dataclass
class InstrumentLibrary:
    # language -> id -> it (left out of the repr, as the catalogue's texts are)
    instruments: dict[str, dict[str, Instrument]] = field(default_factory=dict, repr=False)
    failed: dict[str, set[str]] = field(default_factory=dict)  # language -> ids whose file has errors
    # Files ("es/measures/bam.yaml") with no current clinical review (content/REVIEW.yaml), set by the loader
    # that reads the review (bot.content_check): an unofficial translation among them is not offered.
    unreviewed: frozenset[str] = frozenset()

    def get(self, instrument_id: str, language: str) -> Instrument | None:
        found = self.instruments.get(language, {}).get(instrument_id)
        return found or self.instruments.get(REFERENCE_LANGUAGE, {}).get(instrument_id)

    def offered_in(self, instrument_id: str, language: str) -> bool:
        """Whether to offer it to a patient who reads `language`: its translation there is official, or a
        clinician reviewed it. (No translation: the English original, as `get` gives.)"""
        translated = self.instruments.get(language, {}).get(instrument_id)
        if translated is None or translated.official:
            return True
        return f"{language}/measures/{instrument_id}.yaml" not in self.unreviewed

    def reference(self, instrument_id: str) -> Instrument | None:
        """The English definition: the one answers are checked and scored against."""
        return self.instruments.get(REFERENCE_LANGUAGE, {}).get(instrument_id)

    def ids(self) -> list[str]:
        return sorted(self.instruments.get(REFERENCE_LANGUAGE, {}))

    def by_name(self) -> Mapping[str, str]:
        """Each questionnaire's id by its id and its short name, lowercased without punctuation ("phq9",
        "gad7", "bam"): what a counselor may type."""
        names: dict[str, str] = {}
        for instrument_id in self.ids():
            instrument = self.reference(instrument_id)
            assert instrument is not None
            names[instrument_id] = instrument_id
            names[plain_name(instrument.name)] = instrument_id
        return names


def plain_name(name: str) -> str:
    """A name as a counselor may type it: lowercase letters and digits only ("PHQ-9" -> "phq9")."""
    return "".join(c for c in name.lower() if c.isalnum())


def _load_file(path: Path, problems: list[str]) -> Instrument | None:
    read = read_model(path, Instrument, problems)
    if read is None:
        return None
    instrument, node = read
    if instrument.id != path.stem:
        problems.append(
            f"{path}:{line_of(node, ('id',))}: id {instrument.id!r} must equal the file name {path.stem!r}"
        )
        return None
    return instrument


def load_instruments(root: Path, problems: list[str], warnings: list[str]) -> InstrumentLibrary:
    """Every language's questionnaires; problems (errors) and warnings appended as `path:line: message`. A
    translation whose items, options, scores or bands differ from English is an error and is not loaded."""
    library = InstrumentLibrary()
    for language_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found: dict[str, Instrument] = {}
        for path in sorted((language_dir / "measures").glob("*.yaml")):
            instrument = _load_file(path, problems)
            if instrument is None:
                library.failed.setdefault(language_dir.name, set()).add(path.stem)
            else:
                found[instrument.id] = instrument
        library.instruments[language_dir.name] = found
    reference = library.instruments.get(REFERENCE_LANGUAGE, {})
    for language, instruments in sorted(library.instruments.items()):
        if language == REFERENCE_LANGUAGE:
            continue
        for instrument_id, translated in sorted(instruments.items()):
            path = root / language / "measures" / f"{instrument_id}.yaml"
            original = reference.get(instrument_id)
            if original is None:
                if instrument_id not in library.failed.get(REFERENCE_LANGUAGE, set()):
                    warnings.append(f"{path}:1: no English original; never asked")
                continue
            if translated.structure() != original.structure():
                problems.append(
                    f"{path}:1: its items, option values, conditions, scores or bands differ from "
                    f"{REFERENCE_LANGUAGE}/measures/{instrument_id}.yaml: a score must not depend on the "
                    "language (only the words may differ)"
                )
                del instruments[instrument_id]
                library.failed.setdefault(language, set()).add(instrument_id)
                continue
            if not translated.official:
                warnings.append(
                    f"{path}:1: an unofficial translation (official: false): "
                    "a clinician must review it before patients answer it"
                )
        for instrument_id in sorted(set(reference) - set(instruments) - library.failed.get(language, set())):
            warnings.append(
                f"{root / language / 'measures' / instrument_id}.yaml: missing; asked in English instead"
            )
    return library
