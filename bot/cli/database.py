"""`python -m bot db ...`: schema migrations (Alembic, imported only when a command runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError, engine

if TYPE_CHECKING:
    from bot.core.config import Settings


@contextmanager
def _revision_named() -> Iterator[None]:
    """Alembic's "Can't locate revision identified by 'zzz'" (a traceback otherwise) as one line."""
    from alembic.util import CommandError

    from bot.core import db

    try:
        yield
    except CommandError as error:
        raise CliError(f"{error} (the newest migration is {db.head_revision()})") from None


async def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import db

    async with engine(settings) as made:
        before = await db.current_revision(made)
        with _revision_named():
            await db.upgrade(made, args.revision)
        after = await db.current_revision(made)
        if after != before:
            print(f"migrated from {before or 'an empty database'} to {after}", file=sys.stderr)
        print(f"database at migration {after}")
    return 0


async def cmd_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import db

    async with engine(settings) as made:
        with _revision_named():
            await db.downgrade(made, args.revision)
        print(f"database at migration {await db.current_revision(made) or 'base (empty)'}")
    return 0


async def cmd_revision(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import db

    async with engine(settings) as made:
        await db.ensure_current(made)
        await db.autogenerate(made, args.message)
    return 0


async def cmd_current(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core import db

    async with engine(settings) as made:
        current = await db.current_revision(made)
        print(current or "none (run `python -m bot db upgrade`)")
        try:
            await db.ensure_current(made)
        except db.SchemaNotCurrent as error:
            print(str(error), file=sys.stderr)
            return 1
    return 0


def add_parsers(commands: Any) -> None:
    """Add `db` (`commands` is the top-level subparsers object)."""
    database = commands.add_parser(
        "db", help="database migrations", description="Database schema migrations (Alembic)."
    )
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser(
        "upgrade",
        help="migrate to the newest schema",
        description="Migrate the database to REVISION (default: the newest).",
    )
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_upgrade)
    downgrade = db_commands.add_parser(
        "downgrade",
        help="migrate back",
        description="Migrate the database back to REVISION ('base' empties it).",
    )
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=cmd_downgrade)
    current = db_commands.add_parser(
        "current",
        help="show the schema revision",
        description="Print the schema revision; exit 1 if it is not the newest.",
    )
    current.set_defaults(handler=cmd_current)
    revision = db_commands.add_parser(
        "revision",
        help="write a new migration from the models (developers)",
        description="Compare the models with a database at the newest migration and write the "
        "difference as a new migration file under bot/migrations/versions/.",
    )
    revision.add_argument("--message", "-m", required=True, help="what the migration changes")
    revision.set_defaults(handler=cmd_revision)
