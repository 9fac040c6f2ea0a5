"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), settings,
the local Telegram stand-in and the real bot running against it.

With TEST_DATABASE_URL set, an unreachable server fails the run: nothing is ever skipped for it.

Run in parallel (`pytest -n N`, pytest-xdist: what `make test` does), each worker process has a database of
its own: its own SQLite file, or on PostgreSQL the database TEST_DATABASE_URL names with the worker's name
appended (`test_gw0`, `test_gw1`, ...), created on that server when missing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx._transports.default as httpx_transports
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import runtime
from bot.content.modules import Module, load_modules
from bot.content_check.check import Report
from bot.core import db
from bot.core.config import Settings, load_settings
from bot.core.models import Base
from tests.harness import (
    TEST_CLINIC,
    TEST_ENCRYPTION_KEY,
    TEST_TOKEN,
    BotHarness,
    CommandLine,
    load_content_once,
    shipped_check,
)

REPO = Path(__file__).resolve().parent.parent


_NO_WAIT_FOR_DISK = """
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$
"""


async def _reset_schema(url: str) -> None:
    engine = db.make_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
                # A commit here need not wait for the disk: the tests never crash the server, and the bot
                # commits tens of thousands of times per run. Visibility and locking are as before. Taken by
                # every connection opened from now on (the bots', and the `python -m bot` processes').
                await connection.execute(text(_NO_WAIT_FOR_DISK))
        await db.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _content_loaded_once() -> Iterator[None]:
    """Every Runtime made in this process (the harness's, `python -m bot run` called in-process) loads the
    shipped content through `load_content_once`: checked once per run instead of once per test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "load_content", load_content_once)
        yield


# Engines kept for this process's event loop (pyproject.toml: one loop for the whole run): the `engine`
# fixture's, and those of the bots started in it.
_KEPT: list[AsyncEngine] = []


@pytest.fixture(scope="session", autouse=True)
def _statements_compiled_once() -> Iterator[None]:
    """A bot started again in this process (the harness's, `python -m bot run` called in-process) gets the
    engine a stopped one left: SQLAlchemy's cache of compiled statements, which belongs to an engine, kept
    (compiling them again was a tenth of an end-to-end test), and, in the event loop of the tests, its pool's
    open connections with the statements each has prepared (on PostgreSQL, a dozen new sessions per
    end-to-end test, and every statement prepared again on each, cost more than the test's own queries).
    A connection belongs to the event loop it was opened in: a bot in another loop (`python -m bot run`,
    which runs its own) gets an engine only with an empty pool; an engine with a connection still checked
    out (a test that never gave it back) is not handed out again."""
    made: dict[tuple[str, str | None, asyncio.AbstractEventLoop | None], AsyncEngine] = {}
    make_engine = runtime.make_engine

    def reused(url: str, *, encryption_key: str | None = None, **kwargs: Any) -> AsyncEngine:
        if kwargs:
            return make_engine(url, encryption_key=encryption_key, **kwargs)
        loop = _running_loop()
        key = (url, encryption_key, loop)
        engine = made.get(key)
        pool = engine.sync_engine.pool if engine is not None else None
        if pool is None or pool.checkedout() or (loop is None and pool.checkedin()):
            engine = made[key] = make_engine(url, encryption_key=encryption_key)
            if loop is not None:
                _KEPT.append(engine)
        return engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "make_engine", reused)
        yield


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@pytest.fixture(scope="session", autouse=True)
async def _kept_engines_closed() -> AsyncIterator[None]:
    """The kept engines' connections closed once the run is over, in the loop they were opened in."""
    yield
    for engine in _KEPT:
        await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _one_tls_context() -> Iterator[None]:
    """Every HTTP client made in this process (two per bot start: PTB's, and the tests' own) shares one
    default TLS context instead of reading the CA bundle again (a fifth of a bot start's time). Nothing in the
    tests speaks TLS; a client asking for anything but the default still gets its own context."""
    made: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}
    create = httpx_transports.create_ssl_context

    def shared(verify: object = True, cert: object = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return create(verify=verify, cert=cert, trust_env=trust_env)  # type: ignore[arg-type]
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in made:
            made[key] = create(verify=True, trust_env=trust_env)
        return made[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx_transports, "create_ssl_context", shared)
        yield


@pytest.fixture(scope="session")
def _database_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the shared SQLite database lives: in memory-backed /dev/shm where there is one. Every commit of
    the bot waits for the disk (WAL, synchronous=FULL) and the suite commits tens of thousands of times; on a
    busy disk that wait was a fifth of an end-to-end test. The database is a file either way, so separate
    connections and `python -m bot` subprocesses share it as before."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("db")
        return
    directory = Path(tempfile.mkdtemp(prefix="iop-tests-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _worker_database(url: str, worker: str) -> str:
    """TEST_DATABASE_URL's database for one xdist worker: on PostgreSQL a database of the same name plus
    `_<worker>` on the same server, created (from the one the URL names) when it is missing; a SQLite file
    gets the suffix before its extension."""
    given = make_url(url)
    if given.get_backend_name() != "postgresql":
        path = Path(given.database or "test.sqlite3")
        return given.set(database=str(path.with_stem(f"{path.stem}_{worker}"))).render_as_string(False)
    name = f"{given.database}_{worker}"
    server = db.make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as connection:
            found = await connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await server.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(_database_dir: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{_database_dir / 'test.sqlite3'}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get("TEST_DATABASE_URL"):
        url = asyncio.run(_worker_database(url, worker))
    asyncio.run(_reset_schema(url))
    return url


# Every row gone and every id counting from 1 again, in one round trip. Not TRUNCATE: that gives each table
# and index a new file on disk, and took about a second per test (DELETE of the few rows a test leaves: 30-50
# ms on the same machine).
_CLEAR_POSTGRESQL = """
DO $$
DECLARE sequence regclass;
BEGIN
    {deletes}
    FOR sequence IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace
    LOOP
        PERFORM setval(sequence, 1, false);
    END LOOP;
END $$
"""


async def clear_tables(engine: AsyncEngine) -> None:
    """Empty every table of the models, those that refer to others first."""
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            deletes = " ".join(f"DELETE FROM {table};" for table in tables)
            await connection.execute(text(_CLEAR_POSTGRESQL.format(deletes=deletes)))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


_ENGINES: dict[str, AsyncEngine] = {}

# Advisory locks (the bot's job locks) still held in the test's database: a session lock is let go only by
# its session, and sessions outlive a test now.
_ADVISORY_LOCKS_HELD = """
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The worker's engine, emptied. One engine serves every test of a worker, its connections kept open (one
    event loop serves the whole run), and what an engine learns once (the server's dialect settings, compiled
    statements, prepared statements) is kept; a new engine per test paid it again. A test may leave nothing
    in a session: on PostgreSQL an advisory lock still held after the test (a job lock a stopped bot or a
    test did not let go of) closes every kept connection of this process, as a new process would start."""
    if database_url not in _ENGINES:
        _ENGINES[database_url] = db.make_engine(database_url, encryption_key=TEST_ENCRYPTION_KEY)
        _KEPT.append(_ENGINES[database_url])
    engine = _ENGINES[database_url]
    await clear_tables(engine)
    yield engine
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            held = await connection.scalar(text(_ADVISORY_LOCKS_HELD))
        if held:
            for kept in _KEPT:
                await kept.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.make_sessionmaker(engine)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        _env_file=None,
        DATABASE_URL=database_url,
        BOT_TOKEN=TEST_TOKEN,
        ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9",
        CONTENT_DIR=str(REPO / "content"),
        DEFAULT_TIMEZONE="America/New_York",
        # Time-driven work runs once at start-up; tests that need more ask for a shorter tick.
        SCHEDULER_TICK_SECONDS=300,
        CONTENT_WATCH_SECONDS=0,
        **TEST_CLINIC,
    )


@pytest.fixture
async def harness(settings: Settings, engine: AsyncEngine) -> AsyncIterator[BotHarness]:
    async with BotHarness.running(settings) as running:
        yield running


@pytest.fixture
def cli_env(database_url: str) -> Iterator[dict[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "TELEGRAM_", "DATABASE_", "ENCRYPTION_", "WEBHOOK_"))
    }
    env.update(
        DATABASE_URL=database_url,
        ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
        CONTENT_DIR=str(REPO / "content"),
        LOG_LEVEL="WARNING",
        **TEST_CLINIC,
    )
    yield env


@pytest.fixture
def cli(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CommandLine:
    """`python -m bot ARGS` in this process, with the environment `cli_env` gives a subprocess."""
    for name in set(os.environ) - set(cli_env):
        monkeypatch.delenv(name)
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    return CommandLine(capsys)


@pytest.fixture(scope="session")
def shipped_report() -> Report:
    """`content check` of the shipped content/, done once per run (the check the bots' content comes from):
    tests read it, never change it."""
    return shipped_check()


@pytest.fixture(scope="session")
def box() -> Module:
    """The box-breathing exercise, as the content loader reads it (for coping-run tests)."""
    problems: list[str] = []
    module = load_modules(REPO / "content", problems).get("box_breathing", "en")
    assert module is not None and not problems
    return module


# The tests that take longest, longest first: each starts `python -m bot` in processes of its own, or floods
# the bot with a hundred messages. Under `pytest -n N` each goes at the head of one worker's share of the run
# (pytest-xdist hands the collection out in N consecutive shares, then moves tests from the longest queue to
# an idle worker): one of them started last kept its worker busy long after the others were done.
LONGEST_FIRST = (
    "tests/e2e/test_intake_flow.py::test_a_crash_right_after_a_fetch_loses_nothing",
    "tests/e2e/test_instances.py::",  # PostgreSQL only (skipped on SQLite): 20 to 70 seconds
    "tests/e2e/test_run_process.py::",
    "tests/e2e/test_demo.py::",
    "tests/e2e/test_intake_flow.py::test_a_flood_is_answered_once",
    "tests/test_no_network.py::",
    "tests/e2e/test_history_settings_reload.py::",
    "tests/e2e/test_content_safety_flow.py::",
)


def _rank(item: pytest.Item) -> int | None:
    return next((n for n, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    longest = sorted((item for item in items if _rank(item) is not None), key=lambda item: _rank(item) or 0)
    rest = iter([item for item in items if _rank(item) is None])
    shares: list[list[pytest.Item]] = [longest[n::workers] for n in range(workers)]
    left = len(items)
    for n, share in enumerate(shares):  # the sizes of xdist's shares (xdist.scheduler.worksteal)
        size = left // (workers - n)
        left -= size
        share.extend(itertools.islice(rest, max(0, size - len(share))))
    items[:] = [item for share in shares for item in share] + list(rest)
