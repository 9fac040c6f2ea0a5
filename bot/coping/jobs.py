"""Coping's time-driven work: an exercise left untouched for a while is closed as abandoned."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.coping import rules
from bot.core.db import transaction
from bot.core.models import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

ABANDON_EXERCISE_AFTER = timedelta(hours=2)


async def abandon_stale(runtime: Runtime) -> None:
    async with transaction(runtime.sessions) as session:
        abandoned = await rules.abandon_stale(session, utcnow(), after=ABANDON_EXERCISE_AFTER)
    if abandoned:
        log.info("event=coping.abandoned count=%d", abandoned)
