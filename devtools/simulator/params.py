"""Reading Bot API parameters from JSON, urlencoded or multipart bodies (and the query string).

Telegram accepts all three encodings; in form encodings every value is a string and nested values
(reply_markup, entities, ...) are JSON-encoded strings, which is how python-telegram-bot sends them.
Values are normalised to the types Telegram documents so tests can inspect ``ApiCall.params``.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request

from .errors import CHAT_NOT_FOUND, ApiError, bad_request
from .models import UploadedFile

INT_FIELDS = frozenset(
    {
        "chat_id", "from_chat_id", "message_id", "reply_to_message_id", "message_thread_id", "offset",
        "limit", "timeout", "cache_time", "max_connections", "user_id", "duration", "width", "height",
    }
)  # fmt: skip
BOOL_FIELDS = frozenset(
    {
        "disable_notification", "protect_content", "drop_pending_updates", "show_alert",
        "disable_web_page_preview", "allow_sending_without_reply", "has_spoiler",
        "disable_content_type_detection", "show_caption_above_media", "allow_paid_broadcast",
        "for_channels",
    }
)  # fmt: skip
JSON_FIELDS = frozenset(
    {
        "reply_markup", "entities", "caption_entities", "allowed_updates", "commands",
        "link_preview_options", "reply_parameters", "scope", "message_ids", "media", "menu_button",
    }
)  # fmt: skip

_INT_RE = re.compile(r"-?\d+")
MAX_BODY_PART = 64 * 1024 * 1024


async def read_params(request: Request) -> dict[str, Any]:
    """Parse the request's parameters. Raises :class:`ApiError` for a malformed body."""
    data: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await request.body()
        if body.strip():
            try:
                parsed = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON object") from None
            if not isinstance(parsed, dict):
                raise bad_request("can't parse JSON object")
            data.update(parsed)
    elif content_type == "application/x-www-form-urlencoded":
        # what python-telegram-bot sends for every call without files: parse it directly (fast path)
        form_text = (await request.body()).decode("utf-8", "replace")
        try:
            data.update(parse_qsl(form_text, keep_blank_values=True, max_num_fields=1000))
        except ValueError as exc:
            raise bad_request(f"can't parse request body: {exc}") from None
    elif content_type == "multipart/form-data":
        try:
            async with request.form(max_files=100, max_fields=1000, max_part_size=MAX_BODY_PART) as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        data[key] = UploadedFile(value.filename, value.content_type, await value.read())
                    else:
                        data[key] = value
        except ApiError:
            raise
        except Exception as exc:  # malformed multipart bodies raise parser-specific errors
            raise bad_request(f"can't parse request body: {exc}") from None
    return normalize(data)


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in JSON_FIELDS:
                with contextlib.suppress(ValueError):  # else left as a string: the method reports it
                    value = json.loads(value)
            elif key in INT_FIELDS and _INT_RE.fullmatch(value.strip()):
                value = int(value)
            elif key in BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
                value = value.lower() in ("true", "1")
        out[key] = value
    return out


class Params:
    """Typed, validating access to one call's parameters."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def chat_id(self) -> int:
        value = self.data.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, bool) or not isinstance(value, int):
            # "@channelusername" and anything unparsable: the stand-in only knows numeric chats
            raise bad_request(CHAT_NOT_FOUND)
        return value

    def opt_int(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad_request(f'field "{name}" must be of type Integer')
        return value

    def int(self, name: str, missing: str) -> int:
        value = self.opt_int(name)
        if value is None:
            raise bad_request(missing)
        return value

    def opt_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, UploadedFile):
            raise bad_request(f'field "{name}" must be of type String')
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise bad_request(f'field "{name}" must be of type String')
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise bad_request(f'field "{name}" must be of type Boolean')

    def json(self, name: str, error: str) -> Any:
        """A JSON-typed field (already decoded); a string that wasn't valid JSON -> 400 ``error``."""
        value = self.data.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            raise bad_request(error)
        return value
