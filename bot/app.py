"""Wiring: settings, database, content and handlers into a python-telegram-bot Application, and its lifecycle.

`serve` is the one way the bot runs: `python -m bot run`, the demo and the end-to-end tests all use it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import httpx
from telegram import BotCommand
from telegram.error import InvalidToken, NetworkError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.careteam import notices
from bot.content_check import review
from bot.content_check.required import PATIENT_COMMANDS
from bot.core.config import TOKEN_IN_TEXT
from bot.core.db import ensure_current
from bot.core.key_rotation import check_keys
from bot.core.presence import Presence
from bot.handlers import alerts, fallback, register
from bot.intake.polling import Poller
from bot.intake.processor import InboxProcessor
from bot.outbox.dispatcher import Dispatcher
from bot.outbox.limiter import SendLimiter
from bot.risk.paging import PAGE_KIND
from bot.runtime import Runtime
from bot.scheduler import build_scheduler

log = logging.getLogger(__name__)


class TelegramUnavailable(Exception):
    """Telegram (TELEGRAM_API_BASE_URL) refused the token or could not be reached at start: one line that
    names the URL, never the token (PTB's own message quotes it)."""


async def connect(application: Application, api: str) -> None:  # type: ignore[type-arg]
    """Ask Telegram who the bot is (getMe): the first call, where a wrong URL or token shows."""
    try:
        await application.initialize()
    except InvalidToken:
        raise TelegramUnavailable(
            f"the Bot API server at {api} refused the token: check BOT_TOKEN, and that TELEGRAM_API_BASE_URL "
            "is the server's address without /bot (such as https://api.telegram.org)"
        ) from None
    except NetworkError as error:  # TimedOut included
        reason = TOKEN_IN_TEXT.sub("<token>", str(error))
        raise TelegramUnavailable(
            f"cannot reach Telegram at {api} ({reason}): check TELEGRAM_API_BASE_URL and the network"
        ) from None


class MeteredApplication(Application):  # type: ignore[type-arg]
    """PTB's Application, timing every update it handles (long polling and webhook alike)."""

    async def process_update(self, update: object) -> None:
        start = time.perf_counter()
        try:
            await super().process_update(update)
        finally:
            self.bot_data["runtime"].metrics.handled(update, time.perf_counter() - start)


KEEP_ALIVE = 4  # idle connections to Telegram kept open


def telegram_requests() -> HTTPXRequest:
    """PTB's HTTP client, as its builder makes it, but keeping only KEEP_ALIVE idle connections: httpcore
    checks every idle connection of its pool (a system call each) before and after each request, so idle
    connections kept from a busy moment (one per chat handled at once) cost every later request. Requests
    at once are not limited (a slow chat holds only its own connection)."""
    return HTTPXRequest(
        connection_pool_size=256,
        connect_timeout=10,
        read_timeout=15,
        write_timeout=15,
        httpx_kwargs={"limits": httpx.Limits(max_connections=256, max_keepalive_connections=KEEP_ALIVE)},
    )


def build_application(runtime: Runtime) -> Application:  # type: ignore[type-arg]
    """The bot's Application. It has no updater: updates come from the inbox (see bot.intake), which
    long polling and the webhook fill.

    The rate limiter (bot.outbox.limiter) holds every call to the overall rate, crisis replies and pages
    first, and never retries: a 429 for one chat must not pause the calls for everyone. What Telegram
    refuses with 429 or a transient error goes back through the outbox, which waits per chat (see
    Turn.deliver)."""
    api = runtime.settings.telegram_api_base_url
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .application_class(MeteredApplication)
        .token(runtime.settings.require_token())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(SendLimiter(runtime.settings.send_rate_per_second))
        .request(telegram_requests())
        .updater(None)
    )
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
    posting them to us (see bot.webhook); then finish in-flight work and shut down.

    Either way an update is stored in the inbox before Telegram is told it arrived, and handled from there
    (bot.intake): per chat in order, chats concurrently, retried when handling fails."""
    from bot.status import StatusEndpoints, StatusServer
    from bot.webhook import WebhookServer

    await ensure_current(runtime.engine)
    await check_keys(runtime.engine)  # a key that cannot read what is stored: refuse, one line, at once
    review.gate(runtime.settings.content_dir, required=runtime.settings.require_content_review)
    application = build_application(runtime)
    dispatcher = Dispatcher(
        runtime,
        application.bot,
        after_sent={PAGE_KIND: alerts.page_sent},
        on_blocked=notices.patient_unreachable,
    )
    scheduler = build_scheduler(runtime, application.bot, dispatcher)
    processor = InboxProcessor(
        runtime,
        application,
        flood_notice=fallback.answer_flood,
        concurrency=runtime.settings.inbox_concurrency,
    )
    # Both hand what they stored to the processor in memory; the webhook only rows whose chat has nothing
    # pending elsewhere (several instances may share a chat's updates: the per-chat claim keeps their order).
    # /healthz, /readyz, /metrics: on a port of their own when STATUS_PORT says so, else beside the webhook.
    status = StatusServer(runtime) if runtime.settings.status_port is not None else None
    intake = (
        WebhookServer(
            runtime,
            application,
            processor,
            status=StatusEndpoints(runtime) if status is None else None,
        )
        if webhook
        else None
    )
    poller = None if webhook else Poller(runtime, application.bot, processor, timeout=poll_timeout)
    polling: asyncio.Task[None] | None = None
    servers = [server for server in (intake, status) if server is not None]
    try:
        for server in servers:
            server.listen()
        await connect(application, runtime.settings.telegram_api_base_url)
    except BaseException:
        for server in servers:
            await server.stop()
        raise
    # Shows the other processes sharing the database that this one is alive: while it runs, nobody takes
    # its claims; once it has ended (however it ended), they are taken back within seconds
    # (bot.core.presence).
    presence = Presence(runtime.engine, on_lost=processor.lock_lost)
    async with application:
        await _publish_commands(application, runtime)
        await application.start()
        try:
            await presence.start()
            await processor.start()
            if intake is not None:
                await intake.start()
            else:
                assert poller is not None
                await poller.start()
                polling = asyncio.create_task(poller.run(), name="polling")
            if status is not None:
                await status.start()
        except BaseException:
            for server in servers:
                await server.stop()
            await processor.close()
            await presence.close()
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
            await _until_stopped(stop, polling)
        finally:
            # No new updates first (what is fetched and not stored stays at Telegram); the updates under way
            # are finished and what was claimed and not begun goes back to the inbox; then sends under way
            # finish and are recorded; then the other jobs finish their transactions.
            for server in servers:
                await server.stop()
            if poller is not None:
                poller.stop()
            if polling is not None:
                await asyncio.gather(polling, return_exceptions=True)
            await processor.close()
            await dispatcher.close()
            await scheduler.stop()
            await presence.close()  # last: until now sends may still be under way (it never raises)
            await application.stop()
            gc.unfreeze()
            log.info("event=bot.stopped")


async def _until_stopped(stop: asyncio.Event, polling: asyncio.Task[None] | None) -> None:
    """Wait for the stop signal; a polling loop that ends by itself (a revoked token) stops the bot too."""
    waiting = asyncio.ensure_future(stop.wait())
    watched: set[asyncio.Future[object]] = {waiting}  # type: ignore[arg-type]
    if polling is not None:
        watched.add(polling)  # type: ignore[arg-type]
    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if polling is not None and polling in done:
        polling.result()  # its error, if it had one
