"""What a patient writes stays out of the raw database and out of the logs, through a whole session."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bot.core import logs
from bot.core.models import Base
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

    intro = await harness.say(user, "/safetyplan", harness.part("plan.intro"))
    await harness.tap(
        user, intro, harness.text("plan.start_button"), harness.part("plan.steps.warning_signs.title")
    )
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
