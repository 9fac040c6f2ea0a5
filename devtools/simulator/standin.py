"""``TelegramStandIn``: a local Bot API server plus simulated users, for tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .control import control_routes
from .faults import Fault, FaultBook
from .gateway import Gateway
from .methods import BotApi
from .models import ApiCall, BotMessage
from .ratelimit import RateLimit, RateLimiter
from .server import HttpServer, build_app
from .state import World
from .sync import wait_until
from .updates import UpdateQueue
from .userside import UserSide
from .webhook import Webhook

Predicate = Callable[[BotMessage], bool] | str


class TelegramStandIn:
    """A stand-in for ``api.telegram.org`` serving one bot, on 127.0.0.1.

    Point python-telegram-bot at it with
    ``Application.builder().token(TOKEN).base_url(f"{s.base_url}/bot").base_file_url(f"{s.base_url}/file/bot")``.
    All methods must be called from the event loop the stand-in was started in.
    """

    def __init__(
        self,
        *,
        bot_username: str = "iop_companion_bot",
        bot_first_name: str = "IOP Companion",
        rate_limit: RateLimit | None = None,
        token: str | None = None,
        patience: float = 5.0,
    ) -> None:
        """``patience``: how many seconds ``wait_for``, ``wait_for_call`` and ``wait_for_callback_answer``
        wait when not given a ``timeout``."""
        self.patience = patience
        self._world = World(bot_username, bot_first_name)
        self._updates = UpdateQueue()
        self._webhook = Webhook(self._updates)
        self._faults = FaultBook()
        self._limiter = RateLimiter(rate_limit) if rate_limit is not None else None
        self._api = BotApi(self._world, self._updates, self._webhook)
        self._users = UserSide(self._world, self._updates)
        self._stopping = asyncio.Event()
        self.calls: list[ApiCall] = []
        """Every Bot API request received, in arrival order."""
        self._gateway = gateway = Gateway(
            self._api, self._world, self._faults, self._limiter, self.calls, self._stopping, token
        )
        if token is not None:
            bot_id = gateway.check_token(token)
            if bot_id is None:
                raise ValueError("token must look like a bot token: <digits>:<20+ chars of [A-Za-z0-9_-]>")
            self._world.bot_id = bot_id
        self._http = HttpServer(build_app(gateway, control_routes(self)))

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 = a free port); returns once connections are accepted.

        A stopped stand-in can be started again (state is kept): that simulates a Telegram outage.
        """
        await self._http.start(host, port)
        self._stopping.clear()
        self._updates.reopen()
        self._webhook.resume()

    async def stop(self) -> None:
        """Stop serving; waiting getUpdates calls are answered with [] first. Idempotent."""
        self._stopping.set()
        self._updates.close()
        await self._webhook.close()
        await self._http.stop()

    @property
    def base_url(self) -> str:
        if not self._http.port:
            raise RuntimeError("the stand-in is not started")
        host = f"[{self._http.host}]" if ":" in self._http.host else self._http.host
        return f"http://{host}:{self._http.port}"

    async def __aenter__(self) -> TelegramStandIn:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ user side
    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str = "Test",
        language_code: str | None = "en",
        chat_id: int | None = None,
        chat_type: str = "private",
        forward_from_user_id: int | None = None,
    ) -> int:
        """User ``user_id`` writes ``text``; returns the new message_id. Commands get bot_command entities."""
        return self._users.send_text(
            user_id,
            text,
            first_name=first_name,
            language_code=language_code,
            chat_id=chat_id,
            chat_type=chat_type,
            forward_from_user_id=forward_from_user_id,
        )

    async def send_sticker(self, user_id: int, *, emoji: str = "🙂") -> int:
        return self._users.send_sticker(user_id, emoji)

    async def send_photo(self, user_id: int, *, caption: str | None = None) -> int:
        return self._users.send_photo(user_id, caption)

    async def send_voice(self, user_id: int, *, duration: int = 3) -> int:
        return self._users.send_voice(user_id, duration)

    async def send_document(self, user_id: int, *, file_name: str = "file.pdf") -> int:
        return self._users.send_document(user_id, file_name)

    async def edit_user_message(self, user_id: int, message_id: int, new_text: str) -> None:
        """The user edits their text message: the bot gets an ``edited_message`` update."""
        self._users.edit_message(user_id, message_id, new_text)

    async def tap(self, user_id: int, message_id: int, callback_data: str) -> str:
        """Tap an existing inline button of a bot message in the user's private chat; returns the query id.

        Raises ValueError if the message (currently) has no button with that callback_data.
        """
        return self._users.tap(user_id, message_id, callback_data)

    async def tap_raw(self, user_id: int, message_id: int, callback_data: str) -> str:
        """A callback query with arbitrary data (forged or replayed buttons); no checks."""
        return self._users.tap_raw(user_id, message_id, callback_data)

    def block_bot(self, user_id: int, blocked: bool = True) -> None:
        """While blocked, every call targeting that chat fails with 403 (and the bot gets my_chat_member)."""
        self._users.set_blocked(user_id, blocked)

    @property
    def rate_limited(self) -> int:
        """Sends refused with 429 by the flood limit (0 without one)."""
        return self._limiter.rejected if self._limiter is not None else 0

    def add_user(self, user_id: int, *, first_name: str = "Test", language_code: str | None = None) -> None:
        """A user who started a private chat with the bot earlier (the bot may message them; no update)."""
        self._world.private_chat(self._world.user(user_id, first_name, language_code))

    # ------------------------------------------------------------------ observing the bot
    def transcript(self, chat_id: int) -> list[BotMessage]:
        """Snapshots of what the bot sent in the chat, in order; edits and deletions are reflected."""
        return [m.snapshot() for m in self._world.transcript(chat_id)]

    def mark(self, chat_id: int) -> int:
        """The transcript length now: pass it as ``after=`` to wait only for newer messages."""
        chat = self._world.chats.get(chat_id)
        return 0 if chat is None else len(chat.bot_message_ids)

    def sent_count(self, chat_id: int | None = None) -> int:
        """Messages the bot successfully sent (to a chat, or overall)."""
        if chat_id is not None:
            chat = self._world.chats.get(chat_id)
            return 0 if chat is None else chat.sent_count
        return sum(chat.sent_count for chat in self._world.chats.values())

    def chat_action(self, chat_id: int) -> str | None:
        """The last sendChatAction action in the chat."""
        return self._api.messaging.chat_actions.get(chat_id)

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The bot's command list as set with setMyCommands (default scope unless given)."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True) + "|" + language_code
        return [dict(c) for c in self._api.commands.get(key, [])]

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by the bot."""
        return self._updates.pending_count

    async def wait_for(
        self,
        chat_id: int,
        predicate: Predicate,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (public API: a deadline, not a cancel scope)
        after: int = 0,
    ) -> BotMessage:
        """The first bot message in the chat at transcript index >= ``after`` that matches.

        ``predicate`` is a callable on :class:`BotMessage`, or a string meaning "text contains this"
        (case-insensitive; deleted messages don't match). Re-checked on every bot action, so edits count.
        Raises AssertionError with the chat's transcript on timeout.
        """
        check: Callable[[BotMessage], bool]
        if isinstance(predicate, str):
            needle = predicate.lower()

            def contains(m: BotMessage) -> bool:
                return not m.deleted and m.text is not None and needle in m.text.lower()

            check = contains
            description = f"text containing {predicate!r}"
        else:
            check = predicate
            description = getattr(predicate, "__name__", "predicate")
        timeout = self.patience if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            event = self._world.activity.current()
            chat = self._world.chats.get(chat_id)
            if chat is not None:
                for message_id in chat.bot_message_ids[after:]:
                    message = chat.messages[message_id].bot
                    if message is not None and check(message):
                        return message.snapshot()
            if time.monotonic() >= deadline:
                break
            await wait_until(event, deadline)
        lines = [
            f"  [{i}] #{m.message_id} {m.kind}{' (deleted)' if m.deleted else ''}"
            f"{' (edited)' if m.edited else ''}: {m.text!r} buttons={m.buttons()}"
            for i, m in enumerate(self._world.transcript(chat_id))
        ]
        raise AssertionError(
            f"no bot message in chat {chat_id} (index >= {after}) matched {description} within {timeout}s; "
            "transcript:\n" + ("\n".join(lines) if lines else "  (empty)")
        )

    async def wait_for_callback_answer(
        self,
        callback_query_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (public API)
    ) -> dict[str, Any]:
        """The parameters of the bot's answerCallbackQuery for that query (waits for it)."""
        timeout = self.patience if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            event = self._world.activity.current()
            record = self._world.callback_queries.get(callback_query_id)
            if record is not None and record.answer is not None:
                return dict(record.answer)
            if time.monotonic() >= deadline:
                raise AssertionError(f"callback query {callback_query_id} was not answered within {timeout}s")
            await wait_until(event, deadline)

    async def wait_for_call(
        self,
        method: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (public API)
        after: int = 0,
        finished: bool = False,
    ) -> ApiCall:
        """The first call of ``method`` (case-insensitive) at index >= ``after`` of :attr:`calls`.

        With ``finished=False`` it returns as soon as the request has been received (e.g. a long poll
        that is now waiting); with ``finished=True`` once it has been answered.
        """
        wanted = method.lower()
        timeout = self.patience if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            event = self._gateway.calls_changed.current()
            for call in self.calls[after:]:
                if call.method.lower() == wanted and (not finished or call.status):
                    return call
            if time.monotonic() >= deadline:
                seen = [c.method for c in self.calls[after:]]
                raise AssertionError(f"no {method} call (index >= {after}) within {timeout}s; calls: {seen}")
            await wait_until(event, deadline)

    # ------------------------------------------------------------------ faults
    def inject(self, method: str, fault: Fault, *, times: int = 1, chat_id: int | None = None) -> None:
        """The next ``times`` calls of ``method`` ("*" = any; only for ``chat_id`` if given) fail."""
        self._faults.add(method, fault, times, chat_id)

    def clear_faults(self) -> None:
        self._faults.clear()
