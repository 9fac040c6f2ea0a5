"""Public value types: what the bot sent (:class:`BotMessage`), what it called (:class:`ApiCall`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

MessageKind = Literal["text", "photo", "document"]


@dataclass
class UploadedFile:
    """A file part of a multipart Bot API request."""

    filename: str | None
    content_type: str | None
    data: bytes

    def describe(self) -> dict[str, Any]:
        return {"file_name": self.filename, "content_type": self.content_type, "size": len(self.data)}


@dataclass
class BotMessage:
    """The current state of one message the bot sent (a snapshot; later edits don't change it)."""

    message_id: int
    chat_id: int
    text: str | None
    """Text (or caption) as the user sees it: HTML tags/Markdown markup removed, entities decoded."""
    reply_markup: dict[str, Any] | None
    """The reply_markup as sent (inline keyboard, reply keyboard, remove, force reply) or None."""
    kind: MessageKind
    parse_mode: str | None
    sent_at: float
    """``time.monotonic()`` when the bot sent it."""
    edited: bool = False
    deleted: bool = False
    raw_text: str | None = None
    """Text (or caption) exactly as the bot sent it, markup included."""
    entities: list[dict[str, Any]] = field(default_factory=list)
    file_name: str | None = None
    file_bytes: bytes | None = None
    mime_type: str | None = None
    file_id: str | None = None
    reply_to_message_id: int | None = None
    edited_at: float | None = None

    @property
    def file_size(self) -> int | None:
        return None if self.file_bytes is None else len(self.file_bytes)

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every callback button of the inline keyboard, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        out: list[tuple[str, str]] = []
        for row in rows:
            for button in row:
                if isinstance(button, dict) and "callback_data" in button:
                    out.append((str(button.get("text", "")), str(button["callback_data"])))
        return out

    def url_buttons(self) -> list[tuple[str, str]]:
        """(label, url) of every URL button of the inline keyboard."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [
            (str(b.get("text", "")), str(b["url"]))
            for row in rows
            for b in row
            if isinstance(b, dict) and "url" in b
        ]

    def reply_keyboard(self) -> list[str]:
        """Labels of a ReplyKeyboardMarkup sent with this message (empty if none)."""
        rows = (self.reply_markup or {}).get("keyboard") or []
        return [b if isinstance(b, str) else str(b.get("text", "")) for row in rows for b in row]

    def snapshot(self) -> BotMessage:
        return dataclasses.replace(
            self,
            reply_markup=_deep_copy(self.reply_markup),
            entities=[dict(e) for e in self.entities],
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form for the HTTP control API (file bytes replaced by their size)."""
        data = dataclasses.asdict(self)
        data.pop("file_bytes")
        data["file_size"] = self.file_size
        data["buttons"] = [list(b) for b in self.buttons()]
        return data


@dataclass
class ApiCall:
    """One Bot API request the stand-in received. ``status`` is 0 while it is still being handled."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 0
    chat_id: int | None = None
    description: str | None = None
    """The error description when the call failed."""
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        params = {k: (v.describe() if isinstance(v, UploadedFile) else v) for k, v in self.params.items()}
        return {
            "method": self.method,
            "params": params,
            "at": self.at,
            "status": self.status,
            "chat_id": self.chat_id,
            "description": self.description,
            "finished_at": self.finished_at,
        }


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
