"""The program schedule: groups, sessions (one-off or recurring), who attends what, which reminders are due.

Session times are wall-clock times in the session's time zone, expanded by `bot.schedule.recurrence`;
reminder times
follow `bot.schedule.reminder_times` in each patient's own time zone. No Telegram here: the handlers render
and send.

Reminders are planned a little ahead (`ahead`) into the outbox under a key per patient, occurrence and
offset, so planning again creates nothing new. After downtime, the latest reminder that fell due while the
bot was down is still planned (sent late) if its session has not started; older ones are not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import (
    Attendance,
    GroupMember,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientGroup,
    ProgramSession,
    Rsvp,
    SessionKind,
    utcnow,
)
from bot.outbox import store as outbox
from bot.schedule.callbacks import REMINDER_KEY, ReminderKey, reminders_of
from bot.schedule.ical_import import ImportedEvent
from bot.schedule.recurrence import Occurrence, Override, Series, occurrences, validate_rrule
from bot.schedule.reminder_times import reminder_due

log = logging.getLogger(__name__)

REMINDER_KIND = "reminder"
CANNOT_ATTEND = "cannot_attend"


DECLINED_LOOKBACK = timedelta(days=60)  # how far back a run of "can't make it" answers is counted
DECLINED_LOOKAHEAD = timedelta(days=8)  # /schedule shows a week: answers can come that far ahead
REASON_WAIT = timedelta(hours=1)  # after "can't make it", what the patient types this long is their reason


class ScheduleError(ValueError):
    """A schedule command that cannot be done; the message says why and is safe to print."""


def reminder_key(session_id: int, original_start: datetime, patient_id: int, offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return REMINDER_KEY.pack(ReminderKey(session_id, original_start, patient_id, minutes))


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _override_from(data: dict[str, object]) -> Override:
    def moment(name: str) -> datetime | None:
        value = data.get(name)
        return _local(value) if isinstance(value, str) else None

    original = moment("original_start")
    assert original is not None
    title, location = data.get("title"), data.get("location")
    return Override(
        original_start=original,
        start=moment("start"),
        end=moment("end"),
        cancelled=bool(data.get("cancelled")),
        title=title if isinstance(title, str) else None,
        location=location if isinstance(location, str) else None,
    )


def _override_to(override: Override) -> dict[str, object]:
    return {
        "original_start": override.original_start.isoformat(),
        "start": override.start.isoformat() if override.start else None,
        "end": override.end.isoformat() if override.end else None,
        "cancelled": override.cancelled,
        "title": override.title,
        "location": override.location,
    }


def series_of(program_session: ProgramSession) -> Series:
    return Series(
        start=program_session.starts_local,
        timezone=program_session.timezone,
        duration=timedelta(minutes=program_session.duration_minutes),
        rrule=program_session.rrule,
        exdates=tuple(_local(d) for d in program_session.exdates or ()),
        rdates=tuple(_local(d) for d in program_session.rdates or ()),
        overrides=tuple(_override_from(o) for o in program_session.overrides or ()),
    )


@dataclass(frozen=True)
class Upcoming:
    """One occurrence of one session."""

    session: ProgramSession
    occurrence: Occurrence

    @property
    def title(self) -> str:
        return self.occurrence.title or self.session.title

    @property
    def location(self) -> str | None:
        return self.occurrence.location or self.session.location


# ---- groups and sessions -----------------------------------------------------------------------------------


async def group_named(session: AsyncSession, name: str, *, create: bool = False) -> PatientGroup:
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise ScheduleError("a group name is 1 to 120 characters")
    # Whatever its case: "evening iop" is the group "Evening IOP", never a second one.
    group = await session.scalar(select(PatientGroup).where(func.lower(PatientGroup.name) == name.lower()))
    if group is None:
        if not create:
            raise ScheduleError(f"no group named {name!r} (`schedule groups` lists them)")
        group = PatientGroup(name=name)
        session.add(group)
        await session.flush()
    return group


async def join_group(session: AsyncSession, group: PatientGroup, patient: Patient) -> bool:
    """Add the patient to the group; False if already in it."""
    exists = await session.scalar(
        select(GroupMember.id).where(GroupMember.group_id == group.id, GroupMember.patient_id == patient.id)
    )
    if exists is not None:
        return False
    session.add(GroupMember(group_id=group.id, patient_id=patient.id))
    await session.flush()
    return True


async def leave_group(session: AsyncSession, group: PatientGroup, patient: Patient) -> bool:
    result = await session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.patient_id == patient.id)
    )
    for program_session in await session.scalars(
        select(ProgramSession).where(ProgramSession.group_id == group.id)
    ):
        await forget_planned(session, program_session.id, patient_id=patient.id)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def members(session: AsyncSession, group_id: int) -> list[Patient]:
    return list(
        await session.scalars(
            select(Patient)
            .join(GroupMember, GroupMember.patient_id == Patient.id)
            .where(GroupMember.group_id == group_id)
            .order_by(Patient.id)
        )
    )


def _check_times(starts_local: datetime, timezone: str, duration: timedelta, rrule: str | None) -> None:
    if starts_local.tzinfo is not None:
        raise ScheduleError("session start must be a local wall-clock time")
    if not timedelta(minutes=5) <= duration <= timedelta(hours=12):
        raise ScheduleError("a session lasts between 5 minutes and 12 hours")
    if rrule:
        try:
            validate_rrule(rrule, starts_local)
        except ValueError as error:
            raise ScheduleError(f"recurrence rule: {error}") from None


async def add_session(
    session: AsyncSession,
    *,
    title: str,
    kind: SessionKind,
    starts_local: datetime,
    timezone: str,
    duration: timedelta,
    rrule: str | None = None,
    group: PatientGroup | None = None,
    patient: Patient | None = None,
    location: str | None = None,
    url: str | None = None,
    counselor_id: int | None = None,
) -> ProgramSession:
    if (group is None) == (patient is None):
        raise ScheduleError("a session is for one group or for one patient")
    title = " ".join(title.split())
    if not title or len(title) > 200:
        raise ScheduleError("a session title is 1 to 200 characters")
    _check_times(starts_local, timezone, duration, rrule)
    program_session = ProgramSession(
        kind=kind,
        title=title,
        location=location,
        url=url,
        group_id=group.id if group else None,
        patient_id=patient.id if patient else None,
        counselor_id=counselor_id,
        timezone=timezone,
        starts_local=starts_local,
        duration_minutes=int(duration.total_seconds() // 60),
        rrule=rrule or None,
        exdates=[],
        rdates=[],
        overrides=[],
    )
    session.add(program_session)
    await session.flush()
    return program_session


async def cancel_occurrence(
    session: AsyncSession, program_session: ProgramSession, original_local: datetime
) -> None:
    """Take one occurrence off the schedule (a holiday, say); its planned reminders go too."""
    tz = ZoneInfo(program_session.timezone)
    start = original_local.replace(tzinfo=tz).astimezone(UTC)
    around = expand([program_session], start - timedelta(minutes=1), start + timedelta(minutes=1))
    if not any(u.occurrence.original_start == start for u in around):
        raise ScheduleError(
            f"session {program_session.id} has no occurrence at {original_local:%Y-%m-%d %H:%M}"
        )
    dates = list(program_session.exdates or [])
    if original_local.isoformat() not in dates:
        dates.append(original_local.isoformat())
    program_session.exdates = dates
    await forget_planned(session, program_session.id)


async def remove_session(session: AsyncSession, program_session: ProgramSession) -> None:
    program_session.active = False
    await forget_planned(session, program_session.id)


@dataclass(frozen=True)
class Imported:
    created: int
    updated: int
    removed: int = 0


async def import_events(
    session: AsyncSession, events: Sequence[ImportedEvent], group: PatientGroup
) -> Imported:
    """Create or update one session per calendar event (matched by UID), for the group. Importing the same
    file again changes nothing; an edited file updates the sessions and re-plans their reminders; the
    group's imported sessions no longer in the file are removed (for them, the file is the truth)."""
    created = updated = 0
    for event in events:
        series = event.series
        _check_times(series.start, series.timezone, series.duration, series.rrule)
        values = {
            "title": (event.title or "Session")[:200],
            "location": event.location[:300] if event.location else None,
            "url": event.url[:500] if event.url else None,
            "group_id": group.id,
            "patient_id": None,
            "timezone": series.timezone,
            "starts_local": series.start,
            "duration_minutes": int(series.duration.total_seconds() // 60),
            "rrule": series.rrule,
            "exdates": [d.isoformat() for d in series.exdates],
            "rdates": [d.isoformat() for d in series.rdates],
            "overrides": [_override_to(o) for o in series.overrides],
            "active": True,
        }
        existing = await session.scalar(select(ProgramSession).where(ProgramSession.uid == event.uid[:255]))
        if existing is None:
            session.add(ProgramSession(uid=event.uid[:255], kind=SessionKind.GROUP, **values))
            created += 1
            continue
        if any(getattr(existing, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(existing, name, value)
            await forget_planned(session, existing.id)
            updated += 1
    await session.flush()
    in_file = {event.uid[:255] for event in events}
    gone = [
        program_session
        for program_session in await session.scalars(
            select(ProgramSession).where(
                ProgramSession.group_id == group.id,
                ProgramSession.uid.is_not(None),
                ProgramSession.active.is_(True),
            )
        )
        if program_session.uid not in in_file
    ]
    for program_session in gone:
        await remove_session(session, program_session)
    return Imported(created, updated, len(gone))


async def forget_planned(session: AsyncSession, session_id: int, *, patient_id: int | None = None) -> int:
    """Delete the not-yet-sent reminders of a changed session, so the planner plans them afresh."""
    conditions = [
        OutboxMessage.kind == REMINDER_KIND,
        OutboxMessage.status == OutboxStatus.PENDING,
        reminders_of(session_id),
        outbox.unclaimed(utcnow()),  # one being sent right now goes out as it is
    ]
    if patient_id is not None:
        conditions.append(OutboxMessage.patient_id == patient_id)
    result = await session.execute(delete(OutboxMessage).where(*conditions))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---- a patient's sessions ----------------------------------------------------------------------------------


async def sessions_of(session: AsyncSession, patient_id: int) -> list[ProgramSession]:
    groups = select(GroupMember.group_id).where(GroupMember.patient_id == patient_id)
    return list(
        await session.scalars(
            select(ProgramSession)
            .where(
                ProgramSession.active.is_(True),
                or_(ProgramSession.patient_id == patient_id, ProgramSession.group_id.in_(groups)),
            )
            .order_by(ProgramSession.id)
        )
    )


def expand(program_sessions: Iterable[ProgramSession], start: datetime, end: datetime) -> list[Upcoming]:
    found = [
        Upcoming(program_session, occurrence)
        for program_session in program_sessions
        for occurrence in occurrences(series_of(program_session), start, end)
    ]
    return sorted(found, key=lambda u: (u.occurrence.start, u.session.id))


async def upcoming(session: AsyncSession, patient_id: int, start: datetime, end: datetime) -> list[Upcoming]:
    return expand(await sessions_of(session, patient_id), start, end)


async def find_occurrence(
    session: AsyncSession, patient_id: int, session_id: int, original_start: datetime
) -> Upcoming | None:
    """The occurrence a button names, if it is really one of this patient's (forged data finds nothing)."""
    for program_session in await sessions_of(session, patient_id):
        if program_session.id != session_id:
            continue
        window = expand(
            [program_session], original_start - timedelta(days=2), original_start + timedelta(days=2)
        )
        return next((u for u in window if u.occurrence.original_start == original_start), None)
    return None


async def answer(
    session: AsyncSession, patient: Patient, found: Upcoming, response: Rsvp, now: datetime
) -> Attendance:
    """Record (or change) the patient's answer for one occurrence. "Can't make it" stops its reminders."""
    original = found.occurrence.original_start
    row = await session.scalar(
        select(Attendance).where(
            Attendance.patient_id == patient.id,
            Attendance.session_id == found.session.id,
            Attendance.occurrence == original,
        )
    )
    if row is None:
        row = Attendance(
            patient_id=patient.id, session_id=found.session.id, occurrence=original, response=response
        )
        session.add(row)
    row.response = response
    row.responded_at = now
    row.awaiting_reason = response is Rsvp.CANNOT
    reminders = reminders_of(found.session.id, original, patient.id)
    if response is Rsvp.CANNOT:
        await outbox.cancel(session, reminders, reason=CANNOT_ATTEND)
    else:
        row.reason = None
        # Coming after all: the reminders stopped by "can't make it" may be planned again.
        await session.execute(
            delete(OutboxMessage).where(
                reminders,
                OutboxMessage.status == OutboxStatus.CANCELLED,
                OutboxMessage.error == CANNOT_ATTEND,
            )
        )
    await session.flush()
    return row


async def declined_in_a_row(session: AsyncSession, patient_id: int, now: datetime) -> int:
    """How many of the patient's latest sessions in a row they said they can't make, counted back from the
    last one answered: a session still to come without an answer is skipped, a past one ends the run (we
    don't know whether they came)."""
    start = now - DECLINED_LOOKBACK
    found = expand(await sessions_of(session, patient_id), start, now + DECLINED_LOOKAHEAD)
    answers = {
        (row.session_id, row.occurrence): row.response
        for row in await session.scalars(
            select(Attendance).where(
                Attendance.patient_id == patient_id,
                Attendance.occurrence >= start - timedelta(days=2),  # an occurrence moved into the window
            )
        )
    }
    count = 0
    for item in reversed(found):
        response = answers.get((item.session.id, item.occurrence.original_start))
        if response is None and item.occurrence.start > now:
            continue
        if response is not Rsvp.CANNOT:
            break
        count += 1
    return count


async def awaiting_reason(
    session: AsyncSession, patient_id: int, now: datetime, *, within: timedelta
) -> Attendance | None:
    """The "can't make it" answer whose reason the patient may be typing (asked less than `within` ago)."""
    return await session.scalar(awaiting_reason_query(patient_id, now - within))


def awaiting_reason_query(
    patient_id: int | ColumnElement[int], since: datetime | ColumnElement[datetime]
) -> Select[Attendance]:
    return (
        select(Attendance)
        .where(
            Attendance.patient_id == patient_id,
            Attendance.awaiting_reason.is_(True),
            Attendance.responded_at >= since,
        )
        .order_by(Attendance.responded_at.desc())
        .limit(1)
    )


# ---- reminder planning -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueReminder:
    patient: Patient
    upcoming: Upcoming
    offset: timedelta
    due_at: datetime

    @property
    def key(self) -> str:
        return reminder_key(
            self.upcoming.session.id, self.upcoming.occurrence.original_start, self.patient.id, self.offset
        )


async def due_reminders(
    session: AsyncSession, now: datetime, offsets: Sequence[timedelta], *, ahead: timedelta
) -> list[DueReminder]:
    """Reminders due before `now + ahead` and not yet planned, for every active, reachable patient.

    A handful of set-based queries whatever the number of sessions (the attendees and the "can't make it"
    answers of all sessions with an occurrence coming are read together, in chunks)."""
    if not offsets:
        return []
    horizon = now + max(offsets) + ahead + timedelta(days=1)
    program_sessions = list(
        await session.scalars(select(ProgramSession).where(ProgramSession.active.is_(True)))
    )
    coming: list[tuple[ProgramSession, list[Upcoming]]] = []
    for program_session in program_sessions:
        upcoming_here = [u for u in expand([program_session], now, horizon) if u.occurrence.start > now]
        if upcoming_here:
            coming.append((program_session, upcoming_here))
    in_group = await _members_of(session, {s.group_id for s, _ in coming if s.group_id is not None})
    own = await _patients(session, {s.patient_id for s, _ in coming if s.group_id is None and s.patient_id})
    declined = await _declined(session, {s.id: items for s, items in coming})
    found: list[DueReminder] = []
    for program_session, upcoming_here in coming:
        if program_session.group_id is not None:
            people = in_group.get(program_session.group_id, [])
        else:
            assert program_session.patient_id is not None
            patient = own.get(program_session.patient_id)
            if patient is None:  # deleted since the sessions were read: get_one raises, as it always did
                patient = await session.get_one(Patient, program_session.patient_id)
            people = [patient]
        people = [p for p in people if outbox.may_message_patient(p)]
        if not people:
            continue
        declined_here = declined.get(program_session.id, set())
        for item in upcoming_here:
            for patient in people:
                if (patient.id, item.occurrence.original_start) in declined_here:
                    continue
                found.extend(_reminders_for(patient, item, offsets, now, ahead))
    return await _not_planned(session, found)


_CHUNK = 500  # ids in one IN (...): well under every backend's limit on bound parameters


def _chunks(values: Iterable[int]) -> list[list[int]]:
    ordered = sorted(values)
    return [ordered[start : start + _CHUNK] for start in range(0, len(ordered), _CHUNK)]


async def _members_of(session: AsyncSession, group_ids: Iterable[int]) -> dict[int, list[Patient]]:
    """`members` of many groups at once."""
    found: dict[int, list[Patient]] = {}
    for chunk in _chunks(group_ids):
        rows = await session.execute(
            select(GroupMember.group_id, Patient)
            .join(Patient, GroupMember.patient_id == Patient.id)
            .where(GroupMember.group_id.in_(chunk))
            .order_by(GroupMember.group_id, Patient.id)
        )
        for group_id, patient in rows:
            found.setdefault(group_id, []).append(patient)
    return found


async def _patients(session: AsyncSession, patient_ids: Iterable[int]) -> dict[int, Patient]:
    found: dict[int, Patient] = {}
    for chunk in _chunks(patient_ids):
        found.update((p.id, p) for p in await session.scalars(select(Patient).where(Patient.id.in_(chunk))))
    return found


def _reminders_for(
    patient: Patient, item: Upcoming, offsets: Sequence[timedelta], now: datetime, ahead: timedelta
) -> list[DueReminder]:
    times = [
        DueReminder(
            patient,
            item,
            offset,
            reminder_due(
                item.occurrence.start, offset, patient.timezone, patient.quiet_start, patient.quiet_end
            ),
        )
        for offset in offsets
    ]
    coming = [r for r in times if now <= r.due_at < now + ahead]
    if any(r.due_at >= now for r in times):
        return coming
    # All fell due already (the bot was down, or the session was added late): the latest one, sent late.
    return [max(times, key=lambda r: r.due_at)]


async def _declined(
    session: AsyncSession, items: dict[int, Sequence[Upcoming]]
) -> dict[int, set[tuple[int, datetime]]]:
    """Per session: (patient, original start) of its occurrences in `items` answered "can't make it"."""
    spans = {
        session_id: (min(starts), max(starts))
        for session_id, upcoming in items.items()
        if (starts := [u.occurrence.original_start for u in upcoming])
    }
    found: dict[int, set[tuple[int, datetime]]] = {}
    for chunk in _chunks(spans):
        rows = await session.execute(
            select(Attendance.session_id, Attendance.patient_id, Attendance.occurrence).where(
                Attendance.session_id.in_(chunk),
                Attendance.response == Rsvp.CANNOT,
                Attendance.occurrence >= min(spans[i][0] for i in chunk),
                Attendance.occurrence <= max(spans[i][1] for i in chunk),
            )
        )
        for session_id, patient_id, occurrence in rows:
            first, last = spans[session_id]
            if first <= occurrence <= last:
                found.setdefault(session_id, set()).add((patient_id, occurrence))
    return found


async def _not_planned(session: AsyncSession, candidates: list[DueReminder]) -> list[DueReminder]:
    existing: set[str] = set()
    keys = [c.key for c in candidates]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        existing.update(await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(chunk))))
    return [c for c, key in zip(candidates, keys, strict=True) if key not in existing]
