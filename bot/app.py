"""Wiring: settings, database, content and handlers into a python-telegram-bot Application, and its lifecycle.

`serve` is the one way the bot runs: `python -m bot run`, the demo and the end-to-end tests all use it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.careteam import notices
from bot.content_check.required import PATIENT_COMMANDS
from bot.core.db import ensure_current
from bot.core.key_rotation import check_keys
from bot.handlers import alerts, register
from bot.outbox.dispatcher import Dispatcher
from bot.risk.paging import PAGE_KIND
from bot.runtime import Runtime
from bot.scheduler import build_scheduler

log = logging.getLogger(__name__)


class MeteredApplication(Application):  # type: ignore[type-arg]
    """PTB's Application, timing every update it handles (long polling and webhook alike)."""

    async def process_update(self, update: object) -> None:
        start = time.perf_counter()
        try:
            await super().process_update(update)
        finally:
            self.bot_data["runtime"].metrics.handled(update, time.perf_counter() - start)


def build_application(runtime: Runtime, *, polling: bool = True) -> Application:  # type: ignore[type-arg]
    """The bot's Application; without `polling` it has no updater: updates come in through the webhook."""
    api = runtime.settings.telegram_api_base_url
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .application_class(MeteredApplication)
        .token(runtime.settings.require_token())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(AIORateLimiter(overall_max_rate=runtime.settings.send_rate_per_second, max_retries=3))
        .connect_timeout(10)
        .read_timeout(15)
        .write_timeout(15)
    )
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    application.bot_data["runtime"] = runtime
    register(application)
    return application


async def _publish_commands(application: Application, runtime: Runtime) -> None:  # type: ignore[type-arg]
    for language in runtime.catalog.languages:
        commands = [BotCommand(name, runtime.text(f"commands.{name}", language)) for name in PATIENT_COMMANDS]
        await application.bot.set_my_commands(commands, language_code=None if language == "en" else language)


async def serve(
    runtime: Runtime, stop: asyncio.Event, *, poll_timeout: int = 10, webhook: bool = False
) -> None:
    """Run the bot until `stop` is set, taking updates by long polling or, with `webhook`, by Telegram
    posting them to us (see bot.webhook); then finish in-flight work and shut down."""
    from bot.webhook import WebhookServer

    await ensure_current(runtime.engine)
    await check_keys(runtime.engine)  # a key that cannot read what is stored: refuse, one line, at once
    application = build_application(runtime, polling=not webhook)
    dispatcher = Dispatcher(
        runtime,
        application.bot,
        after_sent={PAGE_KIND: alerts.page_sent},
        on_blocked=notices.patient_unreachable,
    )
    scheduler = build_scheduler(runtime, application.bot, dispatcher)
    intake = WebhookServer(runtime, application) if webhook else None
    if intake is not None:
        intake.listen()
    async with application:
        await _publish_commands(application, runtime)
        await application.start()
        try:
            if intake is not None:
                await intake.start()
            else:
                assert application.updater is not None
                await application.updater.start_polling(
                    poll_interval=0,
                    timeout=poll_timeout,
                    allowed_updates=Update.ALL_TYPES,
                    drop_pending_updates=False,
                )
        except BaseException:
            if intake is not None:
                await intake.stop()
            await application.stop()
            raise
        scheduler.start()
        # What is alive now (content, risk model, libraries, mappers) lives as long as the process: out of the
        # collector's sight, each collection walks only what handling updates creates.
        gc.freeze()
        log.info(
            "event=bot.started bot_id=%s mode=%s", application.bot.id, "webhook" if webhook else "polling"
        )
        try:
            await stop.wait()
        finally:
            # No new updates first, and those under way are finished; then sends under way finish and are
            # recorded (what was claimed and not tried goes back to the outbox for any process); then the
            # other jobs finish their transactions.
            if intake is not None:
                await intake.stop()
            elif application.updater is not None:
                await application.updater.stop()
            await dispatcher.close()
            await scheduler.stop()
            await application.stop()
            gc.unfreeze()
            log.info("event=bot.stopped")
