"""The inbox table: updates stored before Telegram is told they arrived, claimed per chat, marked done.

Rows of one chat are handled in `update_id` order by one worker at a time: a worker claims a chat's due rows
with a lease, and no other worker claims rows of a chat while one holds a live lease on any of them (on
PostgreSQL the claim takes a per-chat transaction lock, so two processes cannot claim one chat at once). A row
that failed waits for its next try without holding back the chat's later rows: a crisis message is never
stuck behind a broken one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType

from bot.core import updates
from bot.core.crypto import keyring_for
from bot.core.models import InboxStatus, InboxUpdate

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=5)
_CHAT_LOCK_CLASS = 0x1B0C  # the first key of PostgreSQL's two-key advisory locks: "inbox claims"


@dataclass(frozen=True)
class Incoming:
    """An update as Telegram sent it: its id, its chat's pseudonym (`Keyring.pseudonym` of the chat id; None
    when it has none) and its JSON text."""

    update_id: int
    chat_key: int | None
    payload: str


@dataclass(frozen=True)
class Claimed:
    update_id: int
    chat_key: int | None  # the chat's pseudonym, as stored
    payload: str
    attempts: int


def _lives(worker: str, now: datetime) -> ColumnElement[bool]:
    """Rows free to claim: nobody's, ours, or left by a worker whose lease ran out."""
    return or_(
        InboxUpdate.claimed_by.is_(None),
        InboxUpdate.claimed_by == worker,
        InboxUpdate.claimed_until.is_(None),
        InboxUpdate.claimed_until < now,
    )


# The columns whose value is the same for every row of a page (or None), converted for the driver once per
# page (`_as_bound`) and given to the insert as they are, not converted again for each of its 100 rows: on
# SQLite, formatting three timestamps per row cost more than encrypting the row's payload.
_PER_PAGE = ("status", "attempts", "next_attempt_at", "received_at", "claimed_until")


class _AsBound(UserDefinedType[Any]):
    """A parameter given to the driver as it is: converted already (`_as_bound`). Not NullType, which an
    insert would replace with the column's type (and convert again)."""

    cache_ok = True


def _store_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (update_id) DO NOTHING RETURNING update_id, built once per dialect: run with a
    page of rows as executemany, SQLAlchemy's cached compilation and insertmanyvalues batching make a page
    of 100 one statement, where a fresh multi-VALUES statement per page was compiled each time. The
    `_PER_PAGE` columns take values already converted (`_as_bound`)."""
    if dialect not in _STORE:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Table = InboxUpdate.__table__  # type: ignore[assignment]
        _STORE[dialect] = (
            insert(table)
            .values({name: bindparam(name, type_=_AsBound()) for name in _PER_PAGE})
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(table.c.update_id)
        )
    return _STORE[dialect]


def _as_bound(dialect: Dialect, column: str, value: Any) -> Any:
    """`value` as the column's type hands it to the database driver (what SQLAlchemy would do per row)."""
    table: Table = InboxUpdate.__table__  # type: ignore[assignment]
    convert = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return value if convert is None else convert(value)


_STORE: dict[str, Any] = {}

# Statements run for nearly every update, built once: building one costs more than running it (the
# compiled form is cached either way). `expanding`: the list of ids is given at execution.
_MARK_DONE = (
    update(InboxUpdate)
    .where(
        InboxUpdate.update_id.in_(bindparam("ids", expanding=True)),
        InboxUpdate.status == InboxStatus.PENDING,
    )
    .values(  # what a handled row becomes: done, its words gone
        status=InboxStatus.DONE,
        payload=None,
        handled_at=bindparam("now", type_=InboxUpdate.handled_at.type),
        claimed_by=None,
        claimed_until=None,
        error=None,
    )
    .execution_options(synchronize_session=False)
)
_NOT_HELD = (
    select(InboxUpdate.chat_key)
    .where(
        InboxUpdate.chat_key.in_(bindparam("chats", expanding=True)),
        InboxUpdate.status == InboxStatus.PENDING,
        or_(
            InboxUpdate.claimed_by.is_(None),
            InboxUpdate.claimed_by != bindparam("worker", type_=InboxUpdate.claimed_by.type),
            InboxUpdate.claimed_until.is_(None),
            InboxUpdate.claimed_until < bindparam("now", type_=InboxUpdate.claimed_until.type),
        ),
    )
    .distinct()
)


def _free(now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds: never claimed, given back, or left by a worker whose lease ran out."""
    return or_(
        InboxUpdate.claimed_by.is_(None), InboxUpdate.claimed_until.is_(None), InboxUpdate.claimed_until < now
    )


async def chats_pending(session: AsyncSession) -> list[int | None]:
    """Every chat with a row not finished, whoever holds it (at start: their rows come before new ones)."""
    query = select(InboxUpdate.chat_key).where(InboxUpdate.status == InboxStatus.PENDING).distinct()
    return list((await session.scalars(query)).all())


async def pending_payloads(
    session: AsyncSession, *, after: int, limit: int, per_chat: int
) -> list[tuple[int, int | None, str]]:
    """Up to `limit` rows not finished with an id above `after`, as (id, chat, payload), oldest first, of
    each chat only its first `per_chat` rows not finished: what was waiting at start, read page by page to
    find the chats with a crisis message among what their first turn handles (a flood's thousands of rows
    do not use the reading up)."""
    numbered = (
        select(
            InboxUpdate.update_id,
            InboxUpdate.chat_key,
            InboxUpdate.payload,
            func.row_number()
            .over(partition_by=InboxUpdate.chat_key, order_by=InboxUpdate.update_id)
            .label("place"),
        )
        .where(InboxUpdate.status == InboxStatus.PENDING, InboxUpdate.payload.is_not(None))
        .subquery()
    )
    query = (
        select(numbered.c.update_id, numbered.c.chat_key, numbered.c.payload)
        .where(numbered.c.place <= per_chat, numbered.c.update_id > after)
        .order_by(numbered.c.update_id)
        .limit(limit)
    )
    rows = (await session.execute(query)).all()
    return [(update_id, chat, payload) for update_id, chat, payload in rows if payload is not None]


async def add(
    session: AsyncSession,
    updates: Sequence[Incoming],
    now: datetime,
    *,
    claimed_by: str | None = None,
    lease: timedelta | None = None,
    unclaimed_chats: Collection[int | None] = (),
) -> list[int]:
    """Store what is new; return the ids that were new (an update Telegram sends again is stored once).
    With `claimed_by`, the new rows are stored already claimed by that worker for `lease` (it handles them
    from memory: no claim to write), except those of `unclaimed_chats`."""
    if not updates:
        return []
    until = now + lease if claimed_by is not None and lease is not None else None
    dialect = session.get_bind().dialect
    page = {
        "status": _as_bound(dialect, "status", InboxStatus.PENDING),
        "attempts": 0,
        "next_attempt_at": _as_bound(dialect, "next_attempt_at", now),
        "received_at": _as_bound(dialect, "received_at", now),
    }
    claimed = {"claimed_by": claimed_by, "claimed_until": _as_bound(dialect, "claimed_until", until)}
    unclaimed = {"claimed_by": None, "claimed_until": None}
    rows = [
        {
            "update_id": u.update_id,
            "chat_key": u.chat_key,
            "payload": u.payload,
            **page,
            **(claimed if until is not None and u.chat_key not in unclaimed_chats else unclaimed),
        }
        for u in updates
    ]
    statement = _store_statement(dialect.name)
    return [row[0] for row in (await session.execute(statement, rows)).all()]


async def chats_not_held(
    session: AsyncSession, chats: Collection[int | None], worker: str, now: datetime
) -> set[int | None]:
    """Those of `chats` with a pending row that `worker` does not hold on a live lease (another worker's,
    nobody's, or waiting for a retry): a new row of such a chat must not be handled from memory ahead of
    it. Rows without a chat always count as not held."""
    known = [chat for chat in chats if chat is not None]
    found: set[int | None] = {None} if None in chats else set()
    if known:
        params = {"chats": known, "worker": worker, "now": now}
        found.update((await session.scalars(_NOT_HELD, params)).all())
    return found


async def chats_with_work(
    session: AsyncSession,
    worker: str,
    now: datetime,
    *,
    exclude: Sequence[int | None],
    limit: int,
    mine: bool = True,
) -> list[int | None]:
    """Chats with due rows that this worker may claim (none held by another worker), oldest first. With
    `mine=False`, rows this worker holds on a live lease do not count (it has them in hand already)."""
    held_elsewhere = select(InboxUpdate.chat_key).where(
        InboxUpdate.chat_key.is_not(None),
        InboxUpdate.status == InboxStatus.PENDING,
        InboxUpdate.claimed_by.is_not(None),
        InboxUpdate.claimed_by != worker,
        InboxUpdate.claimed_until >= now,
    )
    query = (
        select(InboxUpdate.chat_key, func.min(InboxUpdate.update_id).label("first"))
        .where(
            InboxUpdate.status == InboxStatus.PENDING,
            InboxUpdate.next_attempt_at <= now,
            _lives(worker, now) if mine else _free(now),
            or_(InboxUpdate.chat_key.is_(None), InboxUpdate.chat_key.not_in(held_elsewhere)),
        )
        .group_by(InboxUpdate.chat_key)
        .order_by("first")
        .limit(limit + len(exclude))
    )
    skip = set(exclude)
    return [row.chat_key for row in (await session.execute(query)).all() if row.chat_key not in skip][:limit]


async def claim_chat(
    session: AsyncSession,
    chat_key: int | None,
    worker: str,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    skip: Collection[int] = (),
) -> list[Claimed] | None:
    """Lease up to `limit` due rows of one chat to `worker`, in order, leaving out `skip` (handled, not yet
    marked done); None while another worker holds a live lease on a row of that chat."""
    if session.get_bind().dialect.name == "postgresql" and chat_key is not None:
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:class, :key)"),
            {"class": _CHAT_LOCK_CLASS, "key": chat_key % 2_147_483_647},
        )
    same_chat = InboxUpdate.chat_key.is_(None) if chat_key is None else InboxUpdate.chat_key == chat_key
    held_elsewhere = exists().where(
        same_chat,
        InboxUpdate.status == InboxStatus.PENDING,
        InboxUpdate.claimed_by.is_not(None),
        InboxUpdate.claimed_by != worker,
        InboxUpdate.claimed_until >= now,
    )
    if await session.scalar(select(held_elsewhere)):
        return None
    due = (
        select(InboxUpdate.update_id)
        .where(
            same_chat,
            InboxUpdate.status == InboxStatus.PENDING,
            InboxUpdate.next_attempt_at <= now,
            *([InboxUpdate.update_id.not_in(list(skip))] if skip else []),
        )
        .order_by(InboxUpdate.update_id)
        .limit(limit)
    )
    rows = (
        await session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id.in_(due.scalar_subquery()))
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(InboxUpdate.update_id, InboxUpdate.chat_key, InboxUpdate.payload, InboxUpdate.attempts)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return sorted(
        (
            Claimed(r.update_id, r.chat_key, r.payload or "", r.attempts)
            for r in rows
            if r.payload is not None
        ),
        key=lambda c: c.update_id,
    )


async def mark_done(session: AsyncSession, update_ids: Sequence[int], now: datetime) -> None:
    if not update_ids:
        return
    await session.execute(_MARK_DONE, {"ids": list(update_ids), "now": now})


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s, ... up to 5 minutes between tries."""
    wait: timedelta = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)
    return wait


async def mark_failed(
    session: AsyncSession, update_id: int, error: str, now: datetime, *, max_attempts: int
) -> InboxStatus | None:
    """Count a failed try: PENDING again after a backoff, or PARKED once out of tries. None if the row is no
    longer pending (the handler's own transaction marked it done before something after it failed)."""
    row = await session.get(InboxUpdate, update_id, with_for_update=True)
    if row is None or row.status is not InboxStatus.PENDING:
        return None
    row.attempts += 1
    row.error = error[:40]
    row.claimed_by = None
    row.claimed_until = None
    if row.attempts >= max_attempts:
        row.status = InboxStatus.PARKED
        row.handled_at = now  # when it was parked, for `inbox stats`
    else:
        row.next_attempt_at = now + backoff(row.attempts)
    return row.status


async def release(session: AsyncSession, worker: str, update_ids: Sequence[int]) -> None:
    """Give claimed rows back (shutting down): any worker may take them at once."""
    if not update_ids:
        return
    await session.execute(
        update(InboxUpdate)
        .where(
            InboxUpdate.update_id.in_(list(update_ids)),
            InboxUpdate.claimed_by == worker,
            InboxUpdate.status == InboxStatus.PENDING,
        )
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


async def release_all(session: AsyncSession, worker: str | None) -> None:
    """Give back every row this worker still holds (it is stopping); with None, every worker's."""
    held = InboxUpdate.claimed_by.is_not(None) if worker is None else InboxUpdate.claimed_by == worker
    await session.execute(
        update(InboxUpdate)
        .where(held, InboxUpdate.status == InboxStatus.PENDING)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


async def renew(session: AsyncSession, worker: str, now: datetime, lease: timedelta) -> None:
    """Keep this worker's claims alive while it works through them."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.claimed_by == worker, InboxUpdate.status == InboxStatus.PENDING)
        .values(claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending row falls due (a retry's backoff), for the worker's wake-up."""
    return await session.scalar(
        select(func.min(InboxUpdate.next_attempt_at)).where(InboxUpdate.status == InboxStatus.PENDING)
    )


async def purge(session: AsyncSession, handled_before: datetime) -> int:
    """Forget handled rows once Telegram can no longer send them again (it keeps updates for a day)."""
    result = await session.execute(
        delete(InboxUpdate)
        .where(InboxUpdate.status == InboxStatus.DONE, InboxUpdate.handled_at < handled_before)
        .execution_options(synchronize_session=False)
    )
    removed: int = result.rowcount  # type: ignore[attr-defined]
    return removed


async def counts(session: AsyncSession) -> dict[str, int]:
    """Rows by status, for the operator (`python -m bot inbox stats`) and /metrics."""
    rows = (
        await session.execute(select(InboxUpdate.status, func.count()).group_by(InboxUpdate.status))
    ).all()
    found = {str(status): int(count) for status, count in rows}
    return {status.value: found.get(status.value, 0) for status in InboxStatus}


@dataclass(frozen=True)
class Parked:
    """A parked row as the operator sees it: ids, tries, the error's class and times; never its words. The
    chat id is read from the stored update (the table knows the chat only by its pseudonym)."""

    update_id: int
    chat_id: int | None
    attempts: int
    error: str | None
    received_at: datetime
    parked_at: datetime | None


async def parked(session: AsyncSession, limit: int) -> list[Parked]:
    """The latest parked rows, newest first."""
    rows = await session.execute(
        select(
            InboxUpdate.update_id,
            InboxUpdate.payload,
            InboxUpdate.attempts,
            InboxUpdate.error,
            InboxUpdate.received_at,
            InboxUpdate.handled_at,
        )
        .where(InboxUpdate.status == InboxStatus.PARKED)
        .order_by(InboxUpdate.update_id.desc())
        .limit(limit)
    )
    return [Parked(r.update_id, _chat_in(r.payload), *r[2:]) for r in rows.all()]


def _chat_in(payload: str | None) -> int | None:
    try:
        raw = json.loads(payload) if payload else None
    except ValueError:
        return None
    return updates.chat_of(raw) if isinstance(raw, dict) else None


async def waiting_in_chat(session: AsyncSession, chat_id: int) -> bool:
    """Is an update of that chat (Telegram's chat id), under any key, still to be handled (or being
    handled: a row is marked done once its replies went out)?"""
    keys = keyring_for(session.get_bind().dialect).pseudonyms(chat_id)
    waiting = exists().where(InboxUpdate.chat_key.in_(keys), InboxUpdate.status == InboxStatus.PENDING)
    return bool(await session.scalar(select(waiting)))


async def forget_chat(session: AsyncSession, chat_id: int) -> int:
    """Erasure: every stored update of that chat (Telegram's chat id), whatever its state, under any key."""
    keys = keyring_for(session.get_bind().dialect).pseudonyms(chat_id)
    result = await session.execute(
        delete(InboxUpdate).where(InboxUpdate.chat_key.in_(keys)).execution_options(synchronize_session=False)
    )
    removed: int = result.rowcount  # type: ignore[attr-defined]
    return removed
