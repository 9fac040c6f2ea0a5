"""Wiring: settings, database, content and handlers into a python-telegram-bot Application, and its lifecycle.

`serve` is the one way the bot runs: `python -m bot run`, the demo and the end-to-end tests all use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.config import Settings
from bot.content import Catalog
from bot.content.loader import Content, load_content
from bot.content.modules import ModuleLibrary
from bot.content.required import PATIENT_COMMANDS
from bot.db import ensure_current, make_engine, make_sessionmaker
from bot.handlers import register
from bot.handlers.delivery import Dispatcher
from bot.scheduler import build_scheduler

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What every handler needs. Reach it with `bot.handlers.base.runtime_of(context)`."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    content: Content
    refused_fingerprint: str | None = None  # the last edit that failed the check, so it is reported once
    wake_outbox: Callable[[], None] = lambda: (
        None
    )  # send what was just put in the outbox now, not at the tick

    @property
    def catalog(self) -> Catalog:
        return self.content.catalog

    @property
    def modules(self) -> ModuleLibrary:
        return self.content.modules

    def text(self, key: str, language: str, **variables: object) -> str:
        return self.catalog.render(key, language, **variables)

    def reload_content(self) -> Content:
        """Load the content again; on any problem raise ContentError and keep serving the last good one."""
        self.content = load_content(self.settings.content_dir)
        return self.content

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        content = load_content(settings.content_dir)
        engine = make_engine(settings.database_url, encryption_key=settings.require_encryption_key())
        return cls(settings, engine, make_sessionmaker(engine), content)


def build_application(runtime: Runtime) -> Application:  # type: ignore[type-arg]
    api = runtime.settings.telegram_api_base_url
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .token(runtime.settings.require_token())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(AIORateLimiter(overall_max_rate=runtime.settings.send_rate_per_second, max_retries=3))
        .connect_timeout(10)
        .read_timeout(15)
        .write_timeout(15)
    )
    application = builder.build()
    application.bot_data["runtime"] = runtime
    register(application)
    return application


async def _publish_commands(application: Application, runtime: Runtime) -> None:  # type: ignore[type-arg]
    for language in runtime.catalog.languages:
        commands = [BotCommand(name, runtime.text(f"commands.{name}", language)) for name in PATIENT_COMMANDS]
        await application.bot.set_my_commands(commands, language_code=None if language == "en" else language)


async def serve(runtime: Runtime, stop: asyncio.Event, *, poll_timeout: int = 10) -> None:
    """Run the bot with long polling until `stop` is set; then finish in-flight work and shut down."""
    await ensure_current(runtime.engine)
    application = build_application(runtime)
    dispatcher = Dispatcher(runtime, application.bot)
    scheduler = build_scheduler(runtime, application.bot, dispatcher)
    async with application:
        await _publish_commands(application, runtime)
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0,
            timeout=poll_timeout,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=False,
        )
        scheduler.start()
        log.info("event=bot.started bot_id=%s", application.bot.id)
        try:
            await stop.wait()
        finally:
            # No new updates first; then sends under way finish and are recorded (what waits stays in the
            # outbox for the next start); then the other jobs finish their transactions.
            await application.updater.stop()
            await dispatcher.close()
            await scheduler.stop()
            await application.stop()
            log.info("event=bot.stopped")
