"""The counselor's workspace rules: who may see which patient, notes, and when each daily digest is due.

Roles: a counselor sees the patients on their care teams; a supervisor sees every active patient of the
program (one clinic is one team); an admin manages people and sees patients only where they are on the care
team themselves. Every view of patient data is audited by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Counselor, CounselorNote, CounselorRole, OutboxMessage, Patient, PatientStatus
from bot.workspace import caseload

NOTE_LIMIT = 2000  # characters
DIGEST_WINDOW = timedelta(hours=6)  # a digest missed (bot down) is still sent this long after its time
VISIBLE = (PatientStatus.ACTIVE, PatientStatus.ONBOARDING, PatientStatus.CONSENT_PENDING)


def whole_program(counselor: Counselor) -> bool:
    return counselor.role is CounselorRole.SUPERVISOR


async def visible_patient(session: AsyncSession, counselor: Counselor, alias: str) -> Patient | None:
    """The patient of that alias if the counselor may see them; None alike for "no such alias" and "not
    yours", so a guess learns nothing."""
    patient = await session.scalar(select(Patient).where(func.lower(Patient.alias) == alias.strip().lower()))
    if patient is None or not counselor.active:
        return None
    if whole_program(counselor) and patient.status in VISIBLE:
        return patient
    if await caseload.is_on_caseload(session, counselor.id, patient.id):
        return patient
    return None


async def add_note(session: AsyncSession, counselor: Counselor, patient: Patient, text: str) -> CounselorNote:
    note = CounselorNote(patient_id=patient.id, counselor_id=counselor.id, text=text.strip()[:NOTE_LIMIT])
    session.add(note)
    await session.flush()
    return note


@dataclass(frozen=True)
class ShownNote:
    author: str | None  # the counselor's name; None once they are gone
    at: datetime
    text: str


async def recent_notes(session: AsyncSession, patient_id: int, limit: int = 5) -> list[ShownNote]:
    rows = await session.execute(
        select(CounselorNote, Counselor.name)
        .outerjoin(Counselor, Counselor.id == CounselorNote.counselor_id)
        .where(CounselorNote.patient_id == patient_id)
        .order_by(CounselorNote.created_at.desc(), CounselorNote.id.desc())
        .limit(limit)
    )
    return [ShownNote(name, note.created_at, note.text) for note, name in rows]


def digest_key(counselor_id: int, day: date) -> str:
    return f"digest:{counselor_id}:{day.isoformat()}"


async def due_digests(session: AsyncSession, now: datetime) -> list[tuple[Counselor, date]]:
    """Counselors whose digest time has come today (their local day) and who have not had today's."""
    due: list[tuple[Counselor, date]] = []
    counselors = await session.scalars(
        select(Counselor).where(
            Counselor.active.is_(True), Counselor.digest_time.is_not(None), Counselor.chat_id.is_not(None)
        )
    )
    for counselor in counselors:
        assert counselor.digest_time is not None
        local = now.astimezone(ZoneInfo(counselor.timezone))
        at = datetime.combine(local.date(), counselor.digest_time, ZoneInfo(counselor.timezone))
        if at <= local < at + DIGEST_WINDOW:
            due.append((counselor, local.date()))
    if not due:
        return []
    sent = set(
        await session.scalars(
            select(OutboxMessage.key).where(OutboxMessage.key.in_([digest_key(c.id, d) for c, d in due]))
        )
    )
    return [(c, d) for c, d in due if digest_key(c.id, d) not in sent]
