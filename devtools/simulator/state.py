"""The simulated world: users, chats, messages (with per-chat ids), callback queries, files.

Everything here runs on the stand-in's event loop; no locking is needed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .errors import BOT_BLOCKED, CHAT_NOT_FOUND, bad_request, forbidden
from .media import FileStore
from .models import BotMessage
from .sync import Pulse


@dataclass
class SimUser:
    id: int
    first_name: str
    language_code: str | None = None
    last_name: str | None = None
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class StoredMessage:
    chat_id: int
    message_id: int
    sender_id: int  # the bot's id for bot messages
    from_bot: bool
    json: dict[str, Any]
    """The current Telegram Message JSON of this message."""
    bot: BotMessage | None = None
    deleted: bool = False


@dataclass
class SimChat:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    user: SimUser | None = None  # the other party of a private chat
    last_message_id: int = 0
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    bot_message_ids: list[int] = field(default_factory=list)
    blocked: bool = False
    sent_count: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or "Group"
        return data

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id

    def live(self, message_id: int) -> StoredMessage | None:
        stored = self.messages.get(message_id)
        if stored is None or stored.deleted:
            return None
        return stored


@dataclass
class CallbackQueryRecord:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answer: dict[str, Any] | None = None


class World:
    def __init__(self, bot_username: str, bot_first_name: str) -> None:
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.bot_id = 0
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.files = FileStore()
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self._callback_counter = 0
        self.activity = Pulse()
        """Fired whenever the bot sends/edits/deletes a message or answers a callback query."""

    # ------------------------------------------------------------------ identities
    def bot_user_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def user(self, user_id: int, first_name: str | None = None, language_code: str | None = None) -> SimUser:
        """The user with that id, created (or renamed) as needed."""
        user = self.users.get(user_id)
        if user is None:
            user = SimUser(user_id, first_name or "Test", language_code)
            self.users[user_id] = user
        elif first_name is not None:
            user.first_name = first_name
            user.language_code = language_code
        return user

    def private_chat(self, user: SimUser) -> SimChat:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = SimChat(user.id, "private", user=user)
            self.chats[user.id] = chat
        return chat

    def group_chat(self, chat_id: int, chat_type: str) -> SimChat:
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = SimChat(chat_id, chat_type, title=f"Test {chat_type} {abs(chat_id)}")
            self.chats[chat_id] = chat
        return chat

    def chat_for_bot(self, chat_id: int) -> SimChat:
        """The chat a bot call targets: it must exist (someone wrote there) and not have blocked the bot."""
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request(CHAT_NOT_FOUND)
        if chat.blocked:
            raise forbidden(BOT_BLOCKED)
        return chat

    # ------------------------------------------------------------------ messages
    def base_message(self, chat: SimChat, message_id: int, sender: dict[str, Any]) -> dict[str, Any]:
        return {"message_id": message_id, "from": sender, "chat": chat.to_json(), "date": int(time.time())}

    def store(self, stored: StoredMessage) -> None:
        chat = self.chats[stored.chat_id]
        chat.messages[stored.message_id] = stored
        if stored.from_bot:
            chat.bot_message_ids.append(stored.message_id)
            chat.sent_count += 1
            self.activity.fire()

    def reply_json(self, chat: SimChat, message_id: int) -> dict[str, Any] | None:
        stored = chat.live(message_id)
        if stored is None:
            return None
        data = dict(stored.json)
        data.pop("reply_to_message", None)
        return data

    def transcript(self, chat_id: int) -> list[BotMessage]:
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        out: list[BotMessage] = []
        for message_id in chat.bot_message_ids:
            bot_message = chat.messages[message_id].bot
            if bot_message is not None:
                out.append(bot_message)
        return out

    # ------------------------------------------------------------------ callback queries
    def new_callback_query(
        self, user_id: int, chat_id: int, message_id: int, data: str
    ) -> CallbackQueryRecord:
        self._callback_counter += 1
        query_id = str(4_000_000_000_000_000_000 + self._callback_counter * 7 + user_id % 7)
        record = CallbackQueryRecord(query_id, user_id, chat_id, message_id, data)
        self.callback_queries[query_id] = record
        return record


def chat_instance(chat_id: int) -> str:
    """A stable, opaque global chat identifier like Telegram's ``chat_instance``."""
    return str((chat_id * 2_654_435_761 + 0x5BD1E995) % (2**63))
