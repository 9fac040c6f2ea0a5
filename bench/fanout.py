"""Benchmark: N session reminders falling due in the same minute, sent through the outbox.

    python bench/fanout.py --patients 2000 --rate 200 [--crash] [--database-url URL-of-a-scratch-database]

A local Telegram stand-in enforces R messages/s overall and 1/s per chat (429 + retry_after beyond). The real
bot runs as its own process (`python -m bot run`) against it: N active patients in one group, whose session
starts one hour after the due time, with REMINDER_OFFSETS=1h, so every reminder falls due at once. The
planner puts them in the outbox at start-up; the dispatcher sends them.

`--crash` kills the bot (SIGKILL) once half the reminders have arrived and starts it again: nothing may be
lost, and no more may come twice than were in flight (claimed and sent, not yet recorded) at the kill.

The last line printed is one JSON object: patients, rate, seconds (from the due time to the last reminder
delivered), ideal_seconds (N/R), ratio (seconds/ideal_seconds), delivered, duplicates, lost, rejected_429
(sends the stand-in refused), and in crash mode restarts and in_flight_limit. Target (issue 4): ratio <= 1.10
at N=2000, R=200, zero lost, zero duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.scratch import CLINIC, fresh_schema  # noqa: E402
from bot.core import db  # noqa: E402
from bot.core.crypto import Keyring  # noqa: E402
from bot.core.models import (  # noqa: E402
    GroupMember,
    OutboxMessage,
    Patient,
    PatientGroup,
    PatientStatus,
    ProgramSession,
    SessionKind,
)
from devtools.simulator import (  # noqa: E402
    RateLimit,
    TelegramStandIn,
)

TOKEN = "123456789:BENCH-token-for-the-local-stand-in"
KEY = Fernet.generate_key().decode()  # one run's database, one key
FIRST_USER = 7_000_000
ZONE = "America/New_York"
LEAD = timedelta(seconds=25)  # start-up and planning happen before the reminders fall due


async def seed(url: str, patients: int, due: datetime) -> None:
    engine = db.make_engine(url, encryption_key=KEY)
    try:
        await fresh_schema(engine)
        sessions = db.make_sessionmaker(engine)
        async with db.transaction(sessions) as session:
            group = PatientGroup(name="Bench evening IOP")
            session.add(group)
            await session.flush()
            keyring = Keyring.parse(KEY)
            rows = [
                {
                    "telegram_user_id": FIRST_USER + i,
                    "telegram_ref": keyring.pseudonym(FIRST_USER + i),  # as the ORM sets it
                    "chat_id": FIRST_USER + i,
                    "alias": f"B-{i:05d}",
                    "timezone": ZONE,
                    "language": "en" if i % 4 else "es",
                    "checkin_time": None,
                    "quiet_start": datetime.min.time(),  # equal start and end: no quiet hours
                    "quiet_end": datetime.min.time(),
                    "status": PatientStatus.ACTIVE,
                }
                for i in range(patients)
            ]
            for start in range(0, len(rows), 1000):
                await session.execute(Patient.__table__.insert(), rows[start : start + 1000])
            ids = list(await session.scalars(select(Patient.id).order_by(Patient.id)))
            await session.execute(
                GroupMember.__table__.insert(), [{"group_id": group.id, "patient_id": pid} for pid in ids]
            )
            starts = (due + timedelta(hours=1)).astimezone(ZoneInfo(ZONE))
            session.add(
                ProgramSession(
                    kind=SessionKind.GROUP,
                    title="Evening IOP group",
                    location="Riverside Clinic, Group Room B",
                    group_id=group.id,
                    timezone=ZONE,
                    starts_local=starts.replace(tzinfo=None),
                    duration_minutes=180,
                    exdates=[],
                    rdates=[],
                    overrides=[],
                )
            )
    finally:
        await engine.dispose()


async def planned(url: str) -> int:
    engine = db.make_engine(url, encryption_key=KEY)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0)
    finally:
        await engine.dispose()


def start_bot(url: str, api: str, rate: float, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        BOT_TOKEN=TOKEN,
        ENCRYPTION_KEY=KEY,
        DATABASE_URL=url,
        TELEGRAM_API_BASE_URL=api,
        SEND_RATE_PER_SECOND=str(rate),
        REMINDER_OFFSETS="1h",
        CONTENT_WATCH_SECONDS="0",
        OUTBOX_LEASE_SECONDS="20",
        LOG_LEVEL="WARNING",
        **CLINIC,
    )
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def run(args: argparse.Namespace) -> dict[str, object]:
    n, rate = args.patients, args.rate
    work = Path(tempfile.mkdtemp(prefix="fanout-"))
    url = args.database_url or f"sqlite+aiosqlite:///{work / 'bench.sqlite3'}"
    due = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    await seed(url, n, due)
    limit = RateLimit(global_per_s=rate, per_chat_per_s=1.0)
    async with TelegramStandIn(rate_limit=limit, token=TOKEN) as tg:
        for i in range(n):
            tg.add_user(FIRST_USER + i)
        chats = range(FIRST_USER, FIRST_USER + n)
        bot = start_bot(url, tg.base_url, rate, work / "bot.log")
        restarts = 0
        try:
            while await planned(url) < n:
                if datetime.now(UTC) > due:
                    print(f"warning: planning not finished by the due time ({await planned(url)}/{n})")
                    break
                if bot.poll() is not None:
                    raise SystemExit(f"the bot exited early; see {work / 'bot.log'}")
                await asyncio.sleep(0.5)
            wait = (due - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(0.0, wait))
            due_mono = time.monotonic() - max(0.0, -wait)
            deadline = due_mono + 3 * n / rate + 120
            while time.monotonic() < deadline:
                delivered = sum(1 for c in chats if tg.sent_count(c) > 0)
                if args.crash and restarts == 0 and delivered >= n // 2:
                    bot.send_signal(signal.SIGKILL)
                    bot.wait()
                    bot = start_bot(url, tg.base_url, rate, work / "bot.log")
                    restarts = 1
                if delivered == n:
                    break
                await asyncio.sleep(0.02)
            if args.crash:
                await asyncio.sleep(30)  # a lease that ran out may still send a few again: count them
        finally:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
        counts = [tg.sent_count(c) for c in chats]
        times = sorted(m.sent_at for c in chats for m in tg.transcript(c))
        last = times[-1] if times else due_mono
        first = times[0] if times else due_mono
        rejected = tg.rate_limited
    seconds = round(last - due_mono, 3)
    ideal = n / rate
    result: dict[str, object] = {
        "patients": n,
        "rate": rate,
        "seconds": seconds,
        "ideal_seconds": round(ideal, 3),
        "ratio": round(seconds / ideal, 3),
        "delivered": sum(1 for c in counts if c > 0),
        "duplicates": sum(c - 1 for c in counts if c > 1),
        "lost": sum(1 for c in counts if c == 0),
        "rejected_429": rejected,
        "first_after": round(first - due_mono, 3),
        "database": url.split(":", 1)[0],
    }
    if args.crash:
        # The dispatcher claims half a second of sends at a time (bot.handlers.delivery), the next batch when
        # half the last is left, with OUTBOX_CONCURRENCY (16) sends under way: the rows it can hold at once,
        # and so the most that can have been sent and not yet recorded at a kill.
        batch = max(5, min(500, int(rate / 2)))
        result.update(restarts=restarts, in_flight_limit=batch + batch // 2 + 16)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--crash", action="store_true", help="SIGKILL the bot halfway and restart it")
    parser.add_argument(
        "--database-url",
        help="a SCRATCH database: on PostgreSQL its public schema is dropped and rebuilt "
        "(default: a new SQLite file in a temporary directory)",
    )
    args = parser.parse_args()
    if args.patients < 1 or args.rate <= 0:
        parser.error("--patients and --rate must be positive")
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
