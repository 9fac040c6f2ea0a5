"""Scoring a questionnaire: which item comes next, the scores and their bands, and the care team's flags.

Pure: it reads a definition from content (`bot.content.instruments.Instrument`, always the English one, which
every translation must match) and the answers given so far (item id -> the chosen option's value). A score is
the sum of its items' values, and is given only when every one of its items was answered: an unfinished
questionnaire has no score (the instruments' manuals do not prorate missing items for these uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from bot.content.instruments import Band, Instrument, Item, Score

Answers = Mapping[str, int]


def applies(instrument: Instrument, item: Item, answers: Answers) -> bool:
    """Whether `item` is asked, given the answers so far (a condition on an unanswered item is not met)."""
    condition = item.ask_if
    if condition is None:
        return True
    if condition.item is not None:
        value = answers.get(condition.item)
        return value is not None and value > condition.above
    return any(answers.get(i, 0) > condition.above for i in instrument.scored_items())


def next_item(instrument: Instrument, answers: Answers) -> Item | None:
    """The first item, in order, that applies and is not answered yet; None when there is none."""
    return next(
        (item for item in instrument.items if item.id not in answers and applies(instrument, item, answers)),
        None,
    )


def progress(instrument: Instrument, answers: Answers, item: Item) -> tuple[int, int]:
    """(number, total) to show with `item`: its place among the items asked so far as the answers tell, and
    how many that is (an item that only some are asked counts once its condition is met)."""
    asked = [i.id for i in instrument.items if i.id in answers or applies(instrument, i, answers)]
    if item.id not in asked:
        asked.append(item.id)
    return asked.index(item.id) + 1, len(asked)


def value_of(score: Score, answers: Answers) -> int | None:
    """The score's sum, or None while any of its items is unanswered."""
    values = [answers.get(i) for i in score.items]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def scores(instrument: Instrument, answers: Answers) -> dict[str, int]:
    """Every score whose items are all answered, by score id."""
    found = {score.id: value_of(score, answers) for score in instrument.scores}
    return {score_id: value for score_id, value in found.items() if value is not None}


def band(score: Score, value: int) -> Band | None:
    """The severity band `value` falls in (None for a score without bands)."""
    found = None
    for candidate in score.bands:
        if value >= candidate.min:
            found = candidate
    return found


def safety_positive(instrument: Instrument, item: Item, value: int) -> bool:
    """A safety item (PHQ-9 item 9) answered above its lowest option: the suicide screener comes at once."""
    return item.safety and value > min(option.value for option in instrument.options_of(item))


def valid_value(instrument: Instrument, item: Item, value: int) -> bool:
    return any(option.value == value for option in instrument.options_of(item))


@dataclass(frozen=True)
class Flag:
    """Why a score needs the care team's look: at or past its threshold ("high"), or changed for the worse by
    its `flag_rise` or more since the last complete one ("rise"; for a score where higher is better, a
    fall)."""

    score_id: str
    value: int
    kind: Literal["high", "rise"]
    change: int | None = None  # latest minus previous, when there is a previous one


def change(latest: Answers, previous: Answers | None, score_id: str) -> int | None:
    if previous is None or score_id not in latest or score_id not in previous:
        return None
    return latest[score_id] - previous[score_id]


def flags(instrument: Instrument, latest: Answers, previous: Answers | None) -> list[Flag]:
    """The flags the latest scores raise, compared with the previous ones (scores by score id)."""
    found: list[Flag] = []
    for score in instrument.scores:
        value = latest.get(score.id)
        if value is None:
            continue
        worse = 1 if score.higher_is == "worse" else -1
        delta = change(latest, previous, score.id)
        if score.flag_at is not None and (value - score.flag_at) * worse >= 0:
            found.append(Flag(score.id, value, "high", delta))
        elif score.flag_rise is not None and delta is not None and delta * worse >= score.flag_rise:
            found.append(Flag(score.id, value, "rise", delta))
    return found


def due(
    every: Mapping[str, int], last_started: Mapping[str, date], today: date, order: list[str]
) -> list[str]:
    """The questionnaires due on the patient's local day `today`, in `order`: each of `every` (id -> every so
    many days) never given yet, or last started that many days ago or more."""
    return [
        instrument_id
        for instrument_id in order
        if instrument_id in every
        and (
            instrument_id not in last_started
            or today >= last_started[instrument_id] + timedelta(days=every[instrument_id])
        )
    ]
