"""The last line of defence: log an event id (never the update's content); an update from the inbox is tried
again (the inbox processor apologises once), any other gets an apology here."""

from __future__ import annotations

import contextlib
import logging
import secrets

from telegram import Update
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.core.people import Stranger
from bot.handlers.base import Context, language_of, runtime_of
from bot.intake.outcome import CURRENT

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    error = context.error
    reference = secrets.token_hex(4)
    update_id = update.update_id if isinstance(update, Update) else None
    if isinstance(error, Forbidden | RetryAfter | TimedOut | NetworkError):
        # Delivery trouble, not a bug: no traceback, and no apology the user could not receive anyway.
        log.warning(
            "event=handler.delivery_error ref=%s update_id=%s kind=%s",
            reference,
            update_id,
            type(error).__name__,
        )
        return
    log.error(
        "event=handler.error ref=%s update_id=%s kind=%s",
        reference,
        update_id,
        type(error).__name__,
        exc_info=(type(error), error, error.__traceback__) if error else None,
    )
    outcome = CURRENT.get()
    if outcome is not None:
        # From the inbox: it is tried again later, and the processor says sorry once (bot.intake.processor).
        outcome.error = type(error).__name__
        outcome.reference = reference
        return
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.callback_query is not None:
        # The query may have been answered already; the apology below goes either way.
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    runtime = runtime_of(context)
    # The handler's transaction is gone; the sender's Telegram language is the best guess left.
    language = language_of(Stranger(0), update, runtime.catalog.languages)
    try:
        await context.bot.send_message(
            update.effective_chat.id, runtime.text("error.generic", language, reference=reference)
        )
    except Exception:
        log.warning("event=handler.apology_failed ref=%s", reference)
