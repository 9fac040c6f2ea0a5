"""/reload (admins only): serve edited content without a restart; a broken edit is refused."""

from __future__ import annotations

import logging

from telegram import Update

from bot.content import ContentError
from bot.core.models import Counselor, CounselorRole
from bot.handlers.base import Context, turn
from bot.handlers.fallback import answer_not_for_role

log = logging.getLogger(__name__)

MAX_PROBLEMS_SHOWN = 3000  # characters; the message must stay under Telegram's 4096


async def reload_command(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        if not isinstance(t.person, Counselor) or t.person.role is not CounselorRole.ADMIN:
            await answer_not_for_role(t)
            return
        try:
            content = t.runtime.reload_content()
        except ContentError as error:
            log.warning("event=content.reload_refused problems=%d", len(error.problems))
            problems = "\n".join(error.problems)
            if len(problems) > MAX_PROBLEMS_SHOWN:
                problems = problems[:MAX_PROBLEMS_SHOWN].rsplit("\n", 1)[0] + "\n…"
            await t.reply("content.reload_failed", problems=problems)
            return
        log.info("event=content.reloaded by=command")
        await t.reply(
            "content.reloaded",
            texts=len(content.catalog.keys()),
            modules=len(content.modules.ids()),
        )
