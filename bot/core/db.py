"""Engine, sessions and schema migrations (Alembic, driven programmatically)."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util import await_

from bot.core import crypto, inline_sqlite

MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"
log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT = 15.0  # seconds a SQLite transaction waits for the write lock before failing
SQLITE_POOL_SIZE = 32  # SQLite connections kept open (INBOX_CONCURRENCY updates are handled at once)


class SchemaNotCurrent(Exception):
    """The database is not at the newest migration; the message says what to run."""


def make_engine(url: str, *, encryption_key: str | None = None, **kwargs: Any) -> AsyncEngine:
    """An engine; with `encryption_key` (ENCRYPTION_KEY's value), free text can be written and read."""
    # hide_parameters: a database error message must never carry the values (health data) into a log.
    # pool_pre_ping finds connections a database server dropped (a restart, a failover) before use; a SQLite
    # file has no server to lose, and the ping would cost a query on every checkout (every update handled).
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # Room for the whole-database jobs that start together, the one connection holding their advisory
        # locks (see `JobLocks`) and the updates being handled. LIFO: the connection given back last is the
        # next one handed out, so the few that a quiet bot needs do the work (each keeps the statements it
        # has prepared; FIFO rotated every statement through all of them, preparing it again on each) and
        # the rest of a start-up burst stays idle.
        kwargs = {"pool_size": 10, "max_overflow": 10, "pool_use_lifo": True, **kwargs}
    elif backend == "sqlite":
        # Whatever driver the URL names (the settings say sqlite+aiosqlite), statements run on the event
        # loop's thread, not in aiosqlite's worker, and every transaction takes the write lock at its start
        # (BEGIN IMMEDIATE) unless in AUTOCOMMIT: see bot.core.inline_sqlite. `timeout`: how long waiting
        # for the write lock may take, unless the URL or the caller says.
        parsed = parsed.set(drivername=inline_sqlite.DRIVERNAME)
        wait = {} if "timeout" in parsed.query else {"timeout": SQLITE_BUSY_TIMEOUT}
        kwargs = {**kwargs, "connect_args": {**wait, **kwargs.get("connect_args", {})}}
        if not inline_sqlite.in_memory(parsed):
            # A connection for each update handled at once (INBOX_CONCURRENCY) kept open: beyond the pool's
            # size, every transaction opened and closed a file and ran its pragmas (connections are cheap to
            # keep; their page cache fills only as pages are read). LIFO, as on PostgreSQL: the warmest
            # connection (page cache, prepared statements) is handed out first.
            kwargs = {
                "pool_size": SQLITE_POOL_SIZE,
                "max_overflow": SQLITE_POOL_SIZE,
                "pool_use_lifo": True,
                **kwargs,
            }
    engine = create_async_engine(parsed, pool_pre_ping=backend != "sqlite", hide_parameters=True, **kwargs)
    if engine.dialect.driver == "asyncpg":
        engine.dialect.do_ping = _ping_in_one_round_trip  # type: ignore[method-assign]
    crypto.bind(engine, crypto.Keyring.parse(encryption_key) if encryption_key else None)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # Deleted and overwritten content is zeroed in the file, not left in free space: what `/deleteme`
            # and `purge` remove must not stay readable in the file (the write-ahead log is emptied after
            # them: `transaction`, `scrub_files`).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

    return engine


def _ping_in_one_round_trip(dbapi_connection: Any) -> bool:
    """The pre-ping of a pooled asyncpg connection (before every checkout) as one statement in the simple
    query protocol, outside any transaction: SQLAlchemy's own ping is three round trips (BEGIN, an empty
    prepared statement, ROLLBACK), a third of all the round trips a short transaction makes. A failure is
    raised as SQLAlchemy's ping raises it, so a connection the server dropped is replaced as before."""
    try:
        await_(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as error:
        dbapi_connection._handle_exception(error)
    return True


SCRUB_AFTER_COMMIT = "scrub_after_commit"  # session.info: empty the SQLite write-ahead log after the commit
SCRUBBED_TABLES = frozenset({"patients"})  # deleting from these (an erasure, a purge) scrubs


def scrub_after_commit(session: AsyncSession) -> None:
    """After this transaction commits, empty SQLite's write-ahead log (`scrub_files`): for work that deletes
    what people wrote. Deleting a patient asks for it on its own (any session of `make_sessionmaker`)."""
    session.info[SCRUB_AFTER_COMMIT] = True


class _Session(Session):
    """The sessions of `make_sessionmaker`: a DELETE from a table of `SCRUBBED_TABLES` asks for a scrub."""


@event.listens_for(_Session, "do_orm_execute")
def _deleting(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_delete and getattr(getattr(statement, "table", None), "name", None) in SCRUBBED_TABLES:
        state.session.info[SCRUB_AFTER_COMMIT] = True


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=_Session)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed on success and rolled back on any exception; after a commit that
    deleted what people wrote (`scrub_after_commit`), SQLite's write-ahead log is emptied."""
    async with sessions() as session:
        async with session.begin():
            yield session
        if session.info.pop(SCRUB_AFTER_COMMIT, False) and isinstance(session.bind, AsyncEngine):
            await scrub_files(session.bind)


SCRUB_TRIES = 40  # x 50 ms: how long a checkpoint waits for readers of an older snapshot to finish


async def scrub_files(engine: AsyncEngine) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate it to nothing
    (`wal_checkpoint(TRUNCATE)`), so that rows just deleted are not left in it (with `secure_delete` their
    place in the database file is zeroed). True when done; False (logged) if readers kept it busy, or on
    PostgreSQL, where VACUUM, the server's WAL and backups decide (README: "What the database holds")."""
    if engine.dialect.name != "sqlite":
        return False
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(SCRUB_TRIES):
            row = (await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
            if not row[0]:  # busy, log frames, frames checkpointed
                return True
            await asyncio.sleep(0.05)
    log.warning("event=db.scrub_busy")
    return False


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock number for a name (stable across processes and versions)."""
    return zlib.crc32(f"iop-companion:{name}".encode())


class ForeignKeysBroken(RuntimeError):
    """A migration left rows pointing at rows that do not exist (SQLite, checked after it ran)."""


@asynccontextmanager
async def _migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction for a migration.

    SQLite: foreign keys are off while it runs. Changing a column's type rebuilds its table (Alembic's batch
    mode: a copy, then the old table dropped), and dropping a table with foreign keys on deletes every row
    that points at it (ON DELETE CASCADE): migrating `patients` would empty the database. The switch works
    only outside a transaction, so it is set before the transaction begins; every foreign key is checked
    before the commit, and the connection is closed afterwards, not reused with the keys off."""
    if engine.dialect.name != "sqlite":
        async with engine.begin() as connection:
            yield connection
        return
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.commit()  # (nothing to commit: it ends SQLAlchemy's autobegun transaction)
        await connection.execution_options(isolation_level="SERIALIZABLE")  # SQLite's default
        try:
            async with connection.begin():
                yield connection
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    tables = sorted({str(row[0]) for row in broken})
                    raise ForeignKeysBroken(
                        f"the migration left rows pointing nowhere in {', '.join(tables)}"
                    )
        finally:
            await connection.invalidate()  # its foreign keys are off: never back to the pool


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with _migrating(engine) as connection:
        if engine.dialect.name == "postgresql":  # several instances starting at once migrate one at a time
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("migrate")})
        await connection.run_sync(_run, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with _migrating(engine) as connection:
        await connection.run_sync(_run, "downgrade", revision)


async def autogenerate(engine: AsyncEngine, message: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: _revision(sync, message))


def _revision(connection: Connection, message: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.revision(config, message=message, autogenerate=True)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def ensure_current(engine: AsyncEngine) -> None:
    """Refuse to run against a database that is not fully migrated."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        state = "has no tables yet" if current is None else f"is at migration {current}, not {head}"
        raise SchemaNotCurrent(f"the database {state}: run `python -m bot db upgrade` first")


LOCK_STATEMENT_SECONDS = 5.0  # a lock statement that takes longer drops the connection (a stalled server)


class JobLocks:
    """Which whole-database jobs this process may run now. On PostgreSQL only one process at a time holds a
    job's lock: a session advisory lock, freed by the database if the process dies, so several bot processes
    sharing a database do not all plan, prompt and page at once. All of a process's locks are held on one
    connection (the jobs that start together at start-up took one connection each: a database session, and
    its start-up cost on the server, per job). SQLite serves one process: always True.

    The shared connection must never stall every job: each statement has a time limit, after which (or any
    error, or a cancellation) the connection is dropped; the next ask opens another and takes the locks of
    the jobs still running back, logging any that another process took meanwhile."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: AsyncConnection | None = None
        self._held: dict[int, str] = {}  # lock key -> job name, for the jobs running here
        self._talking = asyncio.Lock()  # one statement at a time on the shared connection
        self._closed = False
        self._lost: set[int] = set()  # held here, not taken back on the last new connection (`keep`)
        self.connections = 0  # connections opened: one more than before means the locks were taken again

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = lock_key(name)
        # A session's advisory locks are re-entrant: the database would say yes to this process again.
        if key in self._held or self._closed:
            yield False
            return
        if not await self._take(key, name):
            yield False
            return
        try:
            yield True
        finally:
            self._held.pop(key, None)
            self._lost.discard(key)
            try:
                await self._ask("SELECT pg_advisory_unlock(:key)", key)
            except Exception:
                # The connection broke or stalled and was dropped: the database let go of its locks with it.
                log.warning("event=db.unlock_failed lock=%s", name)

    async def hold(self, name: str) -> bool:
        """Take `name`'s lock for as long as this process runs (until `close`); like a running job's, it is
        taken again on a new connection if the one holding it is lost (see `keep`). False if another
        session holds it."""
        if self.engine.dialect.name != "postgresql":
            return True
        key = lock_key(name)
        return key in self._held or await self._take(key, name)

    async def _take(self, key: int, name: str) -> bool:
        """Ask for the lock `key`; held: it is listed (`_held`), else not."""
        self._held[key] = name  # before asking: a second run of the same job here is refused meanwhile
        self._lost.discard(key)
        try:
            held = await self._ask("SELECT pg_try_advisory_lock(:key)", key)
        except BaseException:
            self._held.pop(key, None)
            raise
        if not held:
            self._held.pop(key, None)
        return held

    async def keep(self) -> bool:
        """Check the connection holding the locks: if the server dropped it, the locks of what still runs
        are taken again on a new one (a lock held for good, `hold`, would otherwise stay lost until some job
        asked for its own); one that could not be taken again then is asked for again now. True if such a
        lock was taken again now (it was missing until then)."""
        self._lost &= set(self._held)
        regained = False
        for key in sorted(self._lost):
            if await self._ask("SELECT pg_try_advisory_lock(:key)", key):
                self._lost.discard(key)
                regained = True
                log.warning("event=db.lock_regained lock=%s", self._held.get(key))
        if self._held:
            await self._ask("SELECT true", None)
        return regained

    async def _ask(self, statement: str, key: int | None) -> bool:
        async with self._talking:
            if self._closed:
                return False
            fresh = self._connection is None
            for _ in range(2):
                connection = self._connection or await self._connect(except_key=key)
                try:
                    async with asyncio.timeout(LOCK_STATEMENT_SECONDS):
                        return bool(
                            await connection.scalar(text(statement), {} if key is None else {"key": key})
                        )
                except BaseException as error:
                    await self._drop()  # it may still hold locks: it must not go back to the pool
                    if fresh or not isinstance(error, Exception):
                        raise
                    fresh = True  # a connection kept open may have been dropped by the server: once more
            raise AssertionError("unreachable")

    async def _connect(self, except_key: int | None) -> AsyncConnection:
        connection = await self.engine.connect()
        try:
            # one round trip per statement: a session lock needs no transaction around it
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with asyncio.timeout(LOCK_STATEMENT_SECONDS):
                for key, name in list(self._held.items()):
                    if key == except_key:
                        continue  # the one being asked about now
                    # A job still running lost its lock with the last connection: take it back.
                    if await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
                        self._lost.discard(key)
                    else:
                        self._lost.add(key)
                        log.warning("event=db.lock_lost lock=%s", name)
        except BaseException:
            await connection.invalidate()
            raise
        self._connection = connection
        self.connections += 1
        return connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.invalidate()
            except Exception:
                log.warning("event=db.lock_connection_drop_failed")

    async def close(self) -> None:
        """Let go of every lock and give the connection back (when the process stops and its jobs ended);
        after this no lock is taken."""
        async with self._talking:
            self._closed = True
            self._held.clear()
            if self._connection is None:
                return
            try:
                async with asyncio.timeout(LOCK_STATEMENT_SECONDS):
                    await self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
                await self._connection.close()
                self._connection = None
            except BaseException:
                await self._drop()
                raise
