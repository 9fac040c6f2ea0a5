"""Benchmark: the questionnaires' scheduler tick (`bot.measures.jobs.offers`) on a large clinic.

    python bench/measures_tick.py [--patients 10000] [--runs 5] [--database-url URL-of-a-scratch-database]

Fills a database with N active patients in New York whose check-in times are spread over the day (a quarter of
them 30 minutes ago, so inside the check-in window now) and twelve past questionnaires each (a PHQ-9 and a
GAD-7 every 14 days for 12 weeks, complete). Then it runs the tick's planning as the scheduler does, each run
in its own transaction (which on SQLite holds the write lock: the figure to keep small), with the default
MEASURES setting:

- "offering": runs while patients still have a questionnaire to be offered (at most OFFERS_PER_TICK each);
- "steady": once every patient in the window has been offered today (nothing answered, so all of them have
  questionnaires open: the most the tick has to read).

The last line printed is one JSON object: database, patients, in_window, history_rows, fill_s, offer_ms (each
offering run), offered (patients given a question per run), steady_ms (median of the steady runs),
steady_max_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time as clock
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from bench.scratch import CLINIC, fresh_schema  # noqa: E402
from bot.core import db  # noqa: E402
from bot.core.config import load_settings  # noqa: E402
from bot.core.models import Measure, MeasureSource, MeasureStatus, Patient, PatientStatus, utcnow  # noqa: E402
from bot.measures import jobs  # noqa: E402
from bot.outbox import store as outbox  # noqa: E402
from bot.runtime import Runtime  # noqa: E402

TOKEN = "123456789:BENCH-token-for-the-local-stand-in"


async def _fill(runtime: Runtime, patients: int) -> int:
    now = utcnow()
    local = now.astimezone(ZoneInfo("America/New_York"))
    rows = []
    for number in range(patients):
        minutes = 30 if number % 4 == 0 else 60 * (7 + number % 16)  # others: 7 to 22 hours ago
        rows.append(
            {
                "telegram_user_id": 10_000_000 + number,
                "telegram_ref": runtime.keyring.pseudonym(10_000_000 + number),  # as the ORM sets it
                "chat_id": 10_000_000 + number,
                "alias": f"B{number}",
                "timezone": "America/New_York",
                "language": "en",
                "checkin_time": (local - timedelta(minutes=minutes)).time(),
                "status": PatientStatus.ACTIVE,
            }
        )
    async with db.transaction(runtime.sessions) as session:
        await session.execute(insert(Patient), rows)
        ids = list(await session.scalars(select(Patient.id)))
        history = [
            {
                "patient_id": patient_id,
                "instrument": instrument,
                "source": MeasureSource.SCHEDULED,
                "language": "en",
                "status": MeasureStatus.COMPLETE,
                "answers": {},
                "scores": {"total": 5},
                "safety_positive": False,
                "started_at": now - timedelta(days=days),
                "expires_at": now - timedelta(days=days - 3),
                "finished_at": now - timedelta(days=days),
            }
            for patient_id in ids
            for days in (84, 70, 56, 42, 28, 15)
            for instrument in ("phq9", "gad7")
        ]
        await session.execute(insert(Measure), history)
    return len(history)


async def _tick(runtime: Runtime) -> tuple[float, int]:
    started = clock.perf_counter()
    async with db.transaction(runtime.sessions) as session:
        planned = await jobs.offers(runtime, session, utcnow())
        await outbox.enqueue(session, planned)
    return (clock.perf_counter() - started) * 1000, len(planned)


async def run(args: argparse.Namespace) -> dict[str, object]:
    scratch = None
    url = args.database_url
    if url is None:
        scratch = tempfile.TemporaryDirectory(prefix="measures-bench-")
        url = f"sqlite+aiosqlite:///{scratch.name}/bench.sqlite3"
    key = Fernet.generate_key().decode()
    engine = db.make_engine(url, encryption_key=key)
    await fresh_schema(engine)
    await engine.dispose()
    settings = load_settings(
        _env_file=None,
        DATABASE_URL=url,
        ENCRYPTION_KEY=key,
        BOT_TOKEN=TOKEN,
        CONTENT_DIR=str(ROOT / "content"),
        **CLINIC,
    )
    runtime = Runtime.create(settings)
    try:
        started = clock.perf_counter()
        history = await _fill(runtime, args.patients)
        fill_s = clock.perf_counter() - started
        offering: list[tuple[float, int]] = []
        while True:
            elapsed, offered = await _tick(runtime)
            if not offered:
                break
            offering.append((elapsed, offered))
        steady = [(await _tick(runtime))[0] for _ in range(args.runs)]
    finally:
        await runtime.engine.dispose()
        if scratch is not None:
            scratch.cleanup()
    return {
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "patients": args.patients,
        "in_window": (args.patients + 3) // 4,
        "history_rows": history,
        "fill_s": round(fill_s, 1),
        "offer_ms": [round(ms) for ms, _ in offering],
        "offered": [count for _, count in offering],
        "steady_ms": round(statistics.median(steady)),
        "steady_max_ms": round(max(steady)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5, help="steady-state runs timed")
    parser.add_argument("--database-url", default=None, help="a scratch database (its schema is rebuilt)")
    result = asyncio.run(run(parser.parse_args()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
