"""Whose claims belong to a process that has ended, so that its rows are taken back at once.

The inbox and the outbox lease the rows a worker claims (`claimed_by`, `claimed_until`). A process killed
in the middle of its work leaves its rows claimed; waiting for their lease to end put a crisis message
fetched just before a crash 15 s and more behind after the restart. Instead every worker's name says which
process it belongs to (`WORKER`), and a process shows it is alive:

- on PostgreSQL, by holding a session advisory lock named after it for as long as it runs (`Presence`),
  on a connection of its own. The database lets go of the lock when that connection closes, and the kernel
  closes it when the process dies, however it dies. Another process that can take the lock for a moment
  (`departed`) knows the claimant is gone.
- on SQLite, which serves one `run` process at a time (bot.core.runlock), by being this process: another
  process's claims are a dead one's.

A claim taken back from a process that had in fact sent or handled its row before it died is done again:
that is the in-flight bound on duplicates, as when a lease runs out. Names of another form (written by an
earlier version) are never judged: their lease decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.core.callbacks import Codec, choice, word
from bot.core.db import JobLocks, lock_key
from bot.core.models import InboxStatus, InboxUpdate, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

PROCESS: Final = secrets.token_hex(6)  # this process, in its workers' names
KEEP_SECONDS = 2.0  # how often the connection holding the lock is checked (and the lock taken again if lost)


@dataclass(frozen=True)
class WorkerName:
    role: str  # "in": the inbox's processor; "out": the outbox's dispatcher
    process: str
    worker: str  # one worker of the process (tests run several in one process)


WORKER = Codec(
    "{role}.{process}.{worker}",
    WorkerName,
    limit=40,  # the claimed_by columns
    role=choice("in", "out"),
    process=word("[0-9a-f]{12}"),
    worker=word("[0-9a-f]{8}"),
)


def worker_name(role: str) -> str:
    """A new worker's name, for its claims: its role, this process, and itself."""
    return WORKER.pack(WorkerName(role, PROCESS, secrets.token_hex(4)))


def _lock(process: str) -> int:
    return lock_key(f"process:{process}")


class Presence:
    """Holds this process's lock while it runs (PostgreSQL; nothing to hold on SQLite). `start` before the
    first claim, `close` after the last row is given back."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._locks = JobLocks(engine)
        self._keeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        if not await self._locks.hold(f"process:{PROCESS}"):
            # Only a clash of two random names could do this: the other process's claims and ours look
            # alive to everyone, and their leases decide, as before.
            log.warning("event=presence.lock_taken process=%s", PROCESS)
        self._keeping = asyncio.create_task(self._keep(), name="presence")

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(KEEP_SECONDS)
            try:
                await self._locks.keep()
            except Exception as error:  # the database is away: try again at the next look
                log.warning("event=presence.keep_failed kind=%s", type(error).__name__)

    async def close(self) -> None:
        if self._keeping is not None:
            self._keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeping
        await self._locks.close()


async def departed(session: AsyncSession, names: Collection[str]) -> set[str]:
    """Those of the workers `names` whose process has ended (see the module's docstring); never this
    process's. On PostgreSQL each ended process's lock is held by this transaction until it ends."""
    processes: dict[str, str] = {}
    for name in names:
        parsed = WORKER.parse(name)
        if parsed is not None and parsed.process != PROCESS:
            processes[name] = parsed.process
    if session.get_bind().dialect.name != "postgresql":
        return set(processes)
    ended = set()
    for process in set(processes.values()):
        if await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _lock(process)}):
            ended.add(process)
    return {name for name, process in processes.items() if process in ended}


async def take_back(
    session: AsyncSession, table: type[InboxUpdate] | type[OutboxMessage], now: datetime
) -> int:
    """Give back the rows of `table` still pending that workers of ended processes hold on a live lease:
    any worker may claim them at once. How many."""
    pending = table.status == (InboxStatus.PENDING if table is InboxUpdate else OutboxStatus.PENDING)
    holders = (
        select(table.claimed_by)
        .where(pending, table.claimed_by.is_not(None), table.claimed_until >= now)
        .distinct()
    )
    names = [name for name in (await session.scalars(holders)).all() if name is not None]
    gone = await departed(session, names)
    if not gone:
        return 0
    result = await session.execute(
        update(table)
        .where(pending, table.claimed_by.in_(sorted(gone)))
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    log.info("event=presence.taken_back table=%s count=%d workers=%d", table.__tablename__, count, len(gone))
    return count
