"""Enrollment's time-driven work: expired invites are removed after a while."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.db import transaction
from bot.enrollment.invites import purge_expired_invites

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def purge_invites(runtime: Runtime) -> None:
    async with transaction(runtime.sessions) as session:
        removed = await purge_expired_invites(session, older_than=EXPIRED_INVITE_RETENTION)
    if removed:
        log.info("event=invites.purged count=%d", removed)


EXPIRED_INVITE_RETENTION = timedelta(days=30)
