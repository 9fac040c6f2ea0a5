"""The end of care: `python -m bot discharge ALIAS`.

A discharged patient gets nothing more on the bot's initiative: `outbox.may_message` only lets active
patients through, so check-in prompts, nudges and reminders stop, and what was already waiting is cancelled
here. One goodbye with aftercare resources goes through the outbox; it is queued without `patient_id`,
which is how the dispatcher knows it is not one of the messages a discharged patient no longer gets. An
open alert stays open: only a counselor closes it. Writing in afterwards gets `discharged.note`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checkin import rules as checkin
from bot.coping import rules as coping
from bot.core import audit
from bot.core.models import (
    AuditEvent,
    CheckInStatus,
    CopingStatus,
    OutboxMessage,
    Patient,
    PatientStatus,
    Priority,
)
from bot.outbox import store as outbox
from bot.outbox.markup import Rows
from bot.privacy.callbacks import GOODBYE_KEY, GoodbyeKey

ACTION = "patient.discharged"
GOODBYE_KIND = "discharge"
OFFER_KIND = "aftercare_offer"  # sent right after the goodbye, the same way


class DischargeError(Exception):
    """The patient cannot be discharged (already are)."""


@dataclass(frozen=True)
class Discharged:
    cancelled: int  # messages that were waiting for the patient
    goodbye_queued: bool  # False when the patient has blocked the bot
    offered: bool = False  # the offer of aftercare was queued (only to an active, consenting patient)


async def discharge(
    session: AsyncSession,
    patient: Patient,
    goodbye: str,
    now: datetime,
    *,
    actor: audit.ActorType = "cli",
    offer: tuple[str, str, Rows] | None = None,
) -> Discharged:
    """Discharge the patient and queue `goodbye` (already rendered in their language); and, after it, `offer`
    (its outbox key, text and buttons: aftercare check-ins, bot.medcare.aftercare) if given."""
    await session.refresh(patient, with_for_update=True)
    if patient.status is PatientStatus.DISCHARGED:
        when = await discharged_at(session, patient)
        raise DischargeError(f"{patient.alias} was already discharged on {when:%Y-%m-%d}")
    previous = patient.status
    patient.status = PatientStatus.DISCHARGED
    # Aftercare is offered only to a patient in the program with consent (not one who never agreed or who
    # withdrew it), and only when the goodbye can go out.
    offered = offer is not None and previous is PatientStatus.ACTIVE
    patient.onboarding_step = None
    cancelled = await outbox.cancel(session, OutboxMessage.patient_id == patient.id, reason="discharged")
    open_checkin = await checkin.open_checkin(session, patient.id)
    if open_checkin is not None:
        partial = checkin.has_answers(open_checkin)
        open_checkin.status = CheckInStatus.PARTIAL if partial else CheckInStatus.MISSED
        open_checkin.step, open_checkin.finished_at = None, now
    run = await coping.active_session(session, patient.id)
    if run is not None:
        run.status, run.next_step_at, run.finished_at = CopingStatus.ABANDONED, None, now
    reachable = patient.unreachable_since is None
    if reachable:
        await outbox.enqueue(
            session,
            [
                outbox.Planned(
                    key=GOODBYE_KEY.pack(GoodbyeKey(patient.id, int(now.timestamp()))),
                    kind=GOODBYE_KIND,
                    chat_id=patient.chat_id,
                    text=goodbye,
                    due_at=now,
                    priority=Priority.NORMAL,
                    subject_patient_id=patient.id,
                ),
                *(
                    [
                        outbox.Planned(
                            key=offer[0],
                            kind=OFFER_KIND,
                            chat_id=patient.chat_id,
                            text=offer[1],
                            buttons=offer[2],
                            due_at=now,
                            priority=Priority.NORMAL,
                            subject_patient_id=patient.id,
                        )
                    ]
                    if offer is not None and offered
                    else []
                ),
            ],
        )
    audit.record(
        session,
        ACTION,
        actor_type=actor,
        subject_type="patient",
        subject_id=patient.id,
        previous=previous.value,
        cancelled=cancelled,
        goodbye=reachable,
        aftercare_offered=offered and reachable,
    )
    return Discharged(cancelled, reachable, offered and reachable)


async def latest_discharge(session: AsyncSession, patient_id: int) -> AuditEvent | None:
    """The audit event of the patient's latest discharge (when, and in `detail` what they were before), or
    None for a patient never discharged with `discharge`."""
    event: AuditEvent | None = await session.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.action == ACTION,
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id == patient_id,
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    )
    return event


async def discharged_at(session: AsyncSession, patient: Patient) -> datetime:
    """When the patient was discharged: the audit log says; a patient marked discharged some other way
    counts from their record's last change."""
    event = await latest_discharge(session, patient.id)
    return event.at if event is not None else patient.updated_at
