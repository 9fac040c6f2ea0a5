"""`python -m bot ...`: run the bot, the demo, migrations, and the clinic's admin tasks.

Each area adds its own commands (bot/cli/<area>.py) and imports what they need when one runs, so that
`--help` does not load the bot, Alembic, uvicorn or icalendar.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from bot.cli import content, database, inbox, keys, oncall, outbox, people, records, risk, run, schedule
from bot.cli.common import CliError, Command

__all__ = ["CliError", "Command", "build_parser", "main"]

log = logging.getLogger(__name__)

# The errors a user can fix (printed as one line, exit status 1), then the database's, by the module that
# defines them. Only modules already imported are looked in: an exception cannot be raised before its class's
# module is loaded, and naming them should not load uvicorn or Alembic (tests/test_cli.py checks the names).
USER_ERRORS = (
    ("bot.cli.common", "CliError"),
    ("bot.core.db", "SchemaNotCurrent"),
    ("bot.content.catalog", "ContentError"),
    ("bot.status", "ListenError"),
    ("bot.app", "TelegramUnavailable"),
    ("bot.core.runlock", "AlreadyRunning"),
    ("bot.schedule.rules", "ScheduleError"),
    ("bot.schedule.ical_import", "CalendarError"),
    ("bot.cli.records", "RecordsError"),
    ("bot.privacy.discharge", "DischargeError"),
)
DATABASE_ERRORS = (
    ("sqlalchemy.exc", "OperationalError"),
    ("sqlalchemy.exc", "DBAPIError"),
    ("builtins", "OSError"),
)


def _loaded(errors: Sequence[tuple[str, str]]) -> tuple[type[Exception], ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in errors if module in sys.modules)


def database_problem(error: Exception, url: str) -> str:
    """One line saying what is wrong with the database and what to do (never the URL's password)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    original = getattr(error, "orig", None)
    if getattr(original, "sqlstate", None) == "3D000":  # PostgreSQL: invalid_catalog_name
        host, port, user = parsed.host or "localhost", parsed.port or 5432, parsed.username or "postgres"
        return (
            f"the PostgreSQL database {parsed.database!r} does not exist on {host}:{port}: create it with "
            f"`createdb -h {host} -p {port} -U {user} {parsed.database}`, then run `python -m bot db upgrade`"
        )
    if parsed.get_backend_name() == "sqlite" and "unable to open database file" in str(original):
        return f"cannot open the SQLite database {parsed.database}: does its folder exist? (DATABASE_URL)"
    return f"cannot use the database ({type(error).__name__}); check DATABASE_URL"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="IOP Companion: a Telegram companion for patients in an Intensive Outpatient Program.",
        epilog="Settings come from the environment or a .env file: see README.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order `--help` lists them.
    run.add_parsers(commands)  # run, demo
    database.add_parsers(commands)  # db
    people.add_counselor_parser(commands)
    oncall.add_parsers(commands)
    people.add_invite_parser(commands)
    content.add_parsers(commands)
    people.add_assign_parser(commands)
    keys.add_parsers(commands)
    schedule.add_parsers(commands)
    outbox.add_parsers(commands)
    inbox.add_parsers(commands)
    records.add_parsers(commands)  # discharge, purge
    risk.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.core import logs
    from bot.core.config import ConfigError, exit_on_config_error, load_settings

    try:
        settings = load_settings()
    except ConfigError as error:
        exit_on_config_error(error)
        raise
    logs.configure(settings.log_level)
    handler: Command = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except ConfigError as error:
        exit_on_config_error(error)
        raise
    except _loaded(USER_ERRORS) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except _loaded(DATABASE_ERRORS) as error:
        print(f"error: {database_problem(error, settings.database_url)}", file=sys.stderr)
        log.debug("event=cli.database_error", exc_info=True)
        return 1
    except KeyboardInterrupt:
        return 130
