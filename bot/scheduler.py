"""All time-driven work. APScheduler only drives it; the database is the source of truth.

Jobs run in the bot's event loop and keep no state of their own, so a restart loses nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import transaction
from bot.enrollment import purge_expired_invites

log = logging.getLogger(__name__)

EXPIRED_INVITE_RETENTION = timedelta(days=30)


async def purge_invites(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        removed = await purge_expired_invites(session, older_than=EXPIRED_INVITE_RETENTION)
    if removed:
        log.info("event=invites.purged count=%d", removed)


def build_scheduler(sessions: async_sessionmaker[AsyncSession]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(purge_invites, "interval", hours=6, args=[sessions], id="purge_invites")
    return scheduler
