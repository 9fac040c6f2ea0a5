"""Benchmark: patients' text messages through IOP Companion, against a bare python-telegram-bot echo bot.

    python bench/throughput.py [--updates 3000] [--rounds 5] [--patients 60] [--rate 30] [--paced-updates 900]
                               [--seed 1] [--profile FILE] [--database-url URL-of-a-scratch-database]

One local Telegram stand-in (`devtools.simulator.TelegramStandIn`), in this process, with its flood limits
off:
we measure the bots, not Telegram's limits. M simulated patients type text messages, each waiting for the
bot's reply before sending the next (a closed loop, as a person chats). Latency = from the user-side send to
the reply arriving at the stand-in (its `sent_at`). The bots take turns, R rounds each (ours, bare, ours, ...;
each round starts the bot afresh), so that a slower spell of this shared machine weighs on both alike:

- warm-up, every round: one message from every patient (not counted);
- saturated: N messages in all (N/M per patient, N/(M R) per patient and round), every patient sending the
  next as soon as the reply arrives, so the bot is never idle: throughput = messages / wall time, and the
  ratio is the median of the rounds' ratios (round_ratios; overall_ratio is that of the totals). Here latency
  is only the queue: M patients in a closed loop wait M / throughput on average (Little's law), whatever the
  bot; it is reported as saturated_p50/p99_ms;
- paced, after the last round: K more messages, at about `--rate` per second in all (each patient pauses
  after a reply for a random time between 0.5 and 1.5 times M / rate, and starts at a random moment within
  M / rate; paced_per_s is K over the whole phase, a little below the rate as some patients finish later
  than others): latency under a load a bot can really be given. The rate defaults to 30/s, Telegram's limit
  on the messages one bot may send per second: more updates than that cannot all be answered in time
  anyway. p50_ms and p99_ms are this phase's.

1. IOP Companion, in this process as the end-to-end tests run it (`bot.app.serve` with a stop event, long
   polling with a 1 s timeout), its scheduler and outbox dispatcher running, logging at INFO to a file as
   `python -m bot run` does. A fresh database (db.upgrade) holds one counselor and M patients enrolled
   through the real rules (invite, consent, set-up: `bot.enrollment.invites`, `bot.enrollment.consent`,
   `bot.enrollment.onboarding`),
   every fourth in Spanish, each with an open check-in waiting at "Have you used...?" (the questions before
   it take buttons; their answers are seeded as if tapped). Each patient then types, in order: "no" (saved;
   the note is asked), a note (saved, encrypted; the check-in completes, streak counted), /checkin (a new
   check-in), a craving of 0-6 typed as "3", "like a 4" or "two" (saved; the triggers question, which takes
   buttons, is asked), then free-text notes (each screened by the risk detector and answered with "please
   tap a button"), with /checkin every 12th message (resumed) and ONE moderate craving note per patient
   with 8 or more messages ("I really want a drink tonight": a risk signal is saved, nobody is paged; a
   third within 48 h would page, so never more). The paced phase goes on with notes and /checkin. Every
   other text screens as no risk, rules and model alike: this is checked before the run. Each reply is
   checked against the text the bot should send.
2. A bare PTB Application on the same stand-in: one MessageHandler that sends the text back with
   `bot.send_message`. Same settings as ours: AIORateLimiter(overall_max_rate=1000, max_retries=3) (ours
   runs with SEND_RATE_PER_SECOND=1000, the setting's maximum, so neither is held at Telegram's ~30/s),
   the same timeouts, long polling (poll_interval 0, timeout 1 s), updates handled one at a time (PTB's
   default; ours does not change it). Same patients, the same texts.

The load is spread over enough patients that none sends more than the bot answers one by one: 30 messages
a minute per chat (bot.intake.processor.FLOOD_BUDGET; past it, a chat gets one "please slow down" line, which
this benchmark would count as wrong replies). Within one bot run a patient sends the warm-up, their part of
a round and, in the last round, their part of the paced phase: with the defaults 1 + 10 + 15 = 26 (with 50
patients it was 31, and the last round measured the flood limit, not throughput). Settings that would go
over the budget are refused.

Both run in this one process and event loop with the stand-in and the simulated patients, whose cost is
therefore in both figures. `--profile FILE` writes cProfile data of the first round's saturated phases to
FILE (ours) and FILE.bare.

The last line printed is one JSON object: updates, patients, database, ours_per_s, bare_per_s, ratio
(ours/bare, saturated, median of the rounds), p50_ms and p99_ms (ours, paced), bare_p50_ms, bare_p99_ms
(paced), rounds, round_ratios, overall_ratio, rate,
paced_updates, paced_per_s (the rate ours was given, measured), saturated_p50_ms / saturated_p99_ms and the
bare bot's, errors (replies missing, not the expected text, or errors logged, both bots), and the detail:
ours_errors, bare_errors, moderate (deliberate moderate-risk notes sent), commands (/checkin sent), and
cpu_ms / bare_cpu_ms: this process's CPU time per update in the saturated phase (all threads), which with one
core busy is about 1000 / per_s. Target (issue): ratio >= 0.5, p99 < 50 ms with SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import AIORateLimiter, Application, ContextTypes, MessageHandler, filters  # noqa: E402

from bench.scratch import CLINIC, fresh_schema  # noqa: E402
from bot.app import serve  # noqa: E402
from bot.checkin.rules import Question  # noqa: E402
from bot.core import db, logs  # noqa: E402
from bot.core.config import Settings, load_settings  # noqa: E402
from bot.core.models import CheckIn, CheckInSource, CounselorRole, InviteKind, utcnow  # noqa: E402
from bot.core.people import add_counselor  # noqa: E402
from bot.enrollment import (  # noqa: E402
    consent,
    onboarding,
)
from bot.enrollment.invites import CounselorLinked, PatientEnrolled, issue_invite, redeem  # noqa: E402
from bot.intake.processor import FLOOD_BUDGET  # noqa: E402
from bot.risk import RiskLevel  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from devtools.simulator import (  # noqa: E402
    BotMessage,
    TelegramStandIn,
)

TOKEN = "123456789:BENCH-token-for-the-local-stand-in"
KEY = Fernet.generate_key().decode()  # one run's database, one key
FIRST_USER = 8_000_000
COUNSELOR_USER = 7_999_999
ZONE = "America/New_York"
SEND_RATE = 1000.0  # SEND_RATE_PER_SECOND's maximum: for ours, and the bare bot's AIORateLimiter
POLL_TIMEOUT = 1  # seconds, as the end-to-end tests poll
REPLY_TIMEOUT = 30.0  # seconds a patient waits for a reply before counting an error
WARM_UP = "Hello"

# Texts patients type. All screen as no risk (rules and model): checked before the run.
NOTES = {
    "en": [
        "Went to my group tonight, it helped.",
        "Work was long but I got through it.",
        "Slept badly last night, a bit tired today.",
        "Called my sponsor this morning.",
        "Had dinner with my sister, it was nice.",
        "A bit anxious about court next week.",
        "Walked the dog after work.",
        "I'm doing okay today.",
        "Not sure which one fits, maybe stress.",
        "Busy day with the kids.",
        "Went to a meeting at lunch.",
        # (was "My back hurts but otherwise fine.": the semantic layer asks if they are safe; issue 19)
        "My back is sore from moving boxes, otherwise fine.",
        "Listening to music helps.",
        "Argued with my roommate about the dishes.",
        # (was "...I made a plan for the money.": the semantic layer reads a plan to use in it; issue 19)
        "Payday is Friday, I sat down and made a budget.",
    ],
    "es": [
        "Hoy fui a mi grupo y me ayudó.",
        "El trabajo fue largo pero estoy bien.",
        "Dormí mal, estoy un poco cansado.",
        "Llamé a mi padrino esta mañana.",
        "Gracias, hasta mañana.",
        "Estoy bien hoy.",
    ],
}
NO = {"en": ["no", "No", "nope", "No."], "es": ["no", "No"]}
CRAVINGS = {"en": ["3", "like a 4", "two", "5/10", "1", "0", "6"], "es": ["3", "dos", "tres", "3/10", "4"]}
# Moderate: a craving in words. One per patient at most (a third within 48 hours would page the team).
MODERATE = {
    "en": ["I really want a drink tonight.", "Craving pretty bad after work today."],
    "es": ["Tengo muchas ganas de beber hoy.", "Tengo ganas de consumir esta noche."],
}
RESUME_EVERY = 12  # /checkin again (resumed) every this many free-text messages


@dataclass(frozen=True)
class Step:
    text: str
    expect: str  # the reply must start with this
    exact: bool = False


@dataclass
class Phase:
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time (all threads: the aiosqlite worker too)
    latencies: list[float] = field(default_factory=list)  # seconds
    missing: int = 0
    wrong: list[str] = field(default_factory=list)
    logged_errors: int = 0

    @property
    def errors(self) -> int:
        return self.missing + len(self.wrong) + self.logged_errors


class ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class ReplyWatch:
    """The next bot message in a chat, delivered to the one patient waiting for it.

    `TelegramStandIn.wait_for` wakes every waiter on every bot message; with M patients waiting that is M
    wake-ups per reply, load on this same event loop. This hooks the stand-in's message store instead
    (an internal of devtools.simulator: adjust here if it changes).
    """

    def __init__(self, standin: TelegramStandIn) -> None:
        self._waiters: dict[int, asyncio.Future[BotMessage]] = {}
        world = standin._world
        store = world.store

        def store_and_notify(stored: Any) -> None:
            store(stored)
            if stored.from_bot and stored.bot is not None:
                waiter = self._waiters.pop(stored.chat_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(stored.bot)

        world.store = store_and_notify  # type: ignore[method-assign]

    def expect(self, chat_id: int) -> asyncio.Future[BotMessage]:
        future: asyncio.Future[BotMessage] = asyncio.get_running_loop().create_future()
        self._waiters[chat_id] = future
        return future

    def forget(self, chat_id: int) -> None:
        self._waiters.pop(chat_id, None)


def language_of(index: int) -> str:
    return "es" if index % 4 == 0 else "en"


def counts(updates: int, patients: int) -> list[int]:
    return [updates // patients + (1 if i < updates % patients else 0) for i in range(patients)]


def script(runtime: Runtime, language: str, messages: int, rng: random.Random) -> list[Step]:
    """What one patient types, with the reply IOP Companion should give to each."""

    def says(key: str) -> str:
        return runtime.text(key, language)

    steps = [
        Step(rng.choice(NO[language]), says("checkin.ask.note"), exact=True),
        Step(rng.choice(NOTES[language]), says("checkin.thanks")),
        Step("/checkin", says("checkin.intro_on_demand")),
        Step(rng.choice(CRAVINGS[language]), says("checkin.ask.triggers"), exact=True),
    ]
    rest = messages - len(steps)
    moderate_at = rng.randrange(2, rest) if rest >= 4 else -1
    retry = says("checkin.retry.buttons")
    for i in range(rest):
        if i == moderate_at:
            steps.append(Step(rng.choice(MODERATE[language]), retry, exact=True))
        elif i % RESUME_EVERY == RESUME_EVERY - 1:
            steps.append(Step("/checkin", says("checkin.resumed")))
        else:
            steps.append(Step(rng.choice(NOTES[language]), retry, exact=True))
    return steps[:messages]


def continuation(runtime: Runtime, language: str, messages: int, rng: random.Random) -> list[Step]:
    """What one patient types after `script`: their check-in still waits at the triggers question (buttons),
    so notes are answered "please tap a button", and /checkin every 12th message resumes it."""
    retry = runtime.text("checkin.retry.buttons", language)
    resumed = runtime.text("checkin.resumed", language)
    return [
        Step("/checkin", resumed) if i % RESUME_EVERY == RESUME_EVERY - 1
        else Step(rng.choice(NOTES[language]), retry, exact=True)
        for i in range(messages)
    ]  # fmt: skip


def check_texts(runtime: Runtime) -> None:
    """Every note must screen as no risk, rules and semantic layer (which would add "are you safe?"), and
    the moderate ones as moderate without a follow-up question."""
    detector = runtime.content.risk
    bad: list[str] = []
    for language in NOTES:
        for note in [*NOTES[language], *NO[language], *CRAVINGS[language], WARM_UP]:
            screened = detector.screen(note)
            if screened.level is not RiskLevel.NONE or screened.follow_up is not None:
                bad.append(f"{note!r}: {screened.level.label} {screened.follow_up} {screened.matched}")
        for note in MODERATE[language]:
            screened = detector.screen(note)
            if screened.level is not RiskLevel.MODERATE or screened.follow_up is not None:
                bad.append(f"{note!r}: {screened.level.label} {screened.follow_up} (moderate wanted)")
    if bad:
        raise SystemExit("texts that would take another path:\n  " + "\n  ".join(bad))


async def seed(url: str, patients: int, rng: random.Random) -> None:
    """One counselor and the patients, through the enrollment, consent and set-up rules; each patient's
    check-in open at the "use" question."""
    engine = db.make_engine(url, encryption_key=KEY)
    try:
        await fresh_schema(engine)
        sessions = db.make_sessionmaker(engine)
        now = utcnow()
        local = now.astimezone(ZoneInfo(ZONE))
        # A daily check-in time twelve hours away: no scheduled prompt falls due during the run.
        clock = onboarding.format_clock((local + timedelta(hours=12)).time())
        languages = list(NOTES)
        async with db.transaction(sessions) as session:
            counselor = await add_counselor(
                session, name="Dana Bench", role=CounselorRole.COUNSELOR, timezone=ZONE
            )
            issued = await issue_invite(
                session, kind=InviteKind.COUNSELOR, counselor_id=counselor.id, ttl=timedelta(hours=1)
            )
            linked = await redeem(
                session,
                issued.code,
                telegram_user_id=COUNSELOR_USER,
                chat_id=COUNSELOR_USER,
                language_code="en",
                default_timezone=ZONE,
                supported_languages=languages,
            )
            assert isinstance(linked, CounselorLinked)
            for i in range(patients):
                user, language = FIRST_USER + i, language_of(i)
                issued = await issue_invite(
                    session,
                    kind=InviteKind.PATIENT,
                    counselor_id=counselor.id,
                    ttl=timedelta(hours=1),
                    alias=f"T-{i:05d}",
                )
                enrolled = await redeem(
                    session,
                    issued.code,
                    telegram_user_id=user,
                    chat_id=user,
                    language_code=language,
                    default_timezone=ZONE,
                    supported_languages=languages,
                )
                assert isinstance(enrolled, PatientEnrolled)
                patient = enrolled.patient
                await consent.accept(session, patient)
                for step, value in (
                    (onboarding.Step.TIMEZONE, ZONE),
                    (onboarding.Step.CHECKIN_TIME, clock),
                    (onboarding.Step.LANGUAGE, language),
                ):
                    await onboarding.answer(session, patient, step, value, languages=languages)
                session.add(
                    CheckIn(
                        patient_id=patient.id,
                        source=CheckInSource.ON_DEMAND,
                        local_day=local.date(),
                        step=Question.USE,
                        started_at=now - timedelta(minutes=3),
                        expires_at=now + timedelta(hours=6),
                        answered_at=now - timedelta(minutes=1),
                        craving=rng.randint(0, 6),
                        triggers=rng.choice([[], ["tired"], ["stress", "money"], ["lonely"]]),
                        mood=rng.randint(2, 5),
                        sleep=rng.choice(["poor", "ok", "good"]),
                    )
                )
    finally:
        await engine.dispose()


async def drive(
    standin: TelegramStandIn,
    watch: ReplyWatch,
    scripts: dict[int, list[Step]],
    think: float,
    errors: ErrorCount,
) -> Phase:
    """Every patient at once, each sending its next text when the reply to the last has arrived."""
    phase = Phase()
    logged_before = errors.count

    async def patient(user: int, steps: list[Step], language: str) -> None:
        pauses = random.Random(user)  # the same pauses for both bots
        if think:
            await asyncio.sleep(pauses.uniform(0, think))  # patients do not all start at the same instant
        for step in steps:
            reply = watch.expect(user)
            sent = time.monotonic()
            await standin.send_text(user, step.text, first_name="Pat", language_code=language)
            try:
                message = await asyncio.wait_for(reply, REPLY_TIMEOUT)
            except TimeoutError:
                watch.forget(user)
                phase.missing += 1
                continue
            phase.latencies.append(message.sent_at - sent)
            got = message.text or ""
            if (got != step.expect) if step.exact else not got.startswith(step.expect):
                phase.wrong.append(f"{step.text!r} -> {got[:80]!r}")
            if think:
                await asyncio.sleep(pauses.uniform(0.5 * think, 1.5 * think))

    started, cpu = time.monotonic(), time.process_time()
    async with asyncio.TaskGroup() as group:
        for user, steps in scripts.items():
            group.create_task(patient(user, steps, language_of(user - FIRST_USER)))
    phase.seconds = time.monotonic() - started
    phase.cpu_seconds = time.process_time() - cpu
    phase.logged_errors = errors.count - logged_before
    return phase


async def profiled(path: str | None, measuring: Coroutine[Any, Any, Phase]) -> Phase:
    """Run a measured phase, under cProfile when a file is given (it slows the phase). The profile counts
    this process's CPU time, not the wall clock: on a shared machine the others' load would be in it."""
    if not path:
        return await measuring
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        return await measuring
    finally:
        profiler.disable()
        profiler.dump_stats(path)


def warm_up(users: list[int], expect: str | Callable[[int], str]) -> dict[int, list[Step]]:
    return {u: [Step(WARM_UP, expect if isinstance(expect, str) else expect(u), exact=True)] for u in users}


def rounds_of(scripts: dict[int, list[Step]], rounds: int) -> list[dict[int, list[Step]]]:
    """Each patient's script cut into `rounds` consecutive parts: round r is every patient's part r."""
    parts: list[dict[int, list[Step]]] = [{} for _ in range(rounds)]
    for user, steps in scripts.items():
        start = 0
        for index, size in enumerate(counts(len(steps), rounds)):
            parts[index][user] = steps[start : start + size]
            start += size
    return parts


def combined(phases: list[Phase]) -> Phase:
    whole = Phase()
    for phase in phases:
        whole.seconds += phase.seconds
        whole.cpu_seconds += phase.cpu_seconds
        whole.latencies += phase.latencies
        whole.missing += phase.missing
        whole.wrong += phase.wrong
        whole.logged_errors += phase.logged_errors
    return whole


@dataclass(frozen=True)
class Load:
    scripts: dict[int, list[Step]]  # user id -> what they type this round, with the reply ours should give
    paced: dict[int, list[Step]]  # what they type next, at the paced rate (empty: no paced phase this round)
    think: float  # seconds a patient pauses after each reply in the paced phase (mean)
    errors: ErrorCount
    profile: str | None


@dataclass(frozen=True)
class Measured:
    warm: Phase
    saturated: Phase
    paced: Phase

    @property
    def errors(self) -> int:
        return self.warm.errors + self.saturated.errors + self.paced.errors


async def run_ours(settings: Settings, standin: TelegramStandIn, watch: ReplyWatch, load: Load) -> Measured:
    runtime = Runtime.create(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, stop, poll_timeout=POLL_TIMEOUT))
    try:
        await standin.wait_for_call("getUpdates", timeout=30)
        retry = {lang: runtime.text("checkin.retry.buttons", lang) for lang in NOTES}
        warm = await drive(
            standin,
            watch,
            warm_up(list(load.scripts), lambda u: retry[language_of(u - FIRST_USER)]),
            0.0,
            load.errors,
        )
        saturated = await profiled(load.profile, drive(standin, watch, load.scripts, 0.0, load.errors))
        paced = await drive(standin, watch, load.paced, load.think, load.errors)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await runtime.engine.dispose()
    return Measured(warm, saturated, paced)


async def run_bare(standin: TelegramStandIn, watch: ReplyWatch, load: Load) -> Measured:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        await context.bot.send_message(message.chat_id, message.text)

    application = (
        Application.builder()
        .token(TOKEN)
        .base_url(f"{standin.base_url}/bot")
        .base_file_url(f"{standin.base_url}/file/bot")
        .rate_limiter(AIORateLimiter(overall_max_rate=SEND_RATE, max_retries=3))
        .connect_timeout(10)
        .read_timeout(15)
        .write_timeout(15)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))

    def echoed(scripts: dict[int, list[Step]]) -> dict[int, list[Step]]:
        return {user: [Step(s.text, s.text, exact=True) for s in steps] for user, steps in scripts.items()}

    echoes = echoed(load.scripts)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(
            poll_interval=0,
            timeout=POLL_TIMEOUT,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=False,
        )
        try:
            warm = await drive(standin, watch, warm_up(list(echoes), WARM_UP), 0.0, load.errors)
            saturated = await profiled(
                load.profile and f"{load.profile}.bare", drive(standin, watch, echoes, 0.0, load.errors)
            )
            paced = await drive(standin, watch, echoed(load.paced), load.think, load.errors)
        finally:
            await application.updater.stop()
            await application.stop()
    return Measured(warm, saturated, paced)


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def run(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    url = args.database_url or f"sqlite+aiosqlite:///{work / 'bench.sqlite3'}"
    rng = random.Random(args.seed)
    logs.configure("INFO")  # as `python -m bot run` does, but to a file
    root = logging.getLogger()
    log_file = (work / "bot.log").open("a", encoding="utf-8")
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    errors = ErrorCount()
    root.addHandler(errors)

    settings = load_settings(
        _env_file=None,
        DATABASE_URL=url,
        BOT_TOKEN=TOKEN,
        ENCRYPTION_KEY=KEY,
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9",
        CONTENT_DIR=str(ROOT / "content"),
        DEFAULT_TIMEZONE=ZONE,
        SEND_RATE_PER_SECOND=str(SEND_RATE),
        LOG_LEVEL="INFO",
        **CLINIC,
    )
    probe = Runtime.create(settings)
    await probe.engine.dispose()
    check_texts(probe)
    await seed(url, args.patients, rng)
    users = [FIRST_USER + i for i in range(args.patients)]
    scripts = {
        user: script(probe, language_of(i), n, rng)
        for i, (user, n) in enumerate(zip(users, counts(args.updates, args.patients), strict=True))
    }
    paced = {
        user: continuation(probe, language_of(i), n, rng)
        for i, (user, n) in enumerate(zip(users, counts(args.paced_updates, args.patients), strict=True))
    }
    moderate = sum(
        1 for steps in scripts.values() for s in steps if s.text in MODERATE["en"] + MODERATE["es"]
    )
    commands = sum(
        1 for steps in [*scripts.values(), *paced.values()] for s in steps if s.text.startswith("/")
    )

    async with TelegramStandIn(token=TOKEN) as standin:  # no rate_limit: no flood limits
        for user in [COUNSELOR_USER, *users]:
            standin.add_user(user)
        watch = ReplyWatch(standin)
        settings = settings.model_copy(update={"telegram_api_base_url": standin.base_url})
        # Ours and the bare bot take turns, round by round, so that a slower spell of this (shared) machine
        # weighs on both alike; the ratio is the median of the rounds'.
        rounds: list[tuple[Measured, Measured]] = []
        parts = rounds_of(scripts, args.rounds)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            load = Load(
                part,
                paced if last else {},
                args.patients / args.rate,
                errors,
                args.profile if index == 0 else None,
            )
            ours_round = await run_ours(settings, standin, watch, load)
            standin.calls.clear()
            rounds.append((ours_round, await run_bare(standin, watch, load)))
            standin.calls.clear()
    root.removeHandler(errors)
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is log_file:
            handler.setStream(sys.stderr)
    log_file.close()

    for name, measured in [
        (name, m) for pair in rounds for name, m in zip(("ours", "bare"), pair, strict=True)
    ]:
        for phase in (measured.warm, measured.saturated, measured.paced):
            for wrong in phase.wrong[:5]:
                print(f"{name}: unexpected reply {wrong}")
            if phase.missing:
                print(f"{name}: {phase.missing} replies missing")
    ours_errors = sum(ours.errors for ours, _ in rounds)
    bare_errors = sum(bare.errors for _, bare in rounds)
    if ours_errors or bare_errors:
        print(f"errors logged: see {work / 'bot.log'}")
    ours_saturated = combined([ours.saturated for ours, _ in rounds])
    bare_saturated = combined([bare.saturated for _, bare in rounds])
    ours_paced, bare_paced = rounds[-1][0].paced, rounds[-1][1].paced
    ratios = [bare.saturated.seconds / ours.saturated.seconds for ours, bare in rounds]
    ours_rate = args.updates / ours_saturated.seconds
    bare_rate = args.updates / bare_saturated.seconds

    def ms(phase: Phase, q: int) -> float:
        return round(percentile([x * 1000 for x in phase.latencies], q), 2)

    print(
        f"saturated: ours {ours_rate:.1f}/s, bare {bare_rate:.1f}/s, ratio by round "
        f"{', '.join(f'{r:.3f}' for r in ratios)}; paced at {args.rate:g}/s: ours sent "
        f"{args.paced_updates / ours_paced.seconds:.1f}/s, p50 {ms(ours_paced, 50)} ms, "
        f"p99 {ms(ours_paced, 99)} ms; bare p50 {ms(bare_paced, 50)} ms, p99 {ms(bare_paced, 99)} ms"
    )
    return {
        "updates": args.updates,
        "patients": args.patients,
        "database": url.split(":", 1)[0].split("+", 1)[0],
        "ours_per_s": round(ours_rate, 1),
        "bare_per_s": round(bare_rate, 1),
        "ratio": round(statistics.median(ratios), 3),
        "p50_ms": ms(ours_paced, 50),
        "p99_ms": ms(ours_paced, 99),
        "bare_p50_ms": ms(bare_paced, 50),
        "bare_p99_ms": ms(bare_paced, 99),
        "rounds": args.rounds,
        "round_ratios": [round(r, 3) for r in ratios],
        "overall_ratio": round(ours_rate / bare_rate, 3),
        "rate": args.rate,
        "paced_updates": args.paced_updates,
        "paced_per_s": round(args.paced_updates / ours_paced.seconds, 1),
        "saturated_p50_ms": ms(ours_saturated, 50),
        "saturated_p99_ms": ms(ours_saturated, 99),
        "bare_saturated_p50_ms": ms(bare_saturated, 50),
        "bare_saturated_p99_ms": ms(bare_saturated, 99),
        "cpu_ms": round(ours_saturated.cpu_seconds * 1000 / args.updates, 2),
        "bare_cpu_ms": round(bare_saturated.cpu_seconds * 1000 / args.updates, 2),
        "errors": ours_errors + bare_errors,
        "ours_errors": ours_errors,
        "bare_errors": bare_errors,
        "moderate": moderate,
        "commands": commands,
    }


def per_patient_per_run(updates: int, paced_updates: int, patients: int, rounds: int) -> int:
    """The most messages one patient sends to one run of the bot (the last round's, which has the paced
    phase too): all within a minute or so."""
    per_round = math.ceil(math.ceil(updates / patients) / rounds)
    return 1 + per_round + math.ceil(paced_updates / patients)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--updates", type=int, default=3000, help="text messages in the saturated phases (default 3000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="saturated rounds, ours and bare in turn (default 5)"
    )
    parser.add_argument("--patients", type=int, default=60, help="simulated patients (default 60)")
    parser.add_argument(
        "--rate", type=float, default=30.0, help="messages per second in the paced phase (default 30)"
    )
    parser.add_argument(
        "--paced-updates", type=int, default=900, help="text messages in the paced phase (default 900)"
    )
    parser.add_argument("--seed", type=int, default=1, help="for the choice of texts (default 1)")
    parser.add_argument(
        "--profile", help="cProfile the saturated phases into FILE (ours) and FILE.bare (slows both)"
    )
    parser.add_argument(
        "--database-url",
        help="a SCRATCH database: on PostgreSQL its public schema is dropped and rebuilt "
        "(default: a new SQLite file in a temporary directory)",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.patients < 1 or args.paced_updates < args.patients:
        parser.error("--rounds and --patients must be positive, --paced-updates at least --patients")
    if args.updates < max(4, args.rounds) * args.patients:
        parser.error(
            "--updates must be at least 4 x --patients (each patient's script starts with 4 steps) and "
            "--rounds x --patients"
        )
    if args.rate <= 0:
        parser.error("--rate must be positive")
    most = per_patient_per_run(args.updates, args.paced_updates, args.patients, args.rounds)
    if most > FLOOD_BUDGET:
        parser.error(
            f"a patient would send {most} messages to one bot run, over the {FLOOD_BUDGET} a minute the bot "
            "answers one by one (the rest get 'please slow down'): use more --patients or --rounds"
        )
    result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
