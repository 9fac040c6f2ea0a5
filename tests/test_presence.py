"""bot.core.presence: the claims of a process that has ended are taken back at once, not when their lease
runs out; a live process's claims, this process's and names of another form are left alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import db, presence
from bot.core.models import InboxUpdate, OutboxMessage, utcnow
from bot.core.presence import WORKER, WorkerName
from bot.intake import store
from bot.outbox import store as outbox
from tests.harness import TEST_ENCRYPTION_KEY

LEASE = timedelta(hours=1)  # far longer than any test: only presence can free a row here
Sessions = async_sessionmaker[AsyncSession]
HOLDER = (  # in the test's own database: the other test processes' share the server, and lock keys with it
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _name(process: str, role: str = "in") -> str:
    return WORKER.pack(WorkerName(role, process, "0000beef"))


ENDED = "aaaaaaaaaaaa"  # a process that held no lock: it has ended (or, on SQLite, is not this one)
ALIVE = "bbbbbbbbbbbb"  # a process whose lock another connection holds (PostgreSQL)


@pytest.fixture(autouse=True)
def _judged_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process found missing by an earlier test; a missing lock judged at the first look unless a
    test says otherwise (ABSENT_SECONDS has its own test)."""
    monkeypatch.setattr(presence, "_missing", {})
    monkeypatch.setattr(presence, "ABSENT_SECONDS", 0.0)


def test_a_workers_name_says_its_role_and_process() -> None:
    name = presence.worker_name("in")
    parsed = WORKER.parse(name)
    assert parsed is not None and parsed.role == "in" and parsed.process == presence.PROCESS
    assert presence.worker_name("in") != name  # each worker its own
    assert len(presence.worker_name("out")) <= 40  # the claimed_by columns
    assert WORKER.parse("in-0123456789ab") is None  # an earlier version's name


async def _claim_inbox(sessions: Sessions, owners: dict[int, str]) -> None:
    async with db.transaction(sessions) as session:
        for update_id, owner in owners.items():
            row = store.Incoming(update_id, update_id, "{}")
            await store.add(session, [row], utcnow(), claimed_by=owner, lease=LEASE)


async def _inbox_holders(sessions: Sessions) -> dict[int, str | None]:
    async with sessions() as session:
        rows = await session.execute(select(InboxUpdate.update_id, InboxUpdate.claimed_by))
        return {update_id: owner for update_id, owner in rows.all()}


class _Alive:
    """Another process, alive: on PostgreSQL it holds its lock on a connection of its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = db.make_engine(
            engine.url.render_as_string(hide_password=False), encryption_key=TEST_ENCRYPTION_KEY
        )
        self.locks = db.JobLocks(self.engine)

    async def __aenter__(self) -> _Alive:
        assert await self.locks.hold(f"process:{ALIVE}")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.locks.close()
        await self.engine.dispose()


async def test_rows_of_an_ended_process_are_taken_back_and_the_others_kept(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    mine, legacy = presence.worker_name("in"), "in-0123456789ab"
    await _claim_inbox(sessions, {1: _name(ENDED), 2: _name(ALIVE), 3: mine, 4: legacy, 5: _name(ENDED)})
    async with _Alive(engine):
        async with db.transaction(sessions) as session:
            taken = await presence.take_back(session, InboxUpdate, utcnow())
        holders = await _inbox_holders(sessions)
    if engine.dialect.name == "postgresql":
        # the live process keeps its rows; the ended one's go back, both of them
        assert (taken, holders) == (2, {1: None, 2: _name(ALIVE), 3: mine, 4: legacy, 5: None})
    else:  # SQLite serves one process: any other process's claims are a dead one's
        assert (taken, holders) == (3, {1: None, 2: None, 3: mine, 4: legacy, 5: None})


async def test_an_outbox_row_claimed_by_an_ended_process_can_be_claimed_again_at_once(
    sessions: Sessions,
) -> None:
    now = utcnow()
    async with db.transaction(sessions) as session:
        await outbox.enqueue(session, [outbox.Planned("crisis-reply", "reply", 41, "text", now)])
        assert len(await outbox.claim(session, _name(ENDED, "out"), now, limit=5, lease=LEASE)) == 1
    mine = presence.worker_name("out")
    async with db.transaction(sessions) as session:
        assert await outbox.claim(session, mine, now, limit=5, lease=LEASE) == []  # its lease is live
        assert await presence.take_back(session, OutboxMessage, now) == 1
        assert [row.key for row in await outbox.claim(session, mine, now, limit=5, lease=LEASE)] == [
            "crisis-reply"
        ]


async def _kill_holder(engine: AsyncEngine, process: str) -> None:
    """The server ends the connection holding `process`'s lock (a failover, a restart, a killed backend)."""
    async with engine.connect() as connection:
        pid = await connection.scalar(text(HOLDER), {"key": db.lock_key(f"process:{process}")})
        await connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        await connection.commit()


async def _departed(engine: AsyncEngine, *names: str) -> set[str]:
    async with db.transaction(async_sessionmaker(engine)) as session:
        return await presence.departed(session, names)


async def test_a_lock_held_for_good_is_taken_again_after_its_connection_is_lost(engine: AsyncEngine) -> None:
    async with _Alive(engine) as alive:
        if engine.dialect.name != "postgresql":
            return  # SQLite holds no locks: nothing to lose
        await _kill_holder(engine, ALIVE)
        assert await _departed(engine, _name(ALIVE)) == {_name(ALIVE)}  # looks gone now (judged at once here)
        connections = alive.locks.connections
        await alive.locks.keep()
        assert alive.locks.connections == connections + 1  # what tells Presence to call on_lost
        assert await _departed(engine, _name(ALIVE)) == set()  # alive again


async def test_a_missing_lock_is_judged_gone_only_when_still_missing_a_while_later(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live process whose connection was dropped takes its lock again within KEEP_SECONDS: looking once
    while it is missing must not take its rows."""
    monkeypatch.setattr(presence, "ABSENT_SECONDS", 0.3)
    async with _Alive(engine) as alive:
        if engine.dialect.name != "postgresql":
            assert await _departed(engine, _name(ENDED)) == {_name(ENDED)}  # SQLite: at once
            return
        await _kill_holder(engine, ALIVE)
        assert await _departed(engine, _name(ALIVE), _name(ENDED)) == set()  # both missing: suspects only
        assert presence.next_look(60.0) < time.monotonic() + 1  # looked at again soon, not in a minute
        await alive.locks.keep()  # ALIVE takes its lock again
        await asyncio.sleep(0.35)
        assert await _departed(engine, _name(ALIVE), _name(ENDED)) == {_name(ENDED)}


@asynccontextmanager
async def _watched(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[presence.Presence, asyncio.Event]]:
    """This process's presence, checked every 50 ms, and the event its on_lost sets."""
    monkeypatch.setattr(presence, "KEEP_SECONDS", 0.05)
    told = asyncio.Event()
    mine = presence.Presence(engine, on_lost=told.set)
    await mine.start()
    try:
        yield mine, told
    finally:
        await mine.close()


async def test_a_process_whose_lock_was_taken_again_is_told(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Presence calls on_lost when its lock had to be taken again: others may have taken its rows."""
    async with _watched(engine, monkeypatch) as (_, told):
        if engine.dialect.name != "postgresql":
            return  # SQLite: nothing is held, nothing lost
        assert await _departed(engine, presence.worker_name("in")) == set()  # never this process
        await _kill_holder(engine, presence.PROCESS)
        await asyncio.wait_for(told.wait(), 10)


async def test_a_process_missing_again_long_after_it_came_back_is_not_judged_at_the_first_look(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found missing once, then back (and not looked at while it had no rows), then missing again much
    later: the clock starts again, it is not judged gone at once."""
    monkeypatch.setattr(presence, "ABSENT_SECONDS", 0.2)
    monkeypatch.setattr(presence, "LOOKS_APART_SECONDS", 0.4)
    if engine.dialect.name != "postgresql":
        assert await _departed(engine, _name(ENDED)) == {_name(ENDED)}  # SQLite: at once
        return
    assert await _departed(engine, _name(ENDED)) == set()  # first found missing
    await asyncio.sleep(0.5)  # no look meanwhile: it may have been back
    assert await _departed(engine, _name(ENDED)) == set()  # the clock starts again
    await asyncio.sleep(0.25)
    assert await _departed(engine, _name(ENDED)) == {_name(ENDED)}  # missing on looks 0.25 s apart


async def test_a_process_that_cannot_confirm_its_lock_is_told_before_others_may_judge_it(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock connection that hangs (the server gone silent) is not waited on: after UNSURE_SECONDS
    without a confirmation the process is told, before ABSENT_SECONDS when others may judge it gone."""
    monkeypatch.setattr(presence, "UNSURE_SECONDS", 0.2)
    async with _watched(engine, monkeypatch) as (mine, told):
        if engine.dialect.name != "postgresql":
            return  # SQLite: nothing is held, nothing to confirm

        async def hangs() -> bool:
            await asyncio.sleep(60)
            return False

        monkeypatch.setattr(mine._locks, "keep", hangs)
        await asyncio.wait_for(told.wait(), 10)
