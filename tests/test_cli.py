"""The CLI as an administrator uses it, against the test database: `bot.cli.main` in this process with the
environment, output and exit status a shell would see (tests/harness.py CommandLine), and once as a real
`python -m bot` process."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import cli as bot_cli
from bot.core import db
from bot.core.models import Patient
from tests.harness import CommandLine, Ran
from tests.records import add_patient

DATA = Path(__file__).parent / "data"


def test_python_m_bot_help_in_its_own_process(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m bot [-h] COMMAND ...")
    assert re.findall(r"^    (\w+)", result.stdout, re.MULTILINE) == [
        "run",
        "health",
        "demo",
        "db",
        "counselor",
        "oncall",
        "invite",
        "content",
        "assign",
        "keys",
        "schedule",
        "outbox",
        "inbox",
        "discharge",
        "purge",
        "risk",
    ]


def test_the_errors_a_user_can_fix_are_named_where_they_are_defined() -> None:
    for module, name in (*bot_cli.USER_ERRORS, *bot_cli.DATABASE_ERRORS):
        error = getattr(importlib.import_module(module), name)
        assert isinstance(error, type) and issubclass(error, Exception), (module, name)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["health"],
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
        ["invite", "revoke"],
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
        ["inbox", "stats"],
    ],
)
def test_every_command_has_help(cli: CommandLine, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: python -m bot" in result.stdout


def test_an_unused_invite_is_revoked_from_the_command_line(cli: CommandLine, engine: object) -> None:
    counselor_id = cli("counselor", "add", "--name", "Dana").stdout.strip().splitlines()[-1]
    codes = [
        cli("invite", "counselor", "--counselor", counselor_id).stdout.strip().splitlines()[-1] for _ in "ab"
    ]
    patient_code = cli("invite", "patient", "--counselor", counselor_id).stdout.strip().splitlines()[-1]
    revoked = cli("invite", "revoke", codes[0])
    assert (revoked.returncode, revoked.stderr.strip()) == (0, "revoked 1 invite")
    again = cli("invite", "revoke", codes[0])
    assert (again.returncode, again.stderr.strip()) == (1, "error: no open invite with that code")
    everything = cli("invite", "revoke", "--counselor", counselor_id)
    assert (everything.returncode, everything.stderr.strip()) == (0, "revoked 1 invite")  # the other one
    assert cli("invite", "revoke", "--counselor", counselor_id).returncode == 1
    assert cli("invite", "revoke").returncode == 2  # a code or --counselor
    assert cli("invite", "revoke", patient_code).returncode == 0


def test_counselor_and_invites_from_the_command_line(cli: CommandLine, engine: object) -> None:
    added = cli("counselor", "add", "--name", "Dana Reyes", "--role", "supervisor")
    assert added.returncode == 0, added.stderr
    counselor_id = added.stdout.strip().splitlines()[-1]
    assert counselor_id.isdigit()

    listing = cli("counselor", "list")
    assert f"{counselor_id}\tsupervisor\tactive\tnot linked\tDana Reyes" in listing.stdout

    named = {"BOT_USERNAME": "clinic_companion_bot"}
    invite = cli(
        "invite", "patient", "--counselor", counselor_id, "--alias", "River", "--lang", "es", **named
    )
    assert invite.returncode == 0, invite.stderr
    code = invite.stdout.strip().splitlines()[-1]
    assert len(code) >= 16
    assert f"https://t.me/clinic_companion_bot?start={code}" in invite.stderr

    linking = cli("invite", "counselor", "--counselor", counselor_id, **named)
    assert linking.returncode == 0 and linking.stdout.strip().splitlines()[-1] != code

    taken = cli("invite", "patient", "--counselor", counselor_id, "--alias", "River", **named)
    assert taken.returncode == 1
    assert taken.stderr.strip() == "error: the alias 'River' is already in use"

    # An alias that starts another (or that another starts) would make `/note Sam Lee called` ambiguous.
    assert cli("invite", "patient", "--counselor", counselor_id, "--alias", "Sam  Lee").returncode == 0
    for close in ("sam", "Sam Lee Jr"):
        refused = cli("invite", "patient", "--counselor", counselor_id, "--alias", close)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
        assert "too close to 'Sam Lee'" in refused.stderr
    assert cli("invite", "patient", "--counselor", counselor_id, "--alias", "Samuel").returncode == 0

    unknown = cli("invite", "patient", "--counselor", "424242", **named)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no active counselor with id 424242"


def test_on_call_roster_from_the_command_line(cli: CommandLine, engine: object) -> None:
    added = cli("counselor", "add", "--name", "Olu Bello")
    counselor_id = added.stdout.strip().splitlines()[-1]

    def chicago(*args: str, **env: str) -> Ran:
        return cli(*args, DEFAULT_TIMEZONE="America/Chicago", **env)

    # Across the end of daylight saving time: clinic times in, the same clinic times out.
    shift = chicago(
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
    listing = chicago("oncall", "list")
    assert (
        f"{shift_id}\t2099-10-31 18:00 CDT\t2099-11-01 08:00 CST\t{counselor_id}\tnot linked\tOlu Bello"
        in (listing.stdout.replace("NOT LINKED", "not linked"))
    )
    assert "office hours: Mon-Fri 08:00-18:00 (America/Chicago)" in listing.stderr

    backwards = chicago(
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
    unknown = chicago(
        "oncall", "set", "--counselor", "99999", "--from", "2099-11-01 08:00", "--until", "2099-11-02 08:00"
    )
    assert unknown.returncode == 1 and "no counselor 99999" in unknown.stderr
    removed = chicago("oncall", "remove", shift_id)
    assert removed.returncode == 0, removed.stderr
    assert shift_id not in chicago("oncall", "list").stdout
    again = chicago("oncall", "remove", shift_id)
    assert again.returncode == 1 and f"no on-call shift {shift_id}" in again.stderr
    bad_hours = chicago("oncall", "list", OFFICE_HOURS="weekdays 9-5")
    assert bad_hours.returncode == 2 and "OFFICE_HOURS" in bad_hours.stderr


@pytest.fixture
async def river(sessions: async_sessionmaker[AsyncSession]) -> Patient:
    return await add_patient(sessions, alias="River")


def test_schedule_from_the_command_line(cli: CommandLine, river: Patient) -> None:
    today = date.today()
    monday = today + timedelta(days=7 + (7 - today.weekday()) % 7)  # a Monday next week or the one after

    def bot(*args: str) -> Ran:
        return cli(*args, DEFAULT_TIMEZONE="America/New_York")

    joined = bot("schedule", "join", "--group", "Evening IOP", "River")
    assert joined.returncode == 0 and "River joined: Evening IOP" in joined.stderr
    added = bot(
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

    imported = bot("schedule", "import", str(DATA / "iop_calendar.ics"), "--group", "Evening IOP")
    assert imported.returncode == 0, imported.stderr
    assert "new, 0 updated" in imported.stdout
    again = bot("schedule", "import", str(DATA / "iop_calendar.ics"), "--group", "Evening IOP")
    assert " 0 new, 0 updated" in again.stdout

    listing = bot("schedule", "list", "--patient", "River", "--days", "366")
    assert listing.returncode == 0, listing.stderr
    assert f"{session_id}\tgroup\tEvening IOP group\tgroup Evening IOP\tFREQ=WEEKLY" in listing.stdout
    ours = listing.stdout.split(f"{session_id}\tgroup\t", 1)[1].split("\n\t")[1:37]
    assert len(ours) == 36 and all(" 18:00 E" in line for line in ours)  # 18:00 in winter and summer time
    wednesday = monday + timedelta(days=2)
    cancelled = bot("schedule", "cancel", session_id, "--on", f"{wednesday:%Y-%m-%d} 18:00")
    assert cancelled.returncode == 0, cancelled.stderr
    listing = bot("schedule", "list", "--group", "Evening IOP", "--days", "366")
    assert f"Wed {wednesday:%Y-%m-%d} 18:00" not in listing.stdout
    assert f"Thu {monday + timedelta(days=3):%Y-%m-%d} 18:00" in listing.stdout
    groups = bot("schedule", "groups")
    assert "Evening IOP\t1 patients" in groups.stdout
    assert river.alias == "River"

    stats = bot("outbox", "stats")
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
        result = bot(*bad)
        assert result.returncode == 1 and message in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr


def test_keys_new_prints_a_usable_key(cli: CommandLine) -> None:
    key = cli("keys", "new").stdout.strip()
    result = cli("keys", "new", ENCRYPTION_KEY=key)
    assert result.returncode == 0 and result.stdout.strip() != key


def test_unmigrated_database_is_refused(cli: CommandLine, tmp_path: object) -> None:
    fresh = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3"}
    result = cli("run", BOT_TOKEN="1:" + "a" * 30, **fresh)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the database has no tables yet: run `python -m bot db upgrade` first"
    )
    upgraded = cli("db", "upgrade", **fresh)
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert upgraded.returncode == 0 and upgraded.stdout.strip() == f"database at migration {head}"
    assert cli("db", "current", **fresh).returncode == 0


def test_keys_rotate(cli: CommandLine, cli_env: dict[str, str], tmp_path: object) -> None:
    own = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/rotate.sqlite3"}
    assert cli("db", "upgrade", **own).returncode == 0
    new = cli("keys", "new", **own).stdout.strip()
    result = cli("keys", "rotate", ENCRYPTION_KEY=f"{new},{cli_env['ENCRYPTION_KEY']}", **own)
    assert result.returncode == 0, result.stderr
    assert "checkins: 0 rows" in result.stdout.splitlines()
    assert "re-encrypted 0 rows with the first key" in result.stderr
    refused = cli("keys", "rotate", ENCRYPTION_KEY=None, **own)
    assert refused.returncode != 0 and "ENCRYPTION_KEY: not set" in refused.stderr


def test_assign_names_what_is_wrong(cli: CommandLine) -> None:
    result = cli("assign", "P-0000", "1")
    assert result.returncode == 1 and "error: no patient with alias 'P-0000'" in result.stderr


def test_run_without_an_encryption_key_is_refused(cli: CommandLine) -> None:
    result = cli("run", ENCRYPTION_KEY=None, BOT_TOKEN="1:" + "a" * 30)
    assert result.returncode != 0
    assert "ENCRYPTION_KEY: not set" in result.stderr and "python -m bot keys new" in result.stderr


def test_unreachable_database_is_one_line(cli: CommandLine) -> None:
    result = cli("counselor", "list", DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: cannot use the database (ConnectionRefusedError); check DATABASE_URL"
    ]
