"""Promise only what the clinic can keep (issue 18, item 6): a crisis reply says what the care team will do by
the clinic's state at that moment. In office hours, "they will contact you today" and the clinic's phone;
after hours with the on-call counselor paged, that; otherwise when someone will call (the next office
opening, in the patient's own time zone) and the after-hours number. The program's name and numbers come
from the settings, which `run` requires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.core import db
from bot.core.clock import DAYS
from bot.core.config import Settings
from bot.core.models import Patient, utcnow
from bot.risk import oncall
from tests.e2e.test_crisis_first_flow import CRISIS, WAIT
from tests.e2e.test_screener_flow import HIGH
from tests.harness import TEST_CLINIC, BotHarness, CommandLine

LANGUAGES = ["en", "es"]


@asynccontextmanager
async def _clinic(settings: Settings, office_hours: str) -> AsyncIterator[BotHarness]:
    async with BotHarness.running(settings.model_copy(update={"office_hours": office_hours})) as harness:
        yield harness


@pytest.fixture
async def office_open(settings: Settings, engine: object) -> AsyncIterator[BotHarness]:
    """The clinic is open now, every day, from two hours ago to two hours on."""
    local = utcnow().astimezone(settings.timezone)
    start, end = ((local + timedelta(hours=h)).strftime("%H:%M") for h in (-2, 2))
    async with _clinic(settings, f"Mon-Sun {start}-{end}") as harness:
        yield harness


@pytest.fixture
async def closed(settings: Settings, engine: object) -> AsyncIterator[BotHarness]:
    """The clinic is closed now: open only on the day three days from today, 08:00 to 18:00."""
    day = DAYS[(utcnow().astimezone(settings.timezone).weekday() + 3) % 7]
    async with _clinic(settings, f"{day} 08:00-18:00") as harness:
        yield harness


async def _patient(harness: BotHarness, language: str) -> tuple[int, int, int]:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    return counselor_user, user, await harness.enroll(user, counselor_id, language=language)


async def _crisis_reply(harness: BotHarness, user: int, text: str, key: str, language: str) -> str:
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, text)
    first = harness.runtime.text(key, language, overdose=False, plan_contacts=None, promise="")
    reply = await harness.standin.wait_for(user, first.splitlines()[0], after=mark, timeout=WAIT)
    return reply.text or ""


@pytest.mark.parametrize("language", LANGUAGES)
async def test_in_office_hours_the_care_team_will_contact_them_today(
    office_open: BotHarness, language: str
) -> None:
    harness = office_open
    counselor_user, user, _ = await _patient(harness, language)
    reply = await _crisis_reply(harness, user, CRISIS[language], "crisis.imminent", language)
    today = harness.runtime.text("promise.today", language)
    assert reply.endswith(today)
    assert TEST_CLINIC["PROGRAM_NAME"] in today and TEST_CLINIC["CLINIC_PHONE"] in today
    # The old promise ("someone will reach out"), which nobody might keep at night, is gone.
    assert "someone will reach out" not in reply and "alguien se va a comunicar" not in reply
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )


@pytest.mark.parametrize("language", LANGUAGES)
async def test_after_hours_the_patient_hears_that_the_on_call_counselor_was_paged(
    closed: BotHarness, language: str
) -> None:
    harness = closed
    on_call_user, on_call_id = await harness.link_counselor("Olu")
    now = utcnow()
    async with db.transaction(harness.runtime.sessions) as session:
        await oncall.add_shift(session, on_call_id, now - timedelta(hours=1), now + timedelta(hours=8))
    _, user, _ = await _patient(harness, language)
    reply = await _crisis_reply(harness, user, CRISIS[language], "crisis.imminent", language)
    on_call = harness.runtime.text("promise.on_call", language)
    assert reply.endswith(on_call) and TEST_CLINIC["AFTER_HOURS_PHONE"] in on_call
    await harness.standin.wait_for(
        on_call_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )


@pytest.mark.parametrize("language", LANGUAGES)
async def test_after_hours_with_nobody_paged_they_hear_when_someone_will_call_in_their_own_zone(
    closed: BotHarness, language: str
) -> None:
    """A high alert pages no on-call counselor (only imminent ones do): even with one on call, the patient is
    told when the office opens, in their own time zone, and the after-hours number."""
    harness = closed
    _, on_call_id = await harness.link_counselor("Olu")
    now = utcnow()
    async with db.transaction(harness.runtime.sessions) as session:
        await oncall.add_shift(session, on_call_id, now - timedelta(hours=1), now + timedelta(hours=8))
    counselor_user, user, patient_id = await _patient(harness, language)
    async with db.transaction(harness.runtime.sessions) as session:
        denver = update(Patient).where(Patient.id == patient_id).values(timezone="America/Denver")
        await session.execute(denver)

    reply = await _crisis_reply(harness, user, HIGH[language], "crisis.high", language)
    # The clinic opens at 08:00 New York time, three days from today: 06:00 in Denver.
    clinic = harness.runtime.settings.timezone
    opens_day = (now.astimezone(clinic) + timedelta(days=3)).date()
    opens = datetime(opens_day.year, opens_day.month, opens_day.day, 8, tzinfo=clinic)
    local = opens.astimezone(ZoneInfo("America/Denver"))
    assert local.hour == 6
    text = harness.runtime.text
    clock = local.strftime(text("promise.time_format", language)).lstrip("0")
    weekday = text(f"promise.weekdays.{local.weekday()}", language)
    when = text("promise.when.weekday", language, weekday=weekday, time=clock)
    later = text("promise.later", language, when=when)
    assert later in reply
    assert TEST_CLINIC["AFTER_HOURS_PHONE"] in later and clock in later
    assert text("promise.on_call", language) not in reply and text("promise.today", language) not in reply
    patient = await harness.patient(user)
    assert patient is not None
    high = harness.text("escalation.levels.high")
    await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=high, alias=patient.alias)
    )


def test_run_refuses_to_start_without_the_clinic_settings(cli: CommandLine) -> None:
    for name in TEST_CLINIC:
        result = cli("run", BOT_TOKEN="1:" + "a" * 30, **{name: None})
        assert result.returncode == 2
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"configuration error: {name}: not set")
    bad = cli("run", BOT_TOKEN="1:" + "a" * 30, CLINIC_PHONE="call us")
    assert bad.returncode == 2 and "CLINIC_PHONE: must be a phone number" in bad.stderr
