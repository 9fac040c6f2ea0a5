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
        allowed = isinstance(t.person, Counselor) and t.person.role is CounselorRole.ADMIN
        if not allowed:
            await answer_not_for_role(t)
        runtime = t.runtime
    if not allowed:
        return
    # Between two turns: the check takes a second or more, and no transaction (on SQLite, the write lock) is
    # held meanwhile.
    try:
        content = await runtime.reload_content()
    except ContentError as error:
        log.warning("event=content.reload_refused problems=%d", len(error.problems))
        problems = "\n".join(error.problems)
        if len(problems) > MAX_PROBLEMS_SHOWN:
            problems = problems[:MAX_PROBLEMS_SHOWN].rsplit("\n", 1)[0] + "\n…"
        async with turn(update, context) as t:
            await t.reply("content.reload_failed", problems=problems)
        return
    log.info("event=content.reloaded by=command")
    async with turn(update, context) as t:
        await t.reply(
            "content.reloaded", texts=len(content.catalog.keys()), modules=len(content.modules.ids())
        )
