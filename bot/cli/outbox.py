"""`python -m bot outbox ...`: the send queue."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.cli.common import with_session
from bot.core.models import OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from bot.outbox import store as outbox

    async def work(session: AsyncSession) -> int:
        counts = await outbox.counts(session)
        for status in OutboxStatus:  # every status, 0 included: an empty outbox says so
            print(f"{status.value}\t{counts.get(status.value, 0)}")
        failed = await session.execute(
            select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.error, OutboxMessage.attempts)
            .where(OutboxMessage.status == OutboxStatus.FAILED)
            .order_by(OutboxMessage.id.desc())
            .limit(args.failed)
        )
        for row_id, kind, error, attempts in failed.all():
            print(f"failed\t{row_id}\t{kind}\t{error}\t{attempts} attempts", file=sys.stderr)
        return 0

    return await with_session(settings, work)


def add_parsers(commands: Any) -> None:
    """Add `outbox` (`commands` is the top-level subparsers object)."""
    box = commands.add_parser(
        "outbox",
        help="the send queue (reminders, prompts, alerts)",
        description="The outbox of planned messages.",
    )
    box_actions = box.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    stats = box_actions.add_parser(
        "stats", help="messages by status, and the latest failures", description="Messages by status."
    )
    stats.add_argument("--failed", type=int, default=20, help="failed rows to list (default 20)")
    stats.set_defaults(handler=cmd_stats)
