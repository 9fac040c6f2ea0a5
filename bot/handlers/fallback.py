"""Answers for everything outside a flow: strangers, odd input, old buttons, unknown commands."""

from __future__ import annotations

import logging

from telegram import Update

from bot.core.models import Counselor, CounselorRole, Patient, PatientStatus, utcnow
from bot.core.people import Stranger, bump_counter
from bot.handlers.base import Context, Turn, turn
from bot.risk import RiskLevel

log = logging.getLogger(__name__)

STRANGER_COUNTER = "stranger_messages"
STRANGERS_REMEMBERED = 10_000  # who was answered today, per process
EXPIRED = "input.button_expired"


async def answer_stranger(t: Turn) -> None:
    """One polite line, once a day per person (per process: nothing is kept about the sender in the database
    but a count); a message that shows risk is answered every time (the line carries the crisis numbers)."""
    await bump_counter(t.session, STRANGER_COUNTER)
    log.info("event=stranger.message")
    user = t.update.effective_user
    message = t.update.effective_message
    typed = message.text if message is not None else None
    today = utcnow().date()
    seen = t.runtime.strangers_answered
    risky = typed is not None and _shows_risk(t, typed)
    if user is not None and seen.get(user.id) == today and not risky:
        return
    if user is not None:
        seen[user.id] = today
        if len(seen) > STRANGERS_REMEMBERED:
            seen.pop(next(iter(seen)))
    await t.reply("stranger.not_enrolled")


def _shows_risk(t: Turn, text: str) -> bool:
    return t.runtime.content.risk.screen(text).without_question().level >= RiskLevel.HIGH


async def answer_flood(update: Update, context: Context) -> None:
    """A chat sending more than its share of messages gets this once, not an answer to each."""
    async with turn(update, context) as t:
        await t.reply("input.slow_down")


def answer_expired_button(t: Turn) -> None:
    """A tap on a button that does nothing now (old, forged, or not the sender's): say so over the chat."""
    log.info("event=button.expired")
    t.answer(t.text(EXPIRED))


async def answer_not_for_role(t: Turn) -> None:
    if isinstance(t.person, Stranger):
        await answer_stranger(t)
    else:
        await t.reply("input.not_for_role")


async def on_stray_button(update: Update, context: Context) -> None:
    """A tap whose data no handler claims: forged, or from a version of the bot long gone."""
    async with turn(update, context) as t:
        answer_expired_button(t)


async def _answer_enrolled(update: Update, context: Context, key: str) -> None:
    """The polite line for strangers; for enrolled people the text `key`, logged as its event."""
    async with turn(update, context) as t:
        if isinstance(t.person, Stranger):
            await answer_stranger(t)
        else:
            log.info("event=%s", key)
            await t.reply(key)


async def on_unknown_command(update: Update, context: Context) -> None:
    await _answer_enrolled(update, context, "input.unknown_command")


async def on_non_text(update: Update, context: Context) -> None:
    """Stickers, photos, voice notes, files, locations...: say what the bot can read."""
    await _answer_enrolled(update, context, "input.non_text")


async def on_edited(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        if not isinstance(t.person, Stranger):
            log.info("event=input.edited")
            await t.reply("input.edited")


async def on_forwarded(update: Update, context: Context) -> None:
    await _answer_enrolled(update, context, "input.forwarded")


async def on_group(update: Update, context: Context) -> None:
    """Groups are not a place for health data: answer a command once, ignore everything else."""
    message = update.effective_message
    log.info("event=input.group_chat")
    if message is not None and message.text is not None and message.text.startswith("/"):
        async with turn(update, context) as t:
            await t.reply("input.group_chat")


async def on_help(update: Update, context: Context) -> None:
    async with turn(update, context) as t:
        if isinstance(t.person, Patient):
            status = t.person.status
            keyboard = t.help_now_keyboard() if status is PatientStatus.ACTIVE else None
            await t.reply(f"help.patient_{status.value}", keyboard=keyboard)
        elif isinstance(t.person, Counselor):
            await counselor_help(t, t.person)
        else:
            await answer_stranger(t)


async def counselor_help(t: Turn, counselor: Counselor) -> None:
    await t.reply("help.counselor", admin=counselor.role is CounselorRole.ADMIN, role=counselor.role.value)
