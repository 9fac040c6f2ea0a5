"""What a raw update (Telegram's JSON, as a dict) says, read without the database or python-telegram-bot."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.core.crypto import Keyring
from bot.core.updates import chat_of
from bot.intake.store import Incoming

log = logging.getLogger(__name__)

# One encoder for every update: json.dumps with these options builds a new one per call
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class NotAnUpdate(ValueError):
    """The body is not an update object (no integer update_id, or not a JSON object)."""


@dataclass(frozen=True)
class Typed:
    """A text a person typed in a private chat with the bot: what crisis screening reads first."""

    chat_id: int
    text: str
    language_code: str | None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def incoming(raw: object, keyring: Keyring) -> Incoming:
    """An update as the inbox stores it, its chat known by its pseudonym (`Keyring.pseudonym`). NotAnUpdate
    for anything that is not an update object."""
    return _incoming(raw, keyring.pseudonym)


def _incoming(raw: object, pseudonym: Callable[[int], int]) -> Incoming:
    if not isinstance(raw, dict):
        raise NotAnUpdate("not a JSON object")
    update_id = _int(raw.get("update_id"))
    if update_id is None or not 0 <= update_id < 2**63:
        raise NotAnUpdate("no integer update_id")
    chat = chat_of(raw)
    key = None if chat is None else pseudonym(chat)
    return Incoming(update_id, key, _JSON.encode(raw))


def unique(raws: Iterable[Any], keyring: Keyring) -> list[Incoming]:
    """The updates among `raws` as the inbox stores them, each once (a page or a group of posts may hold one
    twice: Telegram posts an update again while the first post is under way). Bodies that are not updates
    are dropped with a log line (they never will be). A chat's pseudonym (a keyed hash) is computed once per
    call: a page's 100 updates come from a few chats."""
    keys: dict[int, int] = {}

    def pseudonym(chat: int) -> int:
        if chat not in keys:
            keys[chat] = keyring.pseudonym(chat)
        return keys[chat]

    rows: dict[int, Incoming] = {}
    for raw in raws:
        try:
            row = _incoming(raw, pseudonym)
        except NotAnUpdate:
            log.warning("event=intake.not_an_update")
            continue
        rows.setdefault(row.update_id, row)
    return list(rows.values())


def typed(raw: dict[str, Any]) -> Typed | None:
    """The text of a new message in a private chat, if that is what the update is."""
    message = raw.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat")
    text = message.get("text")
    if not isinstance(chat, dict) or chat.get("type") != "private" or not isinstance(text, str):
        return None
    chat_id = _int(chat.get("id"))
    if chat_id is None:
        return None
    sender = message.get("from")
    language = sender.get("language_code") if isinstance(sender, dict) else None
    return Typed(chat_id, text, language if isinstance(language, str) else None)
