"""Rows the rule tests need as a starting point, written through the real models."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db, people
from bot.core.models import (
    AssignmentRole,
    CareAssignment,
    Counselor,
    CounselorRole,
    Escalation,
    EscalationStatus,
    GroupMember,
    Measure,
    MeasureSource,
    MeasureStatus,
    Patient,
    PatientGroup,
    PatientStatus,
    ProgramSession,
    SessionKind,
    utcnow,
)
from bot.medcare.callbacks import TYPING, TYPING_MED, TYPING_REPLY, TypingMed, TypingReply

_numbers = itertools.count(100_000)


async def add_counselor(
    sessions: async_sessionmaker[AsyncSession],
    name: str = "Dana",
    *,
    role: CounselorRole = CounselorRole.COUNSELOR,
    timezone: str = "America/New_York",
    linked: bool = False,
    **fields: object,
) -> Counselor:
    """A counselor added as the CLI adds one (bot.core.people.add_counselor), `linked` to a Telegram account
    and chat of their own if asked; `fields` set any other column (chat_id, digest_time, active)."""
    async with db.transaction(sessions) as session:
        counselor = await people.add_counselor(session, name=name, role=role, timezone=timezone)
        if linked:
            counselor.telegram_user_id = counselor.chat_id = next(_numbers)
        for column, value in fields.items():
            setattr(counselor, column, value)
    return counselor


async def assign(
    sessions: async_sessionmaker[AsyncSession],
    patient: Patient | int,
    counselor: Counselor | int,
    role: AssignmentRole = AssignmentRole.PRIMARY,
) -> None:
    """Put the counselor on the patient's care team."""
    patient_id = patient if isinstance(patient, int) else patient.id
    counselor_id = counselor if isinstance(counselor, int) else counselor.id
    async with db.transaction(sessions) as session:
        session.add(CareAssignment(patient_id=patient_id, counselor_id=counselor_id, role=role))


async def add_patient(
    sessions: async_sessionmaker[AsyncSession],
    *,
    counselor: Counselor | int | None = None,
    team_role: AssignmentRole = AssignmentRole.PRIMARY,
    **fields: object,
) -> Patient:
    """An active patient with a fresh Telegram id and alias, on `counselor`'s care team if one is given
    (as `team_role`); `fields` override any column."""
    number = next(_numbers)
    values: dict[str, object] = {
        "telegram_user_id": number,
        "chat_id": number,
        "alias": f"P{number}",
        "timezone": "UTC",
        "language": "en",
        "status": PatientStatus.ACTIVE,
        **fields,
    }
    async with db.transaction(sessions) as session:
        patient = Patient(**values)
        session.add(patient)
    if counselor is not None:
        await assign(sessions, patient, counselor, team_role)
    return patient


async def checkin_time_passed(
    sessions: async_sessionmaker[AsyncSession],
    patient_id: int,
    *rows: object,
    minutes: int = 30,
    timezone: str = "America/New_York",
) -> datetime:
    """Make the patient's check-in time `minutes` ago today (in `timezone`, the zone `enroll` chooses), and
    add `rows` in the same transaction; the local time now."""
    local = utcnow().astimezone(ZoneInfo(timezone))
    async with db.transaction(sessions) as session:
        await session.execute(
            update(Patient)
            .where(Patient.id == patient_id)
            .values(checkin_time=(local - timedelta(minutes=minutes)).time())
        )
        session.add_all(rows)
    return local


async def typed_answer_asked_ago(
    sessions: async_sessionmaker[AsyncSession], patient_id: int, hours: float
) -> None:
    """Move back to `hours` ago the moment the patient was asked to type something after a button (a
    medicine's name, a reply to the care team): the clock moved on without them."""
    async with db.transaction(sessions) as session:
        patient = await session.get_one(Patient, patient_id)
        typing = TYPING.parse(patient.onboarding_step)
        assert typing is not None, "nothing is waiting to be typed"
        asked_at = utcnow() - timedelta(hours=hours)
        patient.onboarding_step = (
            TYPING_REPLY.pack(TypingReply(typing.message_id, asked_at))
            if isinstance(typing, TypingReply)
            else TYPING_MED.pack(TypingMed(typing.field, asked_at))
        )


async def add_escalation(
    sessions: async_sessionmaker[AsyncSession],
    patient: Patient | int,
    detail: str | None,
    *,
    verdict: str | None = "real_concern",
    resolved_at: datetime | None = None,
    **fields: object,
) -> Escalation:
    """An imminent suicide escalation with `detail` behind it, resolved (by nobody in particular) with
    `verdict` at `resolved_at` (now by default; the outcome a false alarm's, or "safe"), or still open with
    status=EscalationStatus.OPEN; `fields` override any other column."""
    now = utcnow()
    resolved = fields.get("status", EscalationStatus.RESOLVED) is EscalationStatus.RESOLVED
    values: dict[str, object] = {
        "patient_id": patient if isinstance(patient, int) else patient.id,
        "level": "imminent",
        "category": "suicide",
        "source": "message",
        "detail": detail,
        "status": EscalationStatus.RESOLVED,
        "created_at": (resolved_at or now) - timedelta(hours=1),
        "last_signal_at": (resolved_at or now) - timedelta(hours=1),
        "resolved_at": (resolved_at or now) if resolved else None,
        "outcome": ("false_alarm" if verdict == "false_alarm" else "safe") if resolved else None,
        "verdict": verdict,
        **fields,
    }
    async with db.transaction(sessions) as session:
        escalation = Escalation(**values)
        session.add(escalation)
    return escalation


async def add_group(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    users: Iterable[int],
    *,
    zone: str = "America/New_York",
) -> int:
    """A patient group of new active patients, one per Telegram user id (no quiet hours). Returns its id."""
    async with db.transaction(sessions) as session:
        group = PatientGroup(name=name)
        session.add(group)
        await session.flush()
        for user in users:
            patient = Patient(
                telegram_user_id=user,
                chat_id=user,
                alias=f"G-{user}",
                timezone=zone,
                language="en",
                quiet_start=datetime.min.time(),  # equal start and end: no quiet hours
                quiet_end=datetime.min.time(),
                status=PatientStatus.ACTIVE,
            )
            session.add(patient)
            await session.flush()
            session.add(GroupMember(group_id=group.id, patient_id=patient.id))
        return group.id


async def add_group_session(
    sessions: async_sessionmaker[AsyncSession],
    group_id: int,
    *,
    starts_in: timedelta,
    title: str,
    zone: str = "America/New_York",
) -> None:
    """A one-off group session starting `starts_in` from now (with REMINDER_OFFSETS=1h and starts_in = 1 hour
    and a few seconds, its reminders fall due in those few seconds)."""
    starts = (utcnow() + starts_in).astimezone(ZoneInfo(zone))
    async with db.transaction(sessions) as session:
        session.add(
            ProgramSession(
                kind=SessionKind.GROUP,
                title=title,
                location="Room B",
                group_id=group_id,
                timezone=zone,
                starts_local=starts.replace(tzinfo=None),
                duration_minutes=180,
                exdates=[],
                rdates=[],
                overrides=[],
            )
        )


async def add_measure(
    sessions: async_sessionmaker[AsyncSession],
    patient: Patient | int,
    instrument: str,
    scores: dict[str, int],
    *,
    finished_at: datetime | None = None,
    answers: dict[str, int] | None = None,
    **fields: object,
) -> Measure:
    """A complete questionnaire with these `scores` (and `answers`, none by default), finished at
    `finished_at` (now by default); `fields` override any column."""
    finished_at = finished_at or utcnow()
    values: dict[str, object] = {
        "patient_id": patient if isinstance(patient, int) else patient.id,
        "instrument": instrument,
        "source": MeasureSource.SCHEDULED,
        "language": "en",
        "status": MeasureStatus.COMPLETE,
        "answers": answers or {},
        "scores": scores,
        "started_at": finished_at - timedelta(minutes=5),
        "expires_at": finished_at + timedelta(days=3),
        "answered_at": finished_at,
        "finished_at": finished_at,
        **fields,
    }
    async with db.transaction(sessions) as session:
        measure = Measure(**values)
        session.add(measure)
    return measure
