"""Shared constants and helpers for the Telegram stand-in tests."""

from __future__ import annotations

import telegram

from devtools.simulator import TelegramStandIn

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BOT_ID = 123456789
USER = 4242


def make_bot(standin: TelegramStandIn, token: str = TOKEN) -> telegram.Bot:
    return telegram.Bot(
        token,
        base_url=f"{standin.base_url}/bot",
        base_file_url=f"{standin.base_url}/file/bot",
    )


def api(method: str, token: str = TOKEN) -> str:
    return f"/bot{token}/{method}"
