"""The crisis path under floods, faults and crashes (issue 17): durable intake, crisis first without the
database, order per chat with chats concurrent, fair intake, crisis replies through the urgent lane."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.config import Settings
from bot.core.models import CounselorRole, Escalation, InboxStatus, InboxUpdate, InviteKind
from bot.core.people import add_counselor
from bot.enrollment.invites import issue_invite
from bot.intake import grouped, polling, processor
from bot.risk import Category, semantic
from bot.runtime import Runtime
from devtools.simulator import Fault, TelegramStandIn
from tests.harness import (
    PATIENCE,
    TEST_TOKEN,
    TEST_WEBHOOK_SECRET,
    BotHarness,
    part,
    part_of,
    serving,
)

CRISIS = "I am going to kill myself tonight"
HOUR = timedelta(hours=1)


async def _counselor_and_patient(harness: BotHarness) -> tuple[int, int, int]:
    """A counselor linked on Telegram and an enrolled patient: (counselor user, counselor, patient user)."""
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    patient_user = harness.new_user_id()
    await harness.enroll(patient_user, counselor_id)
    return counselor_user, counselor_id, patient_user


async def _crisis_answered_and_paged(
    harness: BotHarness, patient_user: int, counselor_user: int, *, after: int, timeout: float = 15
) -> None:
    """Wait for the crisis reply to the patient and the counselor's imminent page."""
    crisis_line = harness.part("crisis.imminent", overdose=False, plan_contacts="", promise="")
    await harness.standin.wait_for(patient_user, crisis_line, after=after, timeout=timeout)
    await _imminent_page(harness, counselor_user, timeout)


async def _imminent_page(harness: BotHarness, counselor_user: int, timeout: float = 15) -> None:
    await harness.standin.wait_for(
        counselor_user,
        harness.part("escalation.alert", level=harness.text("escalation.levels.imminent")),
        timeout=timeout,
    )


async def _recorded_and_paged_once(
    harness: BotHarness, patient_user: int, counselor_user: int, crisis_line: str, *, after: int
) -> None:
    """Once the database is back: the counselor is paged, one escalation is recorded, and the crisis reply
    (sent while the database was down) is not sent again."""
    await _imminent_page(harness, counselor_user)
    assert await _escalation_count(harness) == 1
    sent = [m.text or "" for m in harness.standin.transcript(patient_user)[after:]]
    assert sum(crisis_line in text for text in sent) == 1  # the crisis reply is not sent twice


async def _flood(harness: BotHarness, user: int, count: int, words: str) -> None:
    for number in range(count):
        await harness.standin.send_text(user, f"{words} {number}")


async def _escalation_count(bot: BotHarness | Runtime) -> int:
    runtime = bot.runtime if isinstance(bot, BotHarness) else bot
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count(Escalation.id))) or 0)


async def test_an_update_posted_twice_is_handled_once(settings: Settings, engine: object) -> None:
    async with BotHarness.running(settings, webhook=True) as harness:
        _, _, patient_user = await _counselor_and_patient(harness)
        mark = harness.standin.mark(patient_user)
        body = {
            "update_id": 990001,
            "message": {
                "message_id": 77,
                "date": 1_700_000_000,
                "chat": {"id": patient_user, "type": "private"},
                "from": {"id": patient_user, "is_bot": False, "first_name": "Test", "language_code": "en"},
                "text": "/help",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": TEST_WEBHOOK_SECRET}
        async with httpx.AsyncClient() as client:
            for _ in range(3):
                answer = await client.post(harness.settings.webhook_url or "", json=body, headers=headers)
                assert answer.status_code == 200
        await harness.standin.wait_for(patient_user, harness.part("help.patient_active"), after=mark)

        async def done() -> bool:  # marked once its reply went out
            async with harness.runtime.sessions() as session:
                row = await session.get(InboxUpdate, 990001)
                return row is not None and row.status is InboxStatus.DONE and row.payload is None

        await until_async(done, 10, "the update marked done")
        replies = harness.standin.transcript(patient_user)[mark:]
        assert len(replies) == 1


async def test_in_webhook_mode_a_crisis_behind_a_flood_is_answered_while_the_flood_still_comes(
    settings: Settings, engine: object
) -> None:
    """Telegram posts each chat's updates in order and different chats' at once: a crisis message queued
    behind a thousand from someone else is posted, answered and paged before that flood is all in."""
    async with BotHarness.running(settings, webhook=True) as harness:
        counselor_user, _, patient_user = await _counselor_and_patient(harness)
        flooder = harness.new_user_id()
        for number in range(1000):
            await harness.standin.send_text(flooder, f"hello {number}")
        mark = harness.standin.mark(patient_user)
        await harness.standin.send_text(patient_user, CRISIS)
        await _crisis_answered_and_paged(harness, patient_user, counselor_user, after=mark, timeout=30)
        assert harness.standin.pending_updates > 0  # the flood's updates are still being posted


async def test_in_webhook_mode_a_database_outage_is_503_and_the_crisis_is_answered_from_content(
    settings: Settings, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with BotHarness.running(settings, webhook=True) as harness:
        counselor_user, _, patient_user = await _counselor_and_patient(harness)
        real_store = grouped.store_claiming
        down = {"yes": True}

        async def store_while_up(*args: Any, **kwargs: Any) -> Any:
            if down["yes"]:
                raise OperationalError("INSERT", {}, Exception("could not connect"))
            return await real_store(*args, **kwargs)

        monkeypatch.setattr(grouped, "store_claiming", store_while_up)
        mark = harness.standin.mark(patient_user)
        await harness.standin.send_text(patient_user, CRISIS)
        crisis_line = harness.part("crisis.imminent", overdose=False, plan_contacts="", promise="")
        await harness.standin.wait_for(patient_user, crisis_line, after=mark)
        assert harness.standin.pending_updates == 1  # 503: Telegram keeps it and posts it again
        assert await _escalation_count(harness) == 0

        down["yes"] = False  # the database is back: the post is stored, recorded and paged
        await _recorded_and_paged_once(harness, patient_user, counselor_user, crisis_line, after=mark)


async def test_a_failing_update_is_retried_and_parked_after_the_last_try(
    settings: Settings, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.handlers import base

    failures = {"left": 1}
    real_identify = base.identify

    async def flaky_identify(*args: object, **kwargs: object) -> object:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("SELECT", {}, Exception("database is down"))
        return await real_identify(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(base, "identify", flaky_identify)
    async with BotHarness.running(settings.model_copy(update={"inbox_max_attempts": 2})) as harness:
        user = harness.new_user_id()
        mark = harness.standin.mark(user)
        await harness.standin.send_text(user, "/help")
        # The first try fails: an apology once; the second try answers.
        await harness.standin.wait_for(user, harness.part("error.generic"), after=mark)
        await harness.standin.wait_for(user, harness.part("stranger.not_enrolled"), after=mark)

        failures["left"] = 10  # every try fails now: parked after two, kept, counted
        other = harness.new_user_id()
        await harness.standin.send_text(other, "/help")

        async def parked() -> int:
            async with harness.runtime.sessions() as session:
                return int(
                    await session.scalar(select(func.count()).where(InboxUpdate.status == InboxStatus.PARKED))
                    or 0
                )

        for _ in range(200):
            if await parked() == 1:
                break
            await asyncio.sleep(0.05)
        assert await parked() == 1
        async with harness.runtime.sessions() as session:
            row = await session.scalar(select(InboxUpdate).where(InboxUpdate.status == InboxStatus.PARKED))
            assert row is not None and row.payload is not None and row.attempts == 2  # kept for an operator
            await harness.runtime.metrics.read_database(session)
        assert b"iop_inbox_parked 1.0" in harness.runtime.metrics.exposition()


async def _crisis_while_the_database_is_down(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, patient_user: int
) -> tuple[dict[str, bool], int, str]:
    """The inbox cannot be written (until `down["yes"]` is set False); the patient sends CRISIS and gets the
    crisis reply straight from content. Returns the switch, the transcript mark and the reply's line."""
    real_store = polling.store_updates
    down = {"yes": True}

    async def store_while_up(*args: object, **kwargs: object) -> list[int]:
        if down["yes"]:
            raise OperationalError("INSERT", {}, Exception("could not connect"))
        return await real_store(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(polling, "store_updates", store_while_up)
    mark = harness.standin.mark(patient_user)
    await harness.standin.send_text(patient_user, CRISIS)
    crisis_line = harness.part("crisis.imminent", overdose=False, plan_contacts="", promise="")
    await harness.standin.wait_for(patient_user, crisis_line, after=mark)
    return down, mark, crisis_line


async def test_an_imminent_message_is_answered_while_the_database_is_down(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    counselor_user, _, patient_user = await _counselor_and_patient(harness)
    down, mark, crisis_line = await _crisis_while_the_database_is_down(harness, monkeypatch, patient_user)
    assert await _escalation_count(harness) == 0  # nothing could be written yet

    down["yes"] = False  # the database is back: the same update is stored, recorded and paged
    await _recorded_and_paged_once(harness, patient_user, counselor_user, crisis_line, after=mark)


async def test_a_patient_who_stopped_sharing_gets_one_crisis_reply_when_the_database_was_down(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, patient_user = await _counselor_and_patient(harness)
    confirm = await harness.say(patient_user, "/revoke", harness.part("revoke.confirm_prompt"))
    await harness.tap(
        patient_user, confirm, harness.text("revoke.confirm_button"), harness.part("revoke.done")
    )
    down, mark, crisis_line = await _crisis_while_the_database_is_down(harness, monkeypatch, patient_user)

    down["yes"] = False  # the database is back: the same update is stored and handled, not answered again
    await harness.say(patient_user, "hello", harness.part("revoke.limited"))
    sent = [m.text or "" for m in harness.standin.transcript(patient_user)[mark:]]
    assert sum(crisis_line in text for text in sent) == 1
    assert await _escalation_count(harness) == 0  # they stopped sharing: nobody is paged


async def test_one_slow_chat_does_not_hold_up_another(harness: BotHarness) -> None:
    slow_user, fast_user = harness.new_user_id(), harness.new_user_id()
    harness.standin.inject("sendMessage", Fault.slow(6), chat_id=slow_user)
    await harness.standin.send_text(slow_user, "/help")
    await harness.standin.wait_for_call("sendMessage", timeout=10)  # the slow reply is under way
    await harness.standin.send_text(fast_user, "/help")
    await harness.standin.wait_for(fast_user, harness.part("stranger.not_enrolled"))
    assert harness.standin.transcript(slow_user) == []  # still waiting on Telegram
    await harness.standin.wait_for(slow_user, harness.part("stranger.not_enrolled"), timeout=15)


async def test_a_flood_is_answered_once_and_a_crisis_inside_it_still_pages(harness: BotHarness) -> None:
    counselor_user, _, patient_user = await _counselor_and_patient(harness)
    mark = harness.standin.mark(patient_user)
    await _flood(harness, patient_user, 80, "hello again")
    await harness.standin.send_text(patient_user, CRISIS)
    await _flood(harness, patient_user, 20, "and more")
    await _crisis_answered_and_paged(harness, patient_user, counselor_user, after=mark, timeout=60)
    slow_down = harness.part("input.slow_down")
    await harness.standin.wait_for(patient_user, slow_down, after=mark, timeout=60)
    await until_async(lambda: _pending_is(harness.runtime, 0), 60, "every stored update handled")
    texts = [m.text or "" for m in harness.standin.transcript(patient_user)[mark:]]
    assert sum(slow_down in text for text in texts) == 1
    assert len(texts) < 60  # not one answer per message


class _WorriesAboutEverything(semantic.Layer):
    """A semantic layer that asks "are you safe right now?" about every message it reads, and pages one about
    someone with a bat: whatever the trained layer of the day makes of a flood's greetings."""

    def __init__(self) -> None:
        self.calls = 0

    def verdict(self, clauses: Sequence[Sequence[str]], hints: Sequence[str] = ()) -> semantic.Verdict:
        self.calls += 1
        page = any("bat" in clause for clause in clauses)
        return semantic.Verdict(0.9 if page else 0.1, 0.9, Category.DANGER, "page" if page else "ask")

    def verdicts(
        self, messages: Sequence[tuple[Sequence[Sequence[str]], Sequence[str]]]
    ) -> list[semantic.Verdict]:
        return [self.verdict(clauses, hints) for clauses, hints in messages]


async def test_inside_a_flood_the_layers_question_is_asked_once_and_pages_and_the_rules_still_act(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the chat's budget, a message only the semantic layer asks about gets its question once in the
    window (the rest are stored, screened, counted, and answered by the one "slow down" line); the layer's
    page and the rules' screener act on every message."""
    monkeypatch.setattr(processor, "FLOOD_BUDGET", 5)
    layer = _WorriesAboutEverything()
    monkeypatch.setattr(harness.runtime.content.risk, "layer", layer)
    counselor_user, _, patient_user = await _counselor_and_patient(harness)
    mark = harness.standin.mark(patient_user)
    await _flood(harness, patient_user, 40, "hello again")
    await harness.standin.send_text(patient_user, "i dont see a way forward")  # the rules' C-SSRS screener
    await _flood(harness, patient_user, 20, "and more")
    await harness.standin.send_text(patient_user, "my husband is at the door with a bat")  # the layer pages
    await _flood(harness, patient_user, 20, "and again")
    screener = harness.part("cssrs.intro_ambiguous")
    await harness.standin.wait_for(patient_user, screener, after=mark, timeout=60)
    await harness.standin.wait_for(patient_user, harness.part("crisis.danger"), after=mark, timeout=60)
    await harness.standin.wait_for(counselor_user, harness.text("escalation.categories.danger"), timeout=30)
    await until_async(lambda: _pending_is(harness.runtime, 0), 60, "every stored update handled")
    assert layer.calls >= 82  # every message of the flood was screened
    texts = [m.text or "" for m in harness.standin.transcript(patient_user)[mark:]]
    questions = sum(harness.part("crisis.safety_check") in text for text in texts)
    # One by one within the budget (the /start that enrolled them counted against it too), then once in the
    # flood: today's code asked about every greeting.
    assert questions == processor.FLOOD_BUDGET
    assert sum(harness.part("input.slow_down") in text for text in texts) == 1
    held = harness.runtime.metrics.registry.get_sample_value("iop_inbox_flood_questions_held_total")
    assert held is not None and held >= 70  # counted: 80 greetings, 5 answered, 1 asked about in the flood


async def test_a_502_on_the_crisis_reply_is_retried_until_it_is_delivered(harness: BotHarness) -> None:
    counselor_user, _, patient_user = await _counselor_and_patient(harness)
    harness.standin.inject("sendMessage", Fault.server_error(502), chat_id=patient_user)
    mark = harness.standin.mark(patient_user)
    await harness.standin.send_text(patient_user, CRISIS)
    await _crisis_answered_and_paged(harness, patient_user, counselor_user, after=mark, timeout=30)


async def test_a_429_for_one_chat_does_not_delay_another_chats_crisis_reply(harness: BotHarness) -> None:
    counselor_user, _, patient_user = await _counselor_and_patient(harness)
    busy_user = harness.new_user_id()
    harness.standin.inject("sendMessage", Fault.too_many_requests(10), chat_id=busy_user)
    await harness.standin.send_text(busy_user, "/help")
    await harness.standin.wait_for_call("sendMessage", timeout=10)  # the 429 has been given
    mark = harness.standin.mark(patient_user)
    await harness.standin.send_text(patient_user, CRISIS)
    await _crisis_answered_and_paged(harness, patient_user, counselor_user, after=mark, timeout=5)
    assert harness.standin.transcript(busy_user) == []  # its own reply waits the 10 s Telegram asked for
    await harness.standin.wait_for(busy_user, harness.part("stranger.not_enrolled"), timeout=30)


@pytest.fixture
async def standin() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(bot_username="clinic_bot", patience=PATIENCE) as running:
        yield running


async def test_a_crash_right_after_a_fetch_loses_nothing(
    cli_env: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    standin: TelegramStandIn,
) -> None:
    """`python -m bot run` is killed (SIGKILL) while the updates it fetched wait on a slow Telegram; the
    next process handles every one of them: the crisis message is answered and paged. (No bot runs in this
    test's own process: it would share the database.)"""
    counselor_user = BotHarness.new_user_id()
    async with db.transaction(sessions) as session:
        counselor = await add_counselor(session, name="Sam", role=CounselorRole.COUNSELOR, timezone="UTC")
        counselor_code = (
            await issue_invite(session, kind=InviteKind.COUNSELOR, counselor_id=counselor.id, ttl=HOUR)
        ).code
        patient_code = (
            await issue_invite(session, kind=InviteKind.PATIENT, counselor_id=counselor.id, ttl=HOUR)
        ).code
    runtime = Runtime.create(settings)  # only for its texts and its database sessions
    env = {
        **cli_env,
        "BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_API_BASE_URL": standin.base_url,
        # Leases longer than the test: what the killed process held (the fetched updates, the replies it was
        # sending) is taken back at once because that process has ended (bot.core.presence), not when its
        # lease runs out.
        "INBOX_LEASE_SECONDS": "3600",
        "OUTBOX_LEASE_SECONDS": "3600",
    }

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    process = await start()
    try:
        await standin.send_text(counselor_user, f"/start {counselor_code}")
        await serving(process, standin)
        await standin.wait_for(counselor_user, "linked")
        patient_user = 7101

        async def answer(text: str, expect: str, *, tap: str | None = None) -> None:
            mark = standin.mark(patient_user)
            if tap is None:
                await standin.send_text(patient_user, text)
            else:
                await standin.tap(patient_user, int(text), tap)
            found = await standin.wait_for(patient_user, expect, after=mark, timeout=15)
            last["message"] = found

        last: dict[str, Any] = {}
        await answer(f"/start {patient_code}", part("consent.screen"))
        await answer(str(last["message"].message_id), part("onboarding.ask_timezone"), tap="consent:accept")
        for expect in (
            part("onboarding.ask_checkin_time"),
            part("onboarding.ask_language"),
            part("onboarding.done"),
        ):
            message = last["message"]
            await answer(str(message.message_id), expect, tap=message.buttons()[0][1])

        # Telegram's answers to sends hang from now on: the updates are fetched and stored, their handling
        # stalls, and the process is killed in the middle of it.
        standin.inject("sendMessage", Fault.slow(30), times=1000)
        for number in range(30):
            await standin.send_text(7102 + number, "hello")
        await standin.send_text(patient_user, CRISIS)
        await until_async(lambda: _stored(runtime, 31), 30, "the fetched updates stored")
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    standin.clear_faults()

    calls = len(standin.calls)
    process = await start()
    try:
        await serving(process, standin, after=calls)
        crisis_line = part_of(
            runtime.catalog, "crisis.imminent", overdose=False, plan_contacts="", promise=""
        )
        await standin.wait_for(patient_user, crisis_line, timeout=30)
        urgent = runtime.text("escalation.levels.imminent", "en")
        await standin.wait_for(
            counselor_user, part_of(runtime.catalog, "escalation.alert", level=urgent), timeout=30
        )
        await until_async(lambda: _pending_is(runtime, 0), 30, "every stored update handled")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    assert await _escalation_count(runtime) == 1
    await runtime.engine.dispose()
    for number in range(30):  # and each of the others was answered
        await standin.wait_for(7102 + number, part_of(runtime.catalog, "stranger.not_enrolled"), timeout=10)


async def until_async(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """`until` for conditions that read the database."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _stored(runtime: Runtime, at_least: int) -> bool:
    async with runtime.sessions() as session:
        chats = [runtime.keyring.pseudonym(user) for user in range(7101, 7133)]  # as the inbox keys them
        stored = await session.scalar(select(func.count()).where(InboxUpdate.chat_key.in_(chats)))
    return int(stored or 0) >= at_least + 1  # the /start of the patient, too


async def _pending_is(runtime: Runtime, count: int) -> bool:
    async with runtime.sessions() as session:
        pending = await session.scalar(select(func.count()).where(InboxUpdate.status == InboxStatus.PENDING))
    return int(pending or 0) == count
