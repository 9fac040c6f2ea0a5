"""What a patient writes stays out of the raw database and out of the logs, through a whole session; nor does
any log line carry a Telegram id."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bot.core import logs
from bot.core.models import Base
from devtools.simulator import Fault
from tests.e2e.test_checkin_flow import _toggle
from tests.harness import BotHarness

# Words only this patient typed: none may appear in a table or a log line.
TYPED = {
    "trigger": "Zephyrine texted about the old crew",
    "use": "Quillmore pills from the cabinet",
    "crisis": "i want to kill myself tonight behind the Varnholt mill",
    "plan": "call Ostrander my sponsor",
}
MARKERS = ("Zephyrine", "Quillmore", "Varnholt", "Ostrander")


async def _raw_database(harness: BotHarness) -> str:
    """Every value of every table, as the database holds it, in one string."""
    parts: list[str] = []
    async with harness.runtime.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in await connection.execute(text(f"SELECT * FROM {table.name}")):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


@pytest.fixture
def bot_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The bot's own logging set-up at its most verbose (DEBUG), captured; restored afterwards."""
    root = logging.getLogger()
    names = ("telegram", "aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore", "apscheduler")
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names})
    logs.configure("DEBUG")
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


async def test_a_whole_session_leaves_no_words_in_the_database_or_the_logs(
    harness: BotHarness, bot_logging: pytest.LogCaptureFixture
) -> None:
    caplog = bot_logging
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id)

    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    triggers = await harness.tap(user, craving, "4", harness.part("checkin.ask.triggers"))
    triggers = await _toggle(harness, user, triggers, harness.text("checkin.buttons.triggers.other"))
    await harness.tap(
        user, triggers, harness.text("checkin.buttons.done"), harness.part("checkin.ask.trigger_other")
    )
    mood = await harness.say(user, TYPED["trigger"], harness.part("checkin.ask.mood"))
    sleep = await harness.tap(user, mood, "3", harness.part("checkin.ask.sleep"))
    use = await harness.tap(
        user, sleep, harness.text("checkin.buttons.sleep.good"), harness.part("checkin.ask.use")
    )
    await harness.tap(user, use, harness.text("checkin.buttons.yes"), harness.part("checkin.ask.use_what"))
    await harness.say(user, TYPED["use"], harness.part("checkin.ask.note"))

    await harness.start_safety_plan(user)
    step = await harness.say(user, TYPED["plan"], harness.part("plan.steps.coping.title"))
    await harness.tap(user, step, harness.text("plan.stop_button"), harness.part("plan.stopped"))

    await harness.say(user, TYPED["crisis"], "988")
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert not any(marker in (alert.text or "") for marker in MARKERS)  # least data in the alert

    raw = await _raw_database(harness)
    assert "gAAAAA" in raw  # the words are there, encrypted
    leaked = [marker for marker in MARKERS if marker.lower() in raw.lower()]
    assert leaked == [], f"in the raw database: {leaked}"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "event=" in logged  # the logs did capture the session
    leaks = [
        f"{r.name}:{r.levelname}: {r.getMessage()[:150]}"
        for r in caplog.records
        if any(m.lower() in r.getMessage().lower() for m in MARKERS)
    ]
    assert leaks == [], "\n".join(leaks)


def _said(record: logging.LogRecord) -> str:
    """Everything a record carries that a handler could write out."""
    parts = [record.getMessage(), repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


async def test_no_log_record_carries_a_telegram_id(
    harness: BotHarness, bot_logging: pytest.LogCaptureFixture
) -> None:
    """Logs carry the bot's own ids (patient, counselor, escalation) or a chat's pseudonym (`chat_ref`),
    never a Telegram user or chat id. A journey down to DEBUG: a counselor links, a patient enrolls, asks for
    help, is paged about, a stranger writes, and the patient erases their data while Telegram refuses to take
    the buttons off the counselor's copy of the alert (a refusal that is logged)."""
    caplog = bot_logging
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    patient_user, stranger = harness.new_user_id(), harness.new_user_id()
    await harness.enroll(patient_user, counselor_id)
    await harness.say(patient_user, "/help", harness.part("help.patient_active"))
    await harness.say(patient_user, TYPED["crisis"], "988")
    alert = await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    await harness.resolve_alert(counselor_user, alert, "Sam")
    await harness.say(stranger, "hello", harness.part("stranger.not_enrolled"))

    calls = len(harness.standin.calls)
    harness.standin.inject("editMessageReplyMarkup", Fault.blocked(), chat_id=counselor_user, times=10)
    prompt = await harness.say(patient_user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    await harness.tap(
        patient_user, prompt, harness.text("deleteme.confirm_button"), harness.part("deleteme.done")
    )
    await harness.standin.wait_for_call("editMessageReplyMarkup", after=calls, finished=True, timeout=10)
    for _ in range(100):  # the refusal is logged once the bot has read it
        if any("buttons.remove_failed" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    assert any("buttons.remove_failed" in r.getMessage() for r in caplog.records)
    ids = re.compile(rf"\b({counselor_user}|{patient_user}|{stranger})\b")
    ours = [
        r for r in caplog.records if not r.name.startswith("devtools.")
    ]  # not the stand-in's (Telegram's)
    naming = [f"{r.name}: {_said(r)}" for r in ours if ids.search(_said(r))]
    assert naming == []
