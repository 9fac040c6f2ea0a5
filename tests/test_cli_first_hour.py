"""What an operator trips on in the first hour (issue 21): one line that says what to do for a wrong
TELEGRAM_API_BASE_URL, an unreachable Telegram, an unknown migration, a second `run` on one SQLite database, a
missing database; aliases and group names whatever their case, with "did you mean"; and never the token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import database_problem
from bot.core.models import PatientGroup
from bot.core.runlock import lock_path, only_process
from devtools.simulator import __main__ as simulator
from tests.harness import TEST_TOKEN, CommandLine, Ran, standin_in_thread
from tests.records import add_patient

SECRET = TEST_TOKEN.split(":")[1]


def one_line(result: Ran) -> str:
    """The command's only line on stderr, once the token is known not to be anywhere in its output."""
    assert TEST_TOKEN not in result.stdout + result.stderr and SECRET not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---- item 6: Telegram's address, Telegram down, an unknown migration -------------------------------------


def test_an_api_url_ending_in_bot_is_refused_with_the_address_to_use(cli: CommandLine) -> None:
    result = cli("run", BOT_TOKEN=TEST_TOKEN, TELEGRAM_API_BASE_URL="http://127.0.0.1:8081/bot/")
    assert result.returncode == 2
    assert one_line(result) == (
        "configuration error: TELEGRAM_API_BASE_URL: ends in /bot: give the server's address without it "
        "(http://127.0.0.1:8081); the bot adds /bot<token>/<method> itself"
    )
    with_token = cli("counselor", "list", TELEGRAM_API_BASE_URL=f"http://127.0.0.1:8081/bot{TEST_TOKEN}")
    assert with_token.returncode == 2 and "must not contain the bot token" in one_line(with_token)


def test_a_server_that_refuses_the_token_is_named_in_one_line(cli: CommandLine) -> None:
    # A Bot API server that answers 404 to this token: what any wrong address (or a revoked token) gives.
    with standin_in_thread(token="42:another-bots-token-0123456789") as standin:
        wrong = f"{standin.base_url}/telegram"
        result = cli("run", BOT_TOKEN=TEST_TOKEN, TELEGRAM_API_BASE_URL=wrong, LOG_LEVEL="ERROR")
    assert result.returncode == 1
    assert one_line(result) == (
        f"error: the Bot API server at {wrong} refused the token: check BOT_TOKEN, and that "
        "TELEGRAM_API_BASE_URL is the server's address without /bot (such as https://api.telegram.org)"
    )


def test_an_unreachable_telegram_is_one_line(cli: CommandLine) -> None:
    down = "http://127.0.0.1:9"  # the discard port: nothing listens
    result = cli("run", BOT_TOKEN=TEST_TOKEN, TELEGRAM_API_BASE_URL=down, LOG_LEVEL="ERROR")
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"error: cannot reach Telegram at {down} (")
    assert line.endswith("): check TELEGRAM_API_BASE_URL and the network")


def test_an_unknown_migration_is_one_line(cli: CommandLine) -> None:
    result = cli("db", "upgrade", "zzz")
    assert result.returncode == 1
    assert one_line(result).startswith(
        "error: Can't locate revision identified by 'zzz' (the newest migration"
    )
    assert cli("db", "downgrade", "zzz").returncode == 1


# ---- item 7: one `run` per SQLite database -----------------------------------------------------------------


def test_a_second_run_on_the_same_sqlite_database_is_refused(cli: CommandLine, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/clinic.sqlite3"
    assert cli("db", "upgrade", DATABASE_URL=url).returncode == 0
    with only_process(url):  # as the first `run` holds it
        result = cli("run", BOT_TOKEN=TEST_TOKEN, DATABASE_URL=url)
    assert result.returncode == 1
    assert one_line(result) == (
        f"error: the bot is already running on {tmp_path}/clinic.sqlite3 (process {os.getpid()}): "
        "SQLite serves one process, stop that one first (several need PostgreSQL)"
    )


def test_a_killed_run_leaves_no_lock_that_blocks_the_next(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/clinic.sqlite3"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from bot.core.runlock import only_process\n"
            f"with only_process({url!r}):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(Exception, match=f"process {holder.pid}"), only_process(url):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    assert lock_path(url) is not None and lock_path(url).is_file()  # type: ignore[union-attr]  # left behind
    with only_process(url):  # ... and no obstacle
        pass


def test_postgresql_and_memory_databases_take_no_lock_file() -> None:
    assert lock_path("postgresql+asyncpg://iop@db/iop") is None
    assert lock_path("sqlite+aiosqlite:///:memory:") is None


# ---- item 8: aliases and group names whatever their case ------------------------------------------------


async def test_aliases_and_groups_match_whatever_their_case(
    cli: CommandLine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_patient(sessions, alias="River")
    await add_patient(sessions, alias="Sam Lee")
    results = await _run_in_thread(
        cli,
        ("counselor", "add", "--name", "Dana"),
        ("schedule", "join", "--group", "Evening IOP", "river", "SAM  LEE"),
        ("schedule", "join", "--group", "evening iop", "River"),
        ("schedule", "join", "--group", "Evening IOPs", "River"),
        ("schedule", "list", "--group", "evening  IOP"),
        ("schedule", "list", "--group", "Evenin IOP"),
        ("assign", "rivr", "1"),
        ("discharge", "Rivers"),
        ("schedule", "list", "--patient", "sam lee"),
    )
    added, joined, again, near, listed, unknown_group, unknown, discharge, by_patient = results
    counselor = added.stdout.strip().splitlines()[-1]
    assigned = await _run_in_thread(cli, ("assign", "RIVER", counselor))
    assert assigned[0].returncode == 0, assigned[0].stderr
    assert joined.returncode == 0
    assert joined.stderr.splitlines() == [
        "new group 'Evening IOP'",
        "River joined: Evening IOP",
        "Sam Lee joined: Evening IOP",
    ]
    assert again.returncode == 0 and again.stderr.strip() == "River unchanged: Evening IOP"
    assert near.returncode == 0
    assert near.stderr.splitlines()[0] == "new group 'Evening IOPs'; did you mean 'Evening IOP'?"
    assert listed.returncode == 0 and by_patient.returncode == 0
    assert unknown_group.returncode == 1 and one_line(unknown_group) == (
        "error: no group named 'Evenin IOP'; did you mean 'Evening IOP'? (`schedule groups` lists them)"
    )
    assert (
        unknown.returncode == 1
        and one_line(unknown) == "error: no patient with alias 'rivr'; did you mean 'River'?"
    )
    assert discharge.returncode == 1 and "did you mean 'River'?" in one_line(discharge)
    async with sessions() as session:
        groups = await session.scalar(select(func.count()).select_from(PatientGroup))
    assert groups == 2  # "Evening IOP" and the near miss the operator was told about, never "evening iop"


async def _run_in_thread(cli: CommandLine, *commands: tuple[str, ...]) -> list[Ran]:
    return [await asyncio.to_thread(cli, *command) for command in commands]


# ---- item 9: say something, refuse what would be silently wrong, name what is missing, no noise -----------


def test_an_empty_outbox_says_so(cli: CommandLine, engine: object) -> None:
    result = cli("outbox", "stats")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "pending\t0",
        "sent\t0",
        "failed\t0",
        "dropped\t0",
        "cancelled\t0",
        "unreadable\t0",
    ]


def test_an_invite_in_a_language_without_texts_is_refused(cli: CommandLine, engine: object) -> None:
    counselor = cli("counselor", "add", "--name", "Dana").stdout.strip().splitlines()[-1]
    result = cli("invite", "patient", "--counselor", counselor, "--lang", "fr")
    assert result.returncode == 1 and one_line(result) == "error: no texts in 'fr': use en or es"
    assert result.stdout == ""


def test_a_demo_database_in_a_missing_folder_names_the_folder(cli: CommandLine) -> None:
    result = cli("demo", "--database", "/nonexistent/x")
    assert result.returncode == 1
    assert (
        one_line(result)
        == "error: cannot create the demo database /nonexistent/x: there is no folder /nonexistent"
    )


def test_a_missing_database_says_which_and_how_to_create_it(
    cli: CommandLine, database_url: str, tmp_path: Path
) -> None:
    server = make_url(database_url)
    if server.get_backend_name() == "postgresql":  # the real server's answer (TEST_DATABASE_URL)
        missing = server.set(database="iop_no_such_db").render_as_string(hide_password=False)
        line = one_line(cli("counselor", "list", DATABASE_URL=missing)).removeprefix("error: ")
    else:  # what asyncpg's error carries: SQLSTATE 3D000, invalid_catalog_name
        server = make_url("postgresql+asyncpg://postgres@127.0.0.1:5432/iop_no_such_db")
        error = DBAPIError("connect", None, SimpleNamespace(sqlstate="3D000"))  # type: ignore[arg-type]
        line = database_problem(error, server.render_as_string())
    host, port = server.host, server.port or 5432
    assert line == (
        f"the PostgreSQL database 'iop_no_such_db' does not exist on {host}:{port}: create it with "
        f"`createdb -h {host} -p {port} -U {server.username or 'postgres'} iop_no_such_db`, then run "
        "`python -m bot db upgrade`"
    )
    sqlite = cli("counselor", "list", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/missing/iop.sqlite3")
    assert one_line(sqlite) == (
        f"error: cannot open the SQLite database {tmp_path}/missing/iop.sqlite3: does its folder exist? "
        "(DATABASE_URL)"
    )


def test_commands_print_no_migration_chatter(cli: CommandLine, engine: object, tmp_path: Path) -> None:
    listing = cli("counselor", "list", LOG_LEVEL="INFO")
    assert listing.returncode == 0 and listing.stderr == ""
    fresh = cli("db", "upgrade", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/new.sqlite3", LOG_LEVEL="INFO")
    assert fresh.returncode == 0
    assert fresh.stderr.startswith("migrated from an empty database to ") and "alembic" not in fresh.stderr


def test_the_stand_ins_hint_and_the_readme_agree(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        simulator.parse_args(["--help"])
    hint = " ".join(capsys.readouterr().out.split())
    assert "TELEGRAM_API_BASE_URL=http://HOST:PORT (no /bot:" in hint
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "export TELEGRAM_API_BASE_URL=http://127.0.0.1:8081 " in readme
    assert "by its address without `/bot`" in readme
