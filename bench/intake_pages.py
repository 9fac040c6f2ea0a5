"""Benchmark: the polling intake's cost per page of 100 updates, through the real store code.

    python bench/intake_pages.py [--pages 121] [--runs 5] [--database-url URL-of-a-scratch-database]
                                 [--profile FILE]

What the fetch loop (bot.intake.polling.Poller) does with each getUpdates answer, without the network: the
page's JSON body is decoded (as python-telegram-bot's request layer does), then `store_updates` writes it to
the inbox (claimed by a worker, as when the processor has room) and commits. Pages are scenario (a) of
bench/crisis_latency.py: text messages from one patient's chat and a stranger's, 5 to 1, update ids
consecutive. Each run starts from a fresh database (a new SQLite file, or the scratch PostgreSQL database's
schema recreated) and stores `--pages` pages; the figure is process CPU time (time.process_time) per page,
and wall time per page beside it, median of the runs. `--profile FILE` writes cProfile data of the last run.

The last line printed is one JSON object: database, pages, runs, cpu_ms_per_page (median), wall_ms_per_page
(median), cpu_ms_runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bench.scratch import fresh_schema  # noqa: E402
from bot.core import db  # noqa: E402
from bot.core.crypto import Keyring  # noqa: E402
from bot.intake.polling import BATCH, store_updates  # noqa: E402

PATIENT_CHAT, STRANGER_CHAT = 5_550_001, 5_550_002
FIRST_UPDATE_ID = 400_000_001


def _update(update_id: int, chat_id: int, name: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id - FIRST_UPDATE_ID + 1,
            "from": {"id": chat_id, "is_bot": False, "first_name": name, "language_code": "en"},
            "chat": {"id": chat_id, "first_name": name, "type": "private"},
            "date": 1_796_000_000 + update_id % 86_400,
            "text": f"message number {update_id - FIRST_UPDATE_ID} of a long flood, just saying hi again",
        },
    }


def pages(count: int) -> list[bytes]:
    """getUpdates answers as Telegram sends them: {"ok": true, "result": [...]}, as bytes."""
    bodies = []
    for page in range(count):
        first = FIRST_UPDATE_ID + page * BATCH
        result = [
            _update(i, STRANGER_CHAT, "Stranger") if i % 6 == 5 else _update(i, PATIENT_CHAT, "Pat")
            for i in range(first, first + BATCH)
        ]
        bodies.append(json.dumps({"ok": True, "result": result}).encode())
    return bodies


async def one_run(
    url: str, key: str, bodies: list[bytes], profile: cProfile.Profile | None
) -> tuple[float, float]:
    engine = db.make_engine(url, encryption_key=key)
    try:
        await fresh_schema(engine)
        runtime = SimpleNamespace(sessions=db.make_sessionmaker(engine), keyring=Keyring.parse(key))
        await store_updates(runtime, [_update(1, 1, "warm")], claimed_by="w")  # type: ignore[arg-type]
        if profile is not None:
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for body in bodies:
            raws = json.loads(body.decode("utf-8"))["result"]
            await store_updates(runtime, raws, claimed_by="w")  # type: ignore[arg-type]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile is not None:
            profile.disable()
        return cpu * 1000 / len(bodies), wall * 1000 / len(bodies)
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace) -> dict[str, object]:
    key = Fernet.generate_key().decode()
    bodies = pages(args.pages)
    results = []
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(args.runs):
            url = args.database_url or f"sqlite+aiosqlite:///{scratch}/intake{number}.db"
            last = number == args.runs - 1
            results.append(await one_run(url, key, bodies, profile if last else None))
    if profile is not None:
        profile.dump_stats(args.profile)
    return {
        "database": "postgresql" if args.database_url else "sqlite",
        "pages": args.pages,
        "runs": args.runs,
        "cpu_ms_per_page": round(statistics.median(r[0] for r in results), 2),
        "wall_ms_per_page": round(statistics.median(r[1] for r in results), 2),
        "cpu_ms_runs": [round(r[0], 2) for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=121, help="pages of 100 updates per run (default 121)")
    parser.add_argument("--runs", type=int, default=5, help="runs, each on a fresh database (default 5)")
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (its schema is recreated)")
    parser.add_argument("--profile", help="write cProfile data of the last run to this file")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
