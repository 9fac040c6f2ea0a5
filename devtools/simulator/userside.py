"""What simulated Telegram users do: write, send media, edit, tap buttons, block the bot.

Each action creates the message in the chat (sharing the chat's message ids with the bot) and queues
the update the bot would receive.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .formatting import bot_command_entities
from .media import guess_mime, placeholder_document, placeholder_sticker, placeholder_voice, tiny_png
from .messaging import file_json
from .state import SimChat, SimUser, StoredMessage, World, chat_instance
from .updates import UpdateQueue

USER_TEXT_MAX = 4096


class UserSide:
    def __init__(self, world: World, updates: UpdateQueue) -> None:
        self.world = world
        self.updates = updates

    # ------------------------------------------------------------------ helpers
    def _private(
        self, user_id: int, first_name: str | None = None, language_code: str | None = None
    ) -> SimChat:
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = self.world.user(user_id, first_name, language_code)
        chat = self.world.private_chat(user)
        if chat.blocked:
            raise ValueError(f"user {user_id} has blocked the bot; call block_bot({user_id}, False) first")
        return chat

    def _post(self, chat: SimChat, user: SimUser, content: dict[str, Any], *, deliver: bool = True) -> int:
        message_id = chat.next_message_id()
        message = self.world.base_message(chat, message_id, user.to_json())
        message.update(content)
        self.world.store(StoredMessage(chat.id, message_id, user.id, False, message))
        if deliver:
            self.updates.push("message", copy.deepcopy(message))
        return message_id

    def _addressed_to_bot(self, text: str, entities: list[dict[str, Any]]) -> bool:
        """Group privacy mode: the bot only sees commands (plain or @this_bot) in groups."""
        if not entities or entities[0]["offset"] != 0:
            return False
        command = text[: entities[0]["length"]]
        return "@" not in command or command.split("@", 1)[1].lower() == self.world.bot_username.lower()

    # ------------------------------------------------------------------ actions
    def send_text(
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
        if not text.strip():
            raise ValueError("Telegram clients can't send an empty message")
        if len(text) > USER_TEXT_MAX:
            raise ValueError("Telegram clients split texts longer than 4096 characters; send several")
        if chat_type == "private":
            if chat_id not in (None, user_id):
                raise ValueError("a private chat's id is the user's id")
            chat = self._private(user_id, first_name, language_code)
        elif chat_type in ("group", "supergroup"):
            if chat_id is None or chat_id >= 0:
                raise ValueError("group chats need a negative chat_id")
            self.world.user(user_id, first_name, language_code)
            chat = self.world.group_chat(chat_id, chat_type)
            if chat.type != chat_type:
                raise ValueError(f"chat {chat_id} is a {chat.type}")
        else:
            raise ValueError(f"unsupported chat_type {chat_type!r}")
        user = self.world.users[user_id]
        content: dict[str, Any] = {"text": text}
        entities = bot_command_entities(text)
        if entities:
            content["entities"] = entities
        if forward_from_user_id is not None:
            origin = self.world.users.get(forward_from_user_id) or SimUser(
                forward_from_user_id, f"User {forward_from_user_id}"
            )
            content["forward_origin"] = {
                "type": "user",
                "sender_user": origin.to_json(),
                "date": int(time.time()) - 60,
            }
        deliver = chat.type == "private" or self._addressed_to_bot(text, entities)
        return self._post(chat, user, content, deliver=deliver)

    def send_sticker(self, user_id: int, emoji: str) -> int:
        chat = self._private(user_id)
        stored = self.world.files.add(
            "sticker", placeholder_sticker(), mime_type="image/webp", width=512, height=512
        )
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "IopSimStickers",
            "file_size": stored.size,
        }
        return self._post(chat, self.world.users[user_id], {"sticker": sticker})

    def send_photo(self, user_id: int, caption: str | None) -> int:
        chat = self._private(user_id)
        data = tiny_png()
        stored = self.world.files.add("photo", data, mime_type="image/png", width=4, height=4)
        content: dict[str, Any] = {"photo": [file_json(stored)]}
        if caption:
            content["caption"] = caption
            entities = bot_command_entities(caption)
            if entities:
                content["caption_entities"] = entities
        return self._post(chat, self.world.users[user_id], content)

    def send_voice(self, user_id: int, duration: int) -> int:
        chat = self._private(user_id)
        stored = self.world.files.add("voice", placeholder_voice(duration), mime_type="audio/ogg")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": stored.size,
        }
        return self._post(chat, self.world.users[user_id], {"voice": voice})

    def send_document(self, user_id: int, file_name: str) -> int:
        chat = self._private(user_id)
        stored = self.world.files.add(
            "document",
            placeholder_document(file_name),
            file_name=file_name,
            mime_type=guess_mime(file_name, None),
        )
        return self._post(chat, self.world.users[user_id], {"document": file_json(stored)})

    def edit_message(self, user_id: int, message_id: int, new_text: str) -> None:
        chat = self._private(user_id)
        stored = chat.live(message_id)
        if stored is None or stored.from_bot or stored.sender_id != user_id or "text" not in stored.json:
            raise ValueError(f"user {user_id} has no text message {message_id} to edit")
        if not new_text.strip():
            raise ValueError("Telegram clients can't make a message empty")
        if stored.json["text"] == new_text:
            raise ValueError("message is not modified")
        message = stored.json
        message["text"] = new_text
        entities = bot_command_entities(new_text)
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        message["edit_date"] = int(time.time())
        self.updates.push("edited_message", copy.deepcopy(message))

    def tap(self, user_id: int, message_id: int, callback_data: str) -> str:
        chat = self.world.chats.get(user_id)
        if chat is None or user_id not in self.world.users:
            raise ValueError(f"user {user_id} has no chat with the bot")
        if chat.blocked:
            raise ValueError(f"user {user_id} has blocked the bot; call block_bot({user_id}, False) first")
        stored = chat.live(message_id)
        if stored is None or not stored.from_bot:
            raise ValueError(f"there is no bot message {message_id} in chat {user_id}")
        rows = (stored.json.get("reply_markup") or {}).get("inline_keyboard") or []
        available = [b.get("callback_data") for row in rows for b in row if "callback_data" in b]
        if callback_data not in available:
            raise ValueError(
                f"message {message_id} in chat {user_id} has no button with callback_data {callback_data!r}; "
                f"its buttons carry {available!r}"
            )
        return self.tap_raw(user_id, message_id, callback_data)

    def tap_raw(self, user_id: int, message_id: int, callback_data: str) -> str:
        user = self.world.user(user_id)
        chat = self.world.private_chat(user)
        stored = chat.live(message_id)
        message: dict[str, Any]
        if stored is not None:
            message = copy.deepcopy(stored.json)
        else:
            message = {"chat": chat.to_json(), "message_id": message_id, "date": 0}  # InaccessibleMessage
        record = self.world.new_callback_query(user_id, chat.id, message_id, callback_data)
        self.updates.push(
            "callback_query",
            {
                "id": record.id,
                "from": user.to_json(),
                "message": message,
                "chat_instance": chat_instance(chat.id),
                "data": callback_data,
            },
        )
        return record.id

    def set_blocked(self, user_id: int, blocked: bool) -> None:
        user = self.world.user(user_id)
        chat = self.world.private_chat(user)
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        self.updates.push(
            "my_chat_member",
            {
                "chat": chat.to_json(),
                "from": user.to_json(),
                "date": int(time.time()),
                "old_chat_member": self._member(old),
                "new_chat_member": self._member(new),
            },
        )

    def _member(self, status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": self.world.bot_user_json()}
        if status == "kicked":
            member["until_date"] = 0
        return member
