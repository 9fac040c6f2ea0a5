"""SQLAlchemy's SQLite dialect, its statements run by sqlite3 on the event loop's thread (`sqlite+inline`).

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a worker thread and wakes the event loop
with the result: four hand-offs per query, each about 55 µs of CPU on the machine the benchmarks ran on. That
was 42% of the CPU an incoming message cost (`bench/throughput.py`), while the query itself, on a local file,
takes microseconds. So `bot.core.db.make_engine` runs every SQLite URL (the settings say `sqlite+aiosqlite`)
on this dialect instead. It is SQLAlchemy's own pysqlite dialect (SQL, types, URL options, error handling),
made asyncio-capable with SQLAlchemy's async adaptation classes (`sqlalchemy.connectors.asyncio`, the ones
its aiosqlite dialect uses) over the small driver below; it uses no private attribute of SQLAlchemy's and
does not need aiosqlite at all.

Transactions: sqlite3 itself never begins one (its `isolation_level` is always None); every transaction
SQLAlchemy begins takes SQLite's write lock at its start (`BEGIN IMMEDIATE`, `do_begin`), so a transaction
that read, then found another had written meanwhile, never fails at once with "database is locked": it waits
its turn at the start. SQLite has one writer at a time either way. With `isolation_level="AUTOCOMMIT"` (on the
engine or in `execution_options`) nothing is begun and each statement commits on its own.

The one thing that can make SQLite wait is the write lock, and waiting for it must not stop the loop: the
transaction holding it may belong to this very process, suspended at an await. So the connection asks SQLite
never to wait (busy timeout 0), and when the database is busy, sleeps with asyncio and tries again, until the
connection's `timeout` (sqlite3's argument of that name, from the URL or `connect_args`) has passed; then the
"database is locked" error goes up as before.

A statement runs to its end without yielding: fine for the short statements of handling a message; a long
report blocks the loop for its duration (the write lock would hold other transactions back anyway). A commit
is different: it waits for the disk (SQLite syncs the write-ahead log, `synchronous=FULL`, so that what was
committed survives a power cut), several milliseconds of doing nothing. It runs in a thread of its own
(sqlite3 lets go of the GIL meanwhile), and the loop goes on with everything that does not need the write
lock: a parse, a screen, a send.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_module,
    AsyncIODBAPIConnection,
)
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

T = TypeVar("T")

DRIVERNAME = "sqlite+inline"
DEFAULT_TIMEOUT = 5.0  # seconds, as sqlite3's own default
SQLITE_BUSY_RECOVERY = 261  # extended code: another connection is recovering the WAL
_BUSY = frozenset({sqlite3.SQLITE_BUSY, SQLITE_BUSY_RECOVERY})
_PAUSES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)  # then the last one, until the deadline


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in _BUSY


# Transactions of this process waiting for the write lock: each is woken the moment one of this process's
# transactions ends (`_released`), not only at its next pause. Pausing alone, a writer that begins again a
# few milliseconds after its commit (the poller storing page after page) could keep the lock from those whose
# pauses had grown to 20 ms, every time. The pauses remain for a lock held by another process.
_waiting: list[asyncio.Future[None]] = []


def _released() -> None:
    """A transaction of this process ended: whoever waits for the write lock tries again now."""
    global _waiting
    woken, _waiting = _waiting, []
    for future in woken:
        if not future.done():
            future.set_result(None)


async def _retry_busy(run: Callable[[], Awaitable[T]], busy_timeout: float) -> T:
    """`await run()`, run again (a fresh awaitable each time) while the database is busy, pausing a little
    longer each time without blocking the loop (or until a transaction of this process ends), until
    `busy_timeout` seconds after the first refusal."""
    deadline: float | None = None
    attempt = 0
    while True:
        try:
            return await run()
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + busy_timeout
            if now >= deadline:
                raise
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if len(_waiting) > 1_000:  # paused out while another process held the lock: forget those
                _waiting[:] = [future for future in _waiting if not future.done()]
            _waiting.append(woken)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken, min(_PAUSES[min(attempt, len(_PAUSES) - 1)], deadline - now))
            attempt += 1


async def _patiently(call: Callable[[], T], busy_timeout: float) -> T:
    """`call()` in the loop's thread, retried while the database is busy."""

    async def run() -> T:
        return call()

    return await _retry_busy(run, busy_timeout)


# One writer at a time holds SQLite's write lock, so one thread is enough for every commit.
_COMMITS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")


async def _in_thread(call: Callable[[], T]) -> T:
    """`call()` in the commit thread. Cancelling the caller waits for it to finish first: the connection must
    not be used (rolled back, closed) while the thread still commits on it."""
    future = asyncio.get_running_loop().run_in_executor(_COMMITS, call)
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True  # the shield's, not the call's: wait for the call all the same
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


async def _commit_patiently(call: Callable[[], None], busy_timeout: float) -> None:
    """`call()` (a commit) in the commit thread, retried while the database is busy."""
    await _retry_busy(lambda: _in_thread(call), busy_timeout)


# ---- the driver: sqlite3 behind the awaitable interface SQLAlchemy's async adaptation classes call -------


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor = connection.raw.cursor()

    async def __aenter__(self) -> Cursor:
        return self

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        await self._connection.patiently(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Cursor:
        rows = list(parameters)  # retrying must not find an iterator used up
        await self._connection.patiently(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class Connection:
    """A sqlite3 connection that never waits for a lock inside SQLite (see `patiently`).

    `isolation_level` is what SQLAlchemy's pysqlite dialect sets on a sqlite3 connection (None for
    AUTOCOMMIT, "" otherwise), kept here: the sqlite3 connection's own stays None, `do_begin` reads this one.
    """

    def __init__(self, raw: sqlite3.Connection, busy_timeout: float) -> None:
        self.raw = raw
        self.busy_timeout = busy_timeout
        self.isolation_level: str | None = ""

    def patiently(self, call: Callable[[], T]) -> Awaitable[T]:
        return _patiently(call, self.busy_timeout)

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        if self.raw.in_transaction:  # the sync to disk, in the commit thread
            await _commit_patiently(self.raw.commit, self.busy_timeout)
            _released()

    async def rollback(self) -> None:
        ended = self.raw.in_transaction
        self.raw.rollback()
        if ended:
            _released()

    def close(self) -> None:
        self.raw.close()


class AdaptedConnection(AsyncAdapt_dbapi_connection):
    """The DBAPI connection SQLAlchemy sees: SQLAlchemy's adaptation, plus what its pysqlite dialect asks of a
    sqlite3 connection (`isolation_level`, `create_function`). Closing needs no await, so it works anywhere
    (SQLAlchemy closes a connection it garbage-collects outside the event loop's greenlets)."""

    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        driver: Connection = self.driver_connection
        return driver.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        driver: Connection = self.driver_connection
        driver.isolation_level = value

    def create_function(self, *args: Any, **kw: Any) -> None:
        driver: Connection = self.driver_connection
        driver.raw.create_function(*args, **kw)

    def close(self) -> None:
        driver: Connection = self.driver_connection
        driver.close()


class DBAPI(AsyncAdapt_dbapi_module):
    """The module-like object the dialect connects with: sqlite3's names, our connections."""

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.paramstyle = "qmark"
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "InterfaceError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, database: str, *, timeout: float = DEFAULT_TIMEOUT, **kw: Any) -> AdaptedConnection:
        # timeout 0: SQLite never waits for a lock itself, `patiently` does (`timeout` is how long).
        # isolation_level None: sqlite3 begins nothing of its own; `do_begin` does.
        # check_same_thread off: SQLAlchemy may close a connection it garbage-collects from another thread.
        kw.update(timeout=0, isolation_level=None, check_same_thread=False)
        driver = Connection(sqlite3.connect(database, **kw), busy_timeout=timeout)
        return AdaptedConnection(self, cast(AsyncIODBAPIConnection, driver))  # the part the adapter uses


def in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    driver = "inline"
    is_async = True
    has_terminate = True  # a connection garbage-collected before its return is closed (see AdaptedConnection)
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return DBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # As SQLAlchemy's aiosqlite dialect: a pool for a file; one connection shared for an in-memory
        # database (each connection would have a database of its own).
        return pool.StaticPool if in_memory(url) else pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.driver_connection

    def do_begin(self, dbapi_connection: Any) -> None:
        """Take the write lock now (waiting for it if need be), unless the connection is in AUTOCOMMIT."""
        if not self.detect_autocommit_setting(dbapi_connection):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            finally:
                cursor.close()


dialect = InlineSQLiteDialect
registry.register("sqlite.inline", __name__, "InlineSQLiteDialect")
