"""`python -m bot inbox ...`: the updates received from Telegram (bot.intake).

What it prints is ids, counts, error class names and times: an update's words stay in the database.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.cli.common import with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}Z"


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from bot.intake import store

    async def work(session: AsyncSession) -> int:
        counts = await store.counts(session)
        if not any(counts.values()):
            print("inbox empty")
            return 0
        for status, count in counts.items():
            print(f"{status}\t{count}")
        rows = await store.parked(session, args.parked)
        if rows:
            print("parked rows, newest first:")
            print("update_id\tchat_id\tattempts\terror\treceived\tparked")
        for row in rows:
            chat = "-" if row.chat_id is None else row.chat_id
            fields = (row.update_id, chat, row.attempts, row.error or "-")
            print(*fields, _when(row.received_at), _when(row.parked_at), sep="\t")
        if counts["parked"] > len(rows):
            print(f"... and {counts['parked'] - len(rows)} more (--parked N lists more)")
        return 0

    return await with_session(settings, work)


def add_parsers(commands: Any) -> None:
    """Add `inbox` (`commands` is the top-level subparsers object)."""
    inbox = commands.add_parser(
        "inbox",
        help="updates received from Telegram (handled, waiting, parked)",
        description="The inbox: every update from Telegram, stored before it is handled.",
    )
    actions = inbox.add_subparsers(dest="inbox_command", required=True, metavar="ACTION")
    stats = actions.add_parser(
        "stats",
        help="updates by status, and the parked ones",
        description="Updates by status, and the parked ones (failed every try): ids, tries, error "
        "class and times (UTC), never what was written.",
    )
    stats.add_argument("--parked", type=int, default=20, help="parked rows to list (default 20)")
    stats.set_defaults(handler=cmd_stats)
