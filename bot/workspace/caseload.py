"""A counselor's view of their patients: the caseload list, one patient's recent days, the daily digest.

Pure queries over the database, no Telegram and no words: the handlers render the results with content
templates. Each call runs a handful of set-based queries whatever the caseload's size (no query per patient).
The database keeps UTC; local days are each patient's own (`Patient.timezone`), and check-ins already carry
their local day. Escalation text (`Escalation.detail`) is never read here.

Attendance: the `attendance` table holds RSVPs to session reminders ("coming", "late", "can't make it"), not
a record of who was in the room, so `Sessions` counts the occurrences due so far and the RSVPs given for them.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import fmean
from typing import Any, Generic, NamedTuple, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin import history
from bot.checkin import rules as checkins
from bot.checkin.history import Day
from bot.content.instruments import InstrumentLibrary
from bot.coping import rules as coping
from bot.core.models import (
    Attendance,
    CareAssignment,
    CheckIn,
    CopingSession,
    CopingStatus,
    Escalation,
    EscalationStatus,
    GroupMember,
    Patient,
    PatientStatus,
    ProgramSession,
    Rsvp,
)
from bot.measures import rules as measures
from bot.risk.levels import RiskLevel
from bot.schedule import rules as schedule

T = TypeVar("T")

WEEK = 7
RECENT_DAYS = 3  # the trend compares the mean of the last 3 days with the 4 before them
TREND_BAND = 1.0  # craving points: a difference within ±1.0 is no trend
HIGH_MEAN = 7  # default for `high_craving` (the HIGH_CRAVING setting); callers pass settings.high_craving
SILENT_DAYS = 3
TOP_TRIGGERS = 5
PAGE_SIZE = 10
_DAY = timedelta(days=1)
_ATTENDING = (Rsvp.COMING, Rsvp.LATE)


class Trend(enum.StrEnum):
    UP = "up"
    FLAT = "flat"
    DOWN = "down"


@dataclass(frozen=True)
class Sessions:
    """Session occurrences that started in a period, and the patient's RSVPs to them."""

    expected: int = 0
    coming: int = 0  # answered "coming" or "late"
    declined: int = 0  # answered "can't make it"

    @property
    def unanswered(self) -> int:
        return self.expected - self.coming - self.declined


@dataclass(frozen=True)
class CaseloadLine:
    patient_id: int
    alias: str
    days_since_checkin: int | None  # local days since the last answered check-in; None: never
    craving_mean: float | None  # over the last 7 local days (one value a day), 1 decimal; None: no data
    craving_trend: Trend | None  # None: no craving in the last 3 days or none in the 4 before
    use_days: int  # of the last 7 local days, those with use reported
    week: Sessions  # this local week (Monday on), up to now
    open_escalations: int  # not yet resolved (open or acknowledged)
    highest_open_level: RiskLevel | None
    # Questionnaire scores that need a look (PHQ-9 >= 20, GAD-7 >= 15, a rise of 5 or more: bot.measures)
    measure_flags: tuple[measures.Flagged, ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    number: int  # 1-based
    pages: int  # at least 1, even for an empty list


class EscalationItem(NamedTuple):
    """An escalation without the patient's words."""

    id: int
    level: RiskLevel
    category: str
    status: EscalationStatus
    created_at: datetime


@dataclass(frozen=True)
class SummaryDay:
    day: date
    craving: int | None  # None: no check-in that day, or not answered
    mood: int | None
    used: bool | None  # None: no check-in that day, or the use question not answered


@dataclass(frozen=True)
class PatientSummary:
    patient_id: int
    alias: str
    timezone: str
    days: tuple[SummaryDay, ...]  # oldest first, ending today (the patient's local today)
    totals: history.Summary  # the numbers the patient's own /history shows
    sessions: Sessions  # occurrences since the window's first local midnight, up to now
    top_triggers: tuple[tuple[str, int], ...]  # (trigger key, days named), most first, at most 5
    helped: tuple[coping.ModuleScore, ...]  # modules whose runs in the window lowered the craving, best first
    escalations: tuple[EscalationItem, ...]  # open ones, and any raised in the window; newest first

    @property
    def missed_sessions(self) -> int:
        """Occurrences the patient said they could not make (the only absences on record)."""
        return self.sessions.declined


class PatientRef(NamedTuple):
    id: int
    alias: str


@dataclass(frozen=True)
class Silent:
    patient: PatientRef
    days: int | None  # local days since the last answered check-in; None: never checked in


@dataclass(frozen=True)
class HighCraving:
    patient: PatientRef
    craving: int  # the highest in the last 24 hours


@dataclass(frozen=True)
class Declined:
    patient: PatientRef
    session_id: int
    title: str
    occurrence: datetime  # the occurrence's original start (UTC), as in `Attendance.occurrence`


@dataclass(frozen=True)
class PatientEscalation:
    patient: PatientRef
    escalation: EscalationItem


@dataclass(frozen=True)
class Digest:
    checked_in: tuple[PatientRef, ...]  # answered a check-in in the last 24 hours
    silent: tuple[Silent, ...]  # no answered check-in for 3+ local days (or never, enrolled 3+ days ago)
    high_cravings: tuple[HighCraving, ...]  # craving >= the threshold in the last 24 hours
    used: tuple[PatientRef, ...]  # use reported in the last 24 hours
    declined: tuple[Declined, ...]  # "can't make it" answered in the last 24 hours
    escalations: tuple[PatientEscalation, ...]  # not yet resolved; most urgent first


# ---- pure rules ----------------------------------------------------------------------------------------


def craving_trend(days: Sequence[Day]) -> Trend | None:
    """Mean craving of the last 3 days against the days before them (4, in a 7-day window), oldest first."""
    recent = [d.craving for d in days[-RECENT_DAYS:] if d.craving is not None]
    earlier = [d.craving for d in days[:-RECENT_DAYS] if d.craving is not None]
    if not recent or not earlier:
        return None
    change = fmean(recent) - fmean(earlier)
    if change > TREND_BAND:
        return Trend.UP
    if change < -TREND_BAND:
        return Trend.DOWN
    return Trend.FLAT


def attention_key(line: CaseloadLine, *, high_craving: float = HIGH_MEAN) -> tuple[Any, ...]:
    """Who needs attention first: an open imminent escalation, then an open high one, then use reported in
    the last 7 days, then a flagged questionnaire score, then a rising craving or a high mean, then the
    longest without a check-in (never first), then the alias."""
    level = line.highest_open_level
    craving = line.craving_trend is Trend.UP or (
        line.craving_mean is not None and line.craving_mean >= high_craving
    )
    silence = math.inf if line.days_since_checkin is None else line.days_since_checkin
    return (
        level is not RiskLevel.IMMINENT,
        level is not RiskLevel.HIGH,
        line.use_days == 0,
        not line.measure_flags,
        not craving,
        -silence,
        line.alias.casefold(),
        line.patient_id,
    )


def page(lines: Sequence[T], number: int, size: int = PAGE_SIZE) -> Page[T]:
    """Page `number` (1-based) of `lines`; a number out of range gives the first or the last page."""
    if size < 1:
        raise ValueError(f"page size must be at least 1, got {size}")
    pages = max(1, math.ceil(len(lines) / size))
    number = min(max(number, 1), pages)
    start = (number - 1) * size
    return Page(tuple(lines[start : start + size]), number, pages)


# ---- queries ---------------------------------------------------------------------------------------------


async def caseload(
    session: AsyncSession,
    counselor_id: int,
    now: datetime,
    *,
    high_craving: float = HIGH_MEAN,
    whole_program: bool = False,
    instruments: InstrumentLibrary | None = None,
) -> list[CaseloadLine]:
    """The counselor's active patients (primary or backup; every active patient for a supervisor, with
    `whole_program`), who needs attention first. With `instruments` (the questionnaires' definitions), the
    questionnaire scores that need a look are flagged too."""
    _require_aware(now)
    patients = await _active_patients(session, counselor_id, whole_program)
    if not patients:
        return []
    ids = _caseload_ids(counselor_id, whole_program)
    today = {p.id: _today(p, now) for p in patients}
    recent = await _days(session, ids, today, WEEK)
    last = await _last_checkin_days(session, ids)
    week_start = {p.id: _midnight(p, today[p.id] - timedelta(days=today[p.id].weekday())) for p in patients}
    week = await _sessions(session, ids, week_start, now)
    open_by_patient = await _open_escalations(session, ids)
    flagged = await measures.caseload_flags(session, ids, instruments) if instruments else {}
    lines = []
    for patient in patients:
        days = recent[patient.id]
        totals = history.summarize(days)
        levels = [item.level for item in open_by_patient.get(patient.id, ())]
        last_day = last.get(patient.id)
        lines.append(
            CaseloadLine(
                patient_id=patient.id,
                alias=patient.alias,
                days_since_checkin=(today[patient.id] - last_day).days if last_day else None,
                craving_mean=totals.craving_average,
                craving_trend=craving_trend(days),
                use_days=totals.use_days,
                week=week.get(patient.id, Sessions()),
                open_escalations=len(levels),
                highest_open_level=max(levels) if levels else None,
                measure_flags=tuple(flagged.get(patient.id, ())),
            )
        )
    return sorted(lines, key=lambda line: attention_key(line, high_craving=high_craving))


async def is_on_caseload(session: AsyncSession, counselor_id: int, patient_id: int) -> bool:
    """Whether the patient is one of the counselor's (any role): check before showing a summary."""
    found = await session.scalar(
        select(CareAssignment.id).where(
            CareAssignment.counselor_id == counselor_id, CareAssignment.patient_id == patient_id
        )
    )
    return found is not None


async def patient_summary(
    session: AsyncSession, patient_id: int, now: datetime, days: int = 14
) -> PatientSummary:
    """One patient's last `days` local days (today included). Raises LookupError for an unknown patient.

    It does not check who is asking: the caller checks `is_on_caseload` first."""
    _require_aware(now)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise LookupError(f"no patient {patient_id}")
    today = _today(patient, now)
    first = today - timedelta(days=days - 1)
    since = _midnight(patient, first)
    window = history.fill_window(today, days, await checkins.days_between(session, patient_id, first, today))
    # history.Day has `used` False both for "no" and for a skipped question: the summary tells them apart.
    use_answered = set(
        await session.scalars(
            select(CheckIn.local_day).where(
                CheckIn.patient_id == patient_id,
                CheckIn.local_day >= first,
                CheckIn.local_day <= today,
                CheckIn.answered_at.is_not(None),
                CheckIn.used.is_not(None),
            )
        )
    )
    ids = select(Patient.id).where(Patient.id == patient_id)
    sessions = await _sessions(session, ids, {patient_id: since}, now)
    return PatientSummary(
        patient_id=patient.id,
        alias=patient.alias,
        timezone=patient.timezone,
        days=tuple(
            SummaryDay(d.day, d.craving, d.mood, d.used if d.used or d.day in use_answered else None)
            for d in window
        ),
        totals=history.summarize(window),
        sessions=sessions.get(patient_id, Sessions()),
        top_triggers=tuple(history.trigger_counts(window)[:TOP_TRIGGERS]),
        helped=tuple(await _helped(session, patient_id, since)),
        escalations=tuple(await _escalations_of(session, patient_id, since)),
    )


async def digest(
    session: AsyncSession,
    counselor_id: int,
    now: datetime,
    *,
    high_craving: int = HIGH_MEAN,
    whole_program: bool = False,
) -> Digest | None:
    """What happened on the counselor's caseload in the last 24 hours; None when there is nothing to say.

    `high_craving` is the HIGH_CRAVING setting (`Settings.high_craving`)."""
    _require_aware(now)
    patients = await _active_patients(session, counselor_id, whole_program)
    if not patients:
        return None
    ids = _caseload_ids(counselor_id, whole_program)
    refs = {p.id: PatientRef(p.id, p.alias) for p in patients}
    since = now - _DAY

    touched = (
        await session.execute(
            select(CheckIn.patient_id, CheckIn.craving, CheckIn.used).where(
                CheckIn.patient_id.in_(ids), CheckIn.answered_at >= since, CheckIn.answered_at <= now
            )
        )
    ).all()
    # Only the patients read above: one that became active a moment ago waits for the next digest.
    touched = [row for row in touched if row[0] in refs]
    checked_in = {patient_id for patient_id, _, _ in touched}
    used = {patient_id for patient_id, _, was_used in touched if was_used}
    highest: dict[int, int] = {}
    for patient_id, craving, _ in touched:
        if craving is not None and craving >= high_craving:
            highest[patient_id] = max(craving, highest.get(patient_id, craving))

    last = await _last_checkin_days(session, ids)
    silent = []
    for patient in patients:
        last_day = last.get(patient.id)
        if last_day is None:
            if patient.created_at <= now - SILENT_DAYS * _DAY:
                silent.append(Silent(refs[patient.id], None))
        elif (gap := (_today(patient, now) - last_day).days) >= SILENT_DAYS:
            silent.append(Silent(refs[patient.id], gap))

    declined_rows = (
        await session.execute(
            select(Attendance.patient_id, Attendance.session_id, ProgramSession.title, Attendance.occurrence)
            .join(ProgramSession, ProgramSession.id == Attendance.session_id)
            .where(
                Attendance.patient_id.in_(ids),
                Attendance.response == Rsvp.CANNOT,
                Attendance.responded_at >= since,
                Attendance.responded_at <= now,
            )
            .order_by(Attendance.occurrence, Attendance.id)
        )
    ).all()

    open_by_patient = await _open_escalations(session, ids)
    escalations = sorted(
        (
            PatientEscalation(refs[patient_id], item)
            for patient_id, items in open_by_patient.items()
            if patient_id in refs
            for item in items
        ),
        key=lambda e: (
            -e.escalation.level,
            e.escalation.status is not EscalationStatus.OPEN,
            e.escalation.created_at,
        ),
    )

    def by_alias(found: Iterable[int]) -> tuple[PatientRef, ...]:
        return tuple(sorted((refs[i] for i in found), key=lambda r: (r.alias.casefold(), r.id)))

    result = Digest(
        checked_in=by_alias(checked_in),
        silent=tuple(
            sorted(silent, key=lambda s: (-(s.days if s.days is not None else math.inf), s.patient.alias))
        ),
        high_cravings=tuple(
            sorted(
                (HighCraving(refs[i], c) for i, c in highest.items()),
                key=lambda h: (-h.craving, h.patient.alias),
            )
        ),
        used=by_alias(used),
        declined=tuple(Declined(refs[p], s, title, o) for p, s, title, o in declined_rows if p in refs),
        escalations=tuple(escalations),
    )
    if not any(
        (
            result.checked_in,
            result.silent,
            result.high_cravings,
            result.used,
            result.declined,
            result.escalations,
        )
    ):
        return None
    return result


# ---- helpers ---------------------------------------------------------------------------------------------


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")


def _today(patient: Patient, now: datetime) -> date:
    return checkins.local_now(patient, now).date()


def _midnight(patient: Patient, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(patient.timezone))


def _caseload_ids(counselor_id: int, whole_program: bool = False) -> Select[int]:
    """The counselor's active patients (or the program's, for a supervisor), as a subquery (no long IN
    lists)."""
    if whole_program:
        return select(Patient.id).where(Patient.status == PatientStatus.ACTIVE)
    return (
        select(CareAssignment.patient_id)
        .join(Patient, Patient.id == CareAssignment.patient_id)
        .where(CareAssignment.counselor_id == counselor_id, Patient.status == PatientStatus.ACTIVE)
    )


async def _active_patients(
    session: AsyncSession, counselor_id: int, whole_program: bool = False
) -> list[Patient]:
    ids = _caseload_ids(counselor_id, whole_program)
    return list(await session.scalars(select(Patient).where(Patient.id.in_(ids)).order_by(Patient.id)))


async def _days(
    session: AsyncSession, ids: Select[int], today: Mapping[int, date], length: int
) -> dict[int, list[Day]]:
    """`checkin.days_between` for many patients in one query: each patient's last `length` local days."""
    firsts = {patient_id: day - timedelta(days=length - 1) for patient_id, day in today.items()}
    # The columns a Day needs, not whole check-ins: no ORM objects, and no free text decrypted for nothing.
    rows = await session.execute(
        select(
            CheckIn.patient_id,
            CheckIn.local_day,
            CheckIn.craving,
            CheckIn.mood,
            CheckIn.used,
            CheckIn.triggers,
        )
        .where(
            CheckIn.patient_id.in_(ids),
            CheckIn.local_day >= min(firsts.values()),
            CheckIn.local_day <= max(today.values()),
            CheckIn.answered_at.is_not(None),
        )
        .order_by(CheckIn.patient_id, CheckIn.local_day, CheckIn.started_at)
    )
    found: dict[int, dict[date, Day]] = defaultdict(dict)
    for row in rows:
        if row.patient_id in today and firsts[row.patient_id] <= row.local_day <= today[row.patient_id]:
            days = found[row.patient_id]
            days[row.local_day] = _merge(days.get(row.local_day), row)
    return {
        patient_id: history.fill_window(day, length, found.get(patient_id, {}))
        for patient_id, day in today.items()
    }


class _Answers(Protocol):
    """What `_merge` reads of a check-in (a CheckIn, or a row of those columns)."""

    local_day: date
    craving: int | None
    mood: int | None
    used: bool | None
    triggers: list[str] | None


def _merge(seen: Day | None, row: _Answers) -> Day:
    """The same rule as `checkin.days_between`: the latest craving and mood, use if any, every trigger."""
    return Day(
        day=row.local_day,
        craving=row.craving if row.craving is not None else (seen.craving if seen else None),
        mood=row.mood if row.mood is not None else (seen.mood if seen else None),
        used=bool(row.used) or (seen.used if seen else False),
        triggers=tuple(dict.fromkeys([*(seen.triggers if seen else ()), *(row.triggers or [])])),
        checked_in=True,
    )


async def _last_checkin_days(session: AsyncSession, ids: Select[int]) -> dict[int, date]:
    rows = await session.execute(
        select(CheckIn.patient_id, func.max(CheckIn.local_day))
        .where(CheckIn.patient_id.in_(ids), CheckIn.answered_at.is_not(None))
        .group_by(CheckIn.patient_id)
    )
    return {patient_id: day for patient_id, day in rows.all() if day is not None}


async def _sessions(
    session: AsyncSession, ids: Select[int], since: Mapping[int, datetime], now: datetime
) -> dict[int, Sessions]:
    """Per patient: the occurrences of their sessions (their own and their groups') that started from
    `since[patient]` up to `now`, and their RSVPs to them. `schedule.sessions_of` for many patients."""
    if not since:
        return {}
    memberships = (
        await session.execute(
            select(GroupMember.group_id, GroupMember.patient_id).where(GroupMember.patient_id.in_(ids))
        )
    ).all()
    in_group: dict[int, list[int]] = defaultdict(list)
    for group_id, patient_id in memberships:
        in_group[group_id].append(patient_id)
    program_sessions = list(
        await session.scalars(
            select(ProgramSession)
            .where(
                ProgramSession.active.is_(True),
                or_(
                    ProgramSession.patient_id.in_(ids),
                    ProgramSession.group_id.in_(
                        select(GroupMember.group_id).where(GroupMember.patient_id.in_(ids))
                    ),
                ),
            )
            .order_by(ProgramSession.id)
        )
    )
    start = min(since.values())
    due: dict[int, set[tuple[int, datetime]]] = defaultdict(set)
    for item in schedule.expand(program_sessions, start, now):  # started before now
        attendees = (
            in_group.get(item.session.group_id, [])
            if item.session.group_id is not None
            else [item.session.patient_id]
            if item.session.patient_id is not None
            else []
        )
        for patient_id in attendees:
            if patient_id in since and item.occurrence.start >= since[patient_id]:
                due[patient_id].add((item.session.id, item.occurrence.original_start))
    if not due:
        return {}
    originals = [original for keys in due.values() for _, original in keys]
    answers = (
        await session.execute(
            select(
                Attendance.patient_id, Attendance.session_id, Attendance.occurrence, Attendance.response
            ).where(
                Attendance.patient_id.in_(ids),
                Attendance.occurrence >= min(originals),
                Attendance.occurrence <= max(originals),
            )
        )
    ).all()
    response = {(p, s, o): r for p, s, o, r in answers}
    result = {}
    for patient_id, keys in due.items():
        given = [response.get((patient_id, s, o)) for s, o in keys]
        result[patient_id] = Sessions(
            expected=len(keys),
            coming=sum(1 for r in given if r in _ATTENDING),
            declined=sum(1 for r in given if r is Rsvp.CANNOT),
        )
    return result


def _item(row: Any) -> EscalationItem:
    return EscalationItem(row.id, RiskLevel.parse(row.level), row.category, row.status, row.created_at)


_ESCALATION_COLUMNS = (
    Escalation.id,
    Escalation.patient_id,
    Escalation.level,
    Escalation.category,
    Escalation.status,
    Escalation.created_at,
)


async def _open_escalations(session: AsyncSession, ids: Select[int]) -> dict[int, list[EscalationItem]]:
    rows = await session.execute(
        select(*_ESCALATION_COLUMNS)
        .where(Escalation.patient_id.in_(ids), Escalation.status != EscalationStatus.RESOLVED)
        .order_by(Escalation.id)
    )
    found: dict[int, list[EscalationItem]] = defaultdict(list)
    for row in rows:
        found[row.patient_id].append(_item(row))
    return found


async def _escalations_of(session: AsyncSession, patient_id: int, since: datetime) -> list[EscalationItem]:
    rows = await session.execute(
        select(*_ESCALATION_COLUMNS)
        .where(
            Escalation.patient_id == patient_id,
            or_(Escalation.status != EscalationStatus.RESOLVED, Escalation.created_at >= since),
        )
        .order_by(Escalation.created_at.desc(), Escalation.id.desc())
    )
    return [_item(row) for row in rows]


async def _helped(session: AsyncSession, patient_id: int, since: datetime) -> list[coping.ModuleScore]:
    """Modules whose finished, rated runs in the window lowered the craving (ranked as `coping.ranking`)."""
    rows = await session.execute(
        select(CopingSession.module_id, CopingSession.craving_before, CopingSession.craving_after).where(
            CopingSession.patient_id == patient_id,
            CopingSession.status == CopingStatus.DONE,
            CopingSession.finished_at >= since,
            CopingSession.craving_before.is_not(None),
            CopingSession.craving_after.is_not(None),
        )
    )
    scores = coping.rank_runs((m, b, a) for m, b, a in rows if b is not None and a is not None)
    return [s for s in scores if s.average_drop > 0]
