"""Validation of ``reply_markup`` (inline keyboards, reply keyboards, remove, force reply)."""

from __future__ import annotations

from typing import Any

from .errors import bad_request

CALLBACK_DATA_MAX_BYTES = 64
INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
MAX_BUTTONS = 100


def validate_reply_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Check ``markup`` like Telegram does and return it (None when absent)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline_keyboard(markup["inline_keyboard"])
        return markup
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        _validate_reply_keyboard(markup["keyboard"])
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def _validate_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "inline_keyboard" must be of type Array'
        )
    count = 0
    for row in rows:
        if not isinstance(row, list):
            raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for button in row:
            count += 1
            if not isinstance(button, dict):
                raise bad_request(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            text = button.get("text")
            if not isinstance(text, str):
                raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
            if not text.strip():
                raise bad_request("BUTTON_TEXT_INVALID")
            actions = [key for key in INLINE_BUTTON_ACTIONS if key in button]
            if not actions:
                raise bad_request("text buttons are unallowed in the inline keyboard")
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str):
                    raise bad_request(
                        'can\'t parse inline keyboard button: Field "callback_data" must be of type String'
                    )
                if not 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_MAX_BYTES:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button:
                url = button["url"]
                if not isinstance(url, str) or not url.lower().startswith(("http://", "https://", "tg://")):
                    raise bad_request("BUTTON_URL_INVALID")
    if count > MAX_BUTTONS:
        raise bad_request("reply markup is too long")


def _validate_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list):
        raise bad_request('can\'t parse keyboard button: Field "keyboard" must be of type Array')
    for row in rows:
        if not isinstance(row, list):
            raise bad_request("can't parse keyboard button: KeyboardButton must be a String or an Object")
        for button in row:
            text = (
                button
                if isinstance(button, str)
                else button.get("text")
                if isinstance(button, dict)
                else None
            )
            if not isinstance(text, str):
                raise bad_request("can't parse keyboard button: KeyboardButton must be a String or an Object")
            if not text:
                raise bad_request("BUTTON_TEXT_INVALID")


def inline_keyboard(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of ``markup`` Telegram echoes back in a Message (only inline keyboards are)."""
    if markup is not None and "inline_keyboard" in markup:
        return markup
    return None
