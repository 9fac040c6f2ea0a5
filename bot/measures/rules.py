"""Questionnaires given to patients: start one, save each answer as it arrives, score it, close it when it
expires; schedules per patient; the results the care team sees.

All state is in the `measures` table (`step` is the item being asked), so a questionnaire survives a restart
and any bot process can carry it on, as a check-in does. Nothing here knows about Telegram; the definitions
(items, options, scores) come from content (`bot.content.instruments`) and are scored by
`bot.measures.scoring`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.instruments import Instrument, InstrumentLibrary, Item
from bot.core.models import Measure, MeasureSchedule, MeasureSource, MeasureStatus, Patient, utcnow
from bot.measures import scoring

RESULTS_KEPT = 12  # results of each questionnaire /patient shows and charts (the latest ones)


class Closed(Exception):
    """The questionnaire is no longer open (complete, or expired)."""


class Invalid(ValueError):
    """Not the item being asked (an earlier question's button), or not one of its options."""


@dataclass(frozen=True)
class Answered:
    following: Item | None  # the next item to ask; None: nothing more
    completed: bool
    safety: bool  # the safety item was answered above its lowest option: the suicide screener comes next


def open_query(patient_id: int | ColumnElement[int]) -> Select[Measure]:
    return (
        select(Measure)
        .where(Measure.patient_id == patient_id, Measure.status == MeasureStatus.OPEN)
        .order_by(Measure.started_at, Measure.id)
    )


async def open_measures(session: AsyncSession, patient_id: int) -> list[Measure]:
    """The patient's open questionnaires, oldest first (the first is the one to carry on with)."""
    return list(await session.scalars(open_query(patient_id)))


async def open_of(session: AsyncSession, patient_id: int, instrument_id: str) -> Measure | None:
    found: Measure | None = await session.scalar(
        open_query(patient_id).where(Measure.instrument == instrument_id).limit(1)
    )
    return found


async def start(
    session: AsyncSession,
    patient: Patient,
    instrument: Instrument,
    now: datetime,
    *,
    expiry: timedelta,
    source: MeasureSource,
    scheduled_for: date | None = None,
    requested_by: int | None = None,
    flush: bool = True,
) -> Measure | None:
    """A new questionnaire at its first item. A scheduled one is unique per patient, questionnaire and day:
    None when another process started it first. Without `flush` it is only added to the session (many at
    once, flushed together by the caller: a clash then fails the whole transaction)."""
    first = scoring.next_item(instrument, {})
    assert first is not None  # every questionnaire has an item everyone is asked
    measure = Measure(
        patient_id=patient.id,
        instrument=instrument.id,
        source=source,
        requested_by=requested_by,
        language=patient.language,
        scheduled_for=scheduled_for,
        step=first.id,
        answers={},
        started_at=now,
        expires_at=now + expiry,
    )
    if not flush:
        session.add(measure)
        return measure
    try:
        async with session.begin_nested():
            session.add(measure)
    except IntegrityError:
        return None
    return measure


def answer(measure: Measure, instrument: Instrument, item_id: str, value: int, now: datetime) -> Answered:
    """Save the answer to the item being asked (`instrument` is the English definition) and move on. The
    safety item answered above its lowest option ends the questionnaire there: nothing else is asked over the
    suicide screener (crisis first); its scores are kept if all their items were answered."""
    if measure.status is not MeasureStatus.OPEN:
        raise Closed
    if measure.step != item_id:
        raise Invalid(f"not the item being asked ({measure.step})")
    try:
        item = instrument.item(item_id)
    except KeyError:
        raise Invalid("no such item") from None
    if not scoring.valid_value(instrument, item, value):
        raise Invalid("not one of the item's options")
    answers = {**measure.answers, item_id: value}
    measure.answers = answers  # a new dict, so the JSON column sees the change
    measure.answered_at = now
    if scoring.safety_positive(instrument, item, value):
        measure.safety_positive = True
        _finish(measure, instrument, now)
        return Answered(None, True, True)
    following = scoring.next_item(instrument, answers)
    measure.step = following.id if following is not None else None
    if following is None:
        _finish(measure, instrument, now)
    return Answered(following, following is None, False)


def _finish(measure: Measure, instrument: Instrument, now: datetime) -> None:
    measure.status = MeasureStatus.COMPLETE
    measure.step = None
    measure.finished_at = now
    measure.scores = scoring.scores(instrument, measure.answers) or None


async def close_expired(session: AsyncSession, now: datetime) -> list[Measure]:
    """Close every open questionnaire past its time: expired, answers kept, no score."""
    due = list(
        await session.scalars(
            select(Measure)
            .where(Measure.status == MeasureStatus.OPEN, Measure.expires_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    for measure in due:
        measure.status = MeasureStatus.EXPIRED
        measure.step = None
        measure.finished_at = now
    return due


# ---- schedules ---------------------------------------------------------------------------------------------


async def overrides(
    session: AsyncSession, patient_ids: Iterable[int] | Select[int]
) -> dict[int, dict[str, int | None]]:
    """The counselors' schedules, by patient: questionnaire -> every so many days, or None (never)."""
    ids = patient_ids if isinstance(patient_ids, Select) else list(patient_ids)
    rows = await session.execute(
        select(MeasureSchedule.patient_id, MeasureSchedule.instrument, MeasureSchedule.every_days).where(
            MeasureSchedule.patient_id.in_(ids)
        )
    )
    found: dict[int, dict[str, int | None]] = defaultdict(dict)
    for patient_id, instrument_id, every in rows:
        found[patient_id][instrument_id] = every
    return found


def effective(default: Iterable[tuple[str, int]], chosen: Mapping[str, int | None]) -> dict[str, int]:
    """Questionnaire -> every so many days, for one patient: the clinic's default (MEASURES), with the
    counselors' choices over it (None: never)."""
    plan = dict(default)
    for instrument_id, every in chosen.items():
        if every is None:
            plan.pop(instrument_id, None)
        else:
            plan[instrument_id] = every
    return plan


def order(default: Iterable[tuple[str, int]], known: Iterable[str]) -> list[str]:
    """The order questionnaires are offered in: the default's (MEASURES), then the others by id."""
    first = [instrument_id for instrument_id, _ in default]
    return [*first, *sorted(set(known) - set(first))]


async def set_schedule(
    session: AsyncSession, patient_id: int, instrument_id: str, every: int | None, counselor_id: int | None
) -> None:
    """A counselor's schedule for one patient: every `every` days, or never (None)."""
    found = await session.scalar(
        select(MeasureSchedule).where(
            MeasureSchedule.patient_id == patient_id, MeasureSchedule.instrument == instrument_id
        )
    )
    if found is None:
        found = MeasureSchedule(patient_id=patient_id, instrument=instrument_id)
        session.add(found)
    found.every_days = every
    found.set_by = counselor_id
    found.set_at = utcnow()


async def clear_schedule(session: AsyncSession, patient_id: int, instrument_id: str) -> None:
    """Back to the clinic's default."""
    await session.execute(
        delete(MeasureSchedule).where(
            MeasureSchedule.patient_id == patient_id, MeasureSchedule.instrument == instrument_id
        )
    )


async def last_started(
    session: AsyncSession, patients: Mapping[int, str], since: datetime | None = None
) -> dict[int, dict[str, date]]:
    """For each patient (id -> time zone), the local day each questionnaire was last started (among those
    started after `since`, if given). A scheduled one counts on the day it was scheduled for, though started
    after midnight (a late check-in time), so the interval does not slip a day each time."""
    if not patients:
        return {}
    unscheduled = case((Measure.scheduled_for.is_(None), Measure.started_at))
    query = select(
        Measure.patient_id, Measure.instrument, func.max(unscheduled), func.max(Measure.scheduled_for)
    ).where(Measure.patient_id.in_(list(patients)))
    if since is not None:
        query = query.where(Measure.started_at >= since)
    rows = await session.execute(query.group_by(Measure.patient_id, Measure.instrument))
    found: dict[int, dict[str, date]] = defaultdict(dict)
    for patient_id, instrument_id, started, scheduled_for in rows:
        days = [scheduled_for] if scheduled_for is not None else []
        if started is not None:
            moment = started if started.tzinfo else started.replace(tzinfo=ZoneInfo("UTC"))
            days.append(moment.astimezone(ZoneInfo(patients[patient_id])).date())
        if days:
            found[patient_id][instrument_id] = max(days)
    return found


# ---- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """A complete questionnaire, as the care team sees it."""

    measure_id: int
    instrument: str
    language: str
    finished_at: datetime
    scores: Mapping[str, int]
    answers: Mapping[str, int]
    safety_positive: bool


def _result(measure: Measure) -> Result:
    assert measure.finished_at is not None
    return Result(
        measure.id,
        measure.instrument,
        measure.language,
        measure.finished_at,
        dict(measure.scores or {}),
        dict(measure.answers or {}),
        measure.safety_positive,
    )


async def results(
    session: AsyncSession, patient_id: int, kept: int = RESULTS_KEPT
) -> dict[str, list[Result]]:
    """The patient's complete questionnaires by questionnaire, oldest first (the latest `kept` of each)."""
    rows = await session.scalars(
        select(Measure)
        .where(Measure.patient_id == patient_id, Measure.status == MeasureStatus.COMPLETE)
        .order_by(Measure.finished_at.desc(), Measure.id.desc())
    )
    found: dict[str, list[Result]] = defaultdict(list)
    for measure in rows:
        if len(found[measure.instrument]) < kept:
            found[measure.instrument].append(_result(measure))
    return {instrument_id: list(reversed(items)) for instrument_id, items in found.items()}


async def previous(session: AsyncSession, measure: Measure) -> Result | None:
    """The complete questionnaire of the same kind before this one (for the change since then)."""
    query = select(Measure).where(
        Measure.patient_id == measure.patient_id,
        Measure.instrument == measure.instrument,
        Measure.status == MeasureStatus.COMPLETE,
        Measure.id != measure.id,
    )
    if measure.finished_at is not None:
        query = query.where(Measure.finished_at <= measure.finished_at)
    found = await session.scalar(query.order_by(Measure.finished_at.desc(), Measure.id.desc()).limit(1))
    return _result(found) if found is not None else None


@dataclass(frozen=True)
class Flagged:
    instrument: str
    flag: scoring.Flag


async def caseload_flags(
    session: AsyncSession, ids: Select[int], library: InstrumentLibrary
) -> dict[int, list[Flagged]]:
    """Per patient, what their latest scores flag (against the score before): one query, whatever the number
    of patients (the two latest complete ones of each questionnaire, by a window function)."""
    ranked = (
        select(
            Measure.patient_id,
            Measure.instrument,
            Measure.scores,
            func.row_number()
            .over(
                partition_by=(Measure.patient_id, Measure.instrument),
                order_by=(Measure.finished_at.desc(), Measure.id.desc()),
            )
            .label("rank"),
        )
        .where(Measure.patient_id.in_(ids), Measure.status == MeasureStatus.COMPLETE)
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.patient_id, ranked.c.instrument, ranked.c.scores, ranked.c.rank)
        .where(ranked.c.rank <= 2)
        .order_by(ranked.c.patient_id, ranked.c.instrument, ranked.c.rank)
    )
    latest: dict[tuple[int, str], list[Mapping[str, int] | None]] = defaultdict(list)
    for patient_id, instrument_id, scores, _ in rows:
        latest[(patient_id, instrument_id)].append(scores or None)
    found: dict[int, list[Flagged]] = defaultdict(list)
    for (patient_id, instrument_id), pair in latest.items():
        definition = library.reference(instrument_id)
        if definition is None or not pair[0]:
            continue
        before = pair[1] if len(pair) > 1 else None
        for flag in scoring.flags(definition, pair[0], before):
            found[patient_id].append(Flagged(instrument_id, flag))
    return found
