"""Erasing a patient: every row that belongs to them, in one transaction (/deleteme, and the purge of
patients discharged longer ago than the retention period).

What goes: the patient row and every row that points at it, directly or through other tables (found from
the models' foreign keys: `bot.privacy.records`, so a new table is not forgotten): among them the outbox rows
to the patient (`patient_id`) and about them (`subject_patient_id`: alert pages, care-team notices), found
by id and never by searching text, so another patient whose alias contains theirs keeps every page; unused
invites that carry their alias; messages queued to their chat that name no patient.

Daily digests name several patients and stay (their key is what stops a second digest that day). A digest
that names the patient (by id, in its `ref`) and is still waiting is deleted: the digest job plans it again
within minutes from what is left, so the counselor gets it once and without the alias (unless the day's
digest window has closed meanwhile, which takes an outbox stuck for hours: then there is none that day). One
already sent keeps its row with its text emptied and the patient's id taken out of its `ref`. One being sent
at this very moment goes, and is kept, as it is.

What stays: the audit log, without anything that leads back to them. Its rows about the patient keep
their action and time (that something was done, and by which counselor, must stay accountable), but the
patient's id as actor, the subject id (the patient, or their consent, invite or escalation, rows that no
longer exist) and any ids in the detail are removed; the patients an event names beside its subject (a
caseload page's, `AuditPatient`) are rows that point at the patient, deleted with the rest. A detail never
holds a patient's id (`bot.core.audit.record` refuses one). One "patient.deleted" event records the erasure
with the number of rows and no id, alias or chat id. Of each safety event (escalation) one "safety_event.kept"
event stays, with no id, alias, chat or words: its level, category and source, the day it was opened, how
long until a counselor acknowledged and resolved it, how far the paging widened, the outcome, and whether the
counselor judged it a real concern or a false alarm. A program must be able to show, for as long as it keeps
the audit log, that every alert was answered and how fast; none of that needs to know who it was about.

Not during a crisis: while any escalation of the patient is open (not resolved) or a page about one is still
queued, /deleteme is deferred (`blocked`, `defer`): the care team still needs the record to reach the
patient, and erasing would stop the re-pages and kill the counselors' buttons. The erasure runs once the last
alert is resolved and no message of the patient's chat is waiting in the inbox (`deferred_patients`, `ready`:
the scheduler's job in `bot.handlers.privacy`).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import String, Table, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import audit
from bot.core.models import (
    AuditEvent,
    Escalation,
    EscalationAlert,
    EscalationStatus,
    Invite,
    OutboxMessage,
    OutboxStatus,
    Patient,
    utcnow,
)
from bot.intake import store as inbox
from bot.outbox.store import to_chat, unclaimed
from bot.privacy.records import PATIENTS, linked_audit_events, links, owned_ids
from bot.workspace.digests import DIGEST_KIND, DIGEST_PATIENTS

log = logging.getLogger(__name__)

Reason = Literal["request", "retention"]
# The audit events a deletion request leaves (the confirm button carries the REQUESTED event's id).
REQUESTED, KEPT, DEFERRED = "deletion.requested", "deletion.kept", "deletion.deferred"
PAGE_KIND = "page"  # the outbox kind of an alert page (bot.risk.paging)


@dataclass
class Erased:
    """Rows deleted, per table; and the counselors' alert messages (chat id, message id) whose buttons
    now lead nowhere, for the caller to take off once the erasure has committed."""

    rows: Counter[str] = field(default_factory=Counter)
    alert_messages: list[tuple[int, int]] = field(default_factory=list)
    audit_events_deidentified: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def erase_patient(
    session: AsyncSession,
    patient_id: int,
    *,
    reason: Reason,
    actor: audit.ActorType = "patient",
) -> Erased:
    """Delete everything about the patient; the caller commits. Objects loaded in `session` are detached."""
    await session.flush()
    patient = await session.scalar(select(Patient).where(Patient.id == patient_id).with_for_update())
    if patient is None:
        raise LookupError(f"no patient {patient_id}")
    alias, chat_id = patient.alias, patient.chat_id
    erased = Erased()
    erased.alert_messages = [
        (chat, message)
        for chat, message in await session.execute(
            select(EscalationAlert.chat_id, EscalationAlert.message_id).where(
                EscalationAlert.id.in_(owned_ids(_link_to("escalation_alerts"), patient_id)),
                EscalationAlert.message_id.is_not(None),
            )
        )
        if message is not None
    ]
    erased.audit_events_deidentified = await _deidentify_audit(session, patient_id)
    await _keep_safety_events(session, patient_id)
    erased.rows["inbox"] += await inbox.forget_chat(session, chat_id)  # updates not yet handled, or parked
    erased.rows["outbox"] += await _digests_naming(session, patient_id)
    erased.rows["outbox"] += await _count(
        session,
        delete(OutboxMessage).where(
            to_chat(session, chat_id),
            OutboxMessage.patient_id.is_(None),
            OutboxMessage.counselor_id.is_(None),
        ),
    )
    # Children before their parents: the reverse of the order the links are found in.
    for link in reversed(list(links())):
        key = link.table.primary_key.columns[0]
        erased.rows[link.table.name] += await _count(
            session, delete(link.table).where(key.in_(owned_ids(link, patient_id)))
        )
    erased.rows["invites"] += await _count(
        session, delete(Invite).where(func.lower(Invite.patient_alias) == alias.lower())
    )
    erased.rows["patients"] += await _count(session, delete(PATIENTS).where(PATIENTS.c.id == patient_id))
    session.expunge_all()  # what was loaded of the patient's rows is gone from the database
    erased.rows = Counter({table: count for table, count in erased.rows.items() if count})
    audit.record(session, "patient.deleted", actor_type=actor, reason=reason, rows=erased.total)
    log.info("event=patient.deleted reason=%s rows=%d", reason, erased.total)
    return erased


def _link_to(table_name: str) -> Any:
    return next(link for link in links() if link.table.name == table_name)


async def _count(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _deidentify_audit(session: AsyncSession, patient_id: int) -> int:
    events = await linked_audit_events(session, patient_id)
    for event in events:
        if event.actor_type == "patient":
            event.actor_id = None
        event.subject_id = None
        if event.detail:
            event.detail = {k: v for k, v in event.detail.items() if not k.endswith("_id")} or None
    await session.flush()
    return len(events)


async def _digests_naming(session: AsyncSession, patient_id: int) -> int:
    """Digests that name the patient (see the module's docstring): a waiting one is deleted (and counted),
    to be planned again without them; one already sent keeps its row with its text emptied and without the
    patient's id in its `ref`."""
    now = utcnow()
    rows = await session.execute(
        select(OutboxMessage.id, OutboxMessage.ref, OutboxMessage.status, unclaimed(now)).where(
            OutboxMessage.kind == DIGEST_KIND,
            cast(OutboxMessage.ref, String).like(f"%{patient_id}%"),  # narrowed to the exact id below
        )
    )
    waiting: list[int] = []
    for row_id, ref, status, free in rows.all():
        named = list((ref or {}).get(DIGEST_PATIENTS, []))
        if patient_id not in named:
            continue
        if status is not OutboxStatus.PENDING:
            others = [other for other in named if other != patient_id]
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(payload={"text": "", "buttons": None}, ref={**ref, DIGEST_PATIENTS: others})
                .execution_options(synchronize_session=False)
            )
        elif free:
            waiting.append(row_id)
    if not waiting:
        return 0
    return await _count(session, delete(OutboxMessage).where(OutboxMessage.id.in_(waiting), unclaimed(now)))


def tables_erased() -> list[Table]:
    """Every table a patient's rows are deleted from (for tests and the purge's report)."""
    return [PATIENTS, *dict.fromkeys(link.table for link in links())]


async def _keep_safety_events(session: AsyncSession, patient_id: int) -> None:
    """What the retention policy keeps of each safety event, de-identified (see the module's docstring)."""
    escalations = await session.scalars(
        select(Escalation).where(Escalation.patient_id == patient_id).order_by(Escalation.id)
    )
    for escalation in escalations:

        def minutes(until: datetime | None, opened: datetime = escalation.created_at) -> int | None:
            return None if until is None else int((until - opened).total_seconds() // 60)

        audit.record(
            session,
            "safety_event.kept",
            actor_type="system",
            level=escalation.level,
            category=escalation.category,
            source=escalation.source,
            opened=escalation.created_at.date().isoformat(),
            minutes_to_acknowledge=minutes(escalation.acknowledged_at),
            minutes_to_resolve=minutes(escalation.resolved_at),
            paging_stages=escalation.stage + (1 if escalation.alerted_at else 0),
            outcome=escalation.outcome,
            verdict=escalation.verdict,
        )


# ---- deferred while an alert is open -----------------------------------------------------------------------


async def blocked(session: AsyncSession, patient_id: int) -> bool:
    """Must an erasure wait? Yes while an escalation of the patient is not resolved, or a page about one of
    them is still queued."""
    escalation_ids = {
        escalation_id: status
        for escalation_id, status in await session.execute(
            select(Escalation.id, Escalation.status).where(Escalation.patient_id == patient_id)
        )
    }
    if any(status is not EscalationStatus.RESOLVED for status in escalation_ids.values()):
        return True
    if not escalation_ids:
        return False
    queued = await session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.subject_patient_id == patient_id,
            OutboxMessage.kind == PAGE_KIND,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
    )
    return bool(queued)


async def ready(session: AsyncSession, patient_id: int) -> Patient | None:
    """The patient, locked, if their deferred erasure may run now (in this transaction): none of their alerts
    open (`blocked`) and no update of their chat waiting in the inbox (a crisis message not yet handled
    would be erased with the chat, its alert never raised). The row is locked before looking, so a crisis turn
    either committed before (and is seen) or is still running: its message is then still waiting in the inbox
    (an update is marked done only once handled), and what it writes about the patient waits for this lock."""
    patient = await session.scalar(
        select(Patient)
        .where(Patient.id == patient_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if patient is None or await blocked(session, patient_id):
        return None
    if await inbox.waiting_in_chat(session, patient.chat_id):
        log.info("event=deletion.waits_for_inbox patient_id=%s", patient_id)
        return None
    return patient


async def deferral_pending(session: AsyncSession, patient_id: int) -> bool:
    """Is a confirmed deletion of this patient waiting (deferred, and not taken back with "Keep my data")?"""
    latest = await session.scalar(
        select(AuditEvent.action)
        .where(
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id == patient_id,
            AuditEvent.action.in_((DEFERRED, KEPT)),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return latest == DEFERRED


async def defer(session: AsyncSession, patient_id: int) -> bool:
    """Record that the patient confirmed a deletion that must wait; True if none was waiting already."""
    first = not await deferral_pending(session, patient_id)
    audit.record(
        session,
        DEFERRED,
        actor_type="patient",
        actor_id=patient_id,
        subject_type="patient",
        subject_id=patient_id,
    )
    log.info("event=deletion.deferred patient_id=%s", patient_id)
    return first


async def deferred_patients(session: AsyncSession) -> list[int]:
    """Patients whose confirmed deletion is waiting (an erased patient's events no longer name them)."""
    ids = await session.scalars(
        select(AuditEvent.subject_id)
        .where(
            AuditEvent.action == DEFERRED,
            AuditEvent.subject_type == "patient",
            AuditEvent.subject_id.is_not(None),
        )
        .distinct()
    )
    return [pid for pid in ids if pid is not None and await deferral_pending(session, pid)]
