"""Whose claims belong to a process that has ended, so that its rows are taken back within seconds.

The inbox and the outbox lease the rows a worker claims (`claimed_by`, `claimed_until`). A process killed
in the middle of its work leaves its rows claimed; waiting for their lease to end put a crisis message
fetched just before a crash 15 s and more behind after the restart. Instead every worker's name says which
process it belongs to (`WORKER`), and a process shows it is alive:

- on PostgreSQL, by holding a session advisory lock named after it for as long as it runs (`Presence`), on a
  connection of its own, checked every KEEP_SECONDS and taken again if the server dropped it. The database
  lets go of the lock when that connection closes, and the kernel closes it when the process dies, however
  it dies. Another process reads the locks held (`pg_locks`, taking none itself) and judges a claimant gone
  once its lock has been missing on looks ABSENT_SECONDS apart (`departed`): a live process whose connection
  was dropped (a failover, a restart of the server) has taken its lock again by then.
- on SQLite, which serves one `run` process at a time (bot.core.runlock), by being this process: another
  process's claims are a dead one's, at once.

A claim taken back from a process that had in fact sent or handled its row before it died is done again:
that is the in-flight bound on duplicates, as when a lease runs out. A live process that could not confirm
its lock for UNSURE_SECONDS, or had to take it again, no longer trusts the rows it holds in memory
(`Presence.on_lost`): it claims them again from the database. The inbox and the outbox each look with a
`TakingBack` of their own. Names of another form (written by an earlier version) are never judged: their
lease decides.
Needs a direct connection to PostgreSQL or a pooler in session mode, as the job locks do (bot.core.db).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.callbacks import Codec, choice, word
from bot.core.db import JobLocks, lock_key, transaction
from bot.core.models import InboxStatus, InboxUpdate, OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

PROCESS: Final = secrets.token_hex(6)  # this process, in its workers' names
KEEP_SECONDS = 1.0  # how often the connection holding the lock is checked (and the lock taken again if lost)
# A process whose lock is missing is judged gone only when it is still missing this long after it was first
# found so: several of its KEEP_SECONDS, so that a live one whose connection was dropped has taken it again.
ABSENT_SECONDS = 3.0
# ... on looks at most this far apart (the inbox looks every second while one is missing, the outbox every
# dispatch tick): over a longer gap it may have been back meanwhile, and the clock starts again.
LOOKS_APART_SECONDS = 2 * ABSENT_SECONDS
# A process whose lock has not been confirmed for this long no longer trusts the rows it holds in memory
# (`on_lost`): before others can judge it gone (ABSENT_SECONDS), whatever its connection is doing.
UNSURE_SECONDS = ABSENT_SECONDS / 2
TAKE_BACK_EVERY_SECONDS = 5.0  # how often the inbox and the outbox look for rows of ended processes


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


class Presence:
    """Holds this process's lock while it runs (PostgreSQL; nothing to hold on SQLite). `start` before the
    first claim, `close` after the last row is given back. `on_lost` is called when the lock may have been
    missing for others to see: no check has succeeded for UNSURE_SECONDS, or it had to be taken again.
    Meanwhile others may have judged this process gone and taken its rows."""

    def __init__(self, engine: AsyncEngine, *, on_lost: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_lost = on_lost
        self._locks = JobLocks(engine)
        self._keeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        # The lock's connection is opened in a task of its own: SQLAlchemy counts it as a transaction begun
        # (it is never committed; the connection runs in autocommit), and it must not be counted against the
        # task that starts the bot.
        held: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._keeping = asyncio.create_task(self._keep(held), name="presence")
        await held

    async def _keep(self, held: asyncio.Future[None]) -> None:
        try:
            if not await self._locks.hold(_name(PROCESS)):
                # Only a clash of two random names could do this: the other process's claims and ours look
                # alive to everyone, and their leases decide, as before.
                log.warning("event=presence.lock_taken process=%s", PROCESS)
        except BaseException as error:
            held.set_exception(error)
            raise
        held.set_result(None)
        connections, confirmed, told = self._locks.connections, time.monotonic(), False
        while True:
            await asyncio.sleep(KEEP_SECONDS)
            try:
                async with asyncio.timeout(KEEP_SECONDS):  # a connection that hangs is dropped, not waited on
                    regained = await self._locks.keep()
                confirmed = time.monotonic()
            except Exception as error:  # the database is away or slow: try again at the next look
                log.warning("event=presence.keep_failed kind=%s", type(error).__name__)
                regained = False
            changed = self._locks.connections != connections
            connections = self._locks.connections
            unsure = time.monotonic() - confirmed >= UNSURE_SECONDS
            if (changed or regained or unsure) and not (told and unsure):
                log.warning("event=presence.lock_unsure process=%s", PROCESS)
                self._lost()
            told = unsure

    def _lost(self) -> None:
        if self.on_lost is None:
            return
        try:
            self.on_lost()
        except Exception:
            log.exception("event=presence.on_lost_failed")

    async def close(self) -> None:
        """Let go of the lock; never raises (it runs while the process shuts down: a broken connection has
        let go of the lock already)."""
        if self._keeping is not None:
            self._keeping.cancel()
            with contextlib.suppress(BaseException):
                await self._keeping
        try:
            await self._locks.close()
        except Exception as error:
            log.warning("event=presence.close_failed kind=%s", type(error).__name__)


def _name(process: str) -> str:
    return f"process:{process}"


_HELD = (  # the processes of `keys` whose lock some session holds in this database
    "SELECT DISTINCT CAST(objid AS bigint) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND classid = 0 AND objsubid = 1 AND CAST(objid AS bigint) = ANY(:keys) "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@dataclass
class _Missing:
    """A process whose lock this process found missing: since when, and when it last looked."""

    since: float
    looked: float


_missing: dict[str, _Missing] = {}


async def departed(session: AsyncSession, names: Collection[str]) -> set[str]:
    """Those of the workers `names` whose process has ended (see the module's docstring); never this
    process's. Gone means missing on looks ABSENT_SECONDS apart with no look between them more than
    LOOKS_APART_SECONDS after the one before (else the clock starts again: it may have been back between)."""
    processes: dict[str, str] = {}
    for name in names:
        parsed = WORKER.parse(name)
        if parsed is not None and parsed.process != PROCESS:
            processes[name] = parsed.process
    if session.get_bind().dialect.name != "postgresql" or not processes:
        return set(processes)
    keys = {lock_key(_name(process)): process for process in set(processes.values())}
    held = {keys[key] for key in (await session.scalars(text(_HELD), {"keys": list(keys)})).all()}
    now = time.monotonic()
    for process, missing in list(_missing.items()):
        if now - missing.looked > LOOKS_APART_SECONDS:
            del _missing[process]  # not looked at for a while: it may have been back meanwhile
    gone = set()
    for process in keys.values():
        if process in held:
            _missing.pop(process, None)
            continue
        missing = _missing.setdefault(process, _Missing(now, now))
        missing.looked = now
        if now - missing.since >= ABSENT_SECONDS:
            gone.add(process)
    return {name for name, process in processes.items() if process in gone}


def next_look(every: float) -> float:
    """When (time.monotonic()) to look for rows of ended processes next: `every` seconds from now, or sooner
    when a process found missing can be judged gone then."""
    now = time.monotonic()
    soonest = now + every
    for missing in _missing.values():
        if now < missing.since + ABSENT_SECONDS < soonest:
            soonest = missing.since + ABSENT_SECONDS
    return soonest


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


class TakingBack:
    """When and how the inbox or the outbox looks for the rows of ended processes: at the first `look`, then
    every TAKE_BACK_EVERY_SECONDS, sooner when a process found missing can be judged gone (`due_at`). Each
    look is a transaction of its own: a failure (two processes judging at once, the database away) is
    logged and costs neither the claim nor the search it precedes, and is not tried again before the
    next look is due."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], table: type[InboxUpdate] | type[OutboxMessage]
    ) -> None:
        self.sessions = sessions
        self.table = table
        self.due_at = 0.0  # time.monotonic()

    async def look(self) -> None:
        """Take back what ended processes hold, if a look is due."""
        if time.monotonic() < self.due_at:
            return
        self.due_at = next_look(TAKE_BACK_EVERY_SECONDS)
        try:
            async with transaction(self.sessions) as session:
                await take_back(session, self.table, utcnow())
        except Exception as error:
            table, kind = self.table.__tablename__, type(error).__name__
            log.warning("event=presence.take_back_failed table=%s kind=%s", table, kind)
        self.due_at = next_look(TAKE_BACK_EVERY_SECONDS)  # with what this look found missing
