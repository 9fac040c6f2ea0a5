"""The counselor's workspace rules: who may see which patient, notes, and when each daily digest is due.

Roles: a counselor sees the patients on their care teams; a supervisor sees every active patient of the
program (one clinic is one team); an admin manages people and sees patients only where they are on the care
team themselves. Every view of patient data is audited by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import latest_at
from bot.core.models import Counselor, CounselorNote, CounselorRole, OutboxMessage, Patient, PatientStatus
from bot.workspace import caseload
from bot.workspace.callbacks import DIGEST_KEY, DigestKey

NOTE_LIMIT = 2000  # characters
DIGEST_WINDOW = timedelta(hours=6)  # a digest missed (bot down) is still sent this long after its time
VISIBLE = (
    PatientStatus.ACTIVE,
    PatientStatus.ONBOARDING,
    PatientStatus.CONSENT_PENDING,
    PatientStatus.AFTERCARE,  # discharged, with aftercare check-ins (issue 22)
)


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


QUOTES = {'"': '"', "\u201c": "\u201d", "'": "'", "\u00ab": "\u00bb"}
ALIAS_MAX = 64


def unquoted(text: str) -> tuple[str, str] | None:
    """(alias, rest) when `text` starts with a quoted alias ("Sam Lee" rest), else None."""
    text = text.strip()
    closing = QUOTES.get(text[:1])
    if closing is None:
        return None
    end = text.find(closing, 1)
    if end < 0:
        return None
    return text[1:end].strip(), text[end + 1 :].strip()


@dataclass(frozen=True)
class Named:
    """What a counselor's command named: the patient (None: no such alias, or not theirs), the words read
    as the alias (for "not found"), and the words after it."""

    patient: Patient | None
    alias: str
    rest: str


async def patient_and_rest(session: AsyncSession, counselor: Counselor, words: Sequence[str]) -> Named:
    """Read `/note ALIAS TEXT`: a quoted alias, or else the longest run of leading words that is an alias
    (so "Sam Lee called" files on "Sam Lee", not on "Sam"). Aliases are matched case-insensitively."""
    text = " ".join(words)
    quoted = unquoted(text)
    if quoted is not None:
        alias, rest = quoted
        return Named(await visible_patient(session, counselor, alias), alias, rest)
    candidates = [" ".join(words[:k]) for k in range(1, len(words) + 1)]
    candidates = [c for c in candidates if len(c) <= ALIAS_MAX]
    known = set(
        await session.scalars(
            select(func.lower(Patient.alias)).where(
                func.lower(Patient.alias).in_([c.lower() for c in candidates])
            )
        )
    )
    for count in range(len(candidates), 0, -1):
        alias = candidates[count - 1]
        if alias.lower() in known:
            rest = " ".join(words[count:])
            return Named(await visible_patient(session, counselor, alias), alias, rest)
    return Named(None, words[0] if words else "", " ".join(words[1:]))


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
    return DIGEST_KEY.pack(DigestKey(counselor_id, day))


async def due_digests(session: AsyncSession, now: datetime) -> list[tuple[Counselor, date]]:
    """Counselors whose digest time has come (their local day's, or yesterday's while its window, crossing
    midnight, is still open) and who have not had that day's."""
    due: list[tuple[Counselor, date]] = []
    counselors = await session.scalars(
        select(Counselor).where(
            Counselor.active.is_(True), Counselor.digest_time.is_not(None), Counselor.chat_id.is_not(None)
        )
    )
    for counselor in counselors:
        assert counselor.digest_time is not None
        zone = ZoneInfo(counselor.timezone)
        at = latest_at(counselor.digest_time, zone, now)  # today's, or yesterday's (a window across midnight)
        if now.astimezone(zone) < at + DIGEST_WINDOW:  # local wall times, as the window is meant
            due.append((counselor, at.date()))
    if not due:
        return []
    sent = set(
        await session.scalars(
            select(OutboxMessage.key).where(OutboxMessage.key.in_([digest_key(c.id, d) for c, d in due]))
        )
    )
    return [(c, d) for c, d in due if digest_key(c.id, d) not in sent]
