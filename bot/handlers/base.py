"""What every handler shares: the runtime, the sender's identity inside a transaction, and replies."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardMarkup, InputFile, ReplyKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ContextTypes

from bot.content.catalog import REFERENCE_LANGUAGE
from bot.core.crypto import Keyring
from bot.core.db import transaction
from bot.core.models import CRISIS_PATH, IN_CARE, Counselor, Patient, PatientStatus, Priority, utcnow
from bot.core.people import Person, Stranger, identify, identify_counselor
from bot.intake.outcome import CURRENT
from bot.outbox import store as outbox
from bot.outbox.callbacks import REPLY_KEY, ReplyKey
from bot.outbox.dispatcher import keyboard
from bot.outbox.limiter import urgent
from bot.outbox.markup import Rows
from bot.runtime import Runtime
from bot.waiting import Waiting, patient_and_waiting

log = logging.getLogger(__name__)

REPLY_KIND = "reply"  # a reply Telegram could not take at once, tried again through the outbox
URGENT_REPLY_KIND = "crisis_reply"  # a crisis reply and what followed it in its turn

Context = ContextTypes.DEFAULT_TYPE


@dataclass(frozen=True)
class Outgoing:
    """A message to send once the transaction that decided it has committed."""

    chat_id: int
    text: str
    buttons: Rows | None = None
    photo: bytes | None = None
    document: tuple[bytes, str] | None = None  # (content, file name); `text` is its caption
    # A reply keyboard that stays under the chat (one button a row), for a message without inline buttons.
    # The outbox does not carry it: it is re-sent often enough (see bot.handlers.sos) to survive a retry.
    keyboard: tuple[str, ...] | None = None


def _markup(message: Outgoing) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    if message.buttons:
        return keyboard(message.buttons)
    if message.keyboard:
        return ReplyKeyboardMarkup(
            [[label] for label in message.keyboard], resize_keyboard=True, is_persistent=True
        )
    return None


async def send(bot: Bot, message: Outgoing) -> int:
    """Send the message; its id in the chat."""
    markup = _markup(message)
    if message.photo is not None:
        sent = await bot.send_photo(message.chat_id, message.photo, caption=message.text, reply_markup=markup)
        return sent.message_id
    if message.document is not None:
        content, name = message.document
        sent = await bot.send_document(
            message.chat_id, InputFile(content, filename=name), caption=message.text, reply_markup=markup
        )
        return sent.message_id
    # The Bot API call itself, its answer read for the id alone: PTB's send_message would build a Message
    # object of the answer (a tenth of what handling a typed message costs), and nobody reads it. Method
    # names are case-insensitive; PTB warns when do_api_request is given the spelling of one of its own.
    parameters: dict[str, object] = {"chat_id": message.chat_id, "text": message.text}
    if markup is not None:
        parameters["reply_markup"] = markup
    answer = await bot.do_api_request("sendmessage", api_kwargs=parameters)
    return int(answer["message_id"])


async def send_all(bot: Bot, messages: Sequence[Outgoing], keyring: Keyring) -> None:
    """Send each message; one chat that blocked the bot or fails does not stop the others. The log names a
    chat by its pseudonym (`chat_ref`, as the outbox stores it), never by its Telegram id."""
    for message in messages:
        try:
            await send(bot, message)
        except Forbidden:
            log.warning("event=delivery.blocked chat_ref=%s", keyring.pseudonym(message.chat_id))
        except TelegramError as error:
            log.warning(
                "event=delivery.failed chat_ref=%s kind=%s",
                keyring.pseudonym(message.chat_id),
                type(error).__name__,
            )


def runtime_of(context: Context) -> Runtime:
    runtime = context.application.bot_data["runtime"]
    assert isinstance(runtime, Runtime)
    return runtime


@dataclass
class Turn:
    """One update being handled: who sent it, in which language to answer, inside one database transaction.

    Nothing reaches Telegram while the transaction is open (on SQLite it holds the database's write lock):
    the answer to a tapped button, edits and replies are queued and sent only after the commit, so a patient
    is never told something was saved that was not, and other chats never wait on a Telegram round trip.
    """

    update: Update
    runtime: Runtime
    session: AsyncSession
    person: Person
    language: str
    waiting: Waiting | None = None  # turn(..., waiting=True), a patient: what their text may answer
    args: Sequence[str] = ()  # a command's words after it
    outgoing: list[Outgoing] = field(default_factory=list)
    elsewhere: list[Outgoing] = field(default_factory=list)  # e.g. notices to the care team
    after_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    urgent: bool = False  # the replies go through the outbox's urgent lane (see reply_urgently)
    notice: str | None = None  # the tapped button's answer (see `answer`)

    @property
    def active_patient(self) -> Patient | None:
        """The sender, if a patient who has finished set-up and not withdrawn consent."""
        person = self.person
        return person if isinstance(person, Patient) and person.status is PatientStatus.ACTIVE else None

    @property
    def care_patient(self) -> Patient | None:
        """The sender, if a patient whose crisis path reaches their care team: active, or in aftercare."""
        person = self.person
        return person if isinstance(person, Patient) and person.status in IN_CARE else None

    @property
    def crisis_patient(self) -> Patient | None:
        """The sender, if a patient whose crisis messages reach their care team (set-up too: CRISIS_PATH)."""
        person = self.person
        return person if isinstance(person, Patient) and person.status in CRISIS_PATH else None

    @property
    def chat_id(self) -> int:
        chat = self.update.effective_chat
        assert chat is not None
        return chat.id

    def text(self, key: str, **variables: object) -> str:
        return self.runtime.text(key, self.language, **variables)

    def help_now_keyboard(self) -> list[str]:
        """The reply keyboard that keeps "Help now" (/sos, bot.handlers.sos) under a patient's chat."""
        return [self.text("sos.keyboard_button")]

    async def reply(
        self,
        key: str,
        *,
        buttons: Rows | None = None,
        keyboard: Sequence[str] | None = None,
        **variables: object,
    ) -> None:
        await self.send(self.text(key, **variables), buttons=buttons, keyboard=keyboard)

    async def reply_urgently(self, key: str, *, buttons: Rows | None = None, **variables: object) -> None:
        """A crisis reply: it and every later reply of this turn go out through the outbox's urgent lane,
        written in this transaction: retried on timeouts and 5xx, never lost to a crash, sent ahead of
        everything but pages, in the order they were given."""
        self.urgent = True
        await self.send(self.text(key, **variables), buttons=buttons)

    async def send(
        self, text: str, *, buttons: Rows | None = None, keyboard: Sequence[str] | None = None
    ) -> None:
        """Queue a reply: with inline `buttons`, or with a reply `keyboard` (labels) kept under the chat."""
        labels = tuple(keyboard) if keyboard else None
        self.outgoing.append(Outgoing(self.chat_id, text, buttons, keyboard=labels))

    def send_photo(self, photo: bytes, caption: str, *, buttons: Rows | None = None) -> None:
        self.outgoing.append(Outgoing(self.chat_id, caption, buttons, photo))

    def send_document(self, content: bytes, name: str, caption: str) -> None:
        self.outgoing.append(Outgoing(self.chat_id, caption, document=(content, name)))

    def answer(self, notice: str | None = None) -> None:
        """Answer the tapped button with `notice` (a short line over the chat), or with nothing. A tap is
        always answered, once, right after the commit (before the edits and replies): without `answer` too."""
        self.notice = notice

    def notify(self, message: Outgoing) -> None:
        self.elsewhere.append(message)

    def then(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` after the commit, before the replies (e.g. take the buttons off a message)."""
        self.after_commit.append(action)

    def wake_outbox(self) -> None:
        """Send what this turn put in the outbox as soon as it has committed."""
        runtime = self.runtime

        async def wake() -> None:
            runtime.wake_outbox()

        self.then(wake)

    def clear_buttons(self) -> None:
        self.then(lambda: remove_buttons(self.update))

    def set_buttons(self, rows: Rows) -> None:
        """Replace the keyboard of the message whose button was tapped (after the commit)."""
        self.then(lambda: replace_buttons(self.update, rows))

    def _patient_id(self) -> int | None:
        """Whom this turn's replies are about (erasure finds them by it)."""
        return self.person.id if isinstance(self.person, Patient) else None

    def replies_for_outbox(self, now: datetime) -> list[outbox.Planned]:
        """In an urgent turn, the replies (all but photos, which the outbox does not carry) as outbox rows,
        in order; they leave `outgoing`."""
        if not self.urgent:
            return []
        planned = [
            outbox.Planned(
                key=reply_key(self.update.update_id, index),
                kind=URGENT_REPLY_KIND,
                chat_id=message.chat_id,
                text=message.text,
                buttons=message.buttons,
                due_at=now,
                priority=Priority.URGENT,
                subject_patient_id=self._patient_id(),
            )
            for index, message in enumerate(self.outgoing)
            if message.photo is None
        ]
        self.outgoing = [message for message in self.outgoing if message.photo is not None]
        return planned

    async def deliver(self) -> None:
        query = self.update.callback_query
        if query is not None:
            try:
                await query.answer(self.notice)
            except TelegramError as error:  # e.g. a tap answered too late: what it did still stands
                log.warning("event=button.answer_failed kind=%s", type(error).__name__)
        for action in self.after_commit:
            # One failing action (a page, a button edit) must not cost the patient their reply; a page
            # that did not go out is picked up by the scheduler's next pass.
            try:
                await action()
            except Exception as error:
                log.warning("event=after_commit.failed kind=%s", type(error).__name__)
        bot = self.update.get_bot()
        for index, message in enumerate(self.outgoing):
            try:
                with urgent(self.urgent):  # an urgent turn's photos: its other replies are outbox rows
                    await send(bot, message)
            except (RetryAfter, TimedOut, NetworkError) as error:
                if isinstance(error, BadRequest | Forbidden):
                    raise
                # Telegram could not take it now (429, 5xx, a timeout): the outbox tries again, waiting
                # for this chat only, and the rest of the replies follow it there to keep their order.
                await self._retry_through_outbox(index, error)
                break
        await send_all(bot, self.elsewhere, self.runtime.keyring)
        self.after_commit.clear()
        self.outgoing.clear()
        self.elsewhere.clear()

    async def _retry_through_outbox(self, first: int, error: TelegramError) -> None:
        now = utcnow()
        wait = retry_after_seconds(error)
        rows = [
            outbox.Planned(
                key=reply_key(self.update.update_id, index),
                kind=URGENT_REPLY_KIND if self.urgent else REPLY_KIND,
                chat_id=message.chat_id,
                text=message.text,
                buttons=message.buttons,
                due_at=now + timedelta(seconds=wait) if wait else now,
                priority=Priority.URGENT if self.urgent else Priority.NORMAL,
                subject_patient_id=self._patient_id(),
            )
            for index, message in enumerate(self.outgoing)
            if index >= first and message.photo is None
        ]
        log.warning(
            "event=reply.deferred update_id=%s kind=%s count=%d",
            self.update.update_id,
            type(error).__name__,
            len(rows),
        )
        async with transaction(self.runtime.sessions) as session:
            await outbox.enqueue(session, rows)
        self.runtime.wake_outbox()


def reply_key(update_id: int, index: int) -> str:
    """The outbox key of a turn's reply: one row per update and place (a turn retried sends nothing twice)."""
    return REPLY_KEY.pack(ReplyKey(update_id, index))


def retry_after_seconds(error: TelegramError) -> float:
    if isinstance(error, RetryAfter):
        wait = error.retry_after
        return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
    return 0.0


def language_of(person: Person, update: Update, supported: list[str]) -> str:
    if isinstance(person, Patient | Counselor):
        return person.language
    user = update.effective_user
    code = ((user.language_code if user else None) or "").split("-")[0].lower()
    return code if code in supported else REFERENCE_LANGUAGE


@asynccontextmanager
async def turn(update: Update, context: Context, *, waiting: bool = False) -> AsyncIterator[Turn]:
    """The update's sender and a transaction; with `waiting`, also what a patient's text may answer (read in
    the same query as the patient: every typed message needs both)."""
    runtime = runtime_of(context)
    user = update.effective_user
    async with transaction(runtime.sessions) as session:
        person: Person
        found: Waiting | None = None
        if user is None:
            person = Stranger(0)
        elif waiting:
            known = await patient_and_waiting(session, user.id, utcnow())
            if known is not None:
                person, found = known
            else:
                person = await identify_counselor(session, user.id)
        else:
            person = await identify(session, user.id)
        if isinstance(person, Patient) and person.unreachable_since is not None:
            person.unreachable_since = None  # they wrote to us, so they can hear from us again
            log.info("event=patient.reachable patient_id=%s", person.id)
        language = language_of(person, update, runtime.catalog.languages)
        current = Turn(update, runtime, session, person, language, found, args=tuple(context.args or ()))
        yield current
        now = utcnow()
        if await outbox.enqueue(session, current.replies_for_outbox(now)):
            current.wake_outbox()
    outcome = CURRENT.get()
    if outcome is not None and outcome.update_id == update.update_id:
        # Committed: whatever fails from here (a send) is not a reason to handle the update again.
        outcome.marked = True
    await current.deliver()


async def remove_buttons(update: Update) -> None:
    """Take the keyboard off the message a button was tapped on; a second tap finds it gone already."""
    await _edit_markup(update, None)


async def replace_buttons(update: Update, rows: Rows) -> None:
    await _edit_markup(update, keyboard(rows))


async def _edit_markup(update: Update, markup: InlineKeyboardMarkup | None) -> None:
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=markup)
    except BadRequest as error:
        if not _already_so(error):
            raise


def _already_so(error: BadRequest) -> bool:
    """The edit was not needed: the message is gone, or already looks like that."""
    return "not modified" in error.message or "not found" in error.message


async def remove_markup(bot: Bot, chat_id: int, message_id: int, keyring: Keyring) -> None:
    """Take the buttons off an earlier message; it may be gone or bare already. The log names the chat by
    its pseudonym (`chat_ref`)."""
    try:
        await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    except BadRequest as error:
        if not _already_so(error):
            log.warning("event=buttons.remove_failed chat_ref=%s", keyring.pseudonym(chat_id))
    except TelegramError:
        log.warning("event=buttons.remove_failed chat_ref=%s", keyring.pseudonym(chat_id))
