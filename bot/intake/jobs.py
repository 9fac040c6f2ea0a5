"""The inbox's time-driven work: handled rows are forgotten once Telegram can no longer send them again."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.db import transaction
from bot.core.models import utcnow
from bot.intake import store

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# Telegram keeps an update for 24 hours; a handled row (its payload already gone) is kept twice that, so an
# update sent again is still recognised.
KEEP_HANDLED = timedelta(days=2)


async def purge_handled(runtime: Runtime) -> None:
    async with transaction(runtime.sessions) as session:
        removed = await store.purge(session, utcnow() - KEEP_HANDLED)
    if removed:
        log.info("event=inbox.purged count=%d", removed)
