"""`python -m bot purge --older-than DAYS`: delete what is older than the retention period.

Deleted when older than the cutoff: check-ins (closed ones), coping exercises (finished or abandoned),
C-SSRS screeners (closed), risk signals, resolved alerts with their copies in counselors' chats, outbox rows
that are done with (sent, failed, dropped, cancelled), session RSVPs, care flags, questionnaires (closed),
daily dose answers, messages from the care team and the replies to them, closed aftercare check-ins, updates
from Telegram parked before the cutoff (failed every try: their encrypted payload holds the words, and an
operator had the whole retention period to look at them); and, entirely (`bot.privacy.erasure`), patients
discharged before the cutoff and patients who withdrew their consent before it and have not given it again
(counted from the withdrawal), unless an alert about them is still open or its page still queued, or a
message of their chat is still waiting in the inbox (`erasure.ready`, as for `/deleteme`: they wait for a
later purge).

Kept: anything still open (a check-in under way, an alert not resolved: the care team still needs them; an
update from Telegram still pending, however old: a crisis message is never lost), a
current patient's profile, consents and safety plan (they are in use, not history), counselors' notes (the
counselors' record, not the bot's), and the audit log. The audit log is the record of who did what with
whose data, which a program must be able to show for years after the care it documents (HIPAA keeps such
documentation six years); it holds ids and codes only, never words, and an erased patient's entries are
de-identified by the erasure.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit, db
from bot.core.models import (
    AftercareCheckIn,
    AftercareStatus,
    Attendance,
    CareFlag,
    CareMessage,
    CareMessageReply,
    CheckIn,
    CheckInStatus,
    Consent,
    CopingSession,
    CopingStatus,
    DoseDay,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    InboxStatus,
    InboxUpdate,
    Measure,
    MeasureStatus,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientStatus,
    RiskSignal,
    ScreenStatus,
    SuicideScreen,
)
from bot.privacy.discharge import discharged_at
from bot.privacy.erasure import erase_patient, ready

log = logging.getLogger(__name__)

MIN_DAYS = 1
# In this order: rows that point at others before those they point at.
TABLES = (
    "checkins",
    "coping_sessions",
    "suicide_screens",
    "risk_signals",
    "escalation_alerts",
    "escalations",
    "outbox",
    "attendance",
    "care_flags",
    "dose_days",
    "aftercare_checkins",
    "care_message_replies",
    "care_messages",
    "measures",
    "inbox",
    "patients",
)
DONE_OUTBOX = (
    OutboxStatus.SENT,
    OutboxStatus.FAILED,
    OutboxStatus.DROPPED,
    OutboxStatus.CANCELLED,
    OutboxStatus.UNREADABLE,
)


def _statements(cutoff: datetime) -> dict[str, Delete]:
    old_resolved = select(Escalation.id).where(
        Escalation.status == EscalationStatus.RESOLVED, Escalation.resolved_at < cutoff
    )
    return {
        "checkins": delete(CheckIn).where(CheckIn.status != CheckInStatus.OPEN, CheckIn.started_at < cutoff),
        "coping_sessions": delete(CopingSession).where(
            CopingSession.status.in_((CopingStatus.DONE, CopingStatus.ABANDONED)),
            CopingSession.started_at < cutoff,
        ),
        "suicide_screens": delete(SuicideScreen).where(
            SuicideScreen.status != ScreenStatus.OPEN, SuicideScreen.started_at < cutoff
        ),
        "risk_signals": delete(RiskSignal).where(RiskSignal.at < cutoff),
        "escalation_alerts": delete(EscalationAlert).where(EscalationAlert.escalation_id.in_(old_resolved)),
        "escalations": delete(Escalation).where(Escalation.id.in_(old_resolved)),
        "outbox": delete(OutboxMessage).where(
            OutboxMessage.status.in_(DONE_OUTBOX),
            OutboxMessage.created_at < cutoff,
            OutboxMessage.due_at < cutoff,
        ),
        "attendance": delete(Attendance).where(
            Attendance.occurrence < cutoff, Attendance.responded_at < cutoff
        ),
        "care_flags": delete(CareFlag).where(CareFlag.created_at < cutoff),
        "dose_days": delete(DoseDay).where(DoseDay.closes_at < cutoff),
        "aftercare_checkins": delete(AftercareCheckIn).where(
            AftercareCheckIn.status.not_in((AftercareStatus.PLANNED, AftercareStatus.OPEN)),
            AftercareCheckIn.due_at < cutoff,
        ),
        "care_message_replies": delete(CareMessageReply).where(CareMessageReply.created_at < cutoff),
        "care_messages": delete(CareMessage).where(
            CareMessage.created_at < cutoff,
            CareMessage.id.not_in(select(CareMessageReply.message_id)),
        ),
        "measures": delete(Measure).where(Measure.status != MeasureStatus.OPEN, Measure.started_at < cutoff),
        # Parked only (`handled_at`: when it was parked); never a pending row, whatever its age.
        "inbox": delete(InboxUpdate).where(
            InboxUpdate.status == InboxStatus.PARKED, InboxUpdate.handled_at < cutoff
        ),
    }


async def purge(session: AsyncSession, *, older_than: timedelta, now: datetime) -> Counter[str]:
    """Delete what is older than `older_than`; rows deleted per table (every table in TABLES is named)."""
    if older_than < timedelta(days=MIN_DAYS):
        raise ValueError(f"the retention period must be at least {MIN_DAYS} day")
    cutoff = now - older_than
    counts: Counter[str] = Counter(dict.fromkeys(TABLES, 0))
    for table, statement in _statements(cutoff).items():
        result = await session.execute(statement.execution_options(synchronize_session=False))
        counts[table] += int(result.rowcount)  # type: ignore[attr-defined]
    waiting = 0
    for patient in [*await discharged_before(session, cutoff), *await withdrawn_before(session, cutoff)]:
        # As the deferred /deleteme: the row locked first, then no alert open and nothing of their chat
        # waiting in the inbox (a crisis message not yet handled would be erased unanswered).
        if await ready(session, patient) is None:
            waiting += 1
            continue
        erased = await erase_patient(session, patient, reason="retention", actor="cli")
        counts.update(erased.rows)
    if waiting:
        log.info("event=retention.erasure_waiting count=%d", waiting)
    db.scrub_after_commit(session)  # what was deleted leaves SQLite's files too
    event = audit.record(session, "data.purged", actor_type="cli")
    event.detail = {
        "days": older_than.days,
        "rows": sum(counts.values()),
        **{table: count for table, count in counts.items() if count},
    }
    return counts


async def withdrawn_before(session: AsyncSession, cutoff: datetime) -> list[int]:
    """Ids of the patients whose consent is withdrawn (not given again) since before `cutoff`: from their
    latest withdrawal; a patient marked withdrawn some other way counts from their record's last change."""
    withdrawn = list(
        await session.scalars(
            select(Patient).where(Patient.status == PatientStatus.CONSENT_REVOKED).order_by(Patient.id)
        )
    )
    latest = dict(
        (
            await session.execute(
                select(Consent.patient_id, func.max(Consent.revoked_at))
                .where(Consent.patient_id.in_([p.id for p in withdrawn]))
                .group_by(Consent.patient_id)
            )
        ).all()
    )
    return [p.id for p in withdrawn if (latest.get(p.id) or p.updated_at) < cutoff]


async def discharged_before(session: AsyncSession, cutoff: datetime) -> list[int]:
    """Ids of the patients discharged before `cutoff`."""
    patients = await session.scalars(
        select(Patient).where(Patient.status == PatientStatus.DISCHARGED).order_by(Patient.id)
    )
    return [patient.id for patient in patients if await discharged_at(session, patient) < cutoff]
