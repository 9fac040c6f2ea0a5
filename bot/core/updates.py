"""What a raw Telegram update (its JSON, as a dict) says about its chat, read without python-telegram-bot:
the inbox keeps each chat's updates in order by it, and `keys rotate` hashes it again from a stored update."""

from __future__ import annotations

from typing import Any

_MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post", "business_message")
_CHAT_MEMBER_KINDS = ("my_chat_member", "chat_member", "chat_join_request")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def chat_of(raw: dict[str, Any]) -> int | None:
    """The chat an update belongs to (its order is kept per chat); else its sender; else None."""
    for kind in (*_MESSAGE_KINDS, *_CHAT_MEMBER_KINDS):
        body = raw.get(kind)
        if isinstance(body, dict) and isinstance(body.get("chat"), dict):
            return _int(body["chat"].get("id"))
    query = raw.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            return _int(message["chat"].get("id"))
        sender = query.get("from")
        if isinstance(sender, dict):
            return _int(sender.get("id"))
    for body in raw.values():
        if isinstance(body, dict) and isinstance(body.get("from"), dict):
            return _int(body["from"].get("id"))
    return None
