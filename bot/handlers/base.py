"""What every handler shares: the runtime, the sender's identity inside a transaction, and replies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.content.catalog import REFERENCE_LANGUAGE
from bot.db import transaction
from bot.models import Counselor, Patient
from bot.people import Person, Stranger, identify

if TYPE_CHECKING:
    from bot.app import Runtime

Context = ContextTypes.DEFAULT_TYPE
Button = tuple[str, str]  # (label, callback_data)


def runtime_of(context: Context) -> Runtime:
    from bot.app import Runtime

    runtime = context.application.bot_data["runtime"]
    assert isinstance(runtime, Runtime)
    return runtime


@dataclass
class Turn:
    """One update being handled: who sent it, in which language to answer, inside one database transaction.

    Replies are queued and sent only after the transaction commits: a patient is never told something was
    saved that was not.
    """

    update: Update
    runtime: Runtime
    session: AsyncSession
    person: Person
    language: str
    outgoing: list[tuple[str, InlineKeyboardMarkup | None]] = field(default_factory=list)

    def text(self, key: str, **variables: object) -> str:
        return self.runtime.text(key, self.language, **variables)

    async def reply(
        self, key: str, *, buttons: Sequence[Sequence[Button]] | None = None, **variables: object
    ) -> None:
        await self.send(self.text(key, **variables), buttons=buttons)

    async def send(self, text: str, *, buttons: Sequence[Sequence[Button]] | None = None) -> None:
        self.outgoing.append((text, keyboard(buttons) if buttons else None))

    async def deliver(self) -> None:
        chat = self.update.effective_chat
        assert chat is not None
        for text, markup in self.outgoing:
            await self.update.get_bot().send_message(chat.id, text, reply_markup=markup)
        self.outgoing.clear()


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def language_of(person: Person, update: Update, supported: list[str]) -> str:
    if isinstance(person, Patient | Counselor):
        return person.language
    user = update.effective_user
    code = ((user.language_code if user else None) or "").split("-")[0].lower()
    return code if code in supported else REFERENCE_LANGUAGE


@asynccontextmanager
async def turn(update: Update, context: Context) -> AsyncIterator[Turn]:
    runtime = runtime_of(context)
    user = update.effective_user
    async with transaction(runtime.sessions) as session:
        person: Person = await identify(session, user.id) if user else Stranger(0)
        current = Turn(
            update, runtime, session, person, language_of(person, update, runtime.catalog.languages)
        )
        yield current
    await current.deliver()


async def remove_buttons(update: Update) -> None:
    """Take the keyboard off the message a button was tapped on; a second tap finds it gone already."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as error:
        if "not modified" not in error.message and "not found" not in error.message:
            raise
