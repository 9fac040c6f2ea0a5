"""The outbox: every planned message (reminders, check-in prompts, notices, alert pages) as a database row.

The database is the source of truth; the sender (`bot.outbox.dispatcher`) only claims due rows, sends them
and records what happened. The rules here:

- Planning is idempotent: each row has a `key` (patient + session occurrence + offset, say) and inserting a
  key that exists does nothing, so planning can run again and again.
- A row is claimed with a lease (`claimed_by`, `claimed_until`) in one statement; on PostgreSQL with
  `FOR UPDATE SKIP LOCKED`, so several processes can share the work without taking the same row. A process
  that dies mid-send frees its rows when the lease runs out: at most the rows it had in flight go twice.
- Higher `priority` goes first: alerts overtake check-in prompts, which overtake bulk reminders.
- A row past `expires_at` (a reminder for a session that has started) is dropped, counted, never sent.
- Failures are retried with backoff; after `max_attempts` the row is marked failed, never silently lost.
- A row whose payload cannot be decrypted (written with a key ENCRYPTION_KEY no longer holds) is set aside
  as `unreadable` when claimed, logged once with its id and counted; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, bindparam, case, func, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.crypto import EncryptedInt, EncryptedJSON, EncryptionError, keyring_for
from bot.core.models import OutboxMessage, OutboxStatus, Patient, PatientStatus, Priority

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=10)


@dataclass(frozen=True)
class Planned:
    """A message to put in the outbox (see `enqueue`). `payload` is {"text": ..., "buttons": rows or None}."""

    key: str
    kind: str
    chat_id: int
    text: str
    due_at: datetime
    priority: Priority = Priority.NORMAL
    buttons: Sequence[Sequence[tuple[str, str]]] | None = None
    patient_id: int | None = None
    counselor_id: int | None = None
    ref: dict[str, Any] | None = None
    expires_at: datetime | None = None
    # For a message to someone else about a patient (a page, a care-team notice): that patient, so that
    # erasing them deletes it by id (`bot.privacy.erasure`). Messages to the patient have `patient_id`.
    subject_patient_id: int | None = None

    def row(self) -> dict[str, Any]:
        buttons = [[list(button) for button in row] for row in self.buttons] if self.buttons else None
        return {
            "key": self.key,
            "kind": self.kind,
            "priority": int(self.priority),
            "chat_id": self.chat_id,
            "patient_id": self.patient_id,
            "counselor_id": self.counselor_id,
            "subject_patient_id": self.subject_patient_id,
            "payload": {"text": self.text, "buttons": buttons},
            "ref": self.ref,
            "due_at": self.due_at,
            "expires_at": self.expires_at,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": self.due_at,
        }


def to_patient(
    patient: Patient,
    key: str,
    kind: str,
    text: str,
    *,
    due_at: datetime,
    buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
    expires_at: datetime | None = None,
    priority: Priority = Priority.NORMAL,
    in_program: bool = True,
) -> Planned:
    """A message the bot sends a patient on its own (a question, a reminder), its `key` packed by the
    feature's own codec. `in_program`: it goes only while the patient is in the program (it carries
    `patient_id`, so `cancel_unwanted` cancels it once they are not active or not reachable); False for one
    that goes after the program too (aftercare), which names the patient as `subject_patient_id` only (so
    erasing them still deletes it)."""
    return Planned(
        key=key,
        kind=kind,
        chat_id=patient.chat_id,
        text=text,
        due_at=due_at,
        priority=priority,
        buttons=buttons,
        expires_at=expires_at,
        patient_id=patient.id if in_program else None,
        subject_patient_id=None if in_program else patient.id,
    )


async def enqueue(session: AsyncSession, messages: Sequence[Planned]) -> int:
    """Insert the messages whose key is new; return how many were new. Safe to repeat."""
    if not messages:
        return 0
    dialect = session.get_bind().dialect
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    keyring = keyring_for(dialect)
    inserted = 0
    rows = [{**message.row(), "chat_ref": keyring.pseudonym(message.chat_id)} for message in messages]
    for start in range(0, len(rows), 500):
        statement = (
            insert(OutboxMessage)
            .values(rows[start : start + 500])
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(OutboxMessage.id)
        )
        inserted += len((await session.execute(statement)).all())
    return inserted


@dataclass(frozen=True)
class Claimed:
    """A claimed row, detached from any session: what the sender needs to send it and record the result."""

    id: int
    key: str
    kind: str
    chat_id: int
    patient_id: int | None
    counselor_id: int | None
    text: str
    buttons: list[list[tuple[str, str]]] | None
    ref: dict[str, Any]
    attempts: int
    claimed_until: datetime
    priority: int = Priority.NORMAL  # URGENT: sent through the send limiter's urgent lane


async def drop_expired(session: AsyncSession, now: datetime) -> int:
    """Rows that can no longer be useful (their session has started) are dropped, and counted."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.expires_at.is_not(None),
            OutboxMessage.expires_at <= now,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        .values(status=OutboxStatus.DROPPED, error="expired", claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    dropped: int = result.rowcount  # type: ignore[attr-defined]
    return dropped


async def claim(
    session: AsyncSession, worker: str, now: datetime, *, limit: int, lease: timedelta
) -> list[Claimed]:
    """Lease up to `limit` due rows to `worker`, most urgent first."""
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.expires_at.is_(None), OutboxMessage.expires_at > now),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            or_(OutboxMessage.patient_id.is_(None), OutboxMessage.patient_id.in_(_reachable_patients())),
        )
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer at a time anyway
    )
    # Chosen once (MATERIALIZED): PostgreSQL may otherwise plan `id IN (subquery)` as a join that runs the
    # subquery again for each row it updates, and each run skips the rows this very statement has just
    # locked, so a claim of `limit` rows took every due row (seen once the statement's plan changed with
    # the table's statistics).
    chosen = due.cte("due").prefix_with("MATERIALIZED", dialect="postgresql")
    until = now + lease
    rows = (
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(select(chosen.c.id)))
            .values(claimed_by=worker, claimed_until=until)
            .returning(
                OutboxMessage.id,
                OutboxMessage.key,
                OutboxMessage.kind,
                OutboxMessage.patient_id,
                OutboxMessage.counselor_id,
                # as stored: decrypted row by row below, so one unreadable row cannot fail the batch
                type_coerce(OutboxMessage.chat_id, Text).label("chat_id"),
                type_coerce(OutboxMessage.payload, Text).label("payload"),
                OutboxMessage.ref,
                OutboxMessage.attempts,
                OutboxMessage.priority,
                OutboxMessage.next_attempt_at,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    dialect = session.get_bind().dialect
    claimed: list[tuple[Any, Claimed]] = []
    unreadable: list[Row[Any]] = []
    for r in rows:
        try:
            claimed.append((r, _claimed(r, dialect, until)))
        except (EncryptionError, ValueError, LookupError, TypeError):
            unreadable.append(r)
    if unreadable:
        await _set_aside(session, worker, unreadable)
    claimed.sort(key=lambda pair: (-pair[0].priority, pair[0].next_attempt_at, pair[0].id))
    return [row for _, row in claimed]


_PAYLOAD = EncryptedJSON()
_CHAT = EncryptedInt()


def _claimed(r: Row[Any], dialect: Dialect, until: datetime) -> Claimed:
    """The claimed row with its chat and payload decrypted; raises if it cannot be read (see `claim`)."""
    chat_id = _CHAT.process_result_value(r.chat_id, dialect)
    payload = _PAYLOAD.process_result_value(r.payload, dialect)
    text = payload["text"]
    if not isinstance(text, str):
        raise TypeError("payload text")
    buttons = payload.get("buttons")
    return Claimed(
        id=r.id,
        key=r.key,
        kind=r.kind,
        chat_id=chat_id,
        patient_id=r.patient_id,
        counselor_id=r.counselor_id,
        text=text,
        buttons=[[(label, data) for label, data in row] for row in buttons] if buttons else None,
        ref=r.ref or {},
        attempts=r.attempts,
        claimed_until=until,
        priority=r.priority,
    )


async def _set_aside(session: AsyncSession, worker: str, rows: Sequence[Row[Any]]) -> None:
    """Rows whose payload cannot be decrypted: never sent, never claimed again, counted by `counts` and
    logged here once each (in the transaction that sets them aside)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_([r.id for r in rows]), OutboxMessage.claimed_by == worker)
        .values(status=OutboxStatus.UNREADABLE, error="unreadable", claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    for r in rows:
        log.error("event=outbox.unreadable outbox_id=%s kind=%s", r.id, r.kind)


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, ... up to 10 minutes between tries."""
    wait: timedelta = BACKOFF_BASE * (2 ** min(max(0, attempts - 1), 20))  # capped before it can overflow
    return min(wait, BACKOFF_MAX)


def _held(row_id: int | Any, worker: str) -> tuple[Any, ...]:
    """Only a row this worker still holds: not one whose lease ran out and went to another, nor one
    cancelled or replanned meanwhile."""
    return (OutboxMessage.id == row_id, OutboxMessage.claimed_by == worker)


async def still_held(session: AsyncSession, worker: str, row_id: int) -> bool:
    """The row is still there and still this worker's: not erased (`/deleteme`), cancelled or replanned
    since it was claimed. Read just before its send."""
    found = await session.scalar(select(OutboxMessage.id).where(*_held(row_id, worker)))
    return found is not None


async def mark_sent(
    session: AsyncSession, worker: str, sent: Sequence[tuple[Claimed, int]], now: datetime
) -> None:
    """Record sent rows (row, Telegram message id) in one round trip."""
    if not sent:
        return
    statement = (
        update(OutboxMessage)
        .where(*_held(bindparam("row_id"), worker))
        .values(
            status=OutboxStatus.SENT,
            sent_at=now,
            message_id=bindparam("message_id"),
            attempts=OutboxMessage.attempts + 1,
            claimed_by=None,
            claimed_until=None,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    connection = await session.connection()
    await connection.execute(statement, [{"row_id": row.id, "message_id": mid} for row, mid in sent])


async def mark_retry(
    session: AsyncSession,
    worker: str,
    row: Claimed,
    error: str,
    now: datetime,
    *,
    max_attempts: int,
    wait: timedelta | None,
) -> bool:
    """Try again later (after `wait`, or the backoff); or, out of attempts, mark it failed. True if failed."""
    attempts = row.attempts + 1
    failed = attempts >= max_attempts
    await session.execute(
        update(OutboxMessage)
        .where(*_held(row.id, worker), OutboxMessage.status == OutboxStatus.PENDING)
        .values(
            attempts=attempts,
            status=OutboxStatus.FAILED if failed else OutboxStatus.PENDING,
            next_attempt_at=now + (wait if wait is not None else backoff(attempts)),
            claimed_by=None,
            claimed_until=None,
            error=error[:40],
        )
        .execution_options(synchronize_session=False)
    )
    return failed


async def mark_failed(session: AsyncSession, worker: str, row: Claimed, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(*_held(row.id, worker))
        .values(
            attempts=row.attempts + 1,
            status=OutboxStatus.FAILED,
            claimed_by=None,
            claimed_until=None,
            error=error[:40],
        )
        .execution_options(synchronize_session=False)
    )


async def release(session: AsyncSession, worker: str, rows: Sequence[Claimed]) -> None:
    """Give back rows claimed but not tried (shutting down); another pass or process takes them."""
    if rows:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([row.id for row in rows]), OutboxMessage.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def to_chat(session: AsyncSession, chat_id: int) -> ColumnElement[bool]:
    """A condition: the row goes to this chat (Telegram's chat id). The table holds the id encrypted and
    its pseudonym (`chat_ref`), which is what is compared, under every key of ENCRYPTION_KEY."""
    return OutboxMessage.chat_ref.in_(keyring_for(session.get_bind().dialect).pseudonyms(chat_id))


def unclaimed(now: datetime) -> Any:
    """A condition: the row is not being sent right now (so it may still be cancelled or replanned)."""
    return or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)


async def cancel(session: AsyncSession, *conditions: Any, reason: str) -> int:
    """Cancel pending rows matching `conditions` (e.g. a patient's reminders after a discharge). A row being
    sent right now may still go out; its result is then not recorded over the cancellation."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING, *conditions)
        .values(status=OutboxStatus.CANCELLED, error=reason[:40], claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    cancelled: int = result.rowcount  # type: ignore[attr-defined]
    return cancelled


async def hasten(session: AsyncSession, *conditions: Any, now: datetime) -> int:
    """Make pending rows matching `conditions` due now (e.g. a notice held back for a reason that will not
    come). Returns how many."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.due_at > now, *conditions)
        .values(due_at=now, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    hastened: int = result.rowcount  # type: ignore[attr-defined]
    return hastened


async def mark_unreachable(session: AsyncSession, patient_id: int, now: datetime) -> Patient | None:
    """The patient blocked the bot: note it once and cancel what was waiting for them. Returns the patient
    if this is news (so the care team is told once), else None."""
    patient = await session.get(Patient, patient_id, with_for_update=True)
    await cancel(session, OutboxMessage.patient_id == patient_id, reason="unreachable")
    if patient is None or patient.unreachable_since is not None:
        return None
    patient.unreachable_since = now
    return patient


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending row can next be claimed (due, and its lease if any has ended), so the
    sender can wake exactly then."""
    ready = case(
        (OutboxMessage.claimed_until > OutboxMessage.next_attempt_at, OutboxMessage.claimed_until),
        else_=OutboxMessage.next_attempt_at,
    )
    due: datetime | None = await session.scalar(
        select(func.min(ready)).where(OutboxMessage.status == OutboxStatus.PENDING)
    )
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=UTC)  # SQLite hands back a naive value from the expression
    return due


def may_message() -> ColumnElement[bool]:
    """Patients the bot may message on its own: active (consented, not discharged) and not blocking it."""
    return and_(Patient.status == PatientStatus.ACTIVE, Patient.unreachable_since.is_(None))


def may_message_patient(patient: Patient) -> bool:
    """`may_message` for a patient already loaded."""
    return patient.status is PatientStatus.ACTIVE and patient.unreachable_since is None


def _reachable_patients() -> Any:
    return select(Patient.id).where(may_message())


async def cancel_unwanted(session: AsyncSession, now: datetime) -> int:
    """Rows for a patient who is no longer active (consent withdrawn, discharged) or reachable are cancelled
    before anything is claimed, whenever and however their status changed."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.patient_id.is_not(None),
            OutboxMessage.patient_id.not_in(_reachable_patients()),
            unclaimed(now),
        )
        .values(status=OutboxStatus.CANCELLED, error="patient_inactive")
        .execution_options(synchronize_session=False)
    )
    cancelled: int = result.rowcount  # type: ignore[attr-defined]
    return cancelled


async def counts(session: AsyncSession) -> dict[str, int]:
    """Rows by status, for the operator (`python -m bot outbox stats`) and the benchmark."""
    rows = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    return {str(status): int(count) for status, count in rows.all()}
