"""Imminent alerts also page whoever is on call, whenever a shift covers the moment (office hours too); high
ones wait for the care team."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core import db
from bot.core.clock import DAYS
from bot.core.config import Settings
from bot.core.models import Escalation, EscalationAlert, EscalationStatus, utcnow
from bot.risk import oncall
from tests.e2e.test_crisis_flow import _alerts, _escalations
from tests.harness import BotHarness, alert_button


@pytest.fixture
async def after_hours(settings: Settings, engine: object) -> AsyncIterator[BotHarness]:
    """A harness whose clinic is closed now: open only on a day three days away."""
    closed_day = DAYS[(utcnow().astimezone(settings.timezone).weekday() + 3) % 7]
    closed = settings.model_copy(update={"office_hours": f"{closed_day} 08:00-18:00"})
    async with BotHarness.running(closed) as harness:
        yield harness


async def test_imminent_alerts_page_the_on_call_counselor_after_hours(after_hours: BotHarness) -> None:
    harness = after_hours
    primary_user, primary_id = await harness.link_counselor("Sam")
    on_call_user, on_call_id = await harness.link_counselor("Olu")
    off_duty_user, off_duty_id = await harness.link_counselor("Kit")
    now = utcnow()
    async with db.transaction(harness.runtime.sessions) as session:
        await oncall.add_shift(session, on_call_id, now - timedelta(hours=1), now + timedelta(hours=8))
        await oncall.add_shift(session, off_duty_id, now + timedelta(hours=8), now + timedelta(hours=20))
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)

    # A high signal is for the care team only, even at night.
    await harness.say(patient_user, "i relapsed last night", harness.part("use.told_high"))
    patient = await harness.patient(patient_user)
    assert patient is not None
    high = harness.text("escalation.levels.high")
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=high, alias=patient.alias)
    )
    assert _alerts(harness, on_call_user) == []

    # An imminent one pages the on-call counselor at once, beside the primary counselor.
    await harness.say(patient_user, "took 30 xanax", "911")
    await harness.standin.wait_for(
        primary_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    alert = await harness.standin.wait_for(
        on_call_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )
    assert _alerts(harness, off_duty_user) == []

    # The on-call counselor, though not on the care team, may act on it.
    await harness.standin.tap(on_call_user, alert.message_id, alert_button(alert, "ack"))
    await harness.standin.wait_for(primary_user, harness.part("escalation.acknowledged", counselor="Olu"))
    overdose = next(e for e in await _escalations(harness, patient_id) if e.category == "overdose")
    async with harness.runtime.sessions() as session:
        status = await session.scalar(select(Escalation.status).where(Escalation.id == overdose.id))
    assert status is EscalationStatus.ACKNOWLEDGED


@pytest.fixture
async def office_open(settings: Settings, engine: object) -> AsyncIterator[BotHarness]:
    """A harness whose clinic is open now, every day, from two hours ago to two hours on."""
    local = utcnow().astimezone(settings.timezone)
    start, end = ((local + timedelta(hours=h)).strftime("%H:%M") for h in (-2, 2))
    open_now = settings.model_copy(update={"office_hours": f"Mon-Sun {start}-{end}"})
    async with BotHarness.running(open_now) as harness:
        yield harness


# This test once expected the on-call counselor not to be paged in office hours. On a holiday the office
# hours did not know of, that skipped the one counselor working: a shift that covers the moment now counts
# in office hours too (for imminent alerts), and the patient is still promised "today".
async def test_in_office_hours_the_on_call_counselor_is_paged_too(office_open: BotHarness) -> None:
    harness = office_open
    primary_user, primary_id = await harness.link_counselor("Sam")
    on_call_user, on_call_id = await harness.link_counselor("Olu")
    now = utcnow()
    async with db.transaction(harness.runtime.sessions) as session:
        await oncall.add_shift(session, on_call_id, now - timedelta(hours=1), now + timedelta(hours=8))
    patient_user = harness.new_user_id()
    patient_id = await harness.enroll(patient_user, primary_id)
    reply = await harness.say(patient_user, "took 30 xanax", "911")
    assert harness.text("promise.today") in (reply.text or "")
    imminent = harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    await harness.standin.wait_for(primary_user, imminent)
    await harness.standin.wait_for(on_call_user, imminent)
    # The page's copies are committed together once it has gone out: the primary's and the on-call's.
    paged: list[int] = []
    for _ in range(100):
        async with harness.runtime.sessions() as session:
            paged = list(
                await session.scalars(
                    select(EscalationAlert.counselor_id)
                    .join(Escalation, Escalation.id == EscalationAlert.escalation_id)
                    .where(Escalation.patient_id == patient_id)
                )
            )
        if paged:
            break
        await asyncio.sleep(0.05)
    assert sorted(paged) == sorted([primary_id, on_call_id])
