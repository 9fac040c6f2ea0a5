"""The CLI as an administrator uses it: real subprocesses against the test database."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.records import add_patient

DATA = Path(__file__).parent / "data"


def _bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["demo"],
        ["db"],
        ["db", "upgrade"],
        ["db", "downgrade"],
        ["db", "current"],
        ["db", "revision"],
        ["counselor"],
        ["counselor", "add"],
        ["counselor", "list"],
        ["invite"],
        ["invite", "counselor"],
        ["invite", "patient"],
        ["keys", "new"],
        ["content", "check"],
        ["content", "preview"],
        ["oncall"],
        ["oncall", "set"],
        ["oncall", "list"],
        ["oncall", "remove"],
        ["schedule"],
        ["schedule", "add"],
        ["schedule", "list"],
        ["schedule", "import"],
        ["schedule", "cancel"],
        ["schedule", "join"],
        ["schedule", "leave"],
        ["schedule", "groups"],
        ["outbox", "stats"],
    ],
)
def test_every_command_has_help(cli_env: dict[str, str], command: list[str]) -> None:
    result = _bot(cli_env, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: python -m bot" in result.stdout


async def test_counselor_and_invites_from_the_command_line(cli_env: dict[str, str], engine: object) -> None:
    added = _bot(cli_env, "counselor", "add", "--name", "Dana Reyes", "--role", "supervisor")
    assert added.returncode == 0, added.stderr
    counselor_id = added.stdout.strip().splitlines()[-1]
    assert counselor_id.isdigit()

    listing = _bot(cli_env, "counselor", "list")
    assert f"{counselor_id}\tsupervisor\tactive\tnot linked\tDana Reyes" in listing.stdout

    env = {**cli_env, "BOT_USERNAME": "clinic_companion_bot"}
    invite = _bot(env, "invite", "patient", "--counselor", counselor_id, "--alias", "River", "--lang", "es")
    assert invite.returncode == 0, invite.stderr
    code = invite.stdout.strip().splitlines()[-1]
    assert len(code) >= 16
    assert f"https://t.me/clinic_companion_bot?start={code}" in invite.stderr

    linking = _bot(env, "invite", "counselor", "--counselor", counselor_id)
    assert linking.returncode == 0 and linking.stdout.strip().splitlines()[-1] != code

    taken = _bot(env, "invite", "patient", "--counselor", counselor_id, "--alias", "River")
    assert taken.returncode == 1
    assert taken.stderr.strip() == "error: the alias 'River' is already in use"

    unknown = _bot(env, "invite", "patient", "--counselor", "424242")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no active counselor with id 424242"


async def test_on_call_roster_from_the_command_line(cli_env: dict[str, str], engine: object) -> None:
    added = _bot(cli_env, "counselor", "add", "--name", "Olu Bello")
    counselor_id = added.stdout.strip().splitlines()[-1]
    env = {**cli_env, "DEFAULT_TIMEZONE": "America/Chicago"}
    # Across the end of daylight saving time: clinic times in, the same clinic times out.
    shift = _bot(
        env,
        "oncall",
        "set",
        "--counselor",
        counselor_id,
        "--from",
        "2099-10-31 18:00",
        "--until",
        "2099-11-01 08:00",
    )
    assert shift.returncode == 0, shift.stderr
    shift_id = shift.stdout.strip().splitlines()[-1]
    listing = _bot(env, "oncall", "list")
    assert (
        f"{shift_id}\t2099-10-31 18:00 CDT\t2099-11-01 08:00 CST\t{counselor_id}\tnot linked\tOlu Bello"
        in (listing.stdout.replace("NOT LINKED", "not linked"))
    )
    assert "office hours: Mon-Fri 08:00-18:00 (America/Chicago)" in listing.stderr

    backwards = _bot(
        env,
        "oncall",
        "set",
        "--counselor",
        counselor_id,
        "--from",
        "2099-11-02 08:00",
        "--until",
        "2099-11-01 08:00",
    )
    assert backwards.returncode == 1 and "must end after it starts" in backwards.stderr
    unknown = _bot(
        env,
        "oncall",
        "set",
        "--counselor",
        "99999",
        "--from",
        "2099-11-01 08:00",
        "--until",
        "2099-11-02 08:00",
    )
    assert unknown.returncode == 1 and "no counselor 99999" in unknown.stderr
    removed = _bot(env, "oncall", "remove", shift_id)
    assert removed.returncode == 0, removed.stderr
    assert shift_id not in _bot(env, "oncall", "list").stdout
    again = _bot(env, "oncall", "remove", shift_id)
    assert again.returncode == 1 and f"no on-call shift {shift_id}" in again.stderr
    bad_hours = _bot({**env, "OFFICE_HOURS": "weekdays 9-5"}, "oncall", "list")
    assert bad_hours.returncode == 2 and "OFFICE_HOURS" in bad_hours.stderr


async def test_schedule_from_the_command_line(
    cli_env: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    patient = await add_patient(sessions, alias="River")
    today = date.today()
    monday = today + timedelta(days=7 + (7 - today.weekday()) % 7)  # a Monday next week or the one after
    env = {**cli_env, "DEFAULT_TIMEZONE": "America/New_York"}
    joined = _bot(env, "schedule", "join", "--group", "Evening IOP", "River")
    assert joined.returncode == 0 and "River joined: Evening IOP" in joined.stderr
    added = _bot(
        env,
        "schedule",
        "add",
        "--title",
        "Evening IOP group",
        "--group",
        "Evening IOP",
        "--start",
        f"{monday:%Y-%m-%d} 18:00",
        "--minutes",
        "180",
        "--rrule",
        "FREQ=WEEKLY;BYDAY=MO,WE,TH;COUNT=36",
        "--location",
        "Room B",
    )
    assert added.returncode == 0, added.stderr
    session_id = added.stdout.strip().splitlines()[-1]
    assert session_id.isdigit()

    imported = _bot(env, "schedule", "import", str(DATA / "iop_calendar.ics"), "--group", "Evening IOP")
    assert imported.returncode == 0, imported.stderr
    assert "new, 0 updated" in imported.stdout
    again = _bot(env, "schedule", "import", str(DATA / "iop_calendar.ics"), "--group", "Evening IOP")
    assert " 0 new, 0 updated" in again.stdout

    listing = _bot(env, "schedule", "list", "--patient", "River", "--days", "366")
    assert listing.returncode == 0, listing.stderr
    assert f"{session_id}\tgroup\tEvening IOP group\tgroup Evening IOP\tFREQ=WEEKLY" in listing.stdout
    ours = listing.stdout.split(f"{session_id}\tgroup\t", 1)[1].split("\n\t")[1:37]
    assert len(ours) == 36 and all(" 18:00 E" in line for line in ours)  # 18:00 in winter and summer time
    wednesday = monday + timedelta(days=2)
    cancelled = _bot(env, "schedule", "cancel", session_id, "--on", f"{wednesday:%Y-%m-%d} 18:00")
    assert cancelled.returncode == 0, cancelled.stderr
    listing = _bot(env, "schedule", "list", "--group", "Evening IOP", "--days", "366")
    assert f"Wed {wednesday:%Y-%m-%d} 18:00" not in listing.stdout
    assert f"Thu {monday + timedelta(days=3):%Y-%m-%d} 18:00" in listing.stdout
    groups = _bot(env, "schedule", "groups")
    assert "Evening IOP\t1 patients" in groups.stdout
    assert patient.alias == "River"

    stats = _bot(env, "outbox", "stats")
    assert stats.returncode == 0, stats.stderr

    for bad, message in [
        (["schedule", "add", "--title", "X", "--group", "G", "--start", "soon"], "not a date and time"),
        (
            ["schedule", "add", "--title", "X", "--patient", "Nobody", "--start", "2099-01-01 10:00"],
            "no patient",
        ),
        (
            [
                "schedule",
                "add",
                "--title",
                "X",
                "--group",
                "G",
                "--start",
                "2099-01-01 10:00",
                "--rrule",
                "FREQ=SOMETIMES",
            ],
            "recurrence rule",
        ),
        (["schedule", "import", "/nonexistent.ics", "--group", "G"], "cannot read"),
        (["schedule", "cancel", "99999"], "no session 99999"),
        (["schedule", "list", "--group", "Nope"], "no group named"),
    ]:
        result = _bot(env, *bad)
        assert result.returncode == 1 and message in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr


def test_keys_new_prints_a_usable_key(cli_env: dict[str, str]) -> None:
    key = _bot(cli_env, "keys", "new").stdout.strip()
    result = _bot({**cli_env, "ENCRYPTION_KEY": key}, "keys", "new")
    assert result.returncode == 0 and result.stdout.strip() != key


def test_unmigrated_database_is_refused(cli_env: dict[str, str], tmp_path: object) -> None:
    env = {
        **cli_env,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3",
        "BOT_TOKEN": "1:" + "a" * 30,
    }
    result = _bot(env, "run")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the database has no tables yet: run `python -m bot db upgrade` first"
    )
    upgraded = _bot(env, "db", "upgrade")
    assert upgraded.returncode == 0 and "0008" in upgraded.stdout
    assert _bot(env, "db", "current").returncode == 0


def test_keys_rotate(cli_env: dict[str, str], tmp_path: object) -> None:
    env = {**cli_env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/rotate.sqlite3"}
    assert _bot(env, "db", "upgrade").returncode == 0
    new = _bot(env, "keys", "new").stdout.strip()
    result = _bot({**env, "ENCRYPTION_KEY": f"{new},{env['ENCRYPTION_KEY']}"}, "keys", "rotate")
    assert result.returncode == 0, result.stderr
    assert "checkins: 0 rows" in result.stdout.splitlines()
    assert "re-encrypted 0 rows with the first key" in result.stderr
    unkeyed = {k: v for k, v in env.items() if k != "ENCRYPTION_KEY"}
    refused = _bot(unkeyed, "keys", "rotate")
    assert refused.returncode != 0 and "ENCRYPTION_KEY: not set" in refused.stderr


def test_assign_names_what_is_wrong(cli_env: dict[str, str]) -> None:
    result = _bot(cli_env, "assign", "P-0000", "1")
    assert result.returncode == 1 and "error: no patient with alias 'P-0000'" in result.stderr


def test_run_without_an_encryption_key_is_refused(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k != "ENCRYPTION_KEY"}
    result = _bot({**env, "BOT_TOKEN": "1:" + "a" * 30}, "run")
    assert result.returncode != 0
    assert "ENCRYPTION_KEY: not set" in result.stderr and "python -m bot keys new" in result.stderr


def test_unreachable_database_is_one_line(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    result = _bot(env, "counselor", "list")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: cannot use the database (ConnectionRefusedError); check DATABASE_URL"
    ]
