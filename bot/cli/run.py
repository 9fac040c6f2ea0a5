"""`python -m bot run`, `health` and `demo`: the bot, whether it answers, and the bot on this machine with a
stand-in."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError

if TYPE_CHECKING:
    from bot.core.config import Settings


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import serve
    from bot.core.runlock import only_process
    from bot.runtime import Runtime

    settings.require_token()
    if args.webhook:
        settings.require_webhook()
    with only_process(settings.database_url):
        runtime = Runtime.create(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await serve(runtime, stop, webhook=args.webhook)
        finally:
            await runtime.engine.dispose()
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from devtools.demo import run_demo
    except ImportError:
        raise CliError("the demo runs from a source checkout: `make demo` in the repository") from None

    database = Path(args.database)
    folder = database.parent
    if not folder.is_dir():
        raise CliError(f"cannot create the demo database {database}: there is no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise CliError(f"cannot create the demo database {database}: the folder {folder} is not writable")
    return await run_demo(settings, database_path=database)


async def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """Ask the running bot's /healthz (bot.status), on this machine: where STATUS_PORT serves it, else beside
    the webhook. The container's HEALTHCHECK runs this."""
    import httpx

    from bot.status import local_address

    if settings.status_port is not None:
        host, port = local_address(settings.status_listen), settings.status_port
    else:
        host, port = local_address(settings.webhook_listen), settings.webhook_port
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=args.timeout) as client:
            response = await client.get(url)
    except httpx.HTTPError as error:
        raise CliError(f"unhealthy: no answer from {url} ({type(error).__name__})") from None
    if response.status_code != 200:
        raise CliError(f"unhealthy: {url} answered {response.status_code}")
    print(f"healthy: {url}")
    return 0


def add_parsers(commands: Any) -> None:
    """Add `run`, `health` and `demo` (`commands` is the top-level subparsers object)."""
    run = commands.add_parser(
        "run",
        help="run the bot (long polling, or --webhook)",
        description="Run the bot. Needs BOT_TOKEN, ENCRYPTION_KEY and a migrated database. Takes updates by "
        "long polling from TELEGRAM_API_BASE_URL, or with --webhook by Telegram posting them to WEBHOOK_URL.",
    )
    run.add_argument(
        "--webhook",
        action="store_true",
        help="serve Telegram's webhook on WEBHOOK_LISTEN:WEBHOOK_PORT (with /healthz, /readyz, /metrics); "
        "needs WEBHOOK_URL and WEBHOOK_SECRET; several such processes may share one PostgreSQL database",
    )
    run.set_defaults(handler=cmd_run)

    health = commands.add_parser(
        "health",
        help="exit 0 if the bot running on this machine answers /healthz",
        description="Ask the running bot's /healthz on this machine: on STATUS_LISTEN:STATUS_PORT when "
        "STATUS_PORT is set (both modes), else on WEBHOOK_LISTEN:WEBHOOK_PORT (webhook mode). Exit status 0 "
        "when it answers 200, 1 otherwise. The container's HEALTHCHECK.",
    )
    health.add_argument(
        "--timeout", type=float, default=5, help="seconds to wait for the answer (default: %(default)s)"
    )
    health.set_defaults(handler=cmd_health)

    demo = commands.add_parser(
        "demo",
        help="chat with the bot on this machine, no Telegram needed",
        description="Start a local Telegram stand-in, a fresh demo database and the bot, "
        "and chat as the demo patient (or counselor) from the terminal.",
    )
    demo.add_argument(
        "--database",
        default="demo.sqlite3",
        help="demo database file, recreated each run (default: %(default)s)",
    )
    demo.set_defaults(handler=cmd_demo)
