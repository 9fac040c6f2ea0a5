"""Wiring: settings, database, content and handlers into a python-telegram-bot Application, and its lifecycle.

`serve` is the one way the bot runs: `python -m bot run`, the demo and the end-to-end tests all use it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
from bot.metrics import Metrics
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
    metrics: Metrics = field(default_factory=Metrics)
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
    application = build_application(runtime, polling=not webhook)
    dispatcher = Dispatcher(runtime, application.bot)
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
