"""A local stand-in for the Telegram Bot API (end-to-end tests, terminal demo, benchmarks).

Example::

    async with TelegramStandIn() as tg:
        app = (Application.builder().token(TOKEN).base_url(f"{tg.base_url}/bot")
               .base_file_url(f"{tg.base_url}/file/bot").build())
        ...  # start the app polling
        await tg.send_text(42, "/start")
        await tg.wait_for(42, "welcome")

See README.md in this folder for the control API and what is approximated.
"""

from .faults import Fault
from .models import ApiCall, BotMessage, UploadedFile
from .ratelimit import RateLimit
from .standin import TelegramStandIn

__all__ = ["ApiCall", "BotMessage", "Fault", "RateLimit", "TelegramStandIn", "UploadedFile"]
