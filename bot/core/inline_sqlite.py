"""SQLite connections that run on the event loop's own thread, for SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a worker thread and wakes the event loop
with the result: four hand-offs per query, each about 55 µs of CPU on the machine the benchmarks ran on. That
was 42% of the CPU an incoming message cost (`bench/throughput.py`), while the query itself, on a local file,
takes microseconds. So `make_engine` gives the dialect these connections instead (`async_creator`); the URL,
the dialect and its error handling stay SQLAlchemy's.

The one thing that can make SQLite wait is the write lock, and waiting for it must not stop the loop: the
transaction holding it may belong to this very process, suspended at an await. So the connection asks SQLite
never to wait (busy timeout 0), and when the database is busy, sleeps with asyncio and tries again, until
`busy_timeout` has passed; then the "database is locked" error goes up as before. Every transaction takes the
lock at its start (`BEGIN IMMEDIATE`, see bot.db), so that is where the waiting happens.

A statement runs to its end without yielding: fine for the short statements of handling a message; a long
report blocks the loop for its duration (the write lock would hold other transactions back anyway).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")

SQLITE_BUSY_RECOVERY = 261  # extended code: another connection is recovering the WAL
_BUSY = frozenset({sqlite3.SQLITE_BUSY, SQLITE_BUSY_RECOVERY})
_PAUSES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)  # then the last one, until the deadline


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in _BUSY


async def _patiently(call: Callable[[], T], busy_timeout: float) -> T:
    """`call()`, retried while the database is busy, without blocking the loop."""
    deadline: float | None = None
    attempt = 0
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + busy_timeout
            if now >= deadline:
                raise
            await asyncio.sleep(min(_PAUSES[min(attempt, len(_PAUSES) - 1)], deadline - now))
            attempt += 1


class Cursor:
    """aiosqlite's cursor interface, as SQLAlchemy's adapter uses it."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor = connection.raw.cursor()

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        await self._connection.patiently(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Cursor:
        rows = list(parameters)  # retrying must not find an iterator used up
        await self._connection.patiently(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

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
    """aiosqlite's connection interface, as SQLAlchemy's adapter uses it, over a sqlite3 connection."""

    def __init__(self, raw: sqlite3.Connection, busy_timeout: float) -> None:
        self.raw = raw
        self.busy_timeout = busy_timeout
        self.closed = False

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """As aiosqlite has it: None once closed (the adapter checks it before a commit or rollback)."""
        return None if self.closed else self.raw

    def patiently(self, call: Callable[[], T]) -> Awaitable[T]:
        return _patiently(call, self.busy_timeout)

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        await self.patiently(self.raw.commit)

    async def rollback(self) -> None:
        self.raw.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate, e.g. a connection garbage-collected)."""
        self.closed = True
        self.raw.close()

    async def create_function(self, name: str, narg: int, func: Callable[..., Any], **kw: Any) -> None:
        self.raw.create_function(name, narg, func, **kw)


def creator(url: str, *, busy_timeout: float) -> Callable[[], Awaitable[Connection]]:
    """`create_async_engine(url, async_creator=creator(url, ...))`: the file and the sqlite3 options the URL
    names, read as SQLAlchemy's SQLite dialect reads them."""
    parsed = make_url(url)
    args, options = parsed.get_dialect()().create_connect_args(parsed)
    (database,) = args
    uri = bool(options.get("uri", False))
    detect_types = int(options.get("detect_types", 0))

    async def connect() -> Connection:
        # isolation_level None: sqlite3 issues no BEGIN of its own; bot.db says BEGIN IMMEDIATE.
        # check_same_thread off: SQLAlchemy may close a connection it garbage-collects from another thread.
        raw = sqlite3.connect(
            database,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
            detect_types=detect_types,
        )
        return Connection(raw, busy_timeout)

    return connect
