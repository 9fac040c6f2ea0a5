"""The daily check-in: its questions in order, each answer saved the moment it arrives.

All state is in the `checkins` table (`step` is the question being asked), so a check-in survives a restart
and any bot process can carry it on. Nothing here knows about Telegram.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin.history import Day
from bot.core.clock import latest_at
from bot.core.models import CheckIn, CheckInSource, CheckInStatus, Patient, PatientStatus
from bot.outbox import store as outbox
from bot.risk.use import UseReport, asks_how


class Question(enum.StrEnum):
    CRAVING = "craving"
    TRIGGERS = "triggers"
    TRIGGER_OTHER = "trigger_other"
    MOOD = "mood"
    SLEEP = "sleep"
    USE = "use"
    USE_WHAT = "use_what"
    USE_HOW = "use_how"  # "alone? injected?", only when it could still change the tier (bot.risk.use)
    NOTE = "note"


ORDER = tuple(Question)
TEXT_QUESTIONS = frozenset({Question.TRIGGER_OTHER, Question.USE_WHAT, Question.NOTE})
TRIGGERS = (
    "hungry",
    "angry",
    "lonely",
    "tired",
    "stress",
    "boredom",
    "conflict",
    "pain",
    "people",
    "places",
    "money",
    "celebration",
    "other",
)
SLEEP = ("poor", "ok", "good")
USE_HOW = ("alone", "injected", "neither")
USE_QUESTIONS = frozenset({Question.USE_WHAT, Question.USE_HOW})  # the answers that tier a reported use
CRAVING_RANGE = (0, 10)
MOOD_RANGE = (1, 5)
MAX_FREE_TEXT = 2000  # characters kept of a typed answer; Telegram allows 4096


class Closed(Exception):
    """The check-in is no longer open (finished, or expired and kept as partial)."""


class Invalid(ValueError):
    """The answer does not fit the question; the patient is asked again."""


def _applies(checkin: CheckIn, question: Question) -> bool:
    if question is Question.TRIGGER_OTHER:
        return "other" in (checkin.triggers or [])
    if question is Question.USE_WHAT:
        return checkin.used is True
    if question is Question.USE_HOW:
        return asks_how(checkin.used, use_report(checkin))
    return True


def following(checkin: CheckIn, after: Question | None) -> Question | None:
    start = 0 if after is None else ORDER.index(after) + 1
    return next((q for q in ORDER[start:] if _applies(checkin, q)), None)


def local_now(patient: Patient, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(patient.timezone))


def in_quiet_hours(patient: Patient, now: datetime) -> bool:
    clock, start, end = local_now(patient, now).time(), patient.quiet_start, patient.quiet_end
    return start <= clock < end if start < end else clock >= start or clock < end


def open_checkin_query(patient_id: int | ColumnElement[int]) -> Select[CheckIn]:
    return (
        select(CheckIn)
        .where(CheckIn.patient_id == patient_id, CheckIn.status == CheckInStatus.OPEN)
        .order_by(CheckIn.started_at.desc())
        .limit(1)
    )


async def open_checkin(session: AsyncSession, patient_id: int) -> CheckIn | None:
    return await session.scalar(open_checkin_query(patient_id))


async def begin_on_demand(
    session: AsyncSession, patient: Patient, now: datetime, *, expiry: timedelta
) -> tuple[CheckIn, bool]:
    """The open check-in if there is one, or one paused by a crisis reply and not expired (resumed where it
    stopped), else a new one. True when new."""
    existing = await open_checkin(session, patient.id)
    if existing is None:
        existing = await session.scalar(
            select(CheckIn)
            .where(
                CheckIn.patient_id == patient.id,
                CheckIn.status == CheckInStatus.PAUSED,
                CheckIn.expires_at > now,
            )
            .order_by(CheckIn.started_at.desc())
            .limit(1)
        )
        if existing is not None:
            existing.status = CheckInStatus.OPEN
    if existing is not None:
        return existing, False
    checkin = CheckIn(
        patient_id=patient.id,
        source=CheckInSource.ON_DEMAND,
        local_day=local_now(patient, now).date(),
        step=Question.CRAVING,
        started_at=now,
        expires_at=now + expiry,
    )
    session.add(checkin)
    await session.flush()
    return checkin, True


class HasCheckinTime(Protocol):
    """What `scheduled_occurrence` reads of a patient (a Patient, or a row of these columns)."""

    @property
    def timezone(self) -> str: ...
    @property
    def checkin_time(self) -> time | None: ...


def scheduled_occurrence(patient: HasCheckinTime, now: datetime) -> datetime | None:
    """The latest local check-in time at or before `now` (today's, or yesterday's before it comes round)."""
    if patient.checkin_time is None:
        return None
    return latest_at(patient.checkin_time, ZoneInfo(patient.timezone), now)


async def begin_scheduled(
    session: AsyncSession, patient: Patient, now: datetime, *, expiry: timedelta
) -> CheckIn | None:
    """Open today's scheduled check-in if it is due and the patient has none for that day yet.

    A prompt is due from the patient's check-in time until the check-in would have expired. A unique key
    on (patient, day) makes this safe when several bot processes tick at once.
    """
    occurrence = scheduled_occurrence(patient, now)
    if occurrence is None or patient.status is not PatientStatus.ACTIVE:
        return None
    if not occurrence <= now < occurrence + expiry:
        return None
    day = occurrence.date()
    already = await session.scalar(
        select(exists().where(CheckIn.patient_id == patient.id, CheckIn.local_day == day))
    )
    if already or await open_checkin(session, patient.id) is not None:
        return None
    checkin = CheckIn(
        patient_id=patient.id,
        source=CheckInSource.SCHEDULED,
        local_day=day,
        scheduled_for=day,
        step=Question.CRAVING,
        started_at=now,
        expires_at=occurrence + expiry,
    )
    try:
        async with session.begin_nested():
            session.add(checkin)
    except IntegrityError:
        return None  # another process opened it first
    return checkin


def pause(checkin: CheckIn) -> None:
    """Set aside by a crisis reply: typed text no longer goes to it; its answers stay. /checkin, or a tap on
    its current question's buttons, carries it on; it expires like an open one."""
    if checkin.status is CheckInStatus.OPEN:
        checkin.status = CheckInStatus.PAUSED


def _require(checkin: CheckIn, question: Question) -> None:
    if checkin.status is CheckInStatus.PAUSED and checkin.step == question:
        checkin.status = CheckInStatus.OPEN  # the patient chose to carry on with it
    if checkin.status is not CheckInStatus.OPEN:
        raise Closed
    if checkin.step != question:
        raise Invalid(f"not the current question ({checkin.step})")


def _advance(checkin: CheckIn, now: datetime) -> Question | None:
    assert checkin.step is not None
    following_question = following(checkin, Question(checkin.step))
    checkin.step = following_question
    if following_question is None:
        checkin.status = CheckInStatus.COMPLETE
        checkin.finished_at = now
    return following_question


def answer(checkin: CheckIn, question: Question, value: int | str | bool, now: datetime) -> Question | None:
    """Save the answer to the current question; return the next question, None when the check-in is done."""
    _require(checkin, question)
    if question is Question.CRAVING or question is Question.MOOD:
        low, high = CRAVING_RANGE if question is Question.CRAVING else MOOD_RANGE
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Invalid(f"{question} must be {low}-{high}")
        if question is Question.CRAVING:
            checkin.craving = value
        else:
            checkin.mood = value
    elif question is Question.SLEEP:
        if value not in SLEEP:
            raise Invalid("unknown sleep answer")
        checkin.sleep = str(value)
    elif question is Question.USE:
        if not isinstance(value, bool):
            raise Invalid("use is yes or no")
        checkin.used = value
    elif question in TEXT_QUESTIONS:
        text = str(value).strip()
        if not text:
            raise Invalid("empty text")
        text = text[:MAX_FREE_TEXT]
        if question is Question.TRIGGER_OTHER:
            checkin.trigger_other = text
        elif question is Question.USE_WHAT:
            checkin.use_what = text
        else:
            checkin.note = text
    else:
        raise Invalid("triggers are toggled, then confirmed")
    checkin.answered_at = now
    return _advance(checkin, now)


def use_report(checkin: CheckIn) -> UseReport | None:
    """What the patient said was used and how; None if "What did you use?" was skipped or not answered."""
    return UseReport.from_json(checkin.use_report)


def answer_use(
    checkin: CheckIn, question: Question, report: UseReport, now: datetime, *, words: str | None = None
) -> Question | None:
    """An answer to "What did you use?" (a button, or typed `words` read into `report`) or to "Were you alone,
    or did you inject?"; the next question."""
    _require(checkin, question)
    if question not in USE_QUESTIONS:
        raise Invalid("not a question about use")
    if words is not None and words.strip():
        checkin.use_what = words.strip()[:MAX_FREE_TEXT]
    checkin.use_report = report.as_json()
    checkin.answered_at = now
    return _advance(checkin, now)


def use_tier_settled(checkin: CheckIn, answered: Question, following_question: Question | None) -> bool:
    """True when the answer just given is the last word on a reported use: the care team is told now."""
    if not checkin.used:
        return False
    if answered is Question.USE_WHAT:
        return following_question is not Question.USE_HOW
    return answered is Question.USE_HOW


async def use_unanswered(session: AsyncSession, now: datetime, wait: timedelta) -> list[CheckIn]:
    """Check-ins where the patient said they used and then left "What did you use?" or "Were you alone?"
    unanswered for `wait`: the care team must not wait for an answer that may never come."""
    # `used` and `step` are encrypted: the database narrows to the check-ins with a use answered (`used` is
    # not null) and left for `wait`, and they are read here.
    found = await session.scalars(
        select(CheckIn)
        .where(
            CheckIn.status.in_((CheckInStatus.OPEN, CheckInStatus.PAUSED)),
            CheckIn.used.is_not(None),
            CheckIn.answered_at <= now - wait,
        )
        .with_for_update(skip_locked=True)
    )
    asked = {q.value for q in USE_QUESTIONS}
    return [checkin for checkin in found if checkin.used is True and checkin.step in asked]


def give_up_on_use_answer(checkin: CheckIn, now: datetime) -> None:
    """The use question left unanswered (see `use_unanswered`) counts as skipped; the check-in moves on (a
    paused one stays paused)."""
    assert checkin.step is not None
    checkin.skipped = [*(checkin.skipped or []), checkin.step]
    _advance(checkin, now)


def toggle_trigger(checkin: CheckIn, key: str, now: datetime) -> list[str]:
    """Select or unselect one trigger (saved at once); returns the selection."""
    _require(checkin, Question.TRIGGERS)
    if key not in TRIGGERS:
        raise Invalid("unknown trigger")
    chosen = list(checkin.triggers or [])
    chosen = [k for k in chosen if k != key] if key in chosen else [*chosen, key]
    checkin.triggers = [k for k in TRIGGERS if k in chosen]  # a new list, in a stable order
    checkin.answered_at = now
    return checkin.triggers


def confirm_triggers(checkin: CheckIn, now: datetime) -> Question | None:
    """Done with triggers; none selected means "none of these"."""
    _require(checkin, Question.TRIGGERS)
    if checkin.triggers is None:
        checkin.triggers = []
    checkin.answered_at = now
    return _advance(checkin, now)


def skip(checkin: CheckIn, question: Question, now: datetime) -> Question | None:
    _require(checkin, question)
    if question is Question.TRIGGERS:
        checkin.triggers = None
    checkin.skipped = [*(checkin.skipped or []), question.value]
    return _advance(checkin, now)


def has_answers(checkin: CheckIn) -> bool:
    return checkin.answered_at is not None


async def close_expired(session: AsyncSession, now: datetime) -> list[CheckIn]:
    """Close every open (or paused) check-in past its time: partial if anything was answered, else missed."""
    due = list(
        await session.scalars(
            select(CheckIn)
            .where(CheckIn.status.in_((CheckInStatus.OPEN, CheckInStatus.PAUSED)), CheckIn.expires_at <= now)
            .order_by(CheckIn.id)  # in the order they were opened, on either database
            .with_for_update(skip_locked=True)
        )
    )
    for checkin in due:
        checkin.status = CheckInStatus.PARTIAL if has_answers(checkin) else CheckInStatus.MISSED
        checkin.step = None
        checkin.finished_at = now
    return due


async def missed_in_a_row(session: AsyncSession, patient_id: int, limit: int = 60) -> int:
    """How many of the latest closed check-ins, newest first, were missed outright."""
    statuses = await session.scalars(
        select(CheckIn.status)
        .where(CheckIn.patient_id == patient_id, CheckIn.status != CheckInStatus.OPEN)
        .order_by(CheckIn.local_day.desc(), CheckIn.started_at.desc())
        .limit(limit)
    )
    run = 0
    for status in statuses:
        if status is not CheckInStatus.MISSED:
            break
        run += 1
    return run


async def streak(session: AsyncSession, patient_id: int, today: date) -> int:
    """Days in a row, up to today, with a check-in the patient answered (complete or partial)."""
    days = set(
        await session.scalars(
            select(CheckIn.local_day).where(
                CheckIn.patient_id == patient_id,
                CheckIn.status.in_([CheckInStatus.COMPLETE, CheckInStatus.PARTIAL]),
                CheckIn.local_day > today - timedelta(days=400),
            )
        )
    )
    count, day = 0, today
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


async def due_nudges(
    session: AsyncSession, now: datetime, *, after: timedelta
) -> list[tuple[CheckIn, Patient]]:
    """Scheduled check-ins untouched for `after`: each gets one nudge (none in the patient's quiet hours).

    They are marked nudged here, before anything is sent, so a nudge is never sent twice.
    """
    rows = (
        await session.execute(
            select(CheckIn, Patient)
            .join(Patient, Patient.id == CheckIn.patient_id)
            .where(
                CheckIn.status == CheckInStatus.OPEN,
                CheckIn.source == CheckInSource.SCHEDULED,
                CheckIn.answered_at.is_(None),
                CheckIn.nudged_at.is_(None),
                CheckIn.started_at <= now - after,
                CheckIn.expires_at > now,
                outbox.may_message(),
            )
            .with_for_update(skip_locked=True, of=CheckIn)
        )
    ).all()
    due: list[tuple[CheckIn, Patient]] = []
    for checkin, patient in rows:
        checkin.nudged_at = now
        if not in_quiet_hours(patient, now):
            due.append((checkin, patient))
    return due


# ---- reading typed numbers ----------------------------------------------------------------------------

_NUMBER_WORDS = {
    # English
    "zero": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    # Spanish
    "cero": 0, "ninguno": 0, "nada": 0, "uno": 1, "una": 1, "un": 1, "dos": 2, "tres": 3, "cuatro": 4,
    "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12,
}  # fmt: skip
_TOKEN = re.compile(r"-?\d+(?:[.,]\d+)?|[^\W\d_]+", re.UNICODE)
_OUT_OF = re.compile(r"^\s*(-?\d+)\s*(?:/|out of|de)\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    value: int | None  # None: not one clear number in range
    out_of_range: bool = False


def read_number(text: str, low: int, high: int) -> Reading:
    """A rating typed as text: "7", "seven", "7/10", "like a 7" -> 7. Two numbers, fractions or a number
    outside low..high are not guessed at: the caller asks again."""
    text = text.strip().lower()
    if len(text) > 40:
        return Reading(None)
    out_of = _OUT_OF.match(text)
    if out_of is not None:
        value, scale = int(out_of.group(1)), int(out_of.group(2))
        if scale != high:
            return Reading(None)
        return Reading(value) if low <= value <= high else Reading(None, out_of_range=True)
    numbers: list[int | None] = []
    for token in _TOKEN.findall(text):
        if token[0].isdecimal() or token[0] == "-":
            numbers.append(None if "." in token or "," in token else int(token))
        elif token in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[token])
    if len(numbers) != 1 or numbers[0] is None:
        return Reading(None)
    value = numbers[0]
    return Reading(value) if low <= value <= high else Reading(None, out_of_range=True)


_YES = {"yes", "y", "yeah", "yep", "si", "sí", "s"}
_NO = {"no", "n", "nope", "nah"}


def read_yes_no(text: str) -> bool | None:
    word = text.strip().lower().rstrip(".!")
    return True if word in _YES else False if word in _NO else None


async def days_between(session: AsyncSession, patient_id: int, first: date, last: date) -> dict[date, Day]:
    """The check-ins answered from `first` to `last` (local days), one Day each: the latest craving and mood
    of the day, use if any check-in that day reported it, and every trigger named that day."""
    rows = await session.scalars(
        select(CheckIn)
        .where(
            CheckIn.patient_id == patient_id,
            CheckIn.local_day >= first,
            CheckIn.local_day <= last,
            CheckIn.answered_at.is_not(None),
        )
        .order_by(CheckIn.local_day, CheckIn.started_at)
    )
    days: dict[date, Day] = {}
    for checkin in rows:
        seen = days.get(checkin.local_day)
        triggers = tuple(dict.fromkeys([*(seen.triggers if seen else ()), *(checkin.triggers or [])]))
        days[checkin.local_day] = Day(
            day=checkin.local_day,
            craving=checkin.craving if checkin.craving is not None else (seen.craving if seen else None),
            mood=checkin.mood if checkin.mood is not None else (seen.mood if seen else None),
            used=bool(checkin.used) or (seen.used if seen else False),
            triggers=triggers,
            checked_in=True,
        )
    return days
