"""``python -m devtools.simulator``: run the Telegram stand-in standalone until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .ratelimit import RateLimit
from .server import is_loopback
from .standin import TelegramStandIn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulator",
        description=(
            "Run a local stand-in for the Telegram Bot API. Point the bot at it with "
            "TELEGRAM_API_BASE_URL=http://HOST:PORT (no /bot: the bot adds /bot<TOKEN>/<method> itself) and "
            "drive simulated users through the JSON control API under /_sim/ (send_text, tap, transcript, "
            "inject, ...). See README.md, 'Try it for real, locally'."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8081, help="port (0 = any free port; default 8081)")
    parser.add_argument("--bot-username", default="iop_companion_bot", help="username getMe reports")
    parser.add_argument("--bot-first-name", default="IOP Companion", help="first name getMe reports")
    parser.add_argument(
        "--token", default=None, help="accept only this token (default: any well-formed token)"
    )
    parser.add_argument("--rate-limit", action="store_true", help="enforce Telegram-like flood limits (429)")
    parser.add_argument("--global-per-s", type=float, default=30.0, help="global sends/s with --rate-limit")
    parser.add_argument(
        "--per-chat-per-s", type=float, default=1.0, help="sends/s per chat with --rate-limit"
    )
    parser.add_argument("--burst", type=int, default=3, help="per-chat burst with --rate-limit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every Bot API call")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error("--host must be a loopback address (127.0.0.1, ::1 or localhost)")
    return args


async def serve(args: argparse.Namespace) -> None:
    rate_limit = (
        RateLimit(global_per_s=args.global_per_s, per_chat_per_s=args.per_chat_per_s, burst=args.burst)
        if args.rate_limit
        else None
    )
    standin = TelegramStandIn(
        bot_username=args.bot_username,
        bot_first_name=args.bot_first_name,
        rate_limit=rate_limit,
        token=args.token,
    )
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await standin.start(args.host, args.port)
    try:
        print(f"Telegram stand-in listening on {standin.base_url}", flush=True)
        print(f"  the bot:  TELEGRAM_API_BASE_URL={standin.base_url}", flush=True)
        print(f"  bot API:  {standin.base_url}/bot<TOKEN>/<method>", flush=True)
        print(f"  files:    {standin.base_url}/file/bot<TOKEN>/<path>", flush=True)
        print(f"  control:  {standin.base_url}/_sim/...   (Ctrl-C to stop)", flush=True)
        await done.wait()
    finally:
        await standin.stop()
        print("Telegram stand-in stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
